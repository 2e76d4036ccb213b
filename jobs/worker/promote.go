package worker

import (
	"context"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// lineSweeper is a Store that keeps the lines of ordering keys
// (status.Store): PromoteLines starts the head of each line whose start
// was lost (see status/ordering.go), and returns how many lines it
// looked at.
type lineSweeper interface {
	PromoteLines(ctx context.Context) (int, error)
}

// promoteLines sweeps the lines of ordering keys, if the store keeps
// any: a job whose start was lost when the one before it ended (a process
// that died in between, a lost answer) starts within RecoverInterval.
func (w *Worker) promoteLines(ctx context.Context) {
	ls, ok := w.rec.(lineSweeper)
	if !ok {
		return
	}
	n, err := ls.PromoteLines(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		w.log.Warn("could not sweep the lines of ordering keys", "err", err)
	case n > 0:
		w.log.Debug("swept the lines of ordering keys", "lines", n)
	}
}

// wakeLine wakes this process's fetch loops for the queue of j, a job
// that just ended: when j had an ordering key, the store has just started
// the next job of its line, which most often shares j's queue and, always,
// its shard. Other processes find it with their watch's poll.
func (w *Worker) wakeLine(j *jobs.Job) {
	if j == nil || j.OrderingKey == "" || w.take.watch == nil {
		return
	}
	w.take.watch.wake(keyspace.AsynqQueue(w.rec.Space().JobQueue(j.ID, j.Queue)).Pending)
}
