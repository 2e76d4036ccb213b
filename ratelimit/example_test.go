package ratelimit_test

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/asyncgw/asyncgw/ratelimit"
)

func ExampleHeaders() {
	// A denied request: the bucket of 200 is empty, the next request may
	// come in 10ms and the bucket is full again in 2s.
	d := ratelimit.Decision{
		Allowed:    false,
		Limit:      200,
		Remaining:  0,
		Reset:      2 * time.Second,
		RetryAfter: 10 * time.Millisecond,
	}
	h := http.Header{}
	ratelimit.Headers(h, d)
	for _, k := range slices.Sorted(maps.Keys(h)) {
		fmt.Printf("%s: %s\n", k, h.Get(k))
	}
	// Output:
	// Ratelimit-Limit: 200
	// Ratelimit-Remaining: 0
	// Ratelimit-Reset: 2
	// Retry-After: 1
}
