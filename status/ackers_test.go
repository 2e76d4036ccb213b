package status

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// clusterAckBundle is a Store with MinReplicasAck 1 and six shards on a
// cluster of three masters, each with one replica.
type clusterAckBundle struct {
	cluster *redistest.Cluster
	rdb     *redis.ClusterClient
	store   *Store
}

const clusterAckShards = 6

func setupClusterAck(t *testing.T, cfg Config) *clusterAckBundle {
	t.Helper()
	c := redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(1))
	rdb := c.Client(t)
	cfg.Prefix, cfg.Shards, cfg.MinReplicasAck = redistest.Prefix(t), clusterAckShards, 1
	s, err := New(cfg, rdb)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &clusterAckBundle{cluster: c, rdb: rdb, store: s}
}

// jobOn returns a new job of acme whose ID puts it on shard.
func (b *clusterAckBundle) jobOn(shard int) *jobs.Job {
	j := newJob("acme")
	j.ID = b.store.ks.PlaceID(j.ID, shard)
	return j
}

// masterOf returns the master that serves shard.
func (b *clusterAckBundle) masterOf(t *testing.T, shard int) *redistest.Server {
	t.Helper()
	return b.cluster.MasterOf(t, int(keyspace.Slot(b.store.ks.ReplicaAck(shard))))
}

// replicaOf returns the running replica of master.
func (b *clusterAckBundle) replicaOf(t *testing.T, master *redistest.Server) *redistest.Server {
	t.Helper()
	_, port, _ := strings.Cut(master.Addr(), ":")
	for _, r := range b.cluster.Replicas() {
		info, err := r.Client(t).Info(testContext(t), "replication").Result()
		if err != nil {
			t.Fatalf("INFO replication of %s: %v", r.Addr(), err)
		}
		if strings.Contains(info, "master_port:"+port+"\r\n") {
			return r
		}
	}
	t.Fatalf("no replica of master %s", master.Addr())
	return nil
}

// readOnly returns a client of a cluster replica that reads its own data
// (READONLY on every connection) rather than redirecting to its master.
func readOnly(t *testing.T, replica *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: replica.Addr(), Protocol: 2,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() },
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// masterWaits counts the WAITs each master has run.
func (b *clusterAckBundle) masterWaits(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, m := range b.cluster.Masters() {
		out[m.Addr()] = m.CommandCalls(t, "wait")
	}
	return out
}

// TestReplicaAckClusterPerMaster: on a cluster, an accept on any shard is
// confirmed by the replicas of the master that owns the shard: its WAIT
// goes to that master and to no other, and the record is on that master's
// replica the moment Accept returns.
func TestReplicaAckClusterPerMaster(t *testing.T) {
	t.Parallel()
	// A replica on a loaded test host may take longer than the default
	// 200ms; this test is about where the WAITs go, not how fast.
	b := setupClusterAck(t, Config{ReplicaAckTimeout: 2 * time.Second})
	ctx := testContext(t)
	owners := map[string]bool{}
	for shard := range clusterAckShards {
		master := b.masterOf(t, shard)
		owners[master.Addr()] = true
		onReplica := readOnly(t, b.replicaOf(t, master))
		for range 3 {
			j := b.jobOn(shard)
			before := b.masterWaits(t)
			if err := b.store.Accept(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}, nil); err != nil {
				t.Fatalf("Accept on shard %d: %v", shard, err)
			}
			state, err := onReplica.HGet(ctx, b.store.jobKey(j.Tenant, j.ID), "state").Result()
			if err != nil || state != string(jobs.StateQueued) {
				t.Fatalf("shard %d: the replica of its master has state %q, %v right after Accept; want queued", shard, state, err)
			}
			for addr, n := range b.masterWaits(t) {
				want := int64(0)
				if addr == master.Addr() {
					want = 1
				}
				if got := n - before[addr]; got != want {
					t.Errorf("shard %d (master %s): master %s ran %d WAITs for one accept, want %d", shard, master.Addr(), addr, got, want)
				}
			}
		}
	}
	if len(owners) != 3 {
		t.Fatalf("%d shards are on %d masters, want all 3", clusterAckShards, len(owners))
	}
	if err := b.store.AwaitReplicas(ctx); err != nil {
		t.Fatalf("AwaitReplicas: %v", err)
	}
}

// TestReplicaAckClusterReplicaDown: with one master's replica stopped,
// writes to that master's shards are not confirmed (ErrNotReplicated
// after about the timeout) while writes to every other shard are, at the
// same time.
func TestReplicaAckClusterReplicaDown(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	b := setupClusterAck(t, Config{ReplicaAckTimeout: timeout})
	ctx := testContext(t)
	down := b.masterOf(t, 0)
	b.replicaOf(t, down).Stop()

	type result struct {
		shard int
		err   error
		took  time.Duration
	}
	results := make(chan result, clusterAckShards*4)
	var wg sync.WaitGroup
	for shard := range clusterAckShards {
		for range 4 {
			wg.Go(func() {
				start := time.Now()
				err := b.store.Accept(ctx, b.jobOn(shard), &jobs.Request{URL: "http://127.0.0.1/x"}, nil)
				results <- result{shard, err, time.Since(start)}
			})
		}
	}
	wg.Wait()
	close(results)
	failed := map[int]bool{}
	for r := range results {
		onDown := b.masterOf(t, r.shard).Addr() == down.Addr()
		switch {
		case onDown && !errors.Is(r.err, jobs.ErrNotReplicated):
			t.Errorf("shard %d, whose master has no replica: Accept = %v, want ErrNotReplicated", r.shard, r.err)
		case onDown && (r.took < timeout || r.took > timeout+2*time.Second):
			t.Errorf("shard %d: not confirmed after %s, want about %s", r.shard, r.took, timeout)
		case !onDown && r.err != nil:
			t.Errorf("shard %d, whose master has its replica: Accept = %v, want confirmed", r.shard, r.err)
		}
		if onDown {
			failed[r.shard] = true
		}
	}
	if len(failed) == 0 || len(failed) == clusterAckShards {
		t.Fatalf("%d of %d shards are on the master without a replica, want some but not all", len(failed), clusterAckShards)
	}
	if err := b.store.AwaitReplicas(ctx); !errors.Is(err, jobs.ErrNotReplicated) {
		t.Fatalf("AwaitReplicas with a master's replica down = %v, want ErrNotReplicated", err)
	}
	// A job's own wait (a lost answer's check) fails only on its master.
	for shard := range clusterAckShards {
		err := b.store.AwaitJobReplicas(ctx, b.jobOn(shard).ID)
		if onDown := failed[shard]; onDown != errors.Is(err, jobs.ErrNotReplicated) || !onDown && err != nil {
			t.Errorf("AwaitJobReplicas on shard %d (master without replica: %v) = %v", shard, onDown, err)
		}
	}
}

// TestReplicaAckClusterBatched: concurrent writes over every shard share
// WAITs: one round per master at a time, never one per write, and every
// WAIT the store sent is one a master ran.
func TestReplicaAckClusterBatched(t *testing.T) {
	t.Parallel()
	// A replica on a loaded test host may take longer than the default
	// 200ms; this test is about where the WAITs go, not how fast.
	b := setupClusterAck(t, Config{ReplicaAckTimeout: 2 * time.Second})
	ctx := testContext(t)
	before := b.masterWaits(t)
	const writers, each = 24, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := b.store.Accept(ctx, b.jobOn((w+i)%clusterAckShards), &jobs.Request{URL: "http://127.0.0.1/x"}, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Accept: %v", err)
	}
	var waits int64
	for addr, n := range b.masterWaits(t) {
		if n == before[addr] {
			t.Errorf("master %s ran no WAIT", addr)
		}
		waits += n - before[addr]
	}
	if waits != b.store.acks.sent() {
		t.Errorf("masters ran %d WAITs, the store sent %d", waits, b.store.acks.sent())
	}
	if accepts := int64(writers * each); waits*2 > accepts {
		t.Fatalf("%d accepts took %d WAITs: not batched", accepts, waits)
	}
	t.Logf("%d accepts, %d WAITs", writers*each, waits)
}
