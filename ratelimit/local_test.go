package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake clock for Local.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newLocal returns a Local on a fake clock.
func newLocal(t testing.TB, cfg LocalConfig) (*Local, *clock) {
	t.Helper()
	c := newClock()
	cfg.Now = c.Now
	l, err := NewLocal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

func TestLocalContract(t *testing.T) {
	t.Parallel()
	testContract(t, func(t *testing.T) Limiter {
		l, err := NewLocal(LocalConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestNewLocalConfig(t *testing.T) {
	t.Parallel()
	if _, err := NewLocal(LocalConfig{IdleTTL: -time.Second}); err == nil {
		t.Error("NewLocal with a negative IdleTTL: no error")
	}
	if _, err := NewLocal(LocalConfig{MaxKeys: -1}); err == nil {
		t.Error("NewLocal with a negative MaxKeys: no error")
	}
	l, err := NewLocal(LocalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if l.cfg.IdleTTL != 10*time.Minute || l.cfg.MaxKeys != 100_000 || l.cfg.Now == nil {
		t.Errorf("defaults: %+v", l.cfg)
	}
}

func TestLocalBurstThenRefill(t *testing.T) {
	t.Parallel()
	l, c := newLocal(t, LocalConfig{})
	limit := Limit{Rate: 10, Burst: 3} // one request per 100ms
	ms := time.Millisecond
	steps := []struct {
		advance time.Duration
		want    Decision
	}{
		{0, Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * ms}},
		{0, Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 200 * ms}},
		{0, Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * ms}},
		{0, Decision{Limit: 3, Reset: 300 * ms, RetryAfter: 100 * ms}},
		{50 * ms, Decision{Limit: 3, Reset: 250 * ms, RetryAfter: 50 * ms}},
		{50 * ms, Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * ms}},
		{250 * ms, Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 150 * ms}},
		{0, Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 250 * ms}},
		{0, Decision{Limit: 3, Reset: 250 * ms, RetryAfter: 50 * ms}},
		{time.Hour, Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * ms}},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		got := allow(t, l, "k", limit)
		if !sameDecision(got, s.want) {
			t.Errorf("step %d (+%v): %+v, want %+v", i, s.advance, got, s.want)
		}
	}
}

// sameDecision compares decisions, allowing durations to differ by a
// microsecond of rounding.
func sameDecision(a, b Decision) bool {
	near := func(x, y time.Duration) bool { return x-y <= time.Microsecond && y-x <= time.Microsecond }
	return a.Allowed == b.Allowed && a.Limit == b.Limit && a.Remaining == b.Remaining &&
		near(a.Reset, b.Reset) && near(a.RetryAfter, b.RetryAfter)
}

// Waiting RetryAfter is always enough and never too much, and waiting Reset
// always gives back the full burst, whatever the rate's rounding.
func TestLocalRetryAfterAndResetAreExact(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0.5, 1, 3, 7, 10, 33.3, 100, 1000.0 / 3, 1e5} {
		limit := Limit{Rate: rate, Burst: 4}
		l, c := newLocal(t, LocalConfig{})
		for range 4 {
			allow(t, l, "k", limit)
		}
		for i := range 20 {
			d := allow(t, l, "k", limit)
			if d.Allowed {
				t.Fatalf("rate %v, round %d: allowed with an empty bucket", rate, i)
			}
			c.Advance(d.RetryAfter - time.Microsecond)
			if d := allow(t, l, "k", limit); d.Allowed {
				t.Fatalf("rate %v, round %d: allowed 1µs before RetryAfter", rate, i)
			}
			c.Advance(time.Microsecond)
			if d := allow(t, l, "k", limit); !d.Allowed {
				t.Fatalf("rate %v, round %d: denied after waiting RetryAfter %v: %+v", rate, i, d.RetryAfter, d)
			}
		}
		d := allow(t, l, "k", limit)
		c.Advance(d.Reset)
		if d := allow(t, l, "k", limit); !d.Allowed || d.Remaining != 3 {
			t.Errorf("rate %v: after Reset: %+v, want allowed with Remaining 3", rate, d)
		}
	}
}

func TestLocalLimitChange(t *testing.T) {
	t.Parallel()
	l, c := newLocal(t, LocalConfig{})
	small := Limit{Rate: 1, Burst: 2}
	allow(t, l, "k", small)
	allow(t, l, "k", small)
	// A bigger burst keeps the empty bucket, then refills up to the new size.
	big := Limit{Rate: 10, Burst: 5}
	if d := allow(t, l, "k", big); d.Allowed || d.Limit != 5 {
		t.Errorf("after raising the limit: %+v, want denied with Limit 5", d)
	}
	c.Advance(time.Second)
	if d := allow(t, l, "k", big); !d.Allowed || d.Remaining != 4 {
		t.Errorf("a second later: %+v, want allowed with Remaining 4", d)
	}
	// A smaller burst caps what is there.
	if d := allow(t, l, "k", small); !d.Allowed || d.Remaining != 1 || d.Limit != 2 {
		t.Errorf("after lowering the limit: %+v, want allowed with Remaining 1, Limit 2", d)
	}
}

func TestLocalMaxKeys(t *testing.T) {
	t.Parallel()
	const maxKeys = 5
	l, c := newLocal(t, LocalConfig{MaxKeys: maxKeys})
	limit := Limit{Rate: 1, Burst: 2}
	for i := range 1000 {
		allow(t, l, fmt.Sprint("key", i), limit)
		c.Advance(time.Millisecond)
		if n := l.len(); n > maxKeys {
			t.Fatalf("after %d keys: %d buckets, want at most %d", i+1, n, maxKeys)
		}
	}
	if n := l.len(); n != maxKeys {
		t.Errorf("%d buckets, want %d", n, maxKeys)
	}
	// The most recently used keys are kept; the oldest were dropped.
	for i := 995; i < 1000; i++ {
		if !l.has(fmt.Sprint("key", i)) {
			t.Errorf("key%d was dropped, want it kept", i)
		}
	}
	// Using a key makes it the most recent: key995 survives a new key,
	// key996 does not.
	allow(t, l, "key995", limit)
	allow(t, l, "new", limit)
	if !l.has("key995") || l.has("key996") {
		t.Errorf("after using key995 and adding a key: key995 kept %v, key996 kept %v; want true, false",
			l.has("key995"), l.has("key996"))
	}
}

func TestLocalIdleTTL(t *testing.T) {
	t.Parallel()
	const ttl = time.Minute
	l, c := newLocal(t, LocalConfig{IdleTTL: ttl})
	fast := Limit{Rate: 10, Burst: 2} // full again 200ms after use
	slow := Limit{Rate: 0.001, Burst: 2}

	allow(t, l, "a", fast)
	allow(t, l, "slow", slow) // full again 1000s after use
	c.Advance(ttl / 2)
	allow(t, l, "b", fast)

	c.Advance(ttl/2 + time.Second)
	allow(t, l, "c", fast)
	if l.has("a") {
		t.Error("a is kept after IdleTTL")
	}
	if !l.has("b") || !l.has("c") {
		t.Error("b or c dropped within IdleTTL")
	}
	// Dropping a bucket that is still refilling would hand out more than
	// the limit, so it stays until it is full.
	if !l.has("slow") {
		t.Fatal("slow dropped before it was full again")
	}
	if d := allow(t, l, "slow", slow); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("slow: %+v, want allowed with Remaining 0", d)
	}

	c.Advance(2000 * time.Second)
	allow(t, l, "d", fast)
	if n := l.len(); n != 1 || !l.has("d") {
		t.Errorf("after everything was idle and full: %d buckets, want just d", n)
	}
}

func TestLocalConcurrent(t *testing.T) {
	t.Parallel()
	l, _ := newLocal(t, LocalConfig{}) // the clock stands still: no refill
	limit := Limit{Rate: 1, Burst: 50}
	const keys, workers, calls = 8, 32, 100
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				k := (w + i) % keys
				d, err := l.Allow(context.Background(), fmt.Sprint("k", k), limit)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range allowed {
		if n := allowed[k].Load(); n != int64(limit.Burst) {
			t.Errorf("key k%d: %d allowed, want %d", k, n, limit.Burst)
		}
	}
}

func TestLocalConcurrentEviction(t *testing.T) {
	t.Parallel()
	const maxKeys = 4
	l, c := newLocal(t, LocalConfig{MaxKeys: maxKeys, IdleTTL: time.Second})
	limit := Limit{Rate: 100, Burst: 2}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 200 {
				if w == 0 {
					c.Advance(10 * time.Millisecond)
				}
				if _, err := l.Allow(context.Background(), fmt.Sprint("k", (w*7+i)%20), limit); err != nil {
					t.Error(err)
					return
				}
				if n := l.len(); n > maxKeys {
					t.Errorf("%d buckets, want at most %d", n, maxKeys)
					return
				}
			}
		})
	}
	wg.Wait()
}

func (l *Local) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) != l.lru.Len() {
		panic(fmt.Sprintf("map has %d buckets, list %d", len(l.entries), l.lru.Len()))
	}
	return len(l.entries)
}

func (l *Local) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.entries[key]
	return ok
}

func BenchmarkLocalAllow(b *testing.B) {
	limit := Limit{Rate: 1e9, Burst: 1000}
	b.Run("one key", func(b *testing.B) {
		l, err := NewLocal(LocalConfig{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Allow(ctx, "tenant:route", limit); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// Many keys, all kept; then more keys than the limiter keeps, so that
	// it evicts as it goes.
	for _, bc := range []struct {
		name    string
		maxKeys int
	}{{"10k keys", 0}, {"evicting", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := NewLocal(LocalConfig{MaxKeys: bc.maxKeys})
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 10_000)
			for i := range keys {
				keys[i] = fmt.Sprint("tenant", i, ":route")
			}
			ctx := context.Background()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Allow(ctx, keys[n.Add(1)%int64(len(keys))], limit); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
