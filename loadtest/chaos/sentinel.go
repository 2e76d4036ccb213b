package chaos

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// failoverWait bounds how long a Sentinel deployment may take to name a
// new master after its master was killed or asked to fail over.
const failoverWait = 30 * time.Second

// Failoverer is a Redis deployment with replicas that can hand the
// master's role to a replica on request, as SENTINEL FAILOVER does: the
// Failover fault needs one. Sentinel is one.
type Failoverer interface {
	// Failover asks for a failover and returns once it is asked for, not
	// done.
	Failover(t testing.TB)
	// Settle waits until the failover is over: a new master, the old one
	// its replica, every replica in sync and every sentinel agreeing.
	Settle(t testing.TB)
}

// Sentinel is a Redis deployment watched by Redis Sentinel (one master,
// two replicas, three sentinels; see redistest.StartSentinel), every data
// node run as the documented production setup asks: AOF with appendfsync
// always, noeviction, and min-replicas-to-write 1 with min-replicas-max-lag
// 10. asyncgw reaches it with redis.sentinel and redis.min_replicas_ack: 1,
// so that a 202 waits for a replica's acknowledgement.
//
// Kill kills the current master with SIGKILL; the sentinels promote a
// replica a few seconds later. Restart waits for that new master, starts
// the killed node again on its port and data directory (the sentinels
// make it a replica of the new master), and waits until the deployment
// has settled, ready for the next fault.
type Sentinel struct {
	d *redistest.Sentinel

	mu     sync.Mutex
	killed *redistest.Server // the master Kill killed, until Restart
	old    string            // the master Failover replaces, until Settle
}

var (
	_ Redis      = (*Sentinel)(nil)
	_ Failoverer = (*Sentinel)(nil)
)

// NewSentinel starts a Sentinel deployment for t on free ports of
// 127.0.0.1, with its data in directories of t.TempDir, and waits until it
// has settled. Its processes are killed when t ends.
func NewSentinel(t testing.TB) *Sentinel {
	t.Helper()
	d := redistest.StartSentinel(t, redistest.WithAOF(), redistest.WithArgs(
		"--maxmemory-policy", "noeviction",
		"--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"))
	return &Sentinel{d: d}
}

// Deployment returns the processes behind s.
func (s *Sentinel) Deployment() *redistest.Sentinel { return s.d }

// Section names the sentinels and asks for one replica's acknowledgement
// of every write; the durability check at start must pass on every node.
func (s *Sentinel) Section() string {
	addrs, _ := json.Marshal(s.d.SentinelAddrs())
	return fmt.Sprintf("sentinel: {master_name: %s, addrs: %s}\nmin_replicas_ack: 1\nrequire_durable: true\n",
		s.d.MasterName(), addrs)
}

// Client returns a client that follows the master the sentinels name.
func (s *Sentinel) Client(t testing.TB) redis.UniversalClient {
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: s.d.MasterName(), SentinelAddrs: s.d.SentinelAddrs(),
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill kills the master the sentinels name with SIGKILL.
func (s *Sentinel) Kill(t testing.TB) {
	t.Helper()
	n := s.d.KillMaster(t)
	s.mu.Lock()
	s.killed = n
	s.mu.Unlock()
}

// Restart waits for the sentinels to promote a replica in place of the
// killed master, starts the killed node again, and waits until the
// deployment has settled with it as a replica.
func (s *Sentinel) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	n := s.killed
	s.killed = nil
	s.mu.Unlock()
	if n == nil {
		t.Fatalf("chaos: Sentinel.Restart without a Kill")
	}
	s.d.WaitNewMaster(t, n.Addr(), failoverWait)
	n.Restart(t)
	s.d.Settle(t)
}

// Failover sends SENTINEL FAILOVER to a sentinel.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	old := s.d.Failover(t)
	s.mu.Lock()
	s.old = old
	s.mu.Unlock()
}

// Settle waits until a master other than the one Failover replaced is in
// place, then until the deployment has settled.
func (s *Sentinel) Settle(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	old := s.old
	s.old = ""
	s.mu.Unlock()
	if old != "" {
		s.d.WaitNewMaster(t, old, failoverWait)
	}
	s.d.Settle(t)
}
