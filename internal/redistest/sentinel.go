package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/testutil"
)

// MasterName is the name under which the sentinels of StartSentinel
// monitor their master.
const MasterName = "mymaster"

const (
	sentinelBinary = "redis-sentinel"
	// downAfter is how long the master must be silent before a sentinel
	// thinks it down (down-after-milliseconds); with failoverTimeout it
	// makes a failover take a few seconds.
	downAfter       = 1000 * time.Millisecond
	failoverTimeout = 3000 * time.Millisecond
	// settleTimeout bounds how long StartSentinel waits for the replicas
	// to sync and the sentinels to know each other.
	settleTimeout = 30 * time.Second
)

// OnReplica gives the arguments of opts to one replica (from 0) of a
// Sentinel deployment only, such as a replica without the AOF:
//
//	redistest.StartSentinel(t, redistest.WithAOF(), redistest.OnReplica(1, redistest.WithArgs("--appendonly", "no")))
//
// They come after the options for every node. Start ignores it.
func OnReplica(i int, opts ...Option) Option {
	return func(c *config) {
		var rc config
		for _, opt := range opts {
			opt(&rc)
		}
		if c.replica == nil {
			c.replica = map[int][]string{}
		}
		c.replica[i] = append(c.replica[i], rc.args...)
	}
}

// Sentinel is a Redis deployment watched by Redis Sentinel, for tests: one
// master, two replicas and three sentinels (quorum 2), every process on a
// free port of 127.0.0.1 and killed, by PID, when the test ends. A
// sentinel thinks the master down after 1s of silence, so a failover takes
// a few seconds.
type Sentinel struct {
	nodes     []*Server // the data nodes; nodes[0] started as the master
	sentinels []*Server
}

// StartSentinel starts a Sentinel deployment for t and waits until the
// replicas are in sync with the master and every sentinel knows the master,
// both replicas and the other two sentinels. opts apply to every data node
// (not to the sentinels); OnReplica gives arguments to one replica. It
// fails t if a process does not start or the deployment does not settle
// within 30s.
//
// The sentinels run redis-sentinel, or redis-server --sentinel when
// redis-sentinel is not on PATH (it is the same program).
func StartSentinel(t testing.TB, opts ...Option) *Sentinel {
	t.Helper()
	bin := lookPath(t)
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	d := &Sentinel{}
	master := Start(t, opts...)
	d.nodes = append(d.nodes, master)
	host, port, _ := net.SplitHostPort(master.Addr())
	for i := range 2 {
		args := append([]string{"--replicaof", host, port}, c.args...)
		r, err := start(bin, t.TempDir(), append(args, c.replica[i]...))
		if err != nil {
			t.Fatalf("redistest: replica %d: %v", i, err)
		}
		t.Cleanup(r.Kill)
		d.nodes = append(d.nodes, r)
	}
	d.waitSynced(t, master)

	sbin, sargs := bin, []string{"--sentinel"}
	if b, err := exec.LookPath(sentinelBinary); err == nil {
		sbin = b
	}
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 2\n"+
			"sentinel down-after-milliseconds %[1]s %[4]d\n"+
			"sentinel failover-timeout %[1]s %[5]d\n"+
			"sentinel parallel-syncs %[1]s 2\n",
			MasterName, host, port, downAfter.Milliseconds(), failoverTimeout.Milliseconds())
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s, err := startConf(sbin, dir, conf, append(sargs, "--bind", "127.0.0.1", "--protected-mode", "no", "--dir", dir))
		if err != nil {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		t.Cleanup(s.Kill)
		d.sentinels = append(d.sentinels, s)
	}
	d.Settle(t)
	return d
}

// MasterName is the name the sentinels know the master by.
func (d *Sentinel) MasterName() string { return MasterName }

// SentinelAddrs returns the host:port of each sentinel.
func (d *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(d.sentinels))
	for i, s := range d.sentinels {
		out[i] = s.Addr()
	}
	return out
}

// Sentinels returns the sentinel processes.
func (d *Sentinel) Sentinels() []*Server { return slices.Clone(d.sentinels) }

// Nodes returns the data nodes (master and replicas), the first started
// as the master.
func (d *Sentinel) Nodes() []*Server { return slices.Clone(d.nodes) }

// Node returns the data node at addr, or nil.
func (d *Sentinel) Node(addr string) *Server {
	for _, n := range d.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// MasterAddr asks the sentinels, first that answers, for the master's
// host:port.
func (d *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	var last error
	for _, s := range d.sentinels {
		addr, err := d.askMaster(s)
		if err == nil {
			return addr
		}
		last = err
	}
	t.Fatalf("redistest: no sentinel names the master: %v", last)
	return ""
}

// Master returns the data node the sentinels name as the master.
func (d *Sentinel) Master(t testing.TB) *Server {
	t.Helper()
	addr := d.MasterAddr(t)
	n := d.Node(addr)
	if n == nil {
		t.Fatalf("redistest: the sentinels name %s, which is none of the nodes", addr)
	}
	return n
}

// Replicas returns the running data nodes other than the master.
func (d *Sentinel) Replicas(t testing.TB) []*Server {
	t.Helper()
	master := d.MasterAddr(t)
	var out []*Server
	for _, n := range d.nodes {
		if n.Addr() != master && n.Pid() != 0 {
			out = append(out, n)
		}
	}
	return out
}

// KillMaster kills the current master with SIGKILL (by PID) and returns
// it, so that the test can Restart it (the sentinels then make it a
// replica of the new master).
func (d *Sentinel) KillMaster(t testing.TB) *Server {
	t.Helper()
	m := d.Master(t)
	m.Kill()
	return m
}

// Failover asks a sentinel to fail over at once (SENTINEL FAILOVER) and
// returns the address of the master it replaces. Use WaitNewMaster to
// wait for the result.
func (d *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	old := d.MasterAddr(t)
	var last error
	for _, s := range d.sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		last = c.Failover(ctx, MasterName).Err()
		cancel()
		_ = c.Close()
		if last == nil {
			return old
		}
	}
	t.Fatalf("redistest: SENTINEL FAILOVER %s: %v", MasterName, last)
	return ""
}

// WaitNewMaster waits, at most timeout, until every running sentinel names
// a master other than old and that node says (ROLE) it is a master. It
// returns the new master.
func (d *Sentinel) WaitNewMaster(t testing.TB, old string, timeout time.Duration) *Server {
	t.Helper()
	var master *Server
	testutil.WaitForWhy(t, timeout, "a new master in place of "+old, func() (bool, string) {
		addr := ""
		for _, s := range d.sentinels {
			if s.Pid() == 0 {
				continue
			}
			a, err := d.askMaster(s)
			if err != nil {
				return false, err.Error()
			}
			if a == old {
				return false, s.Addr() + " still names " + old
			}
			if addr != "" && a != addr {
				return false, fmt.Sprintf("sentinels name %s and %s", addr, a)
			}
			addr = a
		}
		master = d.Node(addr)
		if master == nil {
			return false, "the sentinels name " + addr + ", which is none of the nodes"
		}
		if role, err := roleOf(master.Addr()); role != "master" {
			return false, fmt.Sprintf("%s has role %q (%v)", addr, role, err)
		}
		return true, ""
	})
	return master
}

// Settle waits, at most 30s, until the running replicas are in sync with
// the master the sentinels name, and every running sentinel knows that
// master, every running replica and every other running sentinel. Call it
// after a failover before the next one: a replica that is not in sync
// cannot be promoted.
func (d *Sentinel) Settle(t testing.TB) {
	t.Helper()
	testutil.WaitForWhy(t, settleTimeout, "the Sentinel deployment to settle", func() (bool, string) {
		master, err := d.askMaster(d.runningSentinels()[0])
		if err != nil {
			return false, err.Error()
		}
		m := d.Node(master)
		if m == nil || m.Pid() == 0 {
			return false, "the master " + master + " is not running"
		}
		if ok, why := d.synced(m); !ok {
			return false, why
		}
		replicas, others := 0, len(d.runningSentinels())-1
		for _, n := range d.nodes {
			if n != m && n.Pid() != 0 {
				replicas++
			}
		}
		for _, s := range d.runningSentinels() {
			info, err := d.sentinelView(s)
			if err != nil {
				return false, err.Error()
			}
			got := net.JoinHostPort(info["ip"], info["port"])
			switch {
			case got != master:
				return false, fmt.Sprintf("sentinel %s names %s, not %s", s.Addr(), got, master)
			case strings.Contains(info["flags"], "down"):
				return false, fmt.Sprintf("sentinel %s sees the master %s", s.Addr(), info["flags"])
			case info["num-slaves"] != strconv.Itoa(replicas):
				return false, fmt.Sprintf("sentinel %s knows %s replicas, want %d", s.Addr(), info["num-slaves"], replicas)
			case info["num-other-sentinels"] != strconv.Itoa(others):
				return false, fmt.Sprintf("sentinel %s knows %s other sentinels, want %d", s.Addr(), info["num-other-sentinels"], others)
			}
			// A replica the sentinel still thinks down cannot be promoted.
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			rs, err := c.Replicas(ctx, MasterName).Result()
			cancel()
			_ = c.Close()
			if err != nil {
				return false, err.Error()
			}
			for _, r := range rs {
				if strings.Contains(r["flags"], "down") || strings.Contains(r["flags"], "disconnected") {
					return false, fmt.Sprintf("sentinel %s sees replica %s:%s as %s", s.Addr(), r["ip"], r["port"], r["flags"])
				}
			}
		}
		return true, ""
	})
}

// waitSynced waits until every running node other than master replicates
// it with master_link_status:up.
func (d *Sentinel) waitSynced(t testing.TB, master *Server) {
	t.Helper()
	testutil.WaitForWhy(t, settleTimeout, "the replicas to sync", func() (bool, string) {
		return d.synced(master)
	})
}

// synced reports whether every running node other than master replicates
// master with its link up.
func (d *Sentinel) synced(master *Server) (bool, string) {
	for _, n := range d.nodes {
		if n == master || n.Pid() == 0 {
			continue
		}
		info, err := infoReplication(n.Addr())
		if err != nil {
			return false, err.Error()
		}
		host, port, _ := net.SplitHostPort(master.Addr())
		if info["role"] != "slave" || info["master_host"] != host || info["master_port"] != port {
			return false, fmt.Sprintf("%s: role %s of %s:%s, want a replica of %s", n.Addr(), info["role"], info["master_host"], info["master_port"], master.Addr())
		}
		if info["master_link_status"] != "up" {
			return false, fmt.Sprintf("%s: master_link_status %s", n.Addr(), info["master_link_status"])
		}
	}
	return true, ""
}

func (d *Sentinel) runningSentinels() []*Server {
	var out []*Server
	for _, s := range d.sentinels {
		if s.Pid() != 0 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return d.sentinels[:1] // its errors say why
	}
	return out
}

// askMaster asks the sentinel s for the master's host:port.
func (d *Sentinel) askMaster(s *Server) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	hp, err := c.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name: %w", s.Addr(), err)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// sentinelView is SENTINEL MASTER as the sentinel s answers it.
func (d *Sentinel) sentinelView(s *Server) (map[string]string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m, err := c.Master(ctx, MasterName).Result()
	if err != nil {
		return nil, fmt.Errorf("sentinel %s: sentinel master: %w", s.Addr(), err)
	}
	return m, nil
}

// infoReplication is INFO replication of the node at addr as a map.
func infoReplication(addr string) (map[string]string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, fmt.Errorf("%s: INFO replication: %w", addr, err)
	}
	out := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// roleOf is the first element of ROLE of the node at addr: "master",
// "slave" or "sentinel".
func roleOf(addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return "", fmt.Errorf("%s: ROLE: %w", addr, err)
	}
	role, _ := v[0].(string)
	return role, nil
}
