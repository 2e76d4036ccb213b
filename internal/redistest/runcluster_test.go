package redistest_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// TestRunCluster: a cluster started outside a test's cleanup serves every
// slot from the masters asked for, with no replica, and Close leaves no
// node running.
func TestRunCluster(t *testing.T) {
	t.Parallel()
	d, err := redistest.RunCluster(t.TempDir(), redistest.WithMasters(3), redistest.WithReplicas(0))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	if got := len(d.Masters()); got != 3 {
		t.Fatalf("%d masters, want 3", got)
	}
	if got := len(d.Replicas()); got != 0 {
		t.Fatalf("%d replicas, want 0", got)
	}
	c := d.Client(t)
	for i := range 30 {
		key := "runcluster-" + strconv.Itoa(i)
		if err := c.Set(t.Context(), key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
	var pids []int
	for _, s := range d.Nodes() {
		pids = append(pids, s.Pid())
	}
	d.Close()
	closed = true
	for i, s := range d.Nodes() {
		if s.Pid() != 0 {
			t.Errorf("node %s still runs after Close", s.Addr())
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pids[i])); err == nil {
			t.Errorf("process %d of node %s is still there after Close", pids[i], s.Addr())
		}
	}
}
