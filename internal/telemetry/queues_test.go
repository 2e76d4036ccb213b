package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// queueSource reports fixed figures; nil ones cannot be read.
type queueSource []admin.Queue

func (q queueSource) Queues(context.Context) ([]admin.Queue, error) {
	if q == nil {
		return nil, errors.New("redis unreachable")
	}
	return q, nil
}

// TestWatchQueuesFirstReading: the figures are in the gauges when
// WatchQueues returns, before any scrape can see them missing.
func TestWatchQueuesFirstReading(t *testing.T) {
	t.Parallel()
	m := NewMetrics("test")
	q := queueSource{{Name: "default", Pending: 3, Dead: 2, LatencySeconds: 1.5, PendingByTenant: map[string]int{"acme": 2}}}
	m.WatchQueues(t.Context(), q, nil, time.Hour, slog.New(slog.DiscardHandler))
	if got := series(t, m, "asyncgw_queue_tenant_pending")["{queue=default,tenant=acme}"]; got != 2 {
		t.Errorf("asyncgw_queue_tenant_pending acme %v right after WatchQueues, want 2", got)
	}
	if got := series(t, m, "asyncgw_queue_depth")["{queue=default,state=pending}"]; got != 3 {
		t.Errorf("asyncgw_queue_depth pending %v right after WatchQueues, want 3", got)
	}
	if got := series(t, m, "asyncgw_dlq_size")["{queue=default}"]; got != 2 {
		t.Errorf("asyncgw_dlq_size %v right after WatchQueues, want 2", got)
	}
}

// TestQueueStatsAgeWithoutReading: a process that has never read the
// figures says they are as old as the process, so that
// AsyncgwQueueStatsStale can fire for it.
func TestQueueStatsAgeWithoutReading(t *testing.T) {
	t.Parallel()
	m := NewMetrics("test")
	m.WatchQueues(t.Context(), queueSource(nil), nil, time.Hour, slog.New(slog.DiscardHandler))
	age := func() float64 { return series(t, m, "asyncgw_queue_stats_age_seconds")["{}"] }
	first := age()
	testutil.WaitFor(t, 5*time.Second, "the age to grow", func() bool { return age() > first })
}
