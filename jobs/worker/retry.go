package worker

import (
	"errors"
	"time"
)

// retryError asks asynq to run the task again after Delay.
type retryError struct {
	Delay time.Duration
	Err   error
}

func (e *retryError) Error() string { return e.Err.Error() }
func (e *retryError) Unwrap() error { return e.Err }

// uncounted marks an error that is not the job's fault (our own store was
// unreachable, the record is not there yet, the run was cut by a crash):
// asynq retries it without using up an attempt.
type uncounted struct {
	Delay time.Duration
	Err   error
}

func (e *uncounted) Error() string { return e.Err.Error() }
func (e *uncounted) Unwrap() error { return e.Err }

func retryDelay(err error) time.Duration {
	var re *retryError
	if errors.As(err, &re) {
		return re.Delay
	}
	var un *uncounted
	if errors.As(err, &un) {
		return un.Delay
	}
	return time.Second
}
