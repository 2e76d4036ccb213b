package jobs

import (
	"context"
	"errors"
)

// Errors that callers branch on, shared by every store of job records.
var (
	// ErrNotFound: no such job for this tenant (or its record expired).
	ErrNotFound = errors.New("job not found")
	// ErrExists: a job with this ID already exists.
	ErrExists = errors.New("job already exists")
	// ErrFinished: the job is in a terminal state and the change was refused.
	ErrFinished = errors.New("job already ended")
	// ErrIdempotencyLost: the claim on an Idempotency-Key expired before
	// the job was stored; nothing was stored.
	ErrIdempotencyLost = errors.New("idempotency key claim lost")
	// ErrUnavailable: the queue could not be reached; nothing was stored.
	ErrUnavailable = errors.New("queue unavailable")
	// ErrNotDead: a replay was asked for a job that is not dead.
	ErrNotDead = errors.New("job is not in the dead-letter queue")
)

// Recorder stores job records and their events. status.Store implements it.
type Recorder interface {
	// Create stores a new record and its first event.
	Create(ctx context.Context, j *Job, req *Request) error
	// Get returns a job, or ErrNotFound.
	Get(ctx context.Context, tenant, id string) (*Job, error)
	// Request returns the request a job replays.
	Request(ctx context.Context, tenant, id string) (*Request, error)
	// Update applies fn and records the job's new state as an event,
	// atomically; a job that has ended is left alone (ErrFinished).
	Update(ctx context.Context, tenant, id string, fn func(*Job) error) (*Job, error)
	// Reopen is Update for a job that may have ended (a replay).
	Reopen(ctx context.Context, tenant, id string, fn func(*Job) error) (*Job, error)
}
