package submit

import (
	"context"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// Store keeps the records of the jobs a Client submits, replays and
// cancels, and knows the layout of the keys. status.Store implements it.
type Store interface {
	// Accept stores a new record and its first event and, in the same
	// step, the job's task (when task is not nil) and its
	// Idempotency-Key. It returns jobs.ErrExists for a job ID in use and
	// *jobs.KeyTaken when the key stands for another job; either way
	// nothing was written.
	Accept(ctx context.Context, j *jobs.Job, req *jobs.Request, task *keyspace.TaskWrite) error
	// Get returns a job, or jobs.ErrNotFound.
	Get(ctx context.Context, tenant, id string) (*jobs.Job, error)
	// Request returns the request a job replays.
	Request(ctx context.Context, tenant, id string) (*jobs.Request, error)
	// Update applies fn and records the job's new state as an event,
	// atomically; a job that has ended is left alone (jobs.ErrFinished).
	Update(ctx context.Context, tenant, id string, fn func(*jobs.Job) error) (*jobs.Job, error)
	// Reopen is Update for a job that may have ended (a replay).
	Reopen(ctx context.Context, tenant, id string, fn func(*jobs.Job) error) (*jobs.Job, error)
	// Rejoin is Reopen for a job with an ordering key: in the same step
	// it joins the end of its key's line with task, written when it is
	// the head.
	Rejoin(ctx context.Context, tenant, id string, task *keyspace.TaskWrite, fn func(*jobs.Job) error) (*jobs.Job, error)
	// Space is the layout of the keys, asynq's queues among them.
	Space() *keyspace.Space
}
