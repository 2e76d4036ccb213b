package worker

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// Crash recovery: the tasks of a worker process that died (kill -9, a lost
// host) stay active and leased in Redis until someone takes them back.
//
// asynq v0.26 leases a task for 30s and renews the lease every 5s while it
// runs; each asynq Server runs a recoverer that, at start and then every
// minute, retries the tasks whose lease ended more than 30s ago. A killed
// worker's jobs thus ran again 60–120s after the kill, and a worker
// process, which runs several Servers (Fetchers), ran as many recoverers:
// all but the first found each task gone, and logged "recoverer: could not
// retry lease expired task ... NOT FOUND" for it. Neither the interval nor
// the lease can be set through asynq's Config, and a Server's recoverer
// cannot be turned off.
//
// So the worker answers its Servers' listing of lease-expired tasks with
// none (takeClient), and runs one recoverer of its own per process
// (recoverLoop): every RecoverInterval it puts back at the head of its
// queue each task whose lease ended more than leaseSlack ago, as asynq does
// with the tasks of a worker that shuts down. The run that follows is not
// counted as an attempt (asynq's recoverer would not have counted it
// either: isFailure). After a kill -9, a job runs again at most
// 30s (lease) + leaseSlack + RecoverInterval later, 40s by default, on
// whichever worker process checks first; see docs/RELIABILITY.md.
//
// The lease stays asynq's: it is a constant of its internal package, and
// asynq cancels a run whose lease it could not renew (Redis away for 30s),
// which is what makes taking the task back safe. A shorter lease would need
// a patched asynq.

// leaseSlack is how long after its lease has ended a task is taken back:
// room for the clocks of the worker that leased it (leases are in its
// time) and of the one that takes it back to differ.
const leaseSlack = 5 * time.Second

// recoverBatch bounds how many tasks of a queue one round trip takes back.
const recoverBatch = 100

// recoverLeaseExpired puts back the tasks of the worker's queues whose
// lease ended more than leaseSlack before now, and returns how many.
func (w *Worker) recoverLeaseExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-leaseSlack).Unix()
	total := 0
	for q := range w.queues {
		keys := keyspace.AsynqQueue(q)
		for {
			// The expired leases first; the script checks each again, as
			// a lease may be renewed in between.
			ids, err := w.take.ZRangeArgs(ctx, redis.ZRangeArgs{
				Key: keys.Lease, ByScore: true, Start: "-inf", Stop: strconv.FormatInt(cutoff, 10), Count: recoverBatch,
			}).Result()
			if err != nil {
				return total, err
			}
			if len(ids) == 0 {
				break // the next queue
			}
			skeys := make([]string, 0, 3+len(ids))
			skeys = append(skeys, keys.Lease, keys.Active, keys.Pending)
			args := make([]any, 0, 1+len(ids))
			args = append(args, cutoff)
			for _, id := range ids {
				skeys = append(skeys, keys.TaskPrefix+id)
				args = append(args, id)
			}
			n, err := keyspace.Recover.Run(ctx, w.take.UniversalClient, skeys, args...).Int()
			if err != nil {
				return total, err
			}
			total += n
			if n > 0 && w.take.watch != nil {
				w.take.watch.wake(keys.Pending)
			}
			if len(ids) < recoverBatch {
				break
			}
		}
	}
	return total, nil
}

// recoverLoop runs recoverLeaseExpired, and the sweep of the ordering
// keys' lines (promoteLines), at once and then every RecoverInterval until
// ctx ends.
func (w *Worker) recoverLoop(ctx context.Context) {
	w.everyRecoverInterval(ctx, func() {
		n, err := w.recoverLeaseExpired(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.Warn("could not take back the tasks of workers that died", "err", err)
		case n > 0:
			w.log.Info("took back the tasks of workers that died: their lease ran out", "tasks", n)
		}
		w.promoteLines(ctx)
	})
}

// everyRecoverInterval runs f now, and then RecoverInterval after each
// run ends, until ctx ends.
func (w *Worker) everyRecoverInterval(ctx context.Context, f func()) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
		t.Reset(w.cfg.RecoverInterval)
	}
}
