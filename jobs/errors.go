package jobs

import (
	"context"
	"errors"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// Errors that callers branch on, shared by every store of job records.
var (
	// ErrNotFound: no such job for this tenant (or its record expired).
	ErrNotFound = errors.New("job not found")
	// ErrExists: a job with this ID already exists.
	ErrExists = errors.New("job already exists")
	// ErrFinished: the job is in a terminal state and the change was refused.
	ErrFinished = errors.New("job already ended")
	// ErrUnavailable: the queue could not be reached; nothing was stored.
	ErrUnavailable = errors.New("queue unavailable")
	// ErrNotDead: a replay was asked for a job that is not dead.
	ErrNotDead = errors.New("job is not in the dead-letter queue")
	// ErrChanged: the record is no longer at the version a change was
	// made from; nothing was written.
	ErrChanged = errors.New("job record changed")
	// ErrNotReplicated: a write was made but the replicas it must reach
	// (min_replicas_ack) did not confirm it in time. It stands on the
	// master and may be lost in a failover; an accept is to be retried
	// with the same Idempotency-Key, a state change written again.
	ErrNotReplicated = errors.New("write not confirmed by replicas")
)

// KeyTaken is the answer to a submission whose Idempotency-Key already
// stands for a job: nothing was stored.
type KeyTaken struct {
	// Fingerprint of the request that took the key.
	Fingerprint string
	// JobID and State of the job the key stands for (State as the first
	// answer said).
	JobID string
	State State
	// Pending: the key is held by a request still being accepted (by a
	// gateway of an earlier version, which claimed keys before storing).
	Pending bool
}

func (k *KeyTaken) Error() string { return "idempotency key already used for job " + k.JobID }

// Recorder stores job records and their events. status.Store implements it.
type Recorder interface {
	// Accept stores a new record and its first event and, in the same
	// step, the job's task (when task is not nil) and its
	// Idempotency-Key. It returns ErrExists for a job ID in use and
	// *KeyTaken when the key stands for another job; either way nothing
	// was written.
	Accept(ctx context.Context, j *Job, req *Request, task *keyspace.TaskWrite) error
	// Get returns a job, or ErrNotFound.
	Get(ctx context.Context, tenant, id string) (*Job, error)
	// Request returns the request a job replays.
	Request(ctx context.Context, tenant, id string) (*Request, error)
	// Update applies fn and records the job's new state as an event,
	// atomically; a job that has ended is left alone (ErrFinished).
	Update(ctx context.Context, tenant, id string, fn func(*Job) error) (*Job, error)
	// Reopen is Update for a job that may have ended (a replay).
	Reopen(ctx context.Context, tenant, id string, fn func(*Job) error) (*Job, error)
	// Advance is Update from j as last read or written (j.Version): if the
	// record is still at that version, fn's change to a copy of j is
	// written without reading the record first; otherwise it is Update.
	Advance(ctx context.Context, j *Job, fn func(*Job) error) (*Job, error)
	// AdvanceAt is Advance without the fallback: fn's change to a copy
	// of j is written only if the record is still at j.Version;
	// otherwise nothing is written and the error is ErrChanged (or
	// ErrNotFound).
	AdvanceAt(ctx context.Context, j *Job, fn func(*Job) error) (*Job, error)
	// Finish is Advance for the write that ends a job. With done, the
	// same step retires the job's task (see keyspace.TaskDone) if it is still
	// active, and retired says so; a nil done makes it Advance.
	Finish(ctx context.Context, j *Job, done *keyspace.TaskDone, fn func(*Job) error) (next *Job, retired bool, err error)
	// Load returns a job and the request it replays in one read.
	Load(ctx context.Context, tenant, id string) (*Job, *Request, error)
	// Space is the layout of the keys, asynq's queues among them.
	Space() *keyspace.Space
}
