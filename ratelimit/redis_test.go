package ratelimit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// newRedis returns a Redis limiter on the shared server, with its own
// client and key prefix.
func newRedis(t testing.TB, prefix string) *Redis {
	t.Helper()
	r, err := NewRedis(redistest.Shared(t).Client(t), RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedisContract(t *testing.T) {
	t.Parallel()
	testContract(t, func(t *testing.T) Limiter { return newRedis(t, redistest.Prefix(t)) })
}

// The embedded mode of asyncgw runs on miniredis; the script must work there
// too.
func TestRedisContractMiniredis(t *testing.T) {
	t.Parallel()
	testContract(t, func(t *testing.T) Limiter {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		r, err := NewRedis(rdb, RedisConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
}

func TestNewRedisConfig(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"a{b}", "a b", "x}"} {
		if _, err := NewRedis(nil, RedisConfig{Prefix: p}); err == nil || !strings.HasPrefix(err.Error(), "ratelimit redis config: prefix") {
			t.Errorf("NewRedis with prefix %q: %v, want an error naming the prefix", p, err)
		}
	}
	r, err := NewRedis(nil, RedisConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.key("default:POST /v1/orders"), "asyncgw:rl:{default:POST /v1/orders}"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
}

// Many gateway instances, each with its own client, share one budget.
func TestRedisSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	prefix := redistest.Prefix(t)
	limiters := []*Redis{newRedis(t, prefix), newRedis(t, prefix)}
	// So slow a rate that nothing refills during the test.
	limit := Limit{Rate: 0.001, Burst: 20}

	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 * limit.Burst {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d, err := limiters[i%2].Allow(ctx, "tenant:route", limit)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := allowed.Load(); n != int64(limit.Burst) {
		t.Errorf("%d of %d requests allowed across two instances, want %d", n, 2*limit.Burst, limit.Burst)
	}
}

// The key holds the time the bucket is full again and expires then, so
// Redis keeps nothing for idle keys.
func TestRedisKeyExpires(t *testing.T) {
	t.Parallel()
	srv := redistest.Shared(t)
	rdb := srv.Client(t)
	prefix := redistest.Prefix(t)
	r, err := NewRedis(rdb, RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	allow(t, r, "k", Limit{Rate: 1, Burst: 3})
	allow(t, r, "k", Limit{Rate: 1, Burst: 3})
	ttl, err := rdb.PTTL(ctx, prefix+":rl:{k}").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= time.Second || ttl > 2*time.Second {
		t.Errorf("PTTL after two requests at 1/s = %v, want in (1s, 2s]", ttl)
	}

	allow(t, r, "fast", Limit{Rate: 100, Burst: 3})
	testutil.WaitFor(t, 2*time.Second, "the key of a full bucket to expire", func() bool {
		n, err := rdb.Exists(ctx, prefix+":rl:{fast}").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	if d := allow(t, r, "fast", Limit{Rate: 100, Burst: 3}); !d.Allowed || d.Remaining != 2 {
		t.Errorf("after expiry: %+v, want a full bucket", d)
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	limit := Limit{Rate: 1e9, Burst: 1000}
	r := newRedis(b, redistest.Prefix(b))
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Allow(ctx, "tenant:route", limit); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Allow(ctx, "tenant:route", limit); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
