package submit

import (
	"testing"
	"time"
)

// TestEstimateWaitByTenant: the jobs ahead of a tenant's new job are the
// pending list and, in the fair lines, its own and of each other tenant's
// as many again and one more at most; over the drain rate.
func TestEstimateWaitByTenant(t *testing.T) {
	m := NewMonitor(MonitorConfig{Queues: []string{"q"}}, nil, nil)
	m.stats["q"] = QueueStats{Queue: "q", Pending: 10 + 1000 + 3, DrainRate: 100, Latency: time.Minute,
		PendingByTenant: map[string]int{"a": 1000, "b": 3}}
	for _, tc := range []struct {
		tenant string
		ahead  int
	}{
		{"c", 10 + 1 + 1},    // a new tenant: the pending list, then one of a's and b's
		{"b", 10 + 3 + 4},    // b's 3, and 4 of a's in turn with them
		{"a", 10 + 1000 + 3}, // a's whole backlog, and b's 3
	} {
		want := time.Duration(float64(tc.ahead) / 100 * float64(time.Second))
		if got := m.EstimateWait("q", tc.tenant); got != want {
			t.Errorf("tenant %s: %v, want %v (%d ahead at 100/s)", tc.tenant, got, want, tc.ahead)
		}
	}
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
