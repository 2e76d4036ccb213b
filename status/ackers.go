package status

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/jobs"
)

// replicaAcks sends a Store's waits for replicas to the master that took
// the writes: one acker for the one master of a single node or a Sentinel
// deployment, one acker per master on a cluster.
//
// On a cluster, a write to shard s went to the master that owns s's slot,
// and only that master's replicas can confirm it: WAIT has no key, so a
// cluster client would send it to any node. The wait for a write to s
// looks up s's master in the client's slot map (no round trip) and joins
// the round of that master's acker. Writes to shards of one master share
// a WAIT; writes to shards of different masters wait on their own masters
// in parallel.
type replicaAcks struct {
	cfg     ackConfig
	keys    []string             // each shard's ack key
	cluster *redis.ClusterClient // nil: one master
	one     *acker               // the acker when not on a cluster

	mu      sync.Mutex
	masters map[string]*acker // by master address, on a cluster
}

func newReplicaAcks(rdb redis.UniversalClient, ks *keyspace.Space, cfg ackConfig) *replicaAcks {
	r := &replicaAcks{cfg: cfg, keys: make([]string, ks.Shards())}
	for shard := range r.keys {
		r.keys[shard] = ks.ReplicaAck(shard)
	}
	if c, ok := redisconn.ClusterOf(rdb); ok {
		r.cluster, r.masters = c, map[string]*acker{}
		return r
	}
	r.one = &acker{cfg: &r.cfg, conn: rdb}
	return r
}

// wait returns once the writes this caller completed on shard before
// calling it are on the replicas of the shard's master (see acker.wait).
func (r *replicaAcks) wait(ctx context.Context, shard int) error {
	key := r.keys[shard]
	if r.cluster == nil {
		return r.one.wait(ctx, key, nil)
	}
	node, err := r.cluster.MasterForKey(ctx, key)
	if err != nil {
		r.cfg.observed(AckError, 0)
		return fmt.Errorf("%w: find the master of shard %d: %w", jobs.ErrNotReplicated, shard, err)
	}
	return r.master(node.Options().Addr).wait(ctx, key, node)
}

// master returns the acker of the master at addr.
func (r *replicaAcks) master(addr string) *acker {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.masters[addr]
	if a == nil {
		a = &acker{cfg: &r.cfg}
		r.masters[addr] = a
	}
	return a
}

// waitAll is wait for every shard: on a cluster, one wait per master that
// owns a shard, all at once.
func (r *replicaAcks) waitAll(ctx context.Context) error {
	if r.cluster == nil {
		return r.wait(ctx, 0)
	}
	// One shard of each master stands for all of that master's.
	byMaster := map[string]int{}
	for shard, key := range r.keys {
		node, err := r.cluster.MasterForKey(ctx, key)
		if err != nil {
			r.cfg.observed(AckError, 0)
			return fmt.Errorf("%w: find the master of shard %d: %w", jobs.ErrNotReplicated, shard, err)
		}
		if _, ok := byMaster[node.Options().Addr]; !ok {
			byMaster[node.Options().Addr] = shard
		}
	}
	errs := make(chan error, len(byMaster))
	for _, shard := range byMaster {
		go func() { errs <- r.wait(ctx, shard) }()
	}
	var all []error
	for range byMaster {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// sent reports how many WAITs the Store has sent, on every master.
func (r *replicaAcks) sent() int64 {
	if r.cluster == nil {
		return r.one.sent()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, a := range r.masters {
		n += a.sent()
	}
	return n
}
