package telemetry

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/testutil"
)

// TestWatchReady: asyncgw_ready follows the check by itself: right from
// the start, through a failure and back, and says not ready once the
// process stops.
func TestWatchReady(t *testing.T) {
	t.Parallel()
	m := NewMetrics("test")
	ready := func() float64 { return series(t, m, "asyncgw_ready")["{}"] }
	var down atomic.Bool
	var checks, unbounded atomic.Int64
	check := func(ctx context.Context) []string {
		checks.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			unbounded.Add(1)
		}
		if down.Load() {
			return []string{"redis unreachable: connection refused"}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	m.WatchReady(ctx, check, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	if checks.Load() != 1 || ready() != 1 {
		t.Fatalf("after WatchReady returned: %d checks, asyncgw_ready %v; want the first check made and 1", checks.Load(), ready())
	}
	down.Store(true)
	testutil.WaitFor(t, 5*time.Second, "asyncgw_ready 0 while the check fails", func() bool { return ready() == 0 })
	down.Store(false)
	testutil.WaitFor(t, 5*time.Second, "asyncgw_ready 1 once the check passes", func() bool { return ready() == 1 })
	cancel()
	testutil.WaitFor(t, 5*time.Second, "asyncgw_ready 0 once stopped", func() bool { return ready() == 0 })
	if n := unbounded.Load(); n > 0 {
		t.Errorf("%d checks had no deadline", n)
	}
}
