package status

import (
	"context"
	"fmt"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// Fair lines. A new job due now joins its queue's fair line on its shard
// (keyspace.FairKeys) rather than the queue's pending list, unless the
// Store was made with Config.FIFO or asynq's public API is in use: the
// worker's take serves the line, lowest virtual start first, in turn with
// the pending list. Each tenant's jobs keep their accept order, and
// tenants with waiting jobs are taken in turn, so that a tenant's first
// new job is among the next taken whatever another tenant's backlog.
// Retries, scheduled jobs once due, replays and tasks put back or
// recovered go to the pending list, as before, in time order: they get
// half of a busy queue's takes at most.

// Withdraw takes the task of j, a job just canceled, out of its queue's
// fair line if it waits there; it reports whether it did.
func (s *Store) Withdraw(ctx context.Context, j *jobs.Job) (bool, error) {
	shard := s.ks.ShardOf(j.ID)
	f := s.ks.Fair(shard, j.Queue)
	task := keyspace.AsynqQueue(s.ks.Queue(shard, j.Queue)).TaskPrefix + j.ID
	n, err := keyspace.Withdraw.Run(ctx, s.rdb, []string{f.Line, f.State, task}, j.ID, j.Tenant).Int()
	if err != nil {
		return false, fmt.Errorf("withdraw job %s: %w", j.ID, err)
	}
	return n == 1, nil
}
