package telemetry

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/upstream"
)

// TestUpstreamMetrics counts the holds and pauses of a real limiter on
// Redis, and reads its use into the gauges.
func TestUpstreamMetrics(t *testing.T) {
	t.Parallel()
	m := NewMetrics("test")
	const host = "payments.internal:8443"
	l, err := upstream.New(redistest.Shared(t).Client(t), upstream.Config{
		Prefix: redistest.Prefix(t), Hooks: m.UpstreamHooks(),
		Limits: map[string]upstream.Limit{host: {Concurrency: 1, Adaptive: true}, "quiet.internal": {}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	lease, err := l.Acquire(ctx, host, "j1")
	if err != nil {
		t.Fatal(err)
	}
	var held *upstream.HeldError
	if _, err := l.Acquire(ctx, host, "j2"); !errors.As(err, &held) {
		t.Fatalf("second call: %v, want held back", err)
	}
	m.WatchUpstreams(ctx, l, time.Hour, slog.New(slog.DiscardHandler))
	for name, want := range map[string]float64{
		"asyncgw_upstream_slots_in_use":      1,
		"asyncgw_upstream_jobs_held":         1,
		"asyncgw_upstream_concurrency_limit": 1,
		"asyncgw_upstream_paused":            0,
	} {
		if got, ok := series(t, m, name)["{upstream="+host+"}"]; !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if got := series(t, m, "asyncgw_upstream_held_total")["{limit=concurrency,upstream="+host+"}"]; got != 1 {
		t.Errorf("asyncgw_upstream_held_total %v, want 1", got)
	}
	if got := series(t, m, "asyncgw_upstream_hold_seconds")["{limit=concurrency,upstream="+host+"}"]; got != 1 {
		t.Errorf("asyncgw_upstream_hold_seconds count %v, want 1", got)
	}
	if _, ok := series(t, m, "asyncgw_upstream_held_total")["{limit=rate,upstream=quiet.internal}"]; !ok {
		t.Error("the counters of a limited host are not there at zero")
	}
	lease.Release(upstream.Outcome{Called: true, Overload: true, RetryAfter: time.Minute})
	if got := series(t, m, "asyncgw_upstream_pauses_total")["{upstream="+host+"}"]; got != 1 {
		t.Errorf("asyncgw_upstream_pauses_total %v, want 1", got)
	}
}
