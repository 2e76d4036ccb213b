package redistest_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// keyOn returns a key whose slot the master m serves, and the slot.
func keyOn(t *testing.T, d *redistest.Cluster, c *redis.ClusterClient, m *redistest.Server, prefix string) (string, int) {
	t.Helper()
	for i := range 1000 {
		key := fmt.Sprintf("%s-%d", prefix, i)
		slot, err := c.ClusterKeySlot(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d.MasterOf(t, int(slot)) == m {
			return key, int(slot)
		}
	}
	t.Fatalf("no key of 1000 on %s", m.Addr())
	return "", 0
}

// TestCluster starts a cluster and checks its shape: three masters that
// split the slots evenly, one replica each, ports whose bus ports fit,
// and a key in each master's slots written and read through the cluster
// client and held by that master.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	d := redistest.StartCluster(t, redistest.WithAOF())
	t.Logf("StartCluster (3 masters, 3 replicas) took %v", time.Since(start).Round(time.Millisecond))
	masters, replicas := d.Masters(), d.Replicas()
	if len(masters) != 3 || len(replicas) != 3 || len(d.Nodes()) != 6 || len(d.Addrs()) != 3 {
		t.Fatalf("%d masters, %d replicas, %d nodes, %d addrs", len(masters), len(replicas), len(d.Nodes()), len(d.Addrs()))
	}
	for i, m := range masters {
		if d.Addrs()[i] != m.Addr() || m.Pid() == 0 {
			t.Errorf("master %d: %s (pid %d), Addrs says %s", i, m.Addr(), m.Pid(), d.Addrs()[i])
		}
	}
	for _, s := range d.Nodes() {
		_, port, _ := net.SplitHostPort(s.Addr())
		if p, _ := strconv.Atoi(port); p+10000 > 65535 {
			t.Errorf("%s: bus port %d does not exist", s.Addr(), p+10000)
		}
		if aof := s.Client(t).ConfigGet(t.Context(), "appendonly").Val()["appendonly"]; aof != "yes" {
			t.Errorf("%s: appendonly %s with WithAOF", s.Addr(), aof)
		}
	}
	// Even split: 5461, 5461, 5462 slots, as redis-cli gives them.
	for i, want := range [][2]int{{0, 5460}, {5461, 10921}, {10922, 16383}} {
		for _, slot := range want {
			if got := d.MasterOf(t, slot); got != masters[i] {
				t.Errorf("slot %d is on %s, want master %d (%s)", slot, got.Addr(), i, masters[i].Addr())
			}
		}
	}
	// Each replica replicates a master of its own.
	seen := map[string]bool{}
	for _, r := range replicas {
		info := r.Client(t).Info(t.Context(), "replication").Val()
		for _, m := range masters {
			_, port, _ := net.SplitHostPort(m.Addr())
			if strings.Contains(info, "master_port:"+port+"\r\n") {
				seen[m.Addr()] = true
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("the replicas replicate %d distinct masters, want 3", len(seen))
	}

	c := d.Client(t)
	for i, m := range masters {
		key, _ := keyOn(t, d, c, m, "k")
		if err := c.Set(t.Context(), key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got := c.Get(t.Context(), key).Val(); got != strconv.Itoa(i) {
			t.Errorf("GET %s = %q through the cluster client", key, got)
		}
		if got := m.Client(t).Get(t.Context(), key).Val(); got != strconv.Itoa(i) {
			t.Errorf("GET %s = %q on its master %s", key, got, m.Addr())
		}
	}
}

// TestClusterMasterKill kills a master with SIGKILL: its replica takes
// over, WaitHealthy sees every slot served, the roles follow, and what the
// replica had confirmed is there and its slots take writes again.
func TestClusterMasterKill(t *testing.T) {
	t.Parallel()
	d := redistest.StartCluster(t)
	c := d.Client(t)
	victim := d.Masters()[1]
	key, _ := keyOn(t, d, c, victim, "kill")
	if err := c.Set(t.Context(), key, "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := victim.Client(t).Do(t.Context(), "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas (%v)", n, err)
	}

	start := time.Now()
	victim.Kill()
	d.WaitHealthy(t)
	t.Logf("after kill -9 of a master, WaitHealthy returned in %v", time.Since(start).Round(time.Millisecond))
	masters := d.Masters()
	if len(masters) != 3 || slices.Contains(masters, victim) || len(d.Replicas()) != 2 {
		t.Fatalf("after the kill: %d masters (victim among them: %v), %d replicas", len(masters), slices.Contains(masters, victim), len(d.Replicas()))
	}
	var got string
	testutil.WaitForWhy(t, 10*time.Second, "writes to the killed master's slots", func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := c.Set(ctx, key+"-after", "after", 0).Err(); err != nil {
			return false, err.Error()
		}
		got = c.Get(ctx, key).Val()
		return true, ""
	})
	t.Logf("writes to its slots worked %v after the kill", time.Since(start).Round(time.Millisecond))
	if got != "before" {
		t.Errorf("%s = %q after the failover, want the confirmed write", key, got)
	}

	// Restarted, the old master comes back as a replica.
	victim.Restart(t)
	d.WaitHealthy(t)
	if !slices.Contains(d.Replicas(), victim) || len(d.Masters()) != 3 {
		t.Errorf("after the restart: the old master is no replica (%d masters, %d replicas)", len(d.Masters()), len(d.Replicas()))
	}
}

// TestClusterMigrateSlot moves a slot full of keys to another master
// while a writer adds keys to it: the writer is sent on with ASK (the new
// master counts ASKING), and afterwards every key, old or acknowledged
// during the move, is readable on the new master.
func TestClusterMigrateSlot(t *testing.T) {
	t.Parallel()
	d := redistest.StartCluster(t, redistest.WithReplicas(0))
	c := d.Client(t)
	masters := d.Masters()
	if len(masters) != 3 || len(d.Replicas()) != 0 {
		t.Fatalf("%d masters, %d replicas, want 3 and 0", len(masters), len(d.Replicas()))
	}
	tag, slot := keyOn(t, d, c, masters[0], "tag")
	key := func(i int) string { return fmt.Sprintf("{%s}:%d", tag, i) }
	const before = 3000
	pipe := c.Pipeline()
	for i := range before {
		pipe.Set(t.Context(), key(i), i, 0)
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked []int
		errs  []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := before; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := c.Set(t.Context(), key(i), i, 0).Err()
			mu.Lock()
			if err == nil {
				acked = append(acked, i)
			} else {
				errs = append(errs, err.Error())
			}
			mu.Unlock()
		}
	})
	to := masters[2]
	askingBefore := to.CommandCalls(t, "asking")
	start := time.Now()
	d.MigrateSlot(t, slot, to)
	t.Logf("MigrateSlot of %d keys took %v", before, time.Since(start).Round(time.Millisecond))
	close(stop)
	wg.Wait()

	if got := d.MasterOf(t, slot); got != to {
		t.Fatalf("slot %d is on %s, want %s", slot, got.Addr(), to.Addr())
	}
	if n := to.CommandCalls(t, "asking") - askingBefore; n == 0 {
		t.Errorf("the writer was never sent on with ASK during the move")
	}
	t.Logf("writer: %d acknowledged, %d errors %.3q", len(acked), len(errs), errs[:min(len(errs), 3)])
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged during the move")
	}
	tc := to.Client(t)
	check := append(slices.Collect(func(yield func(int) bool) {
		for i := range before {
			if !yield(i) {
				return
			}
		}
	}), acked...)
	missing := 0
	for _, i := range check {
		if v, err := c.Get(t.Context(), key(i)).Result(); err != nil || v != strconv.Itoa(i) {
			missing++
			if missing < 5 {
				t.Errorf("%s = %q (%v) through the cluster client", key(i), v, err)
			}
		}
	}
	if n, err := tc.Do(t.Context(), "CLUSTER", "COUNTKEYSINSLOT", slot).Int(); err != nil || n < len(check) {
		t.Errorf("the new master holds %d keys of the slot (%v), want at least %d", n, err, len(check))
	}
	if missing > 0 {
		t.Errorf("%d of %d keys missing after the move", missing, len(check))
	}
}

// TestSharedCluster: every test of the binary gets the same cluster, of 3
// masters with a replica each, and keys written through it land on the
// master of their slot.
func TestSharedCluster(t *testing.T) {
	t.Parallel()
	first := redistest.SharedCluster(t)
	if m, r := len(first.Masters()), len(first.Replicas()); m != 3 || r != 3 {
		t.Fatalf("shared cluster: %d masters, %d replicas; want 3 and 3", m, r)
	}
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			d := redistest.SharedCluster(t)
			if d != first {
				t.Fatalf("SharedCluster returned %p, then %p", first, d)
			}
			c := d.Client(t)
			for j, m := range d.Masters() {
				key, _ := keyOn(t, d, c, m, redistest.Prefix(t))
				if err := c.Set(t.Context(), key, j, 0).Err(); err != nil {
					t.Fatalf("SET %s: %v", key, err)
				}
				if got := m.Client(t).Get(t.Context(), key).Val(); got != strconv.Itoa(j) {
					t.Errorf("GET %s = %q on its master %s", key, got, m.Addr())
				}
			}
		})
	}
}
