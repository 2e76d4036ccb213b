package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TaskType is the asynq task type of every asyncgw job. The job's own type
// lives in its record; the task only points at it.
const TaskType = "asyncgw:job"

// taskPayload is what the asynq task carries: where the record is.
type taskPayload struct {
	Tenant string `json:"t"`
	ID     string `json:"id"`
	// Created is when the task was enqueued (unix ms); a task whose record
	// never appeared is dropped once it is older than the orphan grace.
	Created int64 `json:"c"`
}

// Client puts jobs on the queues and takes them off again.
type Client struct {
	ac   *asynq.Client
	insp *asynq.Inspector
	rec  Recorder
	log  *slog.Logger
}

// NewClient returns a Client on rdb that records jobs in rec.
func NewClient(rdb redis.UniversalClient, rec Recorder, logger *slog.Logger) *Client {
	return &Client{
		ac:   asynq.NewClientFromRedisClient(rdb),
		insp: asynq.NewInspectorFromRedisClient(rdb),
		rec:  rec, log: orDiscard(logger),
	}
}

// Submit stores a job durably: the task goes on its queue, then the record
// (with its first event) is written. If the record cannot be written the
// task is taken off again; should even that fail, the worker drops a task
// whose record never appeared. Either way the caller may answer "nothing
// stored" when Submit fails, and a worker never runs a job without record.
func (c *Client) Submit(ctx context.Context, j *Job, req *Request, processAt time.Time) error {
	payload, _ := json.Marshal(taskPayload{Tenant: j.Tenant, ID: j.ID, Created: time.Now().UnixMilli()})
	opts := []asynq.Option{
		asynq.TaskID(j.ID),
		asynq.Queue(j.Queue),
		// Room beyond the attempts: when recording "dead" after the last
		// attempt fails, asynq runs the task again (without counting) and
		// that run only records it; it must not be archived instead.
		asynq.MaxRetry(j.MaxAttempts + 1),
		asynq.Timeout(time.Duration(req.Timeout) + 30*time.Second),
	}
	if !processAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(processAt))
	}
	if _, err := c.ac.EnqueueContext(ctx, asynq.NewTask(TaskType, payload), opts...); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return ErrExists
		}
		return fmt.Errorf("%w: enqueue: %w", ErrUnavailable, err)
	}
	if err := c.rec.Create(ctx, j, req); err != nil {
		if derr := c.insp.DeleteTask(j.Queue, j.ID); derr != nil {
			c.log.Warn("take back task after failed record", "job_id", j.ID, "tenant", j.Tenant, "err", derr)
		}
		if errors.Is(err, ErrExists) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Cancel ends a live job as canceled and stops its task: a waiting task is
// deleted, a running one is told to stop. It returns ErrFinished (with the
// job) when the job had already ended.
func (c *Client) Cancel(ctx context.Context, tenant, id string) (*Job, error) {
	j, err := c.rec.Update(ctx, tenant, id, func(j *Job) error {
		now := time.Now().UTC()
		j.State = StateCanceled
		j.UpdatedAt, j.FinishedAt, j.NextAttemptAt = now, &now, nil
		return nil
	})
	if err != nil {
		return j, err
	}
	if err := c.insp.DeleteTask(j.Queue, j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		// Running (or already gone): the worker sees "canceled" and stops.
		_ = c.insp.CancelProcessing(j.ID)
	}
	return j, nil
}

// Inspector returns the asynq inspector over the same Redis.
func (c *Client) Inspector() *asynq.Inspector { return c.insp }
