package upstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const host = "payments.internal:8443"

// newPair returns two limiters on one Redis and prefix, as two worker
// processes have them.
func newPair(t *testing.T, rdb redis.UniversalClient, cfg Config) (*Limiter, *Limiter) {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(t)
	}
	a, err := New(rdb, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(rdb, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func shared(t *testing.T) redis.UniversalClient { return redistest.Shared(t).Client(t) }

// held checks that err holds a call back for reason, and returns it.
func held(t *testing.T, err error, reason Reason) *HeldError {
	t.Helper()
	var h *HeldError
	if !errors.As(err, &h) || h.Reason != reason {
		t.Fatalf("Acquire: %v, want held back for %s", err, reason)
	}
	return h
}

func acquire(t *testing.T, l *Limiter, job string) *Lease {
	t.Helper()
	ls, err := l.Acquire(t.Context(), host, job)
	if err != nil || ls == nil {
		t.Fatalf("Acquire: %v, %v; want a slot", ls, err)
	}
	return ls
}

func TestConcurrencyAcrossProcesses(t *testing.T) {
	t.Parallel()
	a, b := newPair(t, shared(t), Config{Limits: map[string]Limit{host: {Concurrency: 3}}})
	l1, l2, l3 := acquire(t, a, "j1"), acquire(t, b, "j2"), acquire(t, a, "j3")
	_, err := b.Acquire(t.Context(), host, "j4")
	h := held(t, err, ReasonConcurrency)
	if h.InUse != 3 || h.Limit != 3 || h.Wait <= 0 || h.Wait > time.Minute {
		t.Errorf("held: %+v", h)
	}
	if want := "waiting for upstream payments.internal:8443: concurrency 3 in use"; h.Error() != want {
		t.Errorf("error %q, want %q", h.Error(), want)
	}
	u, err := a.Usage(t.Context())
	if err != nil || len(u) != 1 || u[0].InUse != 3 || u[0].Held != 1 {
		t.Fatalf("Usage: %+v, %v; want 3 in use, 1 held", u, err)
	}
	l2.Release(Outcome{Called: true})
	l4 := acquire(t, b, "j4")
	u, _ = a.Usage(t.Context())
	if u[0].InUse != 3 || u[0].Held != 0 {
		t.Errorf("Usage after j4 got its slot: %+v; want 3 in use, none held", u[0])
	}
	for _, ls := range []*Lease{l1, l3, l4} {
		ls.Release(Outcome{Called: true})
	}
	l4.Release(Outcome{Called: true}) // twice: nothing more
	if u, _ = a.Usage(t.Context()); u[0].InUse != 0 {
		t.Errorf("in use after every release: %d", u[0].InUse)
	}
}

// heldAt reads when job, held back, was told to come back (ms, Redis's
// clock): the reservations are compared there, not as waits measured
// from moments the test's own pace moves.
func heldAt(t *testing.T, rdb redis.UniversalClient, prefix, job string) float64 {
	t.Helper()
	at, err := rdb.ZScore(t.Context(), keyspace.Upstream(prefix, host).Held, job).Result()
	if err != nil {
		t.Fatalf("held set: %s: %v", job, err)
	}
	return at
}

func TestHeldCallsComeBackSpreadOut(t *testing.T) {
	t.Parallel()
	rdb, prefix := shared(t), redistest.Prefix(t)
	a, _ := newPair(t, rdb, Config{Prefix: prefix, Limits: map[string]Limit{host: {Concurrency: 1}}})
	ls := acquire(t, a, "first")
	defer ls.Release(Outcome{})
	// Each is told to come back a call time (100ms before any call) after
	// the one before, counted from when it asks: so while the one before
	// is still to come, 100ms after it plus the time between the asks.
	var last float64
	var lastAsked time.Time
	for i := range 10 {
		job := fmt.Sprint("held-", i)
		asked := time.Now()
		_, err := a.Acquire(t.Context(), host, job)
		held(t, err, ReasonConcurrency)
		between := time.Since(lastAsked)
		at := heldAt(t, rdb, prefix, job)
		if i > 0 && between < 90*time.Millisecond && (at-last < 99 || at-last > 101+float64(between.Milliseconds())) {
			t.Errorf("held call %d told to come back %vms after the one before (asked %v later), want 100ms more than that", i, at-last, between)
		}
		last, lastAsked = at, asked
	}
	// A job that asks again before its time is told the same time, and
	// takes no new reservation.
	first := heldAt(t, rdb, prefix, "held-0")
	_, err := a.Acquire(t.Context(), host, "held-0")
	if h := held(t, err, ReasonConcurrency); h.Wait > time.Duration(last-first)*time.Millisecond {
		t.Errorf("held-0 asking again told to wait %s, after the last reservation", h.Wait)
	}
	if at := heldAt(t, rdb, prefix, "held-0"); at != first {
		t.Errorf("held-0 asking again moved its reservation by %vms", at-first)
	}
	_, err = a.Acquire(t.Context(), host, "held-10")
	held(t, err, ReasonConcurrency)
	if at := heldAt(t, rdb, prefix, "held-10"); at <= last {
		t.Errorf("a new job told to come back %vms after the last reservation, want after it", at-last)
	}
}

// Jobs held back by the rate are told to come back one token apart,
// from the next token; asking again early, the same time.
func TestRateSpreadsHeldJobs(t *testing.T) {
	t.Parallel()
	rdb, prefix := shared(t), redistest.Prefix(t)
	a, b := newPair(t, rdb, Config{Prefix: prefix, Limits: map[string]Limit{host: {Rate: 5, Burst: 1}}})
	acquire(t, a, "j1")
	asked := time.Now()
	_, err := a.Acquire(t.Context(), host, "j2")
	h2 := held(t, err, ReasonRate)
	_, err = b.Acquire(t.Context(), host, "j3")
	held(t, err, ReasonRate)
	between := time.Since(asked)
	// Tokens every 200ms: j2 at the next (within 200ms), and j3, asking
	// while j2's is still to come, one after.
	at2, at3 := heldAt(t, rdb, prefix, "j2"), heldAt(t, rdb, prefix, "j3")
	if h2.Wait <= 0 || h2.Wait > 201*time.Millisecond {
		t.Errorf("j2 waits %s, want up to 200ms", h2.Wait)
	}
	if between < 150*time.Millisecond && (at3-at2 < 199 || at3-at2 > 201) {
		t.Errorf("j3 comes back %vms after j2, want 200ms", at3-at2)
	}
	_, err = b.Acquire(t.Context(), host, "j3")
	held(t, err, ReasonRate)
	if at := heldAt(t, rdb, prefix, "j3"); at != at3 {
		t.Errorf("j3 asking again early moved its reservation by %vms", at-at3)
	}
}

func TestBurstDefaultsToRate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rate  float64
		burst int
	}{{0.5, 1}, {1, 1}, {20, 20}, {2.7, 2}} {
		if got := (Limit{Rate: c.rate}).withDefaults().Burst; got != c.burst {
			t.Errorf("rate %v: burst %d, want %d", c.rate, got, c.burst)
		}
	}
}

// A holder that dies (no renewal, no release) frees its slot within one
// lease; a holder that lives keeps it past many leases.
func TestLeases(t *testing.T) {
	t.Parallel()
	// Renewed every third of it by a timer: long enough that a loaded
	// machine does not miss a renewal.
	lease := 600 * time.Millisecond
	a, b := newPair(t, shared(t), Config{Lease: lease, Limits: map[string]Limit{host: {Concurrency: 1}}})
	alive := acquire(t, a, "alive")
	// Three leases' time, renewed all along: still held.
	deadline := time.Now().Add(3 * lease)
	for time.Now().Before(deadline) {
		_, err := b.Acquire(t.Context(), host, "other")
		held(t, err, ReasonConcurrency)
		time.Sleep(50 * time.Millisecond) // the time that must pass
	}
	alive.Release(Outcome{Called: true})

	dead := acquire(t, a, "dead")
	dead.kill()
	start := time.Now()
	testutil.WaitFor(t, 5*time.Second, "the dead holder's slot", func() bool {
		ls, err := b.Acquire(context.Background(), host, "other")
		if err == nil {
			ls.Release(Outcome{})
		}
		return err == nil
	})
	// Within the lease, and the polling's own time.
	if d := time.Since(start); d > 2*lease {
		t.Errorf("a dead holder's slot freed after %s, want within the lease (%s)", d, lease)
	}
}

func TestRetryAfterPausesTheHost(t *testing.T) {
	t.Parallel()
	var paused []time.Duration
	cfg := Config{Limits: map[string]Limit{host: {Concurrency: 5}}}
	cfg.Hooks.Paused = func(_ string, d time.Duration) { paused = append(paused, d) }
	a, b := newPair(t, shared(t), cfg)
	j1 := acquire(t, a, "j1")
	start := time.Now()
	j1.Release(Outcome{Called: true, Overload: true, RetryAfter: time.Second})
	if len(paused) != 1 || paused[0] != time.Second {
		t.Errorf("Paused hook: %v", paused)
	}
	_, err := b.Acquire(t.Context(), host, "j2")
	h := held(t, err, ReasonPaused)
	if since := time.Since(start); h.Wait < time.Second-since-time.Millisecond || h.Wait > time.Second+time.Millisecond {
		t.Errorf("wait %s, %v after the pause began: want the rest of 1s", h.Wait, since)
	}
	if !strings.Contains(h.Error(), "paused by its Retry-After") {
		t.Errorf("error %q", h.Error())
	}
	u, _ := b.Usage(t.Context())
	if u[0].PausedUntil == nil {
		t.Errorf("Usage shows no pause: %+v", u[0])
	}
	testutil.WaitFor(t, 3*time.Second, "the end of the pause", func() bool {
		ls, err := b.Acquire(context.Background(), host, "j2")
		ls.Release(Outcome{})
		return err == nil
	})
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("a call went through %s into a 1s pause", d)
	}
	// A 500 with Retry-After is no overload: no pause.
	acquire(t, a, "j3").Release(Outcome{Called: true, Failed: true, RetryAfter: time.Second})
	acquire(t, b, "j4").Release(Outcome{})
}

// A slot given back names the jobs held back for later, earliest first
// and at most Config.HandOff of them, so that one can be brought forward;
// none while a pause lasts, or without HandOff.
func TestReleaseNamesHeldJobs(t *testing.T) {
	t.Parallel()
	rdb := shared(t)
	prefix := redistest.Prefix(t)
	// Calls of 20s: the jobs held back are told to come back 10s apart,
	// far beyond the test's own pace.
	rdb.HSet(t.Context(), keyspace.Upstream(prefix, host).State, "lat", 20000)
	a, b := newPair(t, rdb, Config{Prefix: prefix, HandOff: 2, Limits: map[string]Limit{host: {Concurrency: 2}}})
	first, second := acquire(t, a, "j1"), acquire(t, b, "j2")
	for _, job := range []string{"h1", "h2", "h3"} {
		_, err := b.Acquire(t.Context(), host, job)
		held(t, err, ReasonConcurrency)
	}
	if got := first.Release(Outcome{Called: true}); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("release named %q, want the two earliest held, h1 and h2", got)
	}
	// h1, brought forward, takes the slot before its time and is held no
	// more.
	h1 := acquire(t, a, "h1")
	if got := second.Release(Outcome{Called: true}); !slices.Equal(got, []string{"h2", "h3"}) {
		t.Errorf("release named %q, want h2 and h3", got)
	}
	h2 := acquire(t, b, "h2")
	// A Retry-After pauses the host: the release names none, h3 held all
	// the same.
	if got := h1.Release(Outcome{Called: true, Overload: true, RetryAfter: time.Minute}); got != nil {
		t.Errorf("release that paused the host named %q", got)
	}
	if got := h2.Release(Outcome{Called: true}); got != nil {
		t.Errorf("release during the pause named %q", got)
	}

	// A host whose rate has no token names none: a job brought forward
	// would be held again.
	r, _ := newPair(t, rdb, Config{HandOff: 2, Limits: map[string]Limit{host: {Concurrency: 2, Rate: 0.1, Burst: 1}}})
	only := acquire(t, r, "r1")
	_, err := r.Acquire(t.Context(), host, "r2")
	held(t, err, ReasonRate)
	if got := only.Release(Outcome{Called: true}); got != nil {
		t.Errorf("release with no token of the rate named %q", got)
	}

	// Without HandOff, none.
	c, _ := newPair(t, rdb, Config{Limits: map[string]Limit{host: {Concurrency: 1}}})
	ls := acquire(t, c, "k1")
	_, err = c.Acquire(t.Context(), host, "k2")
	held(t, err, ReasonConcurrency)
	if got := ls.Release(Outcome{Called: true}); got != nil {
		t.Errorf("release without HandOff named %q", got)
	}
}

func TestAdaptive(t *testing.T) {
	t.Parallel()
	a, b := newPair(t, shared(t), Config{Limits: map[string]Limit{host: {Concurrency: 8, Adaptive: true}}})
	effective := func() int {
		t.Helper()
		u, err := a.Usage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return u[0].EffectiveConcurrency
	}
	if got := effective(); got != 8 {
		t.Fatalf("effective concurrency before any call: %d, want 8", got)
	}
	// Overloads halve it, at most once per baseline call time (at
	// least 100ms): two at once halve it once.
	acquire(t, a, "j1").Release(Outcome{Called: true, Overload: true})
	acquire(t, b, "j2").Release(Outcome{Called: true, Overload: true})
	if got := effective(); got != 4 {
		t.Fatalf("after two overloads at once: %d, want 4", got)
	}
	// Now 4 slots only.
	var ls []*Lease
	for i := range 4 {
		ls = append(ls, acquire(t, a, "k"+string(rune('0'+i))))
	}
	_, err := b.Acquire(t.Context(), host, "k5")
	h := held(t, err, ReasonConcurrency)
	if h.Limit != 4 || !strings.Contains(h.Error(), "(adaptive, at most 8)") {
		t.Errorf("held: %+v %q", h, h.Error())
	}
	// Fast answers raise it by one per round of calls.
	for _, l := range ls {
		l.Release(Outcome{Called: true})
	}
	for i := 0; effective() < 8 && i < 100; i++ {
		acquire(t, b, "r").Release(Outcome{Called: true})
	}
	if got := effective(); got != 8 {
		t.Fatalf("after many fast answers: %d, want back to 8", got)
	}
}

func TestHostWithoutLimits(t *testing.T) {
	// Not parallel: AllocsPerRun.
	// No Redis at all: a host without limits never reaches it.
	l, err := New(nil, Config{Limits: map[string]Limit{host: {Concurrency: 1}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	allocs := testing.AllocsPerRun(100, func() {
		ls, err := l.Acquire(ctx, "other.internal", "j")
		if ls != nil || err != nil {
			t.Fatal(ls, err)
		}
		ls.Release(Outcome{Called: true})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call to a host without limits", allocs)
	}
	var none *Limiter
	if ls, err := none.Acquire(ctx, host, "j"); ls != nil || err != nil {
		t.Errorf("nil Limiter: %v, %v", ls, err)
	}
}

func TestHostCase(t *testing.T) {
	t.Parallel()
	a, _ := newPair(t, shared(t), Config{Limits: map[string]Limit{"Payments.Internal:8443": {Concurrency: 1}}})
	ls := acquire(t, a, "j1")
	defer ls.Release(Outcome{})
	_, err := a.Acquire(t.Context(), "PAYMENTS.internal:8443", "j2")
	held(t, err, ReasonConcurrency)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		limits map[string]Limit
		want   string
	}{
		{map[string]Limit{"a:1": {Concurrency: -1}}, `upstreams: "a:1".concurrency: -1 must be at least 1`},
		{map[string]Limit{"a": {Rate: -2}}, `upstreams: "a".rate: -2 must be a positive number`},
		{map[string]Limit{"a": {Burst: 3}}, `upstreams: "a".burst: needs rate`},
		{map[string]Limit{"a": {Rate: 1, Burst: -1}}, `upstreams: "a".burst: -1 must be between 1`},
		{map[string]Limit{"a": {Adaptive: true}}, `upstreams: "a".adaptive: needs concurrency`},
		{map[string]Limit{"http://a": {}}, `upstreams: "http://a": must be a host or host:port`},
		{map[string]Limit{"a/b": {}}, `upstreams: "a/b": must be a host`},
		{map[string]Limit{"{a}": {}}, `upstreams: "{a}": must be a host`},
		{map[string]Limit{"": {}}, `upstreams: "": must be a host`},
		{map[string]Limit{"A.example": {}, "a.example": {Rate: 1}}, `upstreams: "a.example": the same host as "A.example"`},
	} {
		_, err := New(nil, Config{Limits: c.limits}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.limits, err, c.want)
		}
	}
	l, err := New(nil, Config{Limits: map[string]Limit{"a": {}, "b:80": {Concurrency: 1, Rate: 0.5, Adaptive: true}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetLimits(map[string]Limit{"a": {Concurrency: 0, Rate: -1}}); err == nil {
		t.Error("SetLimits took a bad limit")
	}
	if got := l.Limits(); len(got) != 2 || got["b:80"].Burst != 1 {
		t.Errorf("limits after a refused SetLimits: %+v", got)
	}
}

// The scripts run on Redis Cluster: every call's keys are in the host's
// slot, whatever node serves it.
func TestCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(0))
	rdb := cluster.Client(t)
	limits := map[string]Limit{}
	hosts := []string{"a.internal", "b.internal:8443", "c.internal:80", "d", "e.example:443"}
	for _, h := range hosts {
		limits[h] = Limit{Concurrency: 1, Rate: 100, Adaptive: true}
	}
	a, b := newPair(t, rdb, Config{Prefix: "cl", Limits: limits})
	for _, h := range hosts {
		ls, err := a.Acquire(t.Context(), h, "j1")
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		_, err = b.Acquire(t.Context(), h, "j2")
		held(t, err, ReasonConcurrency)
		ls.renew()
		ls.Release(Outcome{Called: true, Overload: true, RetryAfter: time.Second})
		_, err = b.Acquire(t.Context(), h, "j2")
		held(t, err, ReasonPaused)
	}
	u, err := b.Usage(t.Context())
	if err != nil || len(u) != len(hosts) {
		t.Fatalf("Usage: %+v, %v", u, err)
	}
	for _, x := range u {
		if x.Held != 1 || x.PausedUntil == nil {
			t.Errorf("%s: %+v, want 1 held and a pause", x.Host, x)
		}
	}
}

// The embedded Redis of the demo (miniredis) runs the scripts too.
func TestMiniredis(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	a, b := newPair(t, rdb, Config{Limits: map[string]Limit{host: {Concurrency: 1, Rate: 50, Adaptive: true}}})
	ls := acquire(t, a, "j1")
	_, err := b.Acquire(t.Context(), host, "j2")
	held(t, err, ReasonConcurrency)
	ls.renew()
	ls.Release(Outcome{Called: true})
	acquire(t, b, "j2").Release(Outcome{Called: true, Overload: true, RetryAfter: time.Second})
	if _, err := a.Usage(t.Context()); err != nil {
		t.Fatal(err)
	}
}
