package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// Migrator is a Redis deployment whose slots can move between masters
// under load, as redis-cli --cluster reshard moves them: the Migrate
// fault needs one. Cluster is one.
type Migrator interface {
	// Migrate moves the slot of the shard asyncgw writes to onto another
	// master and returns once every node agrees where it is.
	Migrate(t testing.TB)
}

// Cluster is a Redis Cluster of 3 masters with 1 replica each (see
// redistest.StartCluster), every node run as the documented production
// setup asks: AOF with appendfsync always, noeviction, and
// min-replicas-to-write 1 with min-replicas-max-lag 10. asyncgw reaches it
// with redis.cluster.addrs, its one shard (redis.shards 1) on one slot,
// and redis.min_replicas_ack: 1.
//
// Kill kills, with SIGKILL, the master of the shard's slot; its replica
// takes over a few seconds later. Restart waits for that, starts the
// killed node again on its port and data directory (the cluster makes it a
// replica of the promoted one) and waits until the cluster is healthy.
// Migrate moves the shard's slot to the next master.
type Cluster struct {
	d *redistest.Cluster
	// slot is the slot of the shard's hash tag: every key of every job.
	slot int

	mu     sync.Mutex
	killed *redistest.Server // the master Kill killed, until Restart
}

var (
	_ Redis    = (*Cluster)(nil)
	_ Migrator = (*Cluster)(nil)
)

// NewCluster starts a Redis Cluster for t on free ports of 127.0.0.1,
// with its data in directories of t.TempDir, and waits until it is
// healthy. Its processes are killed when t ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	d := redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(1),
		redistest.WithAOF(), redistest.WithArgs(
			"--maxmemory-policy", "noeviction",
			"--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"))
	ks, err := keyspace.New("chaos", 1)
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	return &Cluster{d: d, slot: int(keyspace.Slot(ks.Tag(0)))}
}

// Deployment returns the processes behind c.
func (c *Cluster) Deployment() *redistest.Cluster { return c.d }

// Slot is the slot every key of the soak's jobs is on.
func (c *Cluster) Slot() int { return c.slot }

// Section names the masters and asks for one replica's acknowledgement
// of every write; the durability check at start must pass on every node.
func (c *Cluster) Section() string {
	addrs, _ := json.Marshal(c.d.Addrs())
	return fmt.Sprintf("cluster: {addrs: %s}\nmin_replicas_ack: 1\nrequire_durable: true\n", addrs)
}

// Client returns a cluster client that reloads its slot map every second.
func (c *Cluster) Client(t testing.TB) redis.UniversalClient { return c.d.Client(t) }

// Kill kills the master of the shard's slot with SIGKILL.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	m := c.d.MasterOf(t, c.slot)
	m.Kill()
	c.mu.Lock()
	c.killed = m
	c.mu.Unlock()
}

// Restart waits until a replica serves the slot of the killed master,
// starts the killed node again and waits until the cluster is healthy
// with it as a replica.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	n := c.killed
	c.killed = nil
	c.mu.Unlock()
	if n == nil {
		t.Fatalf("chaos: Cluster.Restart without a Kill")
	}
	testutil.WaitForWhy(t, failoverWait, fmt.Sprintf("a replica to take slot %d over from %s", c.slot, n.Addr()), func() (bool, string) {
		m := c.d.MasterOf(t, c.slot)
		if m == n || m.Pid() == 0 {
			return false, fmt.Sprintf("slot %d is still on %s", c.slot, m.Addr())
		}
		return true, ""
	})
	n.Restart(t)
	c.d.WaitHealthy(t)
}

// Migrate moves the shard's slot, with its keys, to the master after
// its own (by first slot, round).
func (c *Cluster) Migrate(t testing.TB) {
	t.Helper()
	masters := c.d.Masters()
	i := slices.Index(masters, c.d.MasterOf(t, c.slot))
	c.d.MigrateSlot(t, c.slot, masters[(i+1)%len(masters)])
}
