package redisconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterRefresh is how often a cluster client reloads its slot map. A
// replica takes over a failed master a few seconds after the failure
// (cluster-node-timeout and a gossip round); go-redis would only notice on
// its own reload, every 60s.
const clusterRefresh = time.Second

// Cluster is the redis.cluster section.
type Cluster struct {
	// Addrs are host:port of cluster nodes (redis.cluster.addrs),
	// usually every master; the clients learn the others from them. At
	// least one is required.
	Addrs []string
	// Username and Password authenticate to every node (ACL user, or
	// requirepass with no username). Default to none.
	Username string
	Password string
}

// set reports whether any key of the section is set.
func (c Cluster) set() bool {
	return len(c.Addrs) > 0 || c.Username != "" || c.Password != ""
}

// options checks the section and builds the options every cluster client
// starts from.
func (c Cluster) options(t TLS) (*redis.ClusterOptions, error) {
	if len(c.Addrs) == 0 {
		return nil, errors.New("redis.cluster.addrs: at least one node host:port is required")
	}
	for i, a := range c.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("redis.cluster.addrs[%d]: %q must be host:port", i, a)
		}
	}
	var tc *tls.Config
	if t != (TLS{}) {
		if !t.Enabled {
			return nil, errors.New("redis.tls: set redis.tls.enabled: true to use TLS with redis.cluster")
		}
		var err error
		if tc, err = t.config(); err != nil {
			return nil, err
		}
	}
	return &redis.ClusterOptions{
		Addrs:     append([]string(nil), c.Addrs...),
		Username:  c.Username,
		Password:  c.Password,
		TLSConfig: tc,
	}, nil
}

// Cluster reports whether the clients go to a Redis Cluster.
func (c *Connector) Cluster() bool { return c.cluster != nil }

// clusterClient is a go-redis cluster client that reloads its slot map
// every clusterRefresh from a goroutine of its own, which Close stops.
type clusterClient struct {
	*redis.ClusterClient
	stop func()
}

// Cluster returns the go-redis cluster client inside c.
func (c *clusterClient) Cluster() *redis.ClusterClient { return c.ClusterClient }

// ClusterOf returns the cluster client that rdb is or wraps (a Connector's
// cluster clients are wrapped), and false for a client of one node.
func ClusterOf(rdb redis.UniversalClient) (*redis.ClusterClient, bool) {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c, true
	case interface{ Cluster() *redis.ClusterClient }:
		return c.Cluster(), true
	}
	return nil, false
}

// Close stops the reloads and closes the client.
func (c *clusterClient) Close() error {
	c.stop()
	return c.ClusterClient.Close()
}

// clusterClient returns a cluster client with o's options and asyncgw's
// usual ones (see Client). go-redis' cluster client does not retry a
// command on the node's own connection (MaxRetries -1); it tries again, at
// most MaxRedirects times, after a MOVED or ASK, a network error (first on
// the same node, then on another) or a TRYAGAIN. With NoRetries it may
// follow two redirects (a MOVED then an ASK, as during a slot migration)
// and dials once.
func (c *Connector) clusterClient(o Options) redis.UniversalClient {
	opts := *c.cluster
	opts.Addrs = append([]string(nil), opts.Addrs...)
	opts.ClientName = o.ClientName
	opts.PoolSize = o.PoolSize
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = time.Second
	opts.DialerRetries, opts.DialerRetryTimeout = 2, 20*time.Millisecond
	opts.Protocol = 2
	opts.ReadOnly, opts.RouteByLatency, opts.RouteRandomly = false, false, false
	opts.MaxRetries = -1
	// Bounds how stale the slot map gets when the goroutine below is
	// late; either way a reload asks one node for CLUSTER SLOTS.
	opts.ClusterStateReloadInterval = clusterRefresh
	if o.NoRetries {
		opts.MaxRedirects, opts.DialerRetries = 2, 1
	}
	cc := redis.NewClusterClient(&opts)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(clusterRefresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				cc.ReloadState(ctx)
			}
		}
	})
	return &clusterClient{ClusterClient: cc, stop: func() { cancel(); wg.Wait() }}
}

// Shard is one master and its replicas.
type Shard struct {
	// Master is the master's host:port.
	Master string
	// Replicas are its replicas' host:port.
	Replicas []string
}

// Shards returns every master with its replicas: the URL's node alone;
// the master and replicas the sentinels name; or, for a cluster, the
// masters that serve slots (ordered by their first slot), each with every
// replica the cluster knows, as the first configured node that answers
// CLUSTER SHARDS says.
func (c *Connector) Shards(ctx context.Context) ([]Shard, error) {
	switch {
	case c.Cluster():
		return c.clusterShards(ctx)
	case c.Sentinel():
		master, err := c.MasterAddr(ctx)
		if err != nil {
			return nil, err
		}
		replicas, err := c.Replicas(ctx)
		if err != nil {
			return nil, err
		}
		return []Shard{{Master: master, Replicas: replicas}}, nil
	}
	return []Shard{{Master: c.url.Addr}}, nil
}

// clusterShards asks the configured nodes, first that answers, for
// CLUSTER SHARDS (Redis 7): unlike CLUSTER SLOTS it names a replica that
// has not yet received a write.
func (c *Connector) clusterShards(ctx context.Context) ([]Shard, error) {
	var errs []error
	for _, addr := range c.cluster.Addrs {
		nc := c.NodeClient(addr)
		shards, err := nc.ClusterShards(ctx).Result()
		_ = nc.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		type first struct {
			shard Shard
			slot  int64
		}
		var out []first
		for _, sh := range shards {
			if len(sh.Slots) == 0 {
				continue // a master without slots serves nothing
			}
			f := first{slot: sh.Slots[0].Start}
			for _, r := range sh.Slots {
				f.slot = min(f.slot, r.Start)
			}
			for _, n := range sh.Nodes {
				port := n.Port
				if port == 0 {
					port = n.TLSPort
				}
				// A node that met no other does not know its own IP.
				host, _, _ := net.SplitHostPort(addr)
				a := net.JoinHostPort(cmp.Or(n.IP, n.Endpoint, host), strconv.FormatInt(port, 10))
				if n.Role == "master" {
					f.shard.Master = a
				} else {
					f.shard.Replicas = append(f.shard.Replicas, a)
				}
			}
			out = append(out, f)
		}
		slices.SortFunc(out, func(a, b first) int { return cmp.Compare(a.slot, b.slot) })
		res := make([]Shard, len(out))
		for i, f := range out {
			res[i] = f.shard
		}
		return res, nil
	}
	return nil, fmt.Errorf("redis.cluster: no node answered CLUSTER SHARDS: %w", errors.Join(errs...))
}

// ClusterStateError says that a Redis Cluster does not serve every slot:
// a master it asked says cluster_state is not ok, or that some slots have
// no master or a failed one.
type ClusterStateError struct {
	// Node is the host:port of the master that said so.
	Node string
	// State is what it said: "cluster_state:fail", or the slot counts.
	State string
}

func (e *ClusterStateError) Error() string {
	return fmt.Sprintf("redis cluster does not serve every slot (%s says %s)", e.Node, e.State)
}

// Reason is the error's text: a reason of its own for /readyz.
func (e *ClusterStateError) Reason() string { return e.Error() }

// masterRanger is what a cluster client offers to run a command on every
// master (*redis.ClusterClient and the clients of Client).
type masterRanger interface {
	ForEachMaster(ctx context.Context, fn func(ctx context.Context, client *redis.Client) error) error
}

var _ masterRanger = (*clusterClient)(nil)

// checkCluster asks every master the client knows (after it reloads its
// slot map) for CLUSTER INFO: nil when each says cluster_state:ok with
// every slot assigned and none failed; a *ClusterStateError when one does
// not; or the error of a master that does not answer.
func checkCluster(ctx context.Context, rdb masterRanger) error {
	return rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		addr := node.Options().Addr
		info, err := node.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
		}
		f := map[string]string{}
		for line := range strings.Lines(info) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				f[k] = v
			}
		}
		switch {
		case f["cluster_state"] != "ok":
			return &ClusterStateError{Node: addr, State: "cluster_state:" + f["cluster_state"]}
		case f["cluster_slots_assigned"] != "16384" || f["cluster_slots_fail"] != "0":
			return &ClusterStateError{Node: addr, State: fmt.Sprintf("cluster_slots_assigned:%s cluster_slots_fail:%s", f["cluster_slots_assigned"], f["cluster_slots_fail"])}
		}
		return nil
	})
}
