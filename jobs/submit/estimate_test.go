package submit

import (
	"testing"
	"time"
)

// TestEstimateWaitByTenant: with fair lines, the jobs ahead of a tenant's
// new job are its own waiting ones and, of each other tenant's, as many
// again and one more at most, and as many of the pending list's again
// and one more (takes alternate); in accept order, the whole backlog;
// over the drain rate.
func TestEstimateWaitByTenant(t *testing.T) {
	m := NewMonitor(MonitorConfig{Queues: []string{"q"}}, nil, nil)
	m.fair = true
	m.stats["q"] = QueueStats{Queue: "q", Pending: 10 + 1000 + 3, DrainRate: 100, Latency: time.Minute,
		PendingByTenant: map[string]int{"a": 1000, "b": 3}}
	for _, tc := range []struct {
		tenant string
		ahead  int
	}{
		{"c", 2 + 3},     // a new tenant: one of a's and b's, and 3 of the pending list
		{"b", 7 + 8},     // b's 3 and 4 of a's, and 8 of the pending list
		{"a", 1003 + 10}, // a's whole backlog and b's 3, and the pending list
	} {
		want := time.Duration(float64(tc.ahead) / 100 * float64(time.Second))
		if got := m.EstimateWait("q", tc.tenant); got != want {
			t.Errorf("tenant %s: %v, want %v (%d ahead at 100/s)", tc.tenant, got, want, tc.ahead)
		}
	}
	// In accept order: the whole backlog, whatever the tenant.
	m.fair = false
	if got, want := m.EstimateWait("q", "c"), 10130*time.Millisecond; got != want {
		t.Errorf("accept order: %v, want %v", got, want)
	}
	m.fair = true
	// Without a drain rate yet: the oldest job's wait; with nothing ahead, none.
	m.stats["q"] = QueueStats{Queue: "q", Pending: 5, Latency: time.Minute, PendingByTenant: map[string]int{"a": 5}}
	if got := m.EstimateWait("q", "b"); got != time.Minute {
		t.Errorf("no drain rate: %v, want the oldest's wait", got)
	}
	m.stats["q"] = QueueStats{Queue: "q"}
	if got := m.EstimateWait("q", "b"); got != 0 {
		t.Errorf("empty queue: %v, want 0", got)
	}
}
