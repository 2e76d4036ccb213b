package redisconn_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// failoverBudget is how soon after a master's kill -9 writes to its slots
// must work again through the connector's clients: the replica takes over
// in about 4s (cluster-node-timeout 2s and a gossip round), and the
// clients must find it within about a second.
const failoverBudget = 6 * time.Second

// keyOn returns a key whose slot the master m serves.
func keyOn(t *testing.T, d *redistest.Cluster, rdb redis.UniversalClient, m *redistest.Server, prefix string) string {
	t.Helper()
	for i := range 1000 {
		key := fmt.Sprintf("%s-%d", prefix, i)
		slot, err := rdb.ClusterKeySlot(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d.MasterOf(t, int(slot)) == m {
			return key
		}
	}
	t.Fatalf("no key of 1000 on %s", m.Addr())
	return ""
}

// TestClusterClients runs the clients of the Cluster form against a real
// cluster: they write to every master, the connector names the masters
// and their replicas, readiness holds; then a master is killed with -9
// under a writer loop, and writes to its slots work again through both
// clients (the ordinary one and the accept path's) within 6s, while
// readiness says why not until the cluster serves every slot again.
func TestClusterClients(t *testing.T) {
	t.Parallel()
	d := redistest.StartCluster(t)
	conn, err := redisconn.New(redisconn.Config{Cluster: redisconn.Cluster{Addrs: d.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	if !conn.Cluster() || conn.Sentinel() || conn.Key() != "redis.cluster" || conn.Addr() != "cluster of "+strings.Join(d.Addrs(), ",") {
		t.Errorf("cluster %v, sentinel %v, key %q, addr %q", conn.Cluster(), conn.Sentinel(), conn.Key(), conn.Addr())
	}
	if conn.Switches(nil) != nil {
		t.Error("the Cluster form has sentinel switches")
	}
	ctx := t.Context()
	rdb := conn.Client(redisconn.Options{ClientName: "asyncgw-test", PoolSize: 8})
	defer rdb.Close()
	fast := conn.Client(redisconn.Options{NoRetries: true})
	defer fast.Close()
	// Code that must know a cluster (the event hub, the replica waits)
	// finds it inside the Connector's wrapper.
	for _, c := range []redis.UniversalClient{rdb, fast} {
		if _, ok := redisconn.ClusterOf(c); !ok {
			t.Errorf("ClusterOf(%T) = false, want the cluster client", c)
		}
	}
	if _, ok := redisconn.ClusterOf(redis.NewClient(&redis.Options{})); ok {
		t.Error("ClusterOf of a one-node client = true")
	}
	o := rdb.(interface{ Options() *redis.ClusterOptions }).Options()
	if o.ClientName != "asyncgw-test" || o.PoolSize != 8 || o.Protocol != 2 || !o.ContextTimeoutEnabled || o.MaxRedirects != 3 || o.ReadOnly {
		t.Errorf("options %+v", o)
	}
	if fo := fast.(interface{ Options() *redis.ClusterOptions }).Options(); fo.MaxRedirects != 2 || fo.DialerRetries != 1 {
		t.Errorf("no-retries client: MaxRedirects %d, DialerRetries %d", fo.MaxRedirects, fo.DialerRetries)
	}

	// The connector's view of the cluster.
	shards, err := conn.Shards(ctx)
	if err != nil || len(shards) != 3 {
		t.Fatalf("Shards: %+v (%v)", shards, err)
	}
	var replicas []string
	for i, s := range shards {
		if s.Master != d.Addrs()[i] || len(s.Replicas) != 1 {
			t.Errorf("shard %d: %+v, want master %s with one replica", i, s, d.Addrs()[i])
		}
		replicas = append(replicas, s.Replicas...)
	}
	got, err := conn.Replicas(ctx)
	want := d.Replicas()
	wantAddrs := make([]string, len(want))
	for i, r := range want {
		wantAddrs[i] = r.Addr()
	}
	slices.Sort(got)
	slices.Sort(wantAddrs)
	if err != nil || !slices.Equal(got, wantAddrs) {
		t.Errorf("Replicas %q (%v), want %q", got, err, wantAddrs)
	}
	if m, err := conn.MasterAddr(ctx); err != nil || m != strings.Join(d.Addrs(), ",") {
		t.Errorf("MasterAddr %q (%v)", m, err)
	}
	if err := redisconn.CheckMaster(ctx, rdb); err != nil {
		t.Errorf("CheckMaster on a healthy cluster: %v", err)
	}
	nc := conn.NodeClient(replicas[0])
	defer nc.Close()
	var nm *redisconn.NotMasterError
	if err := redisconn.CheckMaster(ctx, nc); !errors.As(err, &nm) || nm.Role != "slave" {
		t.Errorf("CheckMaster on one replica node: %v, want role slave", err)
	}

	// A key on each master, through both clients.
	keys := make([]string, 3)
	for i, m := range d.Masters() {
		keys[i] = keyOn(t, d, rdb, m, fmt.Sprintf("m%d", i))
		for _, c := range []redis.UniversalClient{rdb, fast} {
			if err := c.Set(ctx, keys[i], "v", 0).Err(); err != nil {
				t.Fatalf("SET %s on master %d: %v", keys[i], i, err)
			}
		}
	}

	// A writer loop on every master while one is killed.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	writes, failed := 0, 0
	for _, c := range []redis.UniversalClient{rdb, fast} {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				err := c.Set(wctx, keys[n%len(keys)], n, 0).Err()
				cancel()
				mu.Lock()
				writes++
				if err != nil {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	victim := d.Masters()[0]
	start := time.Now()
	victim.Kill()
	testutil.WaitForWhy(t, 10*time.Second, "readiness to see the killed master", func() (bool, string) {
		err := redisconn.CheckMaster(ctx, rdb)
		return err != nil, "CheckMaster still nil"
	})
	// Writes to the killed master's slots work again through both
	// clients.
	for _, c := range []redis.UniversalClient{rdb, fast} {
		testutil.WaitForWhy(t, 15*time.Second, "writes to the killed master's slots", func() (bool, string) {
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			if err := c.Set(wctx, keys[0], "after", 0).Err(); err != nil {
				return false, err.Error()
			}
			return true, ""
		})
	}
	took := time.Since(start)
	t.Logf("writes to the killed master's slots worked again %v after its kill -9", took.Round(time.Millisecond))
	if took > failoverBudget {
		t.Errorf("writes resumed %v after the kill, want at most %v", took.Round(time.Millisecond), failoverBudget)
	}
	testutil.WaitForWhy(t, 10*time.Second, "readiness after the failover", func() (bool, string) {
		if err := redisconn.CheckMaster(ctx, rdb); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	close(stop)
	wg.Wait()
	t.Logf("writer loop: %d writes, %d failed", writes, failed)
	d.WaitHealthy(t)
	if s, err := conn.Shards(ctx); err != nil || len(s) != 3 || slices.ContainsFunc(s, func(s redisconn.Shard) bool { return s.Master == victim.Addr() }) {
		t.Errorf("Shards after the failover: %+v (%v)", s, err)
	}
}

// TestClusterClientCloseStopsRefresh checks that Close stops the
// goroutine that reloads a cluster client's slot map.
func TestClusterClientCloseStopsRefresh(t *testing.T) {
	t.Parallel()
	conn, err := redisconn.New(redisconn.Config{Cluster: redisconn.Cluster{Addrs: []string{"127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	refreshing := func() int {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return strings.Count(stacks, "redisconn.(*Connector).clusterClient.func")
	}
	before := refreshing()
	c := conn.Client(redisconn.Options{})
	testutil.WaitForWhy(t, 5*time.Second, "the refresh goroutine to start", func() (bool, string) {
		n := refreshing()
		return n == before+1, fmt.Sprintf("%d goroutines, want %d", n, before+1)
	})
	_ = c.Close() // waits for the goroutine to end
	if n := refreshing(); n != before {
		t.Errorf("%d refresh goroutines after Close, want %d", n, before)
	}
}

// TestClusterStateError checks that readiness names the node and what it
// said when a cluster does not serve every slot.
func TestClusterStateError(t *testing.T) {
	t.Parallel()
	d := redistest.StartCluster(t, redistest.WithMasters(1), redistest.WithReplicas(0))
	conn, err := redisconn.New(redisconn.Config{Cluster: redisconn.Cluster{Addrs: d.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	rdb := conn.Client(redisconn.Options{})
	defer rdb.Close()
	if err := redisconn.CheckMaster(t.Context(), rdb); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	m := d.Masters()[0].Client(t)
	if err := m.Do(t.Context(), "CLUSTER", "DELSLOTSRANGE", 100, 199).Err(); err != nil {
		t.Fatal(err)
	}
	var cse *redisconn.ClusterStateError
	testutil.WaitForWhy(t, 5*time.Second, "cluster_state:fail", func() (bool, string) {
		err := redisconn.CheckMaster(t.Context(), rdb)
		return errors.As(err, &cse) && cse.State == "cluster_state:fail", fmt.Sprint(err)
	})
	if want := "redis cluster does not serve every slot (" + d.Addrs()[0] + " says cluster_state:fail)"; cse.Error() != want || cse.Reason() != want {
		t.Errorf("%q, want %q", cse.Error(), want)
	}
	// Without full coverage required the node says ok again (after its
	// rejoin delay): the slot counts give it away.
	if err := m.ConfigSet(t.Context(), "cluster-require-full-coverage", "no").Err(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitForWhy(t, 10*time.Second, "the slot counts to give it away", func() (bool, string) {
		err := redisconn.CheckMaster(t.Context(), rdb)
		return errors.As(err, &cse) && cse.Node == d.Addrs()[0] && strings.Contains(cse.State, "cluster_slots_assigned:16284"), fmt.Sprint(err)
	})
}
