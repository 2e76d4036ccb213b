package jobs

// TakeCounts reports how many tasks w's fetch loops asked for and how many
// Redis round trips were made to take them.
func TakeCounts(w *Worker) (asks, trips int64) { return w.take.asks.Load(), w.take.trips.Load() }
