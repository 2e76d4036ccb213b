package telemetry

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// TestRedisHookErrors, on a real Redis: what go-redis itself gets past is
// not counted as a failed round trip (a new connection's CLIENT SETINFO,
// which Redis before 7.2 refuses; the NOSCRIPT answer to a script's first
// EVALSHA; a nil answer), a real error is, and every command that has run
// has its error counter, at zero until it fails.
func TestRedisHookErrors(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL(redistest.Shared(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics("test")
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	rdb.AddHook(m.RedisHook())
	ctx := t.Context()
	key := redistest.Prefix(t) + ":k"
	defer rdb.Del(ctx, key)

	// Several new connections at once.
	errc := make(chan error, 4)
	for range 4 {
		go func() { errc <- rdb.Ping(ctx).Err() }()
	}
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	// A script Redis has never seen: EVALSHA, NOSCRIPT, EVAL.
	script := redis.NewScript("return '" + redistest.Prefix(t) + "'")
	if err := script.Run(ctx, rdb, []string{key}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET of a missing key: %v", err)
	}
	errs := series(t, m, "asyncgw_redis_errors_total")
	for _, cmd := range []string{"dial", "ping", "evalsha", "eval", "get"} {
		v, ok := errs["{command="+cmd+"}"]
		if !ok || v != 0 {
			t.Errorf("asyncgw_redis_errors_total{command=%q} = %v (present: %v), want 0", cmd, v, ok)
		}
	}
	for k, v := range errs {
		if v != 0 {
			t.Errorf("asyncgw_redis_errors_total%s = %v, want 0: nothing failed", k, v)
		}
	}

	// A command Redis refuses is an error.
	if err := rdb.HSet(ctx, key, "a", "b").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, key).Err(); err == nil || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		t.Fatalf("GET of a hash: %v, want WRONGTYPE", err)
	}
	if v := series(t, m, "asyncgw_redis_errors_total")["{command=get}"]; v != 1 {
		t.Errorf("asyncgw_redis_errors_total{command=\"get\"} = %v after a WRONGTYPE, want 1", v)
	}
}
