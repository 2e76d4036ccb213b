package jobs

import (
	"math"
	"time"
)

// asynqStatsTTL is how long asynq keeps a queue's count of the tasks
// processed on one day (asynq v0.26: 90 days).
const asynqStatsTTL = 90 * 24 * time.Hour

// TaskDone retires the task of a job that ended, as asynq's Done does
// when a handler returns without error (asynq v0.26): the task leaves its
// queue's active list and lease, its hash is deleted, and it is counted in
// the queue's processed totals, for the day and in all. The store does it
// in the script that records the job's end (Recorder.Finish), so that a
// job's end costs one round trip instead of two; asynq's own Done for
// that task is then answered without going to Redis (see takeClient).
type TaskDone struct {
	// Active, Lease and Key are the queue's active list and lease and the
	// task's hash; Processed and Total its processed counts, of the day
	// and in all.
	Active, Lease, Key, Processed, Total string
	ID                                   string
	// StatsExpire is when the day's count expires (unix seconds), and
	// MaxCount the count at which the total starts again from one.
	StatsExpire, MaxCount int64
}

// newTaskDone is the TaskDone of task id on queue, ended at now.
func newTaskDone(queue, id string, now time.Time) *TaskDone {
	base := "asynq:{" + queue + "}:"
	return &TaskDone{
		Active: base + "active", Lease: base + "lease", Key: taskKey(queue, id),
		Processed: base + "processed:" + now.UTC().Format(time.DateOnly),
		Total:     base + "processed", ID: id,
		StatsExpire: now.Add(asynqStatsTTL).Unix(), MaxCount: math.MaxInt64,
	}
}
