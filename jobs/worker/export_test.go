package worker

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// TakeCounts reports how many tasks w's fetch loops asked for and how many
// Redis round trips were made to take them.
func TakeCounts(w *Worker) (asks, trips int64) { return w.take.asks.Load(), w.take.trips.Load() }

// DonesAnswered reports how many of asynq's Done calls w answered without
// a round trip, the task having been retired with its job's end.
func DonesAnswered(w *Worker) int64 { return w.take.dones.Load() }

// TakeScriptSHA is the SHA-1 of the script that reads taken tasks with
// their records (the take's second half); LoadTakeScript makes Redis know
// the take's scripts, so that takes call them by their SHAs.
var TakeScriptSHA = keyspace.Claim.Hash()

func LoadTakeScript(ctx context.Context, rdb redis.Scripter) error {
	if err := keyspace.Take.Load(ctx, rdb).Err(); err != nil {
		return err
	}
	return keyspace.Claim.Load(ctx, rdb).Err()
}

// LeaseListsAnswered reports how many of asynq's recoverers' listings of
// lease-expired tasks w answered with none.
func LeaseListsAnswered(w *Worker) int64 { return w.take.leaseLists.Load() }

// PublicOnly makes w leave asynq's scripts to asynq (before Start).
func PublicOnly(w *Worker) { w.take.public = true }

// IdleCounts reports how many of asynq's calls w answered without Redis
// because their queues were idle: dequeues of queues found empty,
// forwarder calls and janitor calls.
func IdleCounts(w *Worker) (skips, forwards, sweeps int64) {
	qw := w.take.watch
	qw.mu.Lock()
	defer qw.mu.Unlock()
	return qw.skips, qw.forwards, qw.sweeps
}
