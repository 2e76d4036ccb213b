package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/upstream"
)

func TestHeldDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 300_000_000, time.UTC)
	for _, wait := range []time.Duration{0, time.Millisecond, 200 * time.Millisecond, 700 * time.Millisecond, 1500 * time.Millisecond, time.Minute} {
		for range 20 {
			d := heldDelay(now, wait)
			at := now.Add(d)
			// Back at the turn of a second (asynq's retry times are whole
			// seconds), never before the time given, and not a second
			// later than it and its jitter.
			if !at.Equal(at.Truncate(time.Second)) || d < wait || d > wait+wait/10+time.Second+time.Millisecond {
				t.Fatalf("heldDelay(%s): %s, back at %s", wait, d, at.Format(time.StampMilli))
			}
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestLimitOutcome(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want upstream.Outcome
	}{
		{nil, upstream.Outcome{Called: true}},
		{errNotCalled, upstream.Outcome{}},
		{fmt.Errorf("run interrupted: %w", context.Canceled), upstream.Outcome{}},
		{&upstreamError{Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second}, upstream.Outcome{Called: true, Overload: true, RetryAfter: 3 * time.Second}},
		{&upstreamError{Status: http.StatusServiceUnavailable}, upstream.Outcome{Called: true, Overload: true}},
		{&upstreamError{Status: http.StatusInternalServerError, RetryAfter: time.Second}, upstream.Outcome{Called: true, Failed: true}},
		{&upstreamError{Err: fmt.Errorf("call upstream: %w", context.DeadlineExceeded)}, upstream.Outcome{Called: true, Overload: true}},
		{&upstreamError{Err: fmt.Errorf("call upstream: %w", timeoutError{})}, upstream.Outcome{Called: true, Overload: true}},
		{&upstreamError{Err: errors.New("connection refused")}, upstream.Outcome{Called: true, Failed: true}},
		{Permanent(errors.New("upstream answered 400 Bad Request")), upstream.Outcome{Called: true, Failed: true}},
	} {
		if got := limitOutcome(c.err); got != c.want {
			t.Errorf("limitOutcome(%v) = %+v, want %+v", c.err, got, c.want)
		}
	}
}

// A retry handed over before its time waits for it, and so does a job
// held back by an open breaker; a job held back by an upstream's limits
// does not (it may have been brought forward to a freed slot, and the
// limits decide again).
func TestAwaitDueSkipsHeldJobs(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // any wait ends at once, with an error
	next := time.Now().Add(1500 * time.Millisecond)
	for _, msg := range []string{
		"upstream answered 503 Service Unavailable",
		notRun + "circuit breaker open; next try in 31s",
	} {
		if err := awaitDue(ctx, &jobs.Job{NextAttemptAt: &next, Error: msg}); err == nil {
			t.Errorf("a job 1.5s early did not wait (%s)", msg)
		}
	}
	limit := &upstream.HeldError{Host: "h:1", Reason: upstream.ReasonConcurrency, Limit: 3}
	held := &jobs.Job{NextAttemptAt: &next, Error: notRun + limit.Error() + "; next try in 2s"}
	if err := awaitDue(ctx, held); err != nil {
		t.Errorf("a job held by a limit, brought forward, waited: %v", err)
	}
}
