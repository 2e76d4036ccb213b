package jobs

// TakeCounts reports how many tasks w's fetch loops asked for and how many
// Redis round trips were made to take them.
func TakeCounts(w *Worker) (asks, trips int64) { return w.take.asks.Load(), w.take.trips.Load() }

// DonesAnswered reports how many of asynq's Done calls w answered without
// a round trip, the task having been retired with its job's end.
func DonesAnswered(w *Worker) int64 { return w.take.dones.Load() }
