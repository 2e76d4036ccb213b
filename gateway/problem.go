package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
)

// problemTypeBase prefixes the type URI of every problem asyncgw answers.
const problemTypeBase = "https://asyncgw.dev/problems/"

// Problem is an RFC 9457 problem detail, the body of every error answer.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

// FieldError names one invalid part of a request: a member of the JSON
// body by JSON pointer ("" is the whole body), or a query parameter by name
// (then it carries "parameter" instead of "pointer").
type FieldError struct {
	Pointer   string `json:"pointer"`
	Parameter string `json:"parameter,omitempty"`
	Detail    string `json:"detail"`
}

// MarshalJSON writes "pointer" for a body member, "parameter" for a query
// parameter.
func (f FieldError) MarshalJSON() ([]byte, error) {
	if f.Parameter != "" {
		return json.Marshal(struct {
			Parameter string `json:"parameter"`
			Detail    string `json:"detail"`
		}{f.Parameter, f.Detail})
	}
	return json.Marshal(struct {
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	}{f.Pointer, f.Detail})
}

// Error makes a Problem an error that handlers return.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// StatusCode reports the HTTP status of the problem.
func (p *Problem) StatusCode() int { return p.Status }

// problem builds a Problem of a slug ("validation") with a status.
func problem(status int, slug, detail string) *Problem {
	return &Problem{
		Type:   problemTypeBase + slug,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}
}

// errorHandler maps every error a handler returns to problem+json, in one
// place.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(c *echo.Context, err error) {
		if resp, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && resp.Committed {
			return
		}
		p := toProblem(err)
		// A problem the gateway chose to answer (such as 503 overloaded,
		// which is backpressure working) is in the access log already;
		// the cause of any other failure is logged here.
		var chosen *Problem
		if p.Status >= 500 && !errors.As(err, &chosen) {
			level := slog.LevelError
			if p.Status == http.StatusServiceUnavailable {
				level = slog.LevelWarn
			}
			log.Log(c.Request().Context(), level, "request failed", "err", err, "status", p.Status,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "application/problem+json")
		if p.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
		}
		c.Response().WriteHeader(p.Status)
		if c.Request().Method == http.MethodHead {
			return
		}
		_ = json.NewEncoder(c.Response()).Encode(p)
	}
}

// replicaAckTimeout is the answer to an accept that Redis made but its
// replicas did not confirm in time (redis.min_replicas_ack): the job may
// stand, or be lost in a failover.
func replicaAckTimeout() *Problem {
	p := problem(http.StatusServiceUnavailable, "replica-ack-timeout",
		"the write was made but Redis replicas did not confirm it in time, so it may or may not be kept; "+
			"retry with the same Idempotency-Key, which answers with the original job if it was kept (without a key, a retry may store the job twice)")
	p.RetryAfter = 1
	return p
}

func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, "body-too-large",
			"the request body exceeds the limit of "+strconv.FormatInt(mbe.Limit, 10)+" bytes")
	case errors.Is(err, jobs.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "no such job")
	case errors.Is(err, jobs.ErrFinished):
		return problem(http.StatusConflict, "job-ended", "the job has already ended")
	case errors.Is(err, jobs.ErrNotReplicated):
		// A change other than an accept (a cancel, a replay).
		p := problem(http.StatusServiceUnavailable, "replica-ack-timeout",
			"the change was made but Redis replicas did not confirm it in time, so it may or may not be kept; read the job to see, and retry if it was not")
		p.RetryAfter = 1
		return p
	case errors.Is(err, jobs.ErrUnavailable):
		p := problem(http.StatusServiceUnavailable, "unavailable", "the queue is unavailable; nothing was stored, try again later")
		p.RetryAfter = 1
		return p
	case unreachable(err):
		// A read (status, result, events, cancel) that could not reach
		// Redis: the service is unavailable, nothing is broken.
		p := problem(http.StatusServiceUnavailable, "unavailable", "the job store is unreachable; try again later")
		p.RetryAfter = 1
		return p
	}
	if code := echo.StatusCode(err); code != 0 {
		switch code {
		case http.StatusNotFound:
			return problem(code, "not-found", "no route for this path")
		case http.StatusMethodNotAllowed:
			return problem(code, "method-not-allowed", "this path does not take this method")
		}
		return problem(code, "http-"+strconv.Itoa(code), http.StatusText(code))
	}
	return problem(http.StatusInternalServerError, "internal", "an internal error occurred")
}

// unreachable reports whether err means that a backing service (Redis)
// could not be reached or did not answer in time.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}
