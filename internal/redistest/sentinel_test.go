package redistest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// role is the first element of ROLE of srv.
func role(t *testing.T, srv *redistest.Server) string {
	t.Helper()
	v, err := srv.Client(t).Do(t.Context(), "ROLE").Slice()
	if err != nil || len(v) == 0 {
		t.Fatalf("ROLE on %s: %v", srv.Addr(), err)
	}
	return v[0].(string)
}

// TestSentinel starts the deployment, checks its shape, then fails over
// twice: once by SENTINEL FAILOVER, once by killing the master. A write
// the replicas acknowledged (WAIT) is on each new master.
func TestSentinel(t *testing.T) {
	t.Parallel()
	d := redistest.StartSentinel(t, redistest.WithAOF(), redistest.OnReplica(1, redistest.WithArgs("--appendonly", "no")))
	if len(d.SentinelAddrs()) != 3 || len(d.Nodes()) != 3 || d.MasterName() != redistest.MasterName {
		t.Fatalf("%d sentinels, %d nodes, master %q", len(d.SentinelAddrs()), len(d.Nodes()), d.MasterName())
	}
	master := d.Master(t)
	if master != d.Nodes()[0] || role(t, master) != "master" {
		t.Fatalf("master %s (role %s), want the first node", master.Addr(), role(t, master))
	}
	replicas := d.Replicas(t)
	if len(replicas) != 2 {
		t.Fatalf("%d replicas, want 2", len(replicas))
	}
	for i, r := range replicas {
		if got := role(t, r); got != "slave" {
			t.Errorf("replica %s has role %s", r.Addr(), got)
		}
		aof := r.Client(t).ConfigGet(t.Context(), "appendonly").Val()["appendonly"]
		if want := []string{"yes", "no"}[i]; aof != want {
			t.Errorf("replica %d: appendonly %s, want %s (OnReplica)", i, aof, want)
		}
	}
	// A sentinel is a sentinel.
	if got := role(t, d.Sentinels()[0]); got != "sentinel" {
		t.Errorf("sentinel's ROLE says %s", got)
	}

	write := func(key string) {
		t.Helper()
		c := d.Master(t).Client(t)
		if err := c.Set(t.Context(), key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Do(t.Context(), "WAIT", 2, 5000).Int(); err != nil || n != 2 {
			t.Fatalf("WAIT: %d replicas (%v), want 2", n, err)
		}
	}
	check := func(srv *redistest.Server, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if srv.Client(t).Exists(t.Context(), k).Val() != 1 {
				t.Errorf("%s lost %s", srv.Addr(), k)
			}
		}
	}

	write("before-failover")
	start := time.Now()
	old := d.Failover(t)
	if old != master.Addr() {
		t.Errorf("Failover replaced %s, want %s", old, master.Addr())
	}
	next := d.WaitNewMaster(t, old, 30*time.Second)
	t.Logf("SENTINEL FAILOVER took %v", time.Since(start).Round(time.Millisecond))
	if next == master || role(t, next) != "master" {
		t.Fatalf("new master %s (role %s)", next.Addr(), role(t, next))
	}
	check(next, "before-failover")
	d.Settle(t)
	if got := role(t, master); got != "slave" {
		t.Errorf("the old master has role %s after the failover, want slave", got)
	}

	write("before-kill")
	start = time.Now()
	killed := d.KillMaster(t)
	if killed != next || killed.Pid() != 0 {
		t.Fatalf("KillMaster killed %s (pid %d), want %s dead", killed.Addr(), killed.Pid(), next.Addr())
	}
	third := d.WaitNewMaster(t, killed.Addr(), 30*time.Second)
	t.Logf("failover after kill -9 took %v", time.Since(start).Round(time.Millisecond))
	if third == killed {
		t.Fatal("the killed master is master again")
	}
	check(third, "before-failover", "before-kill")

	// Restarted, the killed node comes back as a replica of the new master.
	killed.Restart(t)
	d.Settle(t)
	if got := role(t, killed); got != "slave" {
		t.Errorf("the restarted node has role %s, want slave", got)
	}
	if got := d.Replicas(t); len(got) != 2 || !slices.Contains(got, killed) {
		t.Errorf("replicas after the restart: %d", len(got))
	}
}

// TestSentinelFailoverClient checks that go-redis' failover client finds
// the master through the deployment's sentinels.
func TestSentinelFailoverClient(t *testing.T) {
	t.Parallel()
	d := redistest.StartSentinel(t)
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: d.MasterName(), SentinelAddrs: d.SentinelAddrs()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the failover client: %v", err)
	}
	if got := d.Master(t).Client(t).Get(ctx, "k").Val(); got != "v" {
		t.Errorf("the master has k = %q", got)
	}
}
