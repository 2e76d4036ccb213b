package status

import (
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestHubOnCluster runs a hub on a real 3-master cluster with 8 shards: it
// holds one connection per master, each with the shard channels whose
// slots that master serves; a tenant's subscriber hears the events of jobs
// on every shard; after a master is killed and its replica takes over,
// the hub moves that connection and new events on every shard still
// arrive.
func TestHubOnCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(1))
	cc := cl.Client(t)
	st, err := New(Config{Prefix: redistest.Prefix(t), Shards: 8}, cc)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(cc, st, nil)
	if err := h.Start(testContext(t)); err != nil {
		t.Fatalf("Hub.Start: %v", err)
	}
	t.Cleanup(func() { stopHub(t, h) })
	h.mu.RLock()
	legs := len(h.legs)
	h.mu.RUnlock()
	if legs != 3 {
		t.Fatalf("%d connections, want one per master (3)", legs)
	}
	for i := range 8 {
		ch := st.EventChannel(i)
		m := cl.MasterOf(t, int(keyspace.Slot(ch)))
		if n := shardSubs(t, m.Client(t), ch); n != 1 {
			t.Fatalf("shard %d's channel has %d subscribers on its master %s, want 1", i, n, m.Addr())
		}
	}

	sub := h.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)
	// everyShard stores a job of acme on every shard and waits for their
	// events.
	everyShard := func(when string) {
		t.Helper()
		want := map[string]bool{}
		for shard := range 8 {
			j := newJob("acme")
			j.ID = st.Space().PlaceID(j.ID, shard)
			testutil.WaitFor(t, waitTimeout, "a job stored on shard "+when, func() bool {
				return st.Create(testContext(t), j, &jobs.Request{}) == nil
			})
			want[j.ID] = true
		}
		deadline := time.After(waitTimeout)
		for len(want) > 0 {
			select {
			case ev := <-sub.C:
				delete(want, ev.JobID)
			case <-sub.Resync:
			case <-deadline:
				t.Fatalf("%s: no event of %d jobs within %s", when, len(want), waitTimeout)
			}
		}
	}
	everyShard("before the failover")

	killed := cl.MasterOf(t, int(keyspace.Slot(st.EventChannel(0))))
	killed.Kill()
	cl.WaitHealthy(t)
	testutil.WaitFor(t, 30*time.Second, "the hub to be on the new masters", func() bool {
		return h.placed() && h.Ready()
	})
	everyShard("after the failover")
}
