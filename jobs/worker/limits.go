package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/upstream"
)

// holdForLimit answers a refused upstream.Limiter.Acquire: a job held back
// by an upstream's limits waits for the time the limiter gave, stretched
// by up to a tenth at random, without using an attempt (holdBack); its
// record says which limit holds it. When Redis could not be asked, the
// job comes back in a second, also without using an attempt.
func (w *Worker) holdForLimit(ctx context.Context, log runLog, j *jobs.Job, err error) error {
	var held *upstream.HeldError
	if !errors.As(err, &held) {
		return &uncounted{Delay: time.Second, Err: err}
	}
	wait := max(held.Wait, time.Millisecond)
	return w.holdBack(ctx, log, j, wait+rand.N(wait/10+time.Millisecond), held)
}

// limitOutcome tells an upstream's limiter how a call went, from the
// error of its attempt: a 429 or 503 (with its Retry-After) or a timeout
// is an overload; another failure says nothing of the upstream's speed.
func limitOutcome(err error) upstream.Outcome {
	var ue *upstreamError
	switch {
	case err == nil:
		return upstream.Outcome{Called: true}
	case errors.Is(err, errNotCalled) || errors.Is(err, context.Canceled):
		return upstream.Outcome{}
	case errors.As(err, &ue) && (ue.Status == http.StatusTooManyRequests || ue.Status == http.StatusServiceUnavailable):
		return upstream.Outcome{Called: true, Overload: true, RetryAfter: ue.RetryAfter}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return upstream.Outcome{Called: true, Overload: true}
	}
	return upstream.Outcome{Called: true, Failed: true}
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
