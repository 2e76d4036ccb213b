package upstream_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/upstream"
)

// Two calls to a host that takes one at a time: the second is held back
// until the first gives its slot back.
func Example() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	limits, err := upstream.New(rdb, upstream.Config{Limits: map[string]upstream.Limit{
		"payments.internal:8443": {Concurrency: 1, Rate: 20},
	}}, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	first, _ := limits.Acquire(ctx, "payments.internal:8443", "job-1")
	_, err = limits.Acquire(ctx, "payments.internal:8443", "job-2")
	fmt.Println(err)

	first.Release(upstream.Outcome{Called: true})
	second, err := limits.Acquire(ctx, "payments.internal:8443", "job-2")
	fmt.Println(second != nil, err)
	second.Release(upstream.Outcome{Called: true})

	// A host without limits: no slot to take.
	other, err := limits.Acquire(ctx, "search.internal", "job-3")
	fmt.Println(other == nil, err)
	// Output:
	// waiting for upstream payments.internal:8443: concurrency 1 in use
	// true <nil>
	// true <nil>
}
