package worker

import (
	"context"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// unfairBatch bounds how many tasks of a fair line one round trip moves.
const unfairBatch = 500

// unfairLines moves the tasks of the worker's queues' fair lines to their
// pending lists, and returns how many: a worker on asynq's public API
// takes from the pending lists only, and a gateway on the direct path
// may have put new jobs in the lines (see status/fair.go).
func (w *Worker) unfairLines(ctx context.Context) (int, error) {
	total := 0
	for q := range w.queues {
		f, ok := w.rec.Space().FairOf(q)
		if !ok {
			continue
		}
		keys := []string{f.Line, f.State, keyspace.AsynqQueue(q).Pending}
		for {
			n, err := keyspace.Unfair.Run(ctx, w.take.UniversalClient, keys, unfairBatch).Int()
			if err != nil {
				return total, err
			}
			total += n
			if n < unfairBatch {
				break
			}
		}
	}
	return total, nil
}

// publicLoop is recoverLoop for a worker on asynq's public API, whose
// recovery asynq's recoverers do: every RecoverInterval, from now, it
// empties the fair lines into the pending lists and sweeps the lines of
// ordering keys, until ctx ends.
func (w *Worker) publicLoop(ctx context.Context) {
	w.everyRecoverInterval(ctx, func() {
		n, err := w.unfairLines(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.Warn("could not move the fair lines' jobs to their queues", "err", err)
		case n > 0:
			w.log.Info("moved jobs from the fair lines to their queues: this worker uses asynq's public API only", "jobs", n)
		}
		w.promoteLines(ctx)
	})
}
