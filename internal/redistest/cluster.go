package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/testutil"
)

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

const (
	// clusterNodeTimeout is --cluster-node-timeout: how long a master
	// may be silent before the others think it failed and its replica
	// takes over (a few seconds in all).
	clusterNodeTimeout = 2000 * time.Millisecond
	// clusterSettleTimeout bounds how long StartCluster and WaitHealthy
	// wait for the cluster to form or to heal.
	clusterSettleTimeout = 30 * time.Second
	// Cluster ports: a node's bus listens on its port + 10000, and both
	// stay below the kernel's ephemeral range (32768 and up on Linux),
	// so neither meets a port the kernel hands out to Start's servers or
	// to outgoing connections.
	clusterPortMin  = 10000
	clusterPortMax  = 22767
	clusterBusShift = 10000
	// clusterStartAttempts bounds how often a node picks new ports after
	// finding one taken.
	clusterStartAttempts = 20
	// migrateBatch is how many keys one MIGRATE of MigrateSlot moves.
	migrateBatch = 100
)

// WithMasters sets how many masters StartCluster starts (default 3). Start
// ignores it.
func WithMasters(n int) Option {
	return func(c *config) { c.masters = n }
}

// WithReplicas sets how many replicas of each master StartCluster starts
// (default 1; 0 for none). Start ignores it.
func WithReplicas(n int) Option {
	return func(c *config) { c.replicas = &n }
}

// Cluster is a Redis Cluster for tests: masters that split the 16384 slots
// evenly, each with its replicas, every node a redis-server with
// --cluster-enabled yes on 127.0.0.1, killed by PID when the test ends. A
// master that is killed is replaced by its replica after about
// --cluster-node-timeout (2s) and a gossip round.
//
// Masters and Replicas are the roles as StartCluster left them or as
// WaitHealthy last found them; call WaitHealthy after a failover.
type Cluster struct {
	nodes []*Server // every node, as started: masters first

	mu       sync.Mutex
	masters  []*Server // running masters with slots, by their first slot
	replicas []*Server // running replicas
}

// StartCluster starts a Redis Cluster for t: WithMasters masters (default
// 3), each with WithReplicas replicas (default 1), started with
//
//	--cluster-enabled yes --cluster-node-timeout 2000
//	--cluster-replica-validity-factor 0 --cluster-announce-ip 127.0.0.1
//	--repl-diskless-sync-delay 0
//
// after Start's defaults, then opts' WithArgs (WithAOF makes every node
// durable). It assigns the slots itself (CLUSTER ADDSLOTSRANGE,
// SET-CONFIG-EPOCH, MEET and REPLICATE, as redis-cli --cluster create
// does, without its fixed one-second waits) and returns once every node
// answers PING, says cluster_state:ok and agrees on which master serves
// every slot, and every replica's link to its master is up. It fails t if
// a node does not start or the cluster does not form within 30s.
//
// Each node's port is picked at random below 22768 and taken only if it
// and its bus port (+10000) are free; one taken in the meantime (by
// another test binary) is given up for another.
func StartCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	bin := lookPath(t)
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	d, err := startCluster(bin, c, func() (string, error) { return t.TempDir(), nil })
	if d != nil {
		t.Cleanup(d.kill)
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return d
}

// startCluster starts the cluster c describes, each node in a directory
// of its own from dir, and waits until it is healthy. On an error it
// returns the nodes that started too (nil if none did), for the caller
// to kill.
func startCluster(bin string, c config, dir func() (string, error)) (*Cluster, error) {
	masters, replicas := cmp0(c.masters, 3), 1
	if c.replicas != nil {
		replicas = *c.replicas
	}
	if masters < 1 || replicas < 0 {
		return nil, fmt.Errorf("a cluster of %d masters with %d replicas each", masters, replicas)
	}
	args := append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())),
		"--cluster-replica-validity-factor", "0",
		// A node learns its IP from the nodes it meets: one alone
		// would name itself ":port".
		"--cluster-announce-ip", "127.0.0.1",
		"--repl-diskless-sync-delay", "0",
	}, c.args...)

	n := masters * (1 + replicas)
	d := &Cluster{nodes: make([]*Server, n)}
	errs := make([]error, n)
	dirs := make([]string, n)
	for i := range n {
		var err error
		if dirs[i], err = dir(); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { d.nodes[i], errs[i] = startClusterNode(bin, dirs[i], args) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return d, fmt.Errorf("cluster node: %w", err)
	}
	if err := d.create(masters, replicas); err != nil {
		return d, fmt.Errorf("create the cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterSettleTimeout)
	defer cancel()
	if err := waitCtx(ctx, d.healthy); err != nil {
		return d, fmt.Errorf("the cluster to serve every slot: %w", err)
	}
	return d, nil
}

// kill kills every node that started.
func (d *Cluster) kill() {
	for _, s := range d.nodes {
		if s != nil {
			s.Kill()
		}
	}
}

// cmp0 is v, or def when v is 0.
func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// startClusterNode runs redis-server in dir on a port whose bus port is
// free too, picking other ports while it loses races for them.
func startClusterNode(bin, dir string, args []string) (*Server, error) {
	base := []string{
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
	}
	var lastErr error
	for range clusterStartAttempts {
		port := clusterPortMin + rand.IntN(clusterPortMax-clusterPortMin+1)
		if !portsFree(port, port+clusterBusShift) {
			continue
		}
		s := &Server{bin: bin, dir: dir, args: append(slices.Clone(base), args...)}
		s.setPort(port)
		err := s.launch()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free pair of ports (port and port+%d) after %d attempts: %v", clusterBusShift, clusterStartAttempts, lastErr)
}

// portsFree reports whether every port of 127.0.0.1 can be listened on
// right now.
func portsFree(ports ...int) bool {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}

// create makes the nodes one cluster: nodes[:masters] split the slots,
// and the rest replicate them in turn, replicas of them each.
func (d *Cluster) create(masters, replicas int) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterSettleTimeout)
	defer cancel()
	clients := make([]*redis.Client, len(d.nodes))
	for i, s := range d.nodes {
		clients[i] = nodeClient(s.Addr())
		defer clients[i].Close()
	}
	ids := make([]string, len(d.nodes))
	for i, c := range clients {
		id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER MYID: %w", d.nodes[i].Addr(), err)
		}
		ids[i] = id
		// Distinct epochs from the start, as redis-cli gives them: the
		// nodes need not settle a collision first.
		if err := c.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER SET-CONFIG-EPOCH: %w", d.nodes[i].Addr(), err)
		}
	}
	for i := range masters {
		first, last := i*SlotCount/masters, (i+1)*SlotCount/masters-1
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER ADDSLOTSRANGE %d %d: %w", d.nodes[i].Addr(), first, last, err)
		}
	}
	host, port, _ := net.SplitHostPort(d.nodes[0].Addr())
	for i, c := range clients[1:] {
		if err := c.Do(ctx, "CLUSTER", "MEET", host, port).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER MEET: %w", d.nodes[i+1].Addr(), err)
		}
	}
	// A replica can replicate only a master it knows.
	if err := waitCtx(ctx, func() (bool, string) {
		for i, c := range clients {
			nodes, err := c.ClusterNodes(ctx).Result()
			if err != nil {
				return false, err.Error()
			}
			known := 0
			for line := range strings.Lines(nodes) {
				f := strings.Fields(line)
				if len(f) > 2 && slices.Contains(ids, f[0]) && !strings.Contains(f[2], "handshake") && !strings.Contains(f[2], "noaddr") {
					known++
				}
			}
			if known != len(ids) {
				return false, fmt.Sprintf("%s knows %d of %d nodes", d.nodes[i].Addr(), known, len(ids))
			}
		}
		return true, ""
	}); err != nil {
		return fmt.Errorf("the nodes to meet: %w", err)
	}
	for i := masters; i < len(d.nodes); i++ {
		m := (i - masters) / replicas
		if err := clients[i].Do(ctx, "CLUSTER", "REPLICATE", ids[m]).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER REPLICATE %s: %w", d.nodes[i].Addr(), d.nodes[m].Addr(), err)
		}
	}
	return nil
}

// waitCtx polls cond every 20ms until it holds or ctx ends; then it
// returns what cond said last.
func waitCtx(ctx context.Context, cond func() (bool, string)) error {
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), why)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// nodeClient is a client of one node that never retries.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, Protocol: 2})
}

// Addrs returns the masters' host:port, what a user puts in
// redis.cluster.addrs.
func (d *Cluster) Addrs() []string {
	out := []string{}
	for _, m := range d.Masters() {
		out = append(out, m.Addr())
	}
	return out
}

// NodeAddrs returns the host:port of every node, running or not.
func (d *Cluster) NodeAddrs() []string {
	out := make([]string, len(d.nodes))
	for i, s := range d.nodes {
		out[i] = s.Addr()
	}
	return out
}

// Nodes returns every node as started, masters first.
func (d *Cluster) Nodes() []*Server { return slices.Clone(d.nodes) }

// Masters returns the running masters that serve slots, ordered by the
// first slot each serves.
func (d *Cluster) Masters() []*Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.masters)
}

// Replicas returns the running replicas.
func (d *Cluster) Replicas() []*Server {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.replicas)
}

// Node returns the node at addr, or nil.
func (d *Cluster) Node(addr string) *Server {
	for _, s := range d.nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// Client returns a new go-redis cluster client that knows every node and
// refreshes its slot map at least every second while it is used (go-redis
// does so only every 60s, or on MOVED), closed when t ends.
func (d *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      d.NodeAddrs(),
		Protocol:                   2,
		DialTimeout:                time.Second,
		ClusterStateReloadInterval: time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MasterOf returns the master that serves slot, as the cluster says now.
func (d *Cluster) MasterOf(t testing.TB, slot int) *Server {
	t.Helper()
	owners, err := d.slotOwners(d.running()[0])
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s := d.Node(owners[slot])
	if s == nil {
		t.Fatalf("redistest: slot %d is served by %q, none of the nodes", slot, owners[slot])
	}
	return s
}

// WaitHealthy waits, at most 30s, until the cluster serves every slot
// again: every running node says cluster_state:ok and names the same
// running master for every slot, and every running replica's link to its
// master is up. Call it after a master is killed (its replica takes over)
// or a node is restarted (it comes back as a replica). Masters and
// Replicas then give the roles it found.
func (d *Cluster) WaitHealthy(t testing.TB) {
	t.Helper()
	testutil.WaitForWhy(t, clusterSettleTimeout, "the cluster to serve every slot", d.healthy)
}

// healthy checks what WaitHealthy waits for and, when it holds, records
// the roles.
func (d *Cluster) healthy() (bool, string) {
	running := d.running()
	if len(running) == 0 {
		return false, "no node runs"
	}
	roles := map[*Server]string{}
	for _, s := range running {
		info, err := clusterInfo(s.Addr())
		if err != nil {
			return false, err.Error()
		}
		if info["cluster_state"] != "ok" {
			return false, s.Addr() + ": cluster_state:" + info["cluster_state"]
		}
		repl, err := infoReplication(s.Addr())
		if err != nil {
			return false, err.Error()
		}
		roles[s] = repl["role"]
		if repl["role"] == "slave" && repl["master_link_status"] != "up" {
			return false, fmt.Sprintf("replica %s: master_link_status:%s", s.Addr(), repl["master_link_status"])
		}
	}
	var first []string
	for i, s := range running {
		owners, err := d.slotOwners(s)
		if err != nil {
			return false, err.Error()
		}
		if i == 0 {
			first = owners
		} else if !slices.Equal(owners, first) {
			return false, fmt.Sprintf("%s and %s disagree on the slots' masters", running[0].Addr(), s.Addr())
		}
	}
	var masters []*Server
	for slot, addr := range first {
		m := d.Node(addr)
		switch {
		case addr == "":
			return false, fmt.Sprintf("slot %d has no master", slot)
		case m == nil || m.Pid() == 0:
			return false, fmt.Sprintf("slot %d is served by %s, which does not run", slot, addr)
		case roles[m] != "master":
			return false, fmt.Sprintf("slot %d is served by %s, whose role is %s", slot, addr, roles[m])
		}
		if !slices.Contains(masters, m) {
			masters = append(masters, m)
		}
	}
	var replicas []*Server
	for _, s := range running {
		if roles[s] == "slave" {
			replicas = append(replicas, s)
		}
	}
	// Every node has heard, by gossip, which nodes are replicas: until
	// then a node's CLUSTER SHARDS can show a replica as a master of no
	// slots, and what reads the topology from it misses the replica.
	for _, s := range running {
		known, err := knownReplicas(s.Addr())
		if err != nil {
			return false, err.Error()
		}
		for _, r := range replicas {
			if !known[r.Addr()] {
				return false, fmt.Sprintf("%s does not know %s as a replica yet", s.Addr(), r.Addr())
			}
		}
	}
	d.mu.Lock()
	d.masters, d.replicas = masters, replicas
	d.mu.Unlock()
	return true, ""
}

// running returns the nodes that run, or the first node if none does
// (its errors then say why).
func (d *Cluster) running() []*Server {
	var out []*Server
	for _, s := range d.nodes {
		if s.Pid() != 0 {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return d.nodes[:1]
	}
	return out
}

// slotOwners asks the node s for CLUSTER SLOTS and returns, for each slot,
// its master's host:port ("" for none).
func (d *Cluster) slotOwners(s *Server) ([]string, error) {
	c := nodeClient(s.Addr())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ranges, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER SLOTS: %w", s.Addr(), err)
	}
	owners := make([]string, SlotCount)
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		for slot := r.Start; slot <= r.End && slot < SlotCount; slot++ {
			owners[slot] = r.Nodes[0].Addr
		}
	}
	return owners, nil
}

// clusterInfo is CLUSTER INFO of the node at addr as a map.
// knownReplicas is the set of nodes (host:port) that the node at addr
// sees as replicas, from its CLUSTER NODES.
func knownReplicas(addr string) (map[string]bool, error) {
	c := nodeClient(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	out, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER NODES: %w", addr, err)
	}
	known := map[string]bool{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.Contains(f[2], "slave") {
			continue
		}
		at, _, _ := strings.Cut(f[1], "@") // ip:port@cport[,hostname]
		known[at] = true
	}
	return known, nil
}

func clusterInfo(addr string) (map[string]string, error) {
	c := nodeClient(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
	}
	return infoFields(s), nil
}

// MigrateSlot moves slot and its keys to the master to, the way
// redis-cli --cluster reshard does: CLUSTER SETSLOT IMPORTING on to and
// MIGRATING on the slot's master, MIGRATE of its keys in batches of 100,
// then SETSLOT NODE on to, on the old master and on every other master.
// While it runs, clients that write to the slot get ASK (a key already
// moved, or a new one) and TRYAGAIN (a command on several keys that are
// split between the two); go-redis follows ASK itself. It fails t if a
// step fails, and waits, at most 30s, until every running node names to
// as the slot's master.
func (d *Cluster) MigrateSlot(t testing.TB, slot int, to *Server) {
	t.Helper()
	if err := d.migrateSlot(slot, to); err != nil {
		t.Fatalf("redistest: migrate slot %d to %s: %v", slot, to.Addr(), err)
	}
	testutil.WaitForWhy(t, clusterSettleTimeout, fmt.Sprintf("every node to name %s as the master of slot %d", to.Addr(), slot), func() (bool, string) {
		for _, s := range d.running() {
			owners, err := d.slotOwners(s)
			if err != nil {
				return false, err.Error()
			}
			if owners[slot] != to.Addr() {
				return false, fmt.Sprintf("%s names %s", s.Addr(), owners[slot])
			}
		}
		return true, ""
	})
}

func (d *Cluster) migrateSlot(slot int, to *Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterSettleTimeout)
	defer cancel()
	owners, err := d.slotOwners(to)
	if err != nil {
		return err
	}
	from := d.Node(owners[slot])
	if from == nil {
		return fmt.Errorf("its master %q is none of the nodes", owners[slot])
	}
	if from == to {
		return nil
	}
	src, dst := nodeClient(from.Addr()), nodeClient(to.Addr())
	defer src.Close()
	defer dst.Close()
	srcID, err := src.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER MYID: %w", from.Addr(), err)
	}
	dstID, err := dst.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER MYID: %w", to.Addr(), err)
	}
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		return fmt.Errorf("%s: SETSLOT IMPORTING: %w", to.Addr(), err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return fmt.Errorf("%s: SETSLOT MIGRATING: %w", from.Addr(), err)
	}
	host, port, _ := net.SplitHostPort(to.Addr())
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, migrateBatch).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER GETKEYSINSLOT: %w", from.Addr(), err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("%s: MIGRATE %d keys: %w", from.Addr(), len(keys), err)
		}
	}
	// The new master first, so that it serves the slot before the old
	// one starts to send clients to it.
	setNode := func(s *Server) error {
		c := nodeClient(s.Addr())
		defer c.Close()
		if err := c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
			return fmt.Errorf("%s: SETSLOT NODE: %w", s.Addr(), err)
		}
		return nil
	}
	if err := setNode(to); err != nil {
		return err
	}
	if err := setNode(from); err != nil {
		return err
	}
	for _, m := range d.Masters() {
		if m != to && m != from {
			if err := setNode(m); err != nil {
				return err
			}
		}
	}
	return nil
}
