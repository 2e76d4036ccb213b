package jobs

import "errors"

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
