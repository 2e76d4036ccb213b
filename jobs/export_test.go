package jobs

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// TakeCounts reports how many tasks w's fetch loops asked for and how many
// Redis round trips were made to take them.
func TakeCounts(w *Worker) (asks, trips int64) { return w.take.asks.Load(), w.take.trips.Load() }

// DonesAnswered reports how many of asynq's Done calls w answered without
// a round trip, the task having been retired with its job's end.
func DonesAnswered(w *Worker) int64 { return w.take.dones.Load() }

// TakeScriptSHA is the SHA-1 of the script that takes tasks with their
// records; LoadTakeScript makes Redis know it, so that takes call it by
// that SHA.
var TakeScriptSHA = takeScript.Hash()

func LoadTakeScript(ctx context.Context, rdb redis.Scripter) error {
	return takeScript.Load(ctx, rdb).Err()
}

// LeaseListsAnswered reports how many of asynq's recoverers' listings of
// lease-expired tasks w answered with none.
func LeaseListsAnswered(w *Worker) int64 { return w.take.leaseLists.Load() }
