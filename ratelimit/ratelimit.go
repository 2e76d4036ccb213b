// Package ratelimit limits requests per key (a tenant and a route, say) with
// token buckets: a fresh key may make Burst requests at once, and then Rate
// requests per second.
//
// Local keeps the buckets in process memory, one golang.org/x/time/rate
// limiter per key; every gateway instance then has its own budget. Redis
// keeps them in Redis with GCRA (one Lua script, one key per call), so all
// instances share one budget per key. Both return the same Decision for the
// same history of requests, and Headers turns a Decision into the
// RateLimit-* and Retry-After response headers.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Limit is the budget of one key: Burst requests at once, refilled at Rate
// requests per second.
type Limit struct {
	// Rate is how many requests per second the bucket refills.
	Rate float64
	// Burst is the size of the bucket: how many requests a fresh or idle key
	// may make at once.
	Burst int
}

// Validate reports an error naming the field if Rate is not a positive
// finite number or Burst is less than 1.
func (l Limit) Validate() error {
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("rate %v: must be a positive number of requests per second", l.Rate)
	}
	if l.Burst < 1 {
		return fmt.Errorf("burst %d: must be at least 1", l.Burst)
	}
	return nil
}

// Decision is the answer to one request.
type Decision struct {
	// Allowed reports whether the request may go ahead. A denied request
	// uses up nothing.
	Allowed bool
	// Limit is the size of the bucket (the Limit's Burst).
	Limit int
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is how long until the next request would be allowed;
	// 0 when Allowed.
	RetryAfter time.Duration
}

// Limiter decides whether a request for key may go ahead under l, and
// counts it if so.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Decision, error)
}

// Headers sets RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on h
// from d and, when d denies the request, Retry-After. Durations are in whole
// seconds, rounded up; Retry-After is at least 1.
func Headers(h http.Header, d Decision) {
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(d.Reset), 10))
	if !d.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(d.RetryAfter)), 10))
	}
}

// ceilSeconds returns d in whole seconds, rounded up, and 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// epsilon absorbs floating-point error when tokens are rounded down to
// whole requests, so that 2.9999999999 tokens count as 3.
const epsilon = 1e-6

// decide builds the Decision for a bucket of l that holds tokens after the
// request was allowed (and counted) or denied. The Lua script of Redis
// rounds the same way.
func decide(allowed bool, l Limit, tokens float64) Decision {
	tokens = min(max(tokens, 0), float64(l.Burst))
	d := Decision{
		Allowed: allowed,
		Limit:   l.Burst,
		Reset:   seconds((float64(l.Burst) - tokens) / l.Rate),
	}
	if allowed {
		d.Remaining = int(math.Floor(tokens + epsilon))
	} else {
		d.RetryAfter = max(time.Nanosecond, seconds((1-tokens)/l.Rate))
	}
	return d
}

// seconds converts s seconds to a Duration, rounded up to the nanosecond so
// that waiting that long is always enough.
func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	ns := math.Ceil(s * float64(time.Second))
	if ns >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ns)
}
