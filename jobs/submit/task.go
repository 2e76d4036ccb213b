package submit

import (
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// newTaskWrite builds the task of j's cycle for a script to write: its
// payload points at the record, its options are those enqueue gives, and
// it waits on the asynq queue of the job's priority and shard.
func newTaskWrite(ks *keyspace.Space, j *jobs.Job, req *jobs.Request, processAt time.Time, cycle int) *keyspace.TaskWrite {
	now := time.Now()
	return keyspace.NewTaskWrite(keyspace.Task{
		Type: jobs.TaskType, Payload: jobs.NewTaskPayload(j, now, cycle), ID: j.ID,
		Queue: ks.JobQueue(j.ID, j.Queue), MaxRetry: taskRetries(j), Timeout: taskTimeout(req),
	}, processAt, now)
}

// taskRetries is asynq's retry limit for j's task. There is room beyond
// the attempts: when recording "dead" after the last attempt fails, asynq
// runs the task again (without counting) and that run only records it; it
// must not be archived instead.
func taskRetries(j *jobs.Job) int { return j.MaxAttempts + 1 }

// taskTimeout is asynq's limit on one run of j's task: the upstream
// call's own timeout, and time to record its outcome.
func taskTimeout(req *jobs.Request) time.Duration { return time.Duration(req.Timeout) + 30*time.Second }
