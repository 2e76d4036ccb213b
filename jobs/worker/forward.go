package worker

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/asyncgw/asyncgw/jobs"
)

// upstreamError is an attempt that reached the upstream, or tried to, and
// may be retried.
type upstreamError struct {
	Status     int
	RetryAfter time.Duration
	Err        error
}

func (e *upstreamError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("upstream answered %d %s", e.Status, http.StatusText(e.Status))
}

func (e *upstreamError) Unwrap() error { return e.Err }

// RetryLater reports a call that failed in a way worth another attempt
// (no answer, or the status given), with the destination's own wish for
// a delay. It counts against the destination's circuit breaker. Senders
// return it; err says what happened.
func RetryLater(status int, retryAfter time.Duration, err error) error {
	return &upstreamError{Status: status, RetryAfter: retryAfter, Err: err}
}

// Retryable reports whether an upstream status is worth another attempt:
// 408, 429 and 5xx are; any other 4xx is final.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// forward replays req against its upstream, once, with the route's
// options. It returns the upstream's answer as a Result, and an error
// unless the answer was 2xx: a Permanent error for a final refusal, an
// upstreamError for what may be retried.
func forward(ctx context.Context, client *http.Client, j *jobs.Job, req *jobs.Request, opts RouteOptions) (*jobs.Result, error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout))
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(ctx, cmp.Or(req.Method, http.MethodPost), req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, Permanent(fmt.Errorf("build upstream request: %w", err))
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	// The route's own headers (credentials) win over the client's; they
	// exist only on this request, never in the job.
	for k, v := range opts.Headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Idempotency-Key", j.ID)
	hr.Header.Set("X-Asyncgw-Job-Id", j.ID)
	hr.Header.Set("X-Asyncgw-Attempt", strconv.Itoa(j.Attempt))
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", "asyncgw")
	}
	// The attempt's trace context, in place of a traceparent stored with
	// the client's headers.
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(hr.Header))
	resp, err := client.Do(hr)
	if err != nil {
		return nil, &upstreamError{Err: fmt.Errorf("call upstream: %w", err)}
	}
	defer resp.Body.Close()
	res, err := readAnswer(resp, opts.MaxResponse)
	if err != nil {
		return nil, &upstreamError{Status: resp.StatusCode, Err: fmt.Errorf("read upstream answer: %w", err)}
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return res, nil
	case Retryable(resp.StatusCode):
		return res, &upstreamError{Status: resp.StatusCode, RetryAfter: jobs.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	default:
		return res, Permanent(fmt.Errorf("upstream answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
}

// readAnswer reads an upstream answer into a Result, keeping at most limit
// bytes of its body. A longer body is never cut: the Result keeps the
// status and headers, says the body was too large and, when it can be
// known, its size, and carries no body at all.
func readAnswer(resp *http.Response, limit int64) (*jobs.Result, error) {
	if resp.ContentLength > limit {
		return tooLarge(resp, resp.ContentLength), nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) <= limit {
		return jobs.NewResult(resp.StatusCode, resp.Header, body), nil
	}
	// Count the rest to tell its size; the call's timeout bounds this.
	n, err := io.Copy(io.Discard, resp.Body)
	size := int64(len(body)) + n
	if err != nil {
		size = 0 // unknown
	}
	return tooLarge(resp, size), nil
}

// tooLarge is the Result of an answer whose body was over the limit: its
// status and headers, and its size (0 when unknown).
func tooLarge(resp *http.Response, size int64) *jobs.Result {
	r := jobs.NewResult(resp.StatusCode, resp.Header, nil)
	// An empty raw body replaces one an earlier attempt may have kept.
	r.Raw = []byte{}
	r.BodyTooLarge, r.BodySize = true, max(size, 0)
	return r
}
