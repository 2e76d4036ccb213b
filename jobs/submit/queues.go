package submit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// A queue, as asyncgw's configuration and API name it ("critical",
// "default", …), is a priority: on Redis it is one asynq queue per shard
// (keyspace.Space.Queue). The functions here read and change a queue on
// all of its shards.

// QueueInfo is the state of a queue, summed over its shards.
type QueueInfo struct {
	Pending, Active, Scheduled, Retry int
	// ProcessedTotal counts the tasks done, as asynq counts them.
	ProcessedTotal int
	// Latency is how long the oldest pending task has waited.
	Latency time.Duration
	// Paused: a shard of the queue is paused (normally all are).
	Paused bool
	// Known: asynq holds the queue (it has been registered or used).
	Known bool
	// PendingByTenant counts, by tenant, the new jobs among Pending that
	// wait in the queue's fair lines (status/fair.go); nil when none does.
	PendingByTenant map[string]int
}

// RegisterQueues adds every shard of queues to asynq's set of queues, which
// its inspector lists. asynq's client does so with every task; asyncgw's
// accept script does not (the set is not in the job's slot), so each
// process registers the queues it serves when it starts.
func (c *Client) RegisterQueues(ctx context.Context, queues []string) error {
	var names []any
	for _, q := range queues {
		for _, aq := range c.ks.Queues(q) {
			names = append(names, aq)
		}
	}
	if len(names) == 0 {
		return nil
	}
	if err := c.rdb.SAdd(ctx, keyspace.AsynqQueuesKey, names...).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}

// KnownQueues lists the queues asynq holds, by name (without shards).
func (c *Client) KnownQueues(context.Context) ([]string, error) {
	all, err := c.insp.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	var out []string
	for _, aq := range all {
		if _, q, ok := c.ks.ParseQueue(aq); ok && !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out, nil
}

// QueueInfo reads a queue on every shard: in one pipeline of reads of
// asynq's keys when the direct path is on (keyspace.AsynqDirect), else
// through asynq's inspector, which knows only the queues in asynq's set.
func (c *Client) QueueInfo(ctx context.Context, queue string) (QueueInfo, error) {
	if c.direct {
		return c.queueInfoDirect(ctx, queue)
	}
	var out QueueInfo
	// asynq reads only the queues in its set (its "not found" for another
	// is no ErrQueueNotFound).
	known, err := c.insp.Queues()
	if err != nil {
		return QueueInfo{}, fmt.Errorf("read queue %s: %w", queue, err)
	}
	for _, aq := range c.ks.Queues(queue) {
		if !slices.Contains(known, aq) {
			continue
		}
		info, err := c.insp.GetQueueInfo(aq)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return QueueInfo{}, fmt.Errorf("read queue %s: %w", queue, err)
		}
		out.Known = true
		out.Pending += info.Pending
		out.Active += info.Active
		out.Scheduled += info.Scheduled
		out.Retry += info.Retry
		out.ProcessedTotal += info.ProcessedTotal
		out.Latency = max(out.Latency, info.Latency)
		out.Paused = out.Paused || info.Paused
	}
	if !out.Known {
		paused, err := c.QueuePaused(ctx, queue)
		if err != nil {
			return QueueInfo{}, err
		}
		out.Paused = paused
	}
	return out, nil
}

// queueInfoDirect is QueueInfo from asynq's keys: the lengths of each
// shard's lists and sets (its fair line's new jobs are pending too), its
// pause flag and count of tasks done, and the pending_since of the next
// task to be taken off its pending list and off its fair line (the oldest
// of the pending list; the fair line's first is the oldest job of the
// tenant that has waited longest for its turn, which is near enough).
func (c *Client) queueInfoDirect(ctx context.Context, queue string) (QueueInfo, error) {
	type reads struct {
		pending, fair, active, scheduled, retry, paused *redis.IntCmd
		oldest, processed                               *redis.StringCmd
		next                                            *redis.StringSliceCmd
		tenants                                         *redis.MapStringStringCmd
		prefix                                          string
	}
	qs := c.ks.Queues(queue)
	rs := make([]reads, len(qs))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, aq := range qs {
			k := keyspace.AsynqQueue(aq)
			f := c.ks.Fair(i, queue)
			rs[i] = reads{
				pending: p.LLen(ctx, k.Pending), fair: p.ZCard(ctx, f.Line), next: p.ZRange(ctx, f.Line, 0, 0),
				tenants:   p.HGetAll(ctx, f.State),
				active:    p.LLen(ctx, k.Active),
				scheduled: p.ZCard(ctx, k.Scheduled), retry: p.ZCard(ctx, k.Retry),
				paused: p.Exists(ctx, k.Paused), oldest: p.LIndex(ctx, k.Pending, -1),
				processed: p.Get(ctx, k.Processed), prefix: k.TaskPrefix,
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return QueueInfo{}, fmt.Errorf("read queue %s: %w", queue, err)
	}
	out := QueueInfo{Known: true}
	var since []*redis.StringCmd
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range rs {
			out.Pending += int(r.pending.Val() + r.fair.Val())
			for t, n := range keyspace.ParseFairTenants(r.tenants.Val()) {
				if out.PendingByTenant == nil {
					out.PendingByTenant = map[string]int{}
				}
				out.PendingByTenant[t] += n
			}
			out.Active += int(r.active.Val())
			out.Scheduled += int(r.scheduled.Val())
			out.Retry += int(r.retry.Val())
			out.Paused = out.Paused || r.paused.Val() == 1
			n, _ := strconv.Atoi(r.processed.Val())
			out.ProcessedTotal += n
			if id := r.oldest.Val(); id != "" {
				since = append(since, p.HGet(ctx, r.prefix+id, "pending_since"))
			}
			if next := r.next.Val(); len(next) == 1 {
				id, _, _ := strings.Cut(next[0], "\n")
				since = append(since, p.HGet(ctx, r.prefix+id, "pending_since"))
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return QueueInfo{}, fmt.Errorf("read queue %s: %w", queue, err)
	}
	now := time.Now()
	for _, cmd := range since {
		if ns, err := strconv.ParseInt(cmd.Val(), 10, 64); err == nil {
			out.Latency = max(out.Latency, now.Sub(time.Unix(0, ns)))
		}
	}
	return out, nil
}

// SetPaused pauses or resumes a queue on every shard. It is idempotent.
func (c *Client) SetPaused(_ context.Context, queue string, paused bool) error {
	for _, aq := range c.ks.Queues(queue) {
		var err error
		if paused {
			err = c.insp.PauseQueue(aq)
		} else {
			err = c.insp.UnpauseQueue(aq)
		}
		// asynq refuses to pause a paused queue or resume a running one.
		if err != nil && !strings.Contains(err.Error(), "already paused") && !strings.Contains(err.Error(), "not paused") {
			return fmt.Errorf("pause queue %s: %w", queue, err)
		}
	}
	return nil
}
