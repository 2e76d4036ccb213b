package redisconn_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// TestSentinelClients runs the clients of the Sentinel form through a
// SENTINEL FAILOVER and a kill -9 of the master: after each, writes work
// again by themselves and reach the new master, Switches tells of the
// switch, and the replicas and the master are found through the sentinels.
// A sentinel is no master.
func TestSentinelClients(t *testing.T) {
	t.Parallel()
	d := redistest.StartSentinel(t)
	conn, err := redisconn.New(redisconn.Config{Sentinel: redisconn.Sentinel{MasterName: d.MasterName(), Addrs: d.SentinelAddrs()}})
	if err != nil {
		t.Fatal(err)
	}
	if !conn.Sentinel() || conn.Key() != "redis.sentinel" {
		t.Errorf("sentinel %v, key %q", conn.Sentinel(), conn.Key())
	}
	ctx := t.Context()
	rdb := conn.Client(redisconn.Options{ClientName: "asyncgw-test", PoolSize: 8})
	defer rdb.Close()
	fast := conn.Client(redisconn.Options{NoRetries: true})
	defer fast.Close()
	sw := conn.Switches(nil)
	if err := sw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sw.Stop(context.Background())

	master := d.Master(t)
	if got, err := conn.MasterAddr(ctx); err != nil || got != master.Addr() {
		t.Errorf("MasterAddr %q (%v), want %s", got, err, master.Addr())
	}
	replicas, err := conn.Replicas(ctx)
	want := []string{d.Replicas(t)[0].Addr(), d.Replicas(t)[1].Addr()}
	slices.Sort(replicas)
	slices.Sort(want)
	if err != nil || !slices.Equal(replicas, want) {
		t.Errorf("Replicas %q (%v), want %q", replicas, err, want)
	}
	if err := redisconn.CheckMaster(ctx, rdb); err != nil {
		t.Errorf("CheckMaster through the failover client: %v", err)
	}
	sentinel := conn.NodeClient(d.SentinelAddrs()[0])
	defer sentinel.Close()
	var nm *redisconn.NotMasterError
	if err := redisconn.CheckMaster(ctx, sentinel); !errors.As(err, &nm) || nm.Role != "sentinel" {
		t.Errorf("CheckMaster on a sentinel: %v, want role sentinel", err)
	}
	testutil.WaitFor(t, 10*time.Second, "Switches to learn the master", func() bool { return sw.Master() == master.Addr() })

	// write sets key through both clients, retrying until both succeed,
	// and returns how long that took.
	write := func(key string) time.Duration {
		t.Helper()
		start := time.Now()
		testutil.WaitForWhy(t, 20*time.Second, "writes to succeed", func() (bool, string) {
			for _, c := range []redis.UniversalClient{rdb, fast} {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				err := c.Set(cctx, key, "v", 0).Err()
				cancel()
				if err != nil {
					return false, err.Error()
				}
			}
			return true, ""
		})
		return time.Since(start)
	}
	write("k0")

	for round, fail := range []func() string{
		func() string { return d.Failover(t) },
		func() string { return d.KillMaster(t).Addr() },
	} {
		switched := sw.Switched()
		old := fail()
		next := d.WaitNewMaster(t, old, 30*time.Second)
		select {
		case <-switched:
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: Switched did not fire within 15s of the new master", round)
		}
		if sw.Master() != next.Addr() {
			t.Errorf("round %d: Switches says %s, want %s", round, sw.Master(), next.Addr())
		}
		// The failover was heard from its start, and is over with the switch.
		if begun, underWay := sw.Failover(); begun != uint64(round+1) || underWay {
			t.Errorf("round %d: Failover() = %d, %v; want %d failovers begun, none under way", round, begun, underWay, round+1)
		}
		key := fmt.Sprintf("k%d", round+1)
		took := write(key)
		t.Logf("round %d: writes resumed %v after the new master was in place", round, took.Round(time.Millisecond))
		// A write made in the moment between the sentinels naming the new
		// master and the clients hearing of it may reach the old one (and
		// be lost with it, as RELIABILITY.md says); the clients must move
		// within moments.
		nextRDB := next.Client(t)
		testutil.WaitForWhy(t, 5*time.Second, key+" written on the new master "+next.Addr(), func() (bool, string) {
			if nextRDB.Exists(ctx, key).Val() == 1 {
				return true, ""
			}
			write(key)
			return false, "not there yet"
		})
		if err := redisconn.CheckMaster(ctx, rdb); err != nil {
			t.Errorf("round %d: CheckMaster after the switch: %v", round, err)
		}
		if round == 0 {
			d.Settle(t)
		}
	}
}
