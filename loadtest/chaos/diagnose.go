package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/status"
)

// whereIs says where a job that did not end stands in Redis: its record's
// state, seq and earlier states, and which of its queue's lists and sets
// hold its task, with the lease's expiry; for a failure message, so that a
// job still live after the soak tells whether its task was lost, is
// leased by a worker, or waits.
func whereIs(ctx context.Context, rdb redis.UniversalClient, st *status.Store, queue, id string) string {
	ks := st.Space()
	shard := ks.ShardOf(id)
	q := keyspace.AsynqQueue(ks.Queue(shard, queue))
	fair := ks.Fair(shard, queue)
	rec := ks.Record(id)
	var (
		record                    *redis.SliceCmd
		events                    *redis.StringSliceCmd
		task                      *redis.SliceCmd
		active, pending           *redis.IntCmd
		lease, retry, sched, line *redis.FloatCmd
	)
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		record = p.HMGet(ctx, rec, "state", "seq")
		events = p.LRange(ctx, keyspace.EventList(rec), 0, -1)
		task = p.HMGet(ctx, q.TaskPrefix+id, "state", "pending_since")
		active = p.LPos(ctx, q.Active, id, redis.LPosArgs{})
		pending = p.LPos(ctx, q.Pending, id, redis.LPosArgs{})
		lease = p.ZScore(ctx, q.Lease, id)
		retry = p.ZScore(ctx, q.Retry, id)
		sched = p.ZScore(ctx, q.Scheduled, id)
		line = p.ZScore(ctx, fair.Line, keyspace.FairMember(id, tenant))
		return nil
	})
	var b strings.Builder
	var states []string
	for _, e := range events.Val() {
		s, _, _ := strings.Cut(e, "\n")
		states = append(states, s)
	}
	fmt.Fprintf(&b, "record: state %v, seq %v, earlier states %v; task: state %v", record.Val()[0], record.Val()[1], states, task.Val()[0])
	if pos, err := active.Result(); err == nil {
		fmt.Fprintf(&b, ", active (position %d)", pos)
	}
	if at, err := lease.Result(); err == nil {
		fmt.Fprintf(&b, ", leased until %s", time.Unix(int64(at), 0).UTC().Format(time.TimeOnly))
	}
	if pos, err := pending.Result(); err == nil {
		fmt.Fprintf(&b, ", pending (position %d)", pos)
	}
	if _, err := line.Result(); err == nil {
		b.WriteString(", in the fair line")
	}
	if at, err := retry.Result(); err == nil {
		fmt.Fprintf(&b, ", retry at %s", time.Unix(int64(at), 0).UTC().Format(time.TimeOnly))
	}
	if at, err := sched.Result(); err == nil {
		fmt.Fprintf(&b, ", scheduled at %s", time.Unix(int64(at), 0).UTC().Format(time.TimeOnly))
	}
	fmt.Fprintf(&b, " (now %s)", time.Now().UTC().Format(time.TimeOnly))
	return b.String()
}
