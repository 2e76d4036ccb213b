package worker

import (
	"context"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// Store is where the worker reads and writes the records of the jobs it
// runs, and learns the layout of the keys. status.Store implements it.
type Store interface {
	// Get returns a job, or jobs.ErrNotFound.
	Get(ctx context.Context, tenant, id string) (*jobs.Job, error)
	// Load returns a job and the request it replays in one read.
	Load(ctx context.Context, tenant, id string) (*jobs.Job, *jobs.Request, error)
	// Advance applies fn to a copy of j and records the job's new state
	// as an event, atomically: if the record is still at j.Version it is
	// written without reading it first; otherwise fn is applied to the
	// record as it stands. A job that has ended is left alone
	// (jobs.ErrFinished).
	Advance(ctx context.Context, j *jobs.Job, fn func(*jobs.Job) error) (*jobs.Job, error)
	// AdvanceAt is Advance without the fallback: fn's change to a copy
	// of j is written only if the record is still at j.Version;
	// otherwise nothing is written and the error is jobs.ErrChanged (or
	// jobs.ErrNotFound).
	AdvanceAt(ctx context.Context, j *jobs.Job, fn func(*jobs.Job) error) (*jobs.Job, error)
	// Finish is Advance for the write that ends a job. With done, the
	// same step retires the job's task (see keyspace.TaskDone) if it is
	// still active, and retired says so; a nil done makes it Advance.
	Finish(ctx context.Context, j *jobs.Job, done *keyspace.TaskDone, fn func(*jobs.Job) error) (next *jobs.Job, retired bool, err error)
	// Space is the layout of the keys, asynq's queues among them.
	Space() *keyspace.Space
}
