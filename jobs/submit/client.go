package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// Client puts jobs on the queues and takes them off again.
type Client struct {
	rdb redis.UniversalClient
	ks  *keyspace.Space
	// direct: the accept script writes the task (keyspace.AsynqDirect);
	// otherwise asynq's client does.
	direct bool
	ac     *asynq.Client
	insp   *asynq.Inspector
	rec    Store
	log    *slog.Logger
}

// New returns a Client on rdb that records jobs in rec.
func New(rdb redis.UniversalClient, rec Store, logger *slog.Logger) *Client {
	return &Client{
		rdb: rdb,
		ks:  rec.Space(), direct: keyspace.AsynqDirect(),
		ac:   asynq.NewClientFromRedisClient(rdb),
		insp: asynq.NewInspectorFromRedisClient(rdb),
		rec:  rec, log: orDiscard(logger),
	}
}

// Submit stores a job durably, in one step: its record with the first
// event, its task on the queue, and its Idempotency-Key. It returns
// *jobs.KeyTaken when the key already stands for a job, and jobs.ErrExists for a job
// ID in use; then nothing was stored. When Redis's answer is lost, Submit
// looks for the record: found, the job was accepted; missing, nothing was
// stored; unknown, it reports jobs.ErrUnavailable (a retry with the same
// Idempotency-Key finds the job if it was stored after all).
//
// A job with an ordering key joins its key's line in the same step, and
// gets its task only when it is at the head; its task is always written
// by the accept script (as asynq's client writes it), even where asynq's
// public API is used for the others, since only the scripts can start the
// next job of a line in the step that ends the one before.
func (c *Client) Submit(ctx context.Context, j *jobs.Job, req *jobs.Request, processAt time.Time) error {
	if !c.direct && j.OrderingKey == "" {
		return c.submitPublic(ctx, j, req, processAt)
	}
	err := c.rec.Accept(ctx, j, req, newTaskWrite(c.ks, j, req, processAt, 0))
	var taken *jobs.KeyTaken
	if err == nil || errors.Is(err, jobs.ErrExists) || errors.As(err, &taken) || errors.Is(err, jobs.ErrNotReplicated) {
		return err
	}
	switch serr := c.stored(ctx, j); {
	case serr == nil:
		c.log.Warn("job stored although its write reported an error; job accepted", "job_id", j.ID, "tenant", j.Tenant, "err", err)
		return nil
	case errors.Is(serr, jobs.ErrNotReplicated):
		return serr
	}
	return fmt.Errorf("%w: %w", jobs.ErrUnavailable, err)
}

// submitPublic is Submit through asynq's public API, in two steps: the
// task goes on the queue first and the record is written second; if that
// fails, the task is taken back (and a worker that meets a task before its
// record waits for it, then drops it after OrphanGrace).
func (c *Client) submitPublic(ctx context.Context, j *jobs.Job, req *jobs.Request, processAt time.Time) error {
	if err := c.enqueue(ctx, j, req, processAt, 0); err != nil {
		return err
	}
	err := c.rec.Accept(ctx, j, req, nil)
	var taken *jobs.KeyTaken
	switch {
	case err == nil || errors.Is(err, jobs.ErrNotReplicated):
		return err
	case errors.Is(err, jobs.ErrExists) || errors.As(err, &taken):
		c.takeBack(j)
		return err
	}
	switch serr := c.stored(ctx, j); {
	case serr == nil:
		return nil
	case errors.Is(serr, jobs.ErrNotReplicated):
		return serr
	case errors.Is(serr, jobs.ErrNotFound):
		c.takeBack(j)
	}
	return fmt.Errorf("%w: %w", jobs.ErrUnavailable, err)
}

// replicaWaiter is a Store that can confirm on replicas every write it
// has seen answered (status.Store with min_replicas_ack).
type replicaWaiter interface {
	AwaitJobReplicas(ctx context.Context, id string) error
}

// stored reports whether a job's record exists, after a write that
// reported an error (nil: it does, and it is on the replicas the Store
// waits for); it reads with a deadline of its own (the request's may be
// spent).
func (c *Client) stored(ctx context.Context, j *jobs.Job) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, err := c.rec.Get(rctx, j.Tenant, j.ID); err != nil {
		return err
	}
	if w, ok := c.rec.(replicaWaiter); ok {
		return w.AwaitJobReplicas(rctx, j.ID)
	}
	return nil
}

func (c *Client) enqueue(ctx context.Context, j *jobs.Job, req *jobs.Request, processAt time.Time, cycle int) error {
	payload := jobs.NewTaskPayload(j, time.Now(), cycle)
	opts := []asynq.Option{
		asynq.TaskID(j.ID),
		asynq.Queue(c.ks.JobQueue(j.ID, j.Queue)),
		asynq.MaxRetry(taskRetries(j)),
		asynq.Timeout(taskTimeout(req)),
	}
	if !processAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(processAt))
	}
	if _, err := c.ac.EnqueueContext(ctx, asynq.NewTask(jobs.TaskType, payload), opts...); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			return jobs.ErrExists
		}
		return fmt.Errorf("%w: enqueue: %w", jobs.ErrUnavailable, err)
	}
	return nil
}

// takeBack deletes the task of a job whose record could not be written.
func (c *Client) takeBack(j *jobs.Job) {
	if err := c.insp.DeleteTask(c.ks.JobQueue(j.ID, j.Queue), j.ID); err != nil {
		c.log.Warn("take back task after failed record", "job_id", j.ID, "tenant", j.Tenant, "err", err)
	}
}

// Replay starts a new cycle for a dead job: the same ID, attempts counted
// from 1 again, due at processAt (zero: now). The task goes on the queue
// first and the record is reopened second; if that fails the
// task is taken back, and a worker that meets the task before the record
// says so waits for it (the task carries its cycle). It returns
// jobs.ErrNotDead (with the job) for a job that is not dead, and jobs.ErrExists
// while the last cycle's task is still being cleared away.
func (c *Client) Replay(ctx context.Context, tenant, id string, processAt time.Time) (*jobs.Job, error) {
	j, err := c.rec.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if j.State != jobs.StateDead {
		return j, jobs.ErrNotDead
	}
	req, err := c.rec.Request(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	cycle := j.Replays + 1
	if j.OrderingKey != "" {
		return c.rejoin(ctx, j, req, processAt, cycle)
	}
	if err := c.enqueue(ctx, j, req, processAt, cycle); err != nil {
		return j, err
	}
	out, err := c.rec.Reopen(ctx, tenant, id, reopenFor(cycle, processAt))
	if err != nil {
		if errors.Is(err, jobs.ErrNotDead) || errors.Is(err, jobs.ErrNotFound) {
			c.takeBack(j)
			return out, err
		}
		if errors.Is(err, jobs.ErrNotReplicated) {
			// Reopened on the master, not confirmed on its replicas:
			// the task stays with it, and a retry finds the job
			// replayed (or, after a failover that lost both, dead).
			return out, err
		}
		// As in Submit: the reopen may have run although it reported an
		// error; then the task must stay.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		cur, gerr := c.rec.Get(rctx, tenant, id)
		cancel()
		switch {
		case gerr == nil && cur.Replays == cycle:
			return cur, nil
		case gerr == nil || errors.Is(gerr, jobs.ErrNotFound):
			c.takeBack(j)
		}
		return out, fmt.Errorf("%w: %w", jobs.ErrUnavailable, err)
	}
	return out, nil
}

// reopenFor is the change a replay makes to a dead job, starting cycle
// cycle, due at processAt.
func reopenFor(cycle int, processAt time.Time) func(j *jobs.Job) error {
	return func(j *jobs.Job) error {
		if j.State != jobs.StateDead || j.Replays != cycle-1 {
			return jobs.ErrNotDead
		}
		now := time.Now().UTC()
		j.Replays, j.ReplayedAt = cycle, &now
		j.State, j.Attempt, j.UpdatedAt = jobs.StateQueued, 0, now
		j.StartedAt, j.FinishedAt, j.NextAttemptAt = nil, nil, nil
		j.Result, j.Error = nil, ""
		if processAt.After(now) {
			at := processAt.UTC()
			j.State, j.NextAttemptAt = jobs.StateScheduled, &at
		}
		return nil
	}
}

// rejoin is Replay for a job with an ordering key: in one step the job is
// reopened and joins the end of its key's line, after every job accepted
// before the replay; its task is written when it is the head (at once when
// the line is empty). Nothing is enqueued beforehand, so there is nothing
// to take back.
func (c *Client) rejoin(ctx context.Context, j *jobs.Job, req *jobs.Request, processAt time.Time, cycle int) (*jobs.Job, error) {
	task := newTaskWrite(c.ks, j, req, processAt, cycle)
	out, err := c.rec.Rejoin(ctx, j.Tenant, j.ID, task, reopenFor(cycle, processAt))
	if err == nil || errors.Is(err, jobs.ErrNotDead) || errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrNotReplicated) {
		return out, err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	cur, gerr := c.rec.Get(rctx, j.Tenant, j.ID)
	cancel()
	if gerr == nil && cur.Replays == cycle {
		return cur, nil
	}
	return out, fmt.Errorf("%w: %w", jobs.ErrUnavailable, err)
}

// Cancel ends a live job as canceled and stops its task: a waiting task is
// deleted, a running one is told to stop. A job with an ordering key
// leaves its key's line in the same step; when it was the head, the next
// job of the line starts at once (the store promotes it), without waiting
// for a canceled run still in flight to stop. It returns jobs.ErrFinished (with the
// job) when the job had already ended.
func (c *Client) Cancel(ctx context.Context, tenant, id string) (*jobs.Job, error) {
	j, err := c.rec.Update(ctx, tenant, id, func(j *jobs.Job) error {
		now := time.Now().UTC()
		j.State = jobs.StateCanceled
		j.UpdatedAt, j.FinishedAt, j.NextAttemptAt = now, &now, nil
		return nil
	})
	if err != nil {
		return j, err
	}
	if w, ok := c.rec.(withdrawer); ok && c.direct {
		// Waiting in its queue's fair line, where asynq does not look.
		if done, err := w.Withdraw(ctx, j); err == nil && done {
			return j, nil
		}
	}
	if err := c.insp.DeleteTask(c.ks.JobQueue(j.ID, j.Queue), j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		// Running (or already gone): the worker sees "canceled" and stops.
		_ = c.insp.CancelProcessing(j.ID)
	}
	return j, nil
}

// fairLines reports whether the client's new jobs join fair lines: on the
// direct path, with a store that keeps them (status.Store.FairLines).
func (c *Client) fairLines() bool {
	s, ok := c.rec.(interface{ FairLines() bool })
	return c.direct && ok && s.FairLines()
}

// withdrawer is a Store that keeps fair lines (status.Store): Withdraw
// takes a canceled job's task out of its queue's fair line.
type withdrawer interface {
	Withdraw(ctx context.Context, j *jobs.Job) (bool, error)
}

// QueuePaused reports whether a queue (a priority, on any of its shards)
// is paused, also one that has never held a task (asynq's inspector knows
// only queues it has seen). It reads asynq's pause flags.
func (c *Client) QueuePaused(ctx context.Context, queue string) (bool, error) {
	qs := c.ks.Queues(queue)
	cmds := make([]*redis.IntCmd, len(qs))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range qs {
			cmds[i] = p.Exists(ctx, keyspace.AsynqQueue(q).Paused)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read queue %s: %w", queue, err)
	}
	for _, cmd := range cmds {
		if cmd.Val() == 1 {
			return true, nil
		}
	}
	return false, nil
}

// NewID returns a new job ID on a random shard or, given key, on the
// shard of tenant and key (keyspace.Space.ShardFor). key is the job's
// ordering key when it has one, where its key's line is, or else its
// Idempotency-Key, where a second request with the key meets the first
// ("" for neither). A job's Idempotency-Key is kept on the job's shard, so
// a retry must send the same ordering key to meet the first request.
func (c *Client) NewID(tenant, key string) string {
	id := jobs.NewID()
	if key == "" || c.ks.Shards() == 1 {
		return id
	}
	return c.ks.PlaceID(id, c.ks.ShardFor(tenant, key))
}

// Space is the layout of the keys.
func (c *Client) Space() *keyspace.Space { return c.ks }

// Inspector returns the asynq inspector over the same Redis.
func (c *Client) Inspector() *asynq.Inspector { return c.insp }
