package client

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinels that an *Error matches with errors.Is, by the problem's
// status or type.
var (
	// ErrNotFound: no such job for this tenant, or no such path (404
	// not-found).
	ErrNotFound = errors.New("not found")
	// ErrNoResult: the job has no result yet (404 no-result).
	ErrNoResult = errors.New("no result yet")
	// ErrJobEnded: the job has already ended, so it cannot be canceled
	// (409 job-ended).
	ErrJobEnded = errors.New("job already ended")
	// ErrUnauthorized: no valid API key or stream token (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the key or token does not allow this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid: the request was refused as malformed or invalid (400,
	// 413, 415, 422).
	ErrInvalid = errors.New("invalid request")
	// ErrRateLimited: too many requests (429), after the retries.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the gateway or its store is unavailable or
	// overloaded (502, 503, 504), after the retries.
	ErrUnavailable = errors.New("unavailable")
)

// ErrNoStream is returned when an event stream cannot be had: the answer
// is not text/event-stream (a proxy in between may be to blame). Wait
// polls instead; Events yields it.
var ErrNoStream = errors.New("client: the answer is not an event stream")

// problemTypeBase prefixes the type URI of the gateway's problems.
const problemTypeBase = "https://asyncgw.dev/problems/"

// Error is an error answer of the gateway: an RFC 9457 problem. An answer
// that is not a problem (from a proxy, say) gives an Error with Status and
// Title, and the start of the body in Detail.
type Error struct {
	// Type is a URI naming the kind of problem; Slug is its last part.
	Type string `json:"type"`
	// Title is the status's reason phrase.
	Title string `json:"title"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Detail says what went wrong, for people.
	Detail string `json:"detail,omitempty"`
	// Errors lists the invalid parts of an invalid request.
	Errors []FieldError `json:"errors,omitempty"`
	// Extensions are the problem's other members, undecoded.
	Extensions map[string]json.RawMessage `json:"-"`
	// RetryAfter is the answer's Retry-After, when it had one.
	RetryAfter time.Duration `json:"-"`
	// RequestID is the answer's X-Request-ID, to find it in the logs.
	RequestID string `json:"-"`
}

// FieldError names one invalid part of a request: a member of the JSON
// body by JSON pointer, or a query parameter by name.
type FieldError struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Detail    string `json:"detail"`
}

// Error describes the problem.
func (e *Error) Error() string {
	s := "asyncgw: " + strconv.Itoa(e.Status) + " " + e.Title
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Slug is the last part of the problem's type, such as "not-found" or
// "rate-limited"; "" for an answer that was not one of the gateway's
// problems.
func (e *Error) Slug() string {
	s, _ := strings.CutPrefix(e.Type, problemTypeBase)
	if s == e.Type {
		return ""
	}
	return s
}

// Is matches the sentinels of this package.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound && e.Slug() != "no-result"
	case ErrNoResult:
		return e.Slug() == "no-result"
	case ErrJobEnded:
		return e.Slug() == "job-ended"
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrInvalid:
		switch e.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			return true
		}
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		switch e.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// isProblem reports whether an answer is problem+json.
func isProblem(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/problem+json"
}

// toError makes the Error of an error answer.
func toError(a *answer) *Error {
	e := &Error{}
	if isProblem(a.header) && json.Unmarshal(a.body, e) == nil {
		var all map[string]json.RawMessage
		if json.Unmarshal(a.body, &all) == nil {
			for _, k := range []string{"type", "title", "status", "detail", "errors"} {
				delete(all, k)
			}
			if len(all) > 0 {
				e.Extensions = all
			}
		}
	} else {
		e.Detail = strings.TrimSpace(string(a.body[:min(len(a.body), 200)]))
	}
	e.Status = a.status // the status line is the truth
	if e.Title == "" {
		e.Title = http.StatusText(a.status)
	}
	e.RetryAfter = retryAfter(a.header)
	e.RequestID = a.header.Get("X-Request-ID")
	return e
}

// problemSlug is the slug of a problem answer, or "".
func problemSlug(a *answer) string {
	if !isProblem(a.header) {
		return ""
	}
	var p struct{ Type string }
	if json.Unmarshal(a.body, &p) != nil {
		return ""
	}
	s, ok := strings.CutPrefix(p.Type, problemTypeBase)
	if !ok {
		return ""
	}
	return s
}
