package gateway

import (
	"errors"
	"time"
)

// storeUnavailable is a catch-up that could not read the store, as while
// Redis fails over: the stream stays open and tries again, rather than
// end and leave the client to reconnect.
type storeUnavailable struct{ err error }

func (e storeUnavailable) Error() string { return "read events: " + e.err.Error() }
func (e storeUnavailable) Unwrap() error { return e.err }

// The waits between catch-ups that could not read the store.
const (
	catchUpRetryFirst = 100 * time.Millisecond
	catchUpRetryMost  = 2 * time.Second
)

// catchUpRetry runs a stream's catch-up and, when the store could not be
// read, schedules the next try: C fires then, after a wait that doubles
// up to catchUpRetryMost. A job's stream may send live events in between
// (their numbers show any gap); a tenant's stream holds them for the
// catch-up that succeeds. The zero value is ready.
type catchUpRetry struct {
	timer *time.Timer
	wait  time.Duration
}

// run runs catchUp and reports whether the stream goes on: false when it
// has ended (done) or cannot (the client is gone).
func (r *catchUpRetry) run(catchUp func() (done bool, err error)) bool {
	done, err := catchUp()
	var su storeUnavailable
	switch {
	case errors.As(err, &su):
		r.wait = min(max(2*r.wait, catchUpRetryFirst), catchUpRetryMost)
		r.stop()
		r.timer = time.NewTimer(r.wait)
		return true
	case done || err != nil:
		return false
	}
	r.stop()
	r.timer, r.wait = nil, 0
	return true
}

// C fires when a catch-up is due again; nil (never) when none is.
func (r *catchUpRetry) C() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C
}

func (r *catchUpRetry) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}
