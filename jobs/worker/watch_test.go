package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
)

// newTestWatch is a queueWatch over priorities "a" and "b" on 4 shards
// under the test's own prefix, and the pending list of a on shard 2.
func newTestWatch(t *testing.T) (*queueWatch, *keyspace.Space, string) {
	t.Helper()
	ks, err := keyspace.New(redistest.Prefix(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	qw := newQueueWatch(ks, []string{redistest.Queue(t, "a"), redistest.Queue(t, "b")}, 100*time.Millisecond, nil)
	return qw, ks, qw.byShard[2][0]
}

// TestQueueWatchEmpty: a queue is skipped once a take found it empty, and
// asked of Redis again once woken, by its own wake, its shard's or all;
// a take that started before a wake does not mark it empty after it.
func TestQueueWatchEmpty(t *testing.T) {
	t.Parallel()
	qw, _, key := newTestWatch(t)
	empty := func() {
		t.Helper()
		skip, gen := qw.skip(key)
		if skip {
			t.Fatal("queue skipped before a take found it empty")
		}
		qw.taken(key, gen, 0)
		if skip, _ := qw.skip(key); !skip {
			t.Fatal("queue found empty is not skipped")
		}
	}
	for name, wake := range map[string]func(){
		"own":      func() { qw.wake(key) },
		"priority": func() { qw.woke(2, qw.priorityOf(key)) },
		"shard":    func() { qw.woke(2, "") },
		"all":      func() { qw.woke(-1, "") },
	} {
		empty()
		wake()
		if skip, _ := qw.skip(key); skip {
			t.Errorf("%s wake: queue still skipped", name)
		}
	}
	empty()
	qw.woke(1, "")
	qw.woke(2, qw.priorityOf(qw.byShard[2][1]))
	if skip, _ := qw.skip(key); !skip {
		t.Error("a wake of another shard or priority woke the queue")
	}

	// A take in flight when a task came and woke the queue.
	qw.wake(key)
	_, gen := qw.skip(key)
	qw.wake(key)
	qw.taken(key, gen, 0)
	if skip, _ := qw.skip(key); skip {
		t.Error("a take that began before a wake marked the queue empty")
	}
	// A take that found tasks leaves the queue to Redis, even when
	// another fetch loop's take of it, which found none, answered first.
	_, gen = qw.skip(key)
	qw.taken(key, gen, 0)
	qw.taken(key, gen, 3)
	if skip, _ := qw.skip(key); skip {
		t.Error("a take that found tasks left the queue marked empty")
	}
}

// priorityOf is the priority of the queue of pending list key.
func (qw *queueWatch) priorityOf(key string) string {
	for sp, k := range qw.byPriority {
		if k == key {
			return sp.priority
		}
	}
	return ""
}

// TestQueueWatchPoll: the poll wakes the empty queues of a shard that has
// more pending lists than queues in use, and only its; a queue it woke in
// vain (paused) is left for quietFor; it lets forwarder calls through only
// for shards with scheduled or retry tasks.
func TestQueueWatchPoll(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	qw, ks, key := newTestWatch(t)
	ctx := t.Context()
	for k := range qw.queues {
		_, gen := qw.skip(k)
		qw.taken(k, gen, 0)
	}
	if err := rdb.LPush(ctx, key, "task").Err(); err != nil {
		t.Fatal(err)
	}
	if err := qw.poll(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	for k := range qw.queues {
		skip, _ := qw.skip(k)
		if woken := qw.queues[k].shard == 2; skip == woken {
			t.Errorf("queue %s after the poll: skipped %v, want %v", k, skip, !woken)
		}
	}
	// Taken by another process meanwhile, or paused: nothing found.
	for _, k := range qw.byShard[2] {
		_, gen := qw.skip(k)
		qw.taken(k, gen, 0)
	}
	if err := qw.poll(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if skip, _ := qw.skip(key); !skip {
		t.Error("the poll woke again a queue it had woken in vain")
	}
	qw.woke(2, "")
	if skip, _ := qw.skip(key); skip {
		t.Error("a notified queue stays quiet")
	}
	// A queue the poll woke, whose take found a task, is not quiet when
	// a later take finds it empty, nor when a take that found none
	// answered first.
	other := qw.byShard[1][0]
	if err := rdb.LPush(ctx, other, "task").Err(); err != nil {
		t.Fatal(err)
	}
	if err := qw.poll(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	_, gen := qw.skip(other)
	qw.taken(other, gen, 0)
	qw.taken(other, gen, 1)
	_, gen = qw.skip(other)
	qw.taken(other, gen, 0)
	_, gen = qw.skip(qw.byShard[1][1])
	qw.taken(qw.byShard[1][1], gen, 0)
	if err := qw.poll(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if skip, _ := qw.skip(other); skip {
		t.Error("the poll left quiet a queue whose wake found a task")
	}

	// One queue busy with its pending list, another thought empty with a
	// job in its fair line (promoted by another process, say): the poll
	// wakes the second.
	busy, idle := qw.byShard[0][0], qw.byShard[0][1]
	if err := rdb.LPush(ctx, busy, "task").Err(); err != nil {
		t.Fatal(err)
	}
	_, gen = qw.skip(busy)
	qw.taken(busy, gen, 1)
	_, gen = qw.skip(idle)
	qw.taken(idle, gen, 0)
	fair := ks.Fair(0, qw.priorityOf(idle)).Line
	if err := rdb.ZAdd(ctx, fair, redis.Z{Score: 1, Member: "job\ntenant"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := qw.poll(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if skip, _ := qw.skip(idle); skip {
		t.Error("the poll missed a job in the fair line of a queue thought empty, beside a busy queue's pending list")
	}

	// Forwards: shard 3 has a retry, the others nothing delayed.
	retry := keyspace.AsynqQueue(ks.Queue(3, qw.priorityOf(qw.byShard[3][1]))).Retry
	if err := rdb.ZAdd(ctx, retry, redis.Z{Score: 1, Member: "x"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := qw.poll(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	for k, shard := range qw.shardOf {
		if strings.HasSuffix(k, ":completed") {
			continue
		}
		if got := qw.forward(k); got != (shard == 3) {
			t.Errorf("forward of %s (shard %d): %v", k, shard, got)
		}
	}
	qw.idle(retry, 0)
	if qw.forward(retry) {
		t.Error("a forward that found nothing due is let through again within half an interval")
	}
}
