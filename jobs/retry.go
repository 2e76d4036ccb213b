package jobs

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Default retry schedule.
const (
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 5 * time.Minute
)

// Delay returns how long to wait before the attempt after attempt n (n ≥ 1):
// exponential from Base, capped at Max, with full jitter. retryAfter, the
// upstream's own request, wins when it is longer, within Max.
func (b Backoff) Delay(n int, retryAfter time.Duration) time.Duration {
	if len(b.Schedule) > 0 {
		return b.scheduled(n, retryAfter)
	}
	base, ceil := time.Duration(b.Base), time.Duration(b.Max)
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if ceil <= 0 {
		ceil = DefaultBackoffMax
	}
	exp := ceil
	if n < 1 {
		n = 1
	}
	// base·2^(n-1) ≤ ceil, checked without overflowing.
	if k := n - 1; k < 63 && base <= ceil>>k {
		exp = base << k
	}
	d := time.Duration(rand.Uint64N(uint64(exp) + 1))
	if retryAfter > d {
		d = min(retryAfter, ceil)
	}
	return d
}

// scheduled is Delay for a fixed schedule. retryAfter wins when longer,
// within the schedule's longest step.
func (b Backoff) scheduled(n int, retryAfter time.Duration) time.Duration {
	step := time.Duration(b.Schedule[min(max(n, 1), len(b.Schedule))-1])
	d := step + time.Duration(rand.Uint64N(uint64(step/10)+1))
	if retryAfter > d {
		d = min(retryAfter, time.Duration(slices.Max(b.Schedule)))
	}
	return d
}

// ParseRetryAfter reads a Retry-After header value (seconds or an HTTP
// date). It returns 0 when the value is absent or malformed.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 || s > 1<<31 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
