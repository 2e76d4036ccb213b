package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// Idle cost. asynq polls: each fetch loop (an asynq Server) tries every
// queue, one round trip per empty queue, every TaskCheckInterval, and each
// Server's forwarder checks every queue's scheduled and retry sets every
// DelayedTaskCheckInterval. With a queue per priority and shard, that grew
// with the shards: an idle worker process with 16 shards (48 queues, 3
// fetch loops) cost Redis about 28,000 commands/s, one shard 2,800/s.
//
// So the worker answers what it knows is idle without Redis (queueWatch,
// consulted by takeClient):
//
//   - A queue a take found empty is skipped, its asks answered with none,
//     until something wakes it: the event every accept and replay publishes
//     (a WakeSource: within moments), this process's own put-backs,
//     recoveries and forwards (at once), or the watch's poll, which finds
//     the rest (tasks forwarded, put back or recovered by other processes,
//     a queue resumed) within DelayedTaskCheckInterval.
//   - The poll is one EXISTS of a shard's pending lists, one of its fair
//     lines and one of its scheduled and retry sets, pipelined for all
//     shards, every DelayedTaskCheckInterval, whatever the number of
//     fetch loops.
//   - asynq's forwarder calls are let through only for a shard whose
//     scheduled or retry sets exist, once per set per half interval
//     whichever fetch loop asks; its janitors' once per queue per
//     janitorEvery.
//
// An idle worker process then costs 3 commands per shard per
// DelayedTaskCheckInterval, plus a fixed few (heartbeats, the recoverer):
// about 520/s with 16 shards at the default 100ms (TestIdleWorkerCost).
// On asynq's public API only (keyspace.AsynqDirect false) none of this
// runs: asynq polls as it does.

// quietFor is how long a queue that the poll woke, and a take then found
// empty, is not woken by the poll again: a paused queue keeps its tasks,
// and each poll would otherwise send a take after them. A notified queue
// is woken at once all the same; a paused queue's resume is seen within
// quietFor plus the poll's interval.
const quietFor = time.Second

// janitorEvery is how often asynq's janitor of one queue is let through to
// Redis, whichever fetch loop's janitor asks: asynq runs one per Server,
// every 8s.
const janitorEvery = 8 * time.Second

// watchedQueue is what the worker knows of one of its asynq queues.
type watchedQueue struct {
	shard int
	// empty: a take found no task and nothing woke the queue since; its
	// asks are answered with none without a round trip.
	empty bool
	// gen counts the wakes, so that a take that started before a wake does
	// not mark the queue empty after it.
	gen uint64
	// polled: the last wake was the poll's; quietUntil is when the poll
	// may wake the queue again after such a wake found nothing.
	polled     bool
	quietUntil time.Time
}

// queueWatch knows which of a worker's asynq queues are idle: see the
// comment at the top of this file.
type queueWatch struct {
	ks       *keyspace.Space
	interval time.Duration
	log      *slog.Logger

	mu sync.Mutex
	// queues by pending list; byShard the pending lists of each shard,
	// fairLines its fair lines, delayedSets its scheduled and retry sets.
	queues      map[string]*watchedQueue
	byShard     [][]string
	fairLines   [][]string
	delayedSets [][]string
	// byPriority maps a shard and priority to its pending list.
	byPriority map[shardPriority]string
	// delayed: the last poll found scheduled or retry tasks on the shard
	// (true until the first poll).
	delayed []bool
	// shardOf maps a scheduled set, retry set or completed set to its
	// queue's shard.
	shardOf map[string]int
	// idleSince is when a forward or janitor call of a key last found
	// nothing to do.
	idleSince map[string]time.Time

	// skips counts the asks answered without Redis; forwards and sweeps
	// the forward and janitor calls answered without Redis.
	skips, forwards, sweeps int64
}

type shardPriority struct {
	shard    int
	priority string
}

// newQueueWatch watches the asynq queues of priorities on every shard of
// ks, polling every interval.
func newQueueWatch(ks *keyspace.Space, priorities []string, interval time.Duration, log *slog.Logger) *queueWatch {
	n := ks.Shards()
	qw := &queueWatch{
		ks: ks, interval: interval, log: orDiscard(log),
		queues: map[string]*watchedQueue{}, byShard: make([][]string, n), fairLines: make([][]string, n), delayedSets: make([][]string, n),
		byPriority: map[shardPriority]string{}, delayed: make([]bool, n),
		shardOf: map[string]int{}, idleSince: map[string]time.Time{},
	}
	for shard := range n {
		qw.delayed[shard] = true
		for _, p := range priorities {
			keys := keyspace.AsynqQueue(ks.Queue(shard, p))
			qw.queues[keys.Pending] = &watchedQueue{shard: shard}
			qw.byShard[shard] = append(qw.byShard[shard], keys.Pending)
			qw.fairLines[shard] = append(qw.fairLines[shard], ks.Fair(shard, p).Line)
			qw.byPriority[shardPriority{shard, p}] = keys.Pending
			qw.delayedSets[shard] = append(qw.delayedSets[shard], keys.Scheduled, keys.Retry)
			qw.shardOf[keys.Scheduled] = shard
			qw.shardOf[keys.Retry] = shard
			qw.shardOf[keys.Completed] = shard
		}
	}
	return qw
}

// skip reports whether an ask of the queue of pending list key is to be
// answered with none without Redis; otherwise gen is to be handed to
// taken with what the take found.
func (qw *queueWatch) skip(key string) (skip bool, gen uint64) {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	q := qw.queues[key]
	if q == nil {
		return false, 0
	}
	if q.empty {
		qw.skips++
		return true, 0
	}
	return false, q.gen
}

// taken records that a take of the queue of pending list key, asked for
// with gen, found n tasks. Takes of one queue by several fetch loops may
// answer in any order: one that found tasks leaves the queue to Redis and
// clears a quiet spell whatever came before it.
func (qw *queueWatch) taken(key string, gen uint64, n int) {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	q := qw.queues[key]
	switch {
	case q == nil:
		return
	case n > 0:
		q.empty, q.polled, q.quietUntil = false, false, time.Time{}
		return
	case q.gen != gen:
		return
	}
	q.empty = true
	// Only the first take after the poll's wake says whether it was in
	// vain.
	if q.polled {
		q.quietUntil = time.Now().Add(quietFor)
		q.polled = false
	}
}

// wake makes the next ask of the queue of pending list key go to Redis.
func (qw *queueWatch) wake(key string) {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	if q := qw.queues[key]; q != nil {
		qw.wakeLocked(q, false)
	}
}

// wakeLocked wakes q; polled says the poll did. qw.mu is held.
func (qw *queueWatch) wakeLocked(q *watchedQueue, polled bool) {
	q.gen++
	q.empty = false
	q.polled = polled
}

// woke is a WakeSource's call: jobs were queued on shard (every shard
// when negative) with priority (every priority when "").
func (qw *queueWatch) woke(shard int, priority string) {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	if shard >= 0 && priority != "" {
		if q := qw.queues[qw.byPriority[shardPriority{shard, priority}]]; q != nil {
			qw.wakeLocked(q, false)
		}
		return
	}
	for s, keys := range qw.byShard {
		if shard >= 0 && s != shard {
			continue
		}
		for _, key := range keys {
			qw.wakeLocked(qw.queues[key], false)
		}
	}
}

// forward reports whether asynq's forwarder call for scheduled or retry
// set key is to go to Redis: when the last poll found delayed tasks on
// its shard, and the set was not found without due tasks in the last half
// interval (by any fetch loop's forwarder). Keys of other queues go.
func (qw *queueWatch) forward(key string) bool {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	shard, ok := qw.shardOf[key]
	if !ok {
		return true
	}
	if !qw.delayed[shard] || time.Since(qw.idleSince[key]) < qw.interval/2 {
		qw.forwards++
		return false
	}
	return true
}

// sweep reports whether asynq's janitor call for completed set key is to
// go to Redis: once per janitorEvery, whichever fetch loop's janitor asks.
func (qw *queueWatch) sweep(key string) bool {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	if _, ok := qw.shardOf[key]; !ok {
		return true
	}
	if time.Since(qw.idleSince[key]) < janitorEvery/2 {
		qw.sweeps++
		return false
	}
	// The fetch loops' janitors fire together: the first one's call
	// stands for the others asking meanwhile, before its answer is in
	// (idle clears this when the call found work to do).
	qw.idleSince[key] = time.Now()
	return true
}

// idle records that a forward or janitor call of key found nothing to do
// (n == 0); one that did something lets the next call through, as asynq
// repeats a call until it finds nothing.
func (qw *queueWatch) idle(key string, n int64) {
	qw.mu.Lock()
	defer qw.mu.Unlock()
	if n == 0 {
		qw.idleSince[key] = time.Now()
	} else {
		delete(qw.idleSince, key)
	}
}

// poll checks, in one pipeline, which shards have pending tasks (in
// their pending lists or fair lines) and which have scheduled or retry
// tasks: one EXISTS of each per shard. A shard with more pending lists
// and fair lines than queues not known empty has its empty queues woken
// (but those the poll woke in vain lately).
func (qw *queueWatch) poll(ctx context.Context, rdb redis.UniversalClient) error {
	n := qw.ks.Shards()
	pending := make([]*redis.IntCmd, n)
	fair := make([]*redis.IntCmd, n)
	delayed := make([]*redis.IntCmd, n)
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := range n {
			pending[shard] = p.Exists(ctx, qw.byShard[shard]...)
			fair[shard] = p.Exists(ctx, qw.fairLines[shard]...)
			delayed[shard] = p.Exists(ctx, qw.delayedSets[shard]...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := time.Now()
	qw.mu.Lock()
	defer qw.mu.Unlock()
	for shard := range n {
		qw.delayed[shard] = delayed[shard].Val() > 0
		var known int64
		for _, key := range qw.byShard[shard] {
			if !qw.queues[key].empty {
				known++
			}
		}
		// A queue with work has its pending list or its fair line or
		// both: more keys than queues known to have work means one
		// thought empty may have some. (Counted apart, a busy queue's
		// pending list and an idle one's fair line would each look like
		// the busy queue's.) A busy queue with both wakes the empty ones
		// in vain, once per quietFor at most.
		if pending[shard].Val()+fair[shard].Val() <= known {
			continue
		}
		for _, key := range qw.byShard[shard] {
			if q := qw.queues[key]; q.empty && !now.Before(q.quietUntil) {
				qw.wakeLocked(q, true)
			}
		}
	}
	return nil
}

// loop polls every interval until ctx ends, and listens to src.
func (qw *queueWatch) loop(ctx context.Context, rdb redis.UniversalClient, src WakeSource) {
	if src != nil {
		go src.Listen(ctx, qw.woke)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := qw.poll(ctx, rdb); err != nil && ctx.Err() == nil {
			qw.log.Debug("could not look for queued tasks", "err", err)
		}
		t.Reset(qw.interval)
	}
}
