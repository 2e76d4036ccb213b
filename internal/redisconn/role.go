package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NotMasterError says that the node a client reached is not a master: it
// is a replica (Role "slave"), which refuses writes, or a sentinel (Role
// "sentinel"), which answers PING but no data command.
type NotMasterError struct {
	// Role is what ROLE answered: "slave" or "sentinel".
	Role string
}

func (e *NotMasterError) Error() string {
	return fmt.Sprintf("redis is not a master (role %s)", e.Role)
}

// Reason is the error's text: it is a reason of its own for /readyz, not
// a cause of "redis unreachable".
func (e *NotMasterError) Reason() string { return e.Error() }

// CheckMaster asks the node rdb reaches for its ROLE: nil when it is a
// master, a *NotMasterError when it is not, or the error of the call (the
// node is unreachable). It costs one round trip, as a PING does. A server
// that refuses ROLE (renamed or not allowed to the user) counts as a
// master: it answered, and nothing more can be known.
//
// On a cluster client (redisconn's, or a *redis.ClusterClient) it asks
// every master instead whether the cluster serves every slot: nil when
// each says cluster_state:ok with all 16384 slots assigned and none
// failed, a *ClusterStateError when one does not, or the error of a master
// that does not answer. That costs a reload of the slot map and one
// CLUSTER INFO per master.
func CheckMaster(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(masterRanger); ok {
		return checkCluster(ctx, cc)
	}
	v, err := rdb.Do(ctx, "ROLE").Slice()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && refused(err) {
			return nil
		}
		return err
	}
	if len(v) == 0 {
		return errors.New("redis: ROLE answered nothing")
	}
	role, _ := v[0].(string)
	if role == "master" {
		return nil
	}
	return &NotMasterError{Role: role}
}

// refused reports whether err is Redis refusing a command rather than
// failing to run it.
func refused(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "ERR unknown command") || strings.HasPrefix(msg, "NOPERM")
}

// Replicas asks the sentinels, first that answers, for the master's
// replicas (SENTINEL REPLICAS) and returns their addresses, those the
// sentinel thinks down included. With the URL form it returns none; with
// the Cluster form, the replicas of every master (Shards tells whose).
func (c *Connector) Replicas(ctx context.Context) ([]string, error) {
	if c.Cluster() {
		shards, err := c.clusterShards(ctx)
		var out []string
		for _, s := range shards {
			out = append(out, s.Replicas...)
		}
		return out, err
	}
	if !c.Sentinel() {
		return nil, nil
	}
	var errs []error
	for _, addr := range c.failover.SentinelAddrs {
		sc := c.sentinelClient(addr)
		rs, err := sc.Replicas(ctx, c.failover.MasterName).Result()
		_ = sc.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
			continue
		}
		out := make([]string, 0, len(rs))
		for _, r := range rs {
			out = append(out, net.JoinHostPort(r["ip"], r["port"]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis.sentinel: no sentinel answered SENTINEL REPLICAS %s: %w", c.failover.MasterName, errors.Join(errs...))
}

// MasterAddr asks the sentinels, first that answers, for the master's
// host:port. With the URL form it returns the URL's address; with the
// Cluster form, every master's, separated by commas (Shards gives them
// one by one).
func (c *Connector) MasterAddr(ctx context.Context) (string, error) {
	if c.Cluster() {
		shards, err := c.clusterShards(ctx)
		if err != nil {
			return "", err
		}
		masters := make([]string, len(shards))
		for i, s := range shards {
			masters[i] = s.Master
		}
		return strings.Join(masters, ","), nil
	}
	if !c.Sentinel() {
		return c.url.Addr, nil
	}
	var errs []error
	for _, addr := range c.failover.SentinelAddrs {
		hp, err := c.askMaster(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return hp, nil
	}
	return "", fmt.Errorf("redis.sentinel: no sentinel names the master %s: %w", c.failover.MasterName, errors.Join(errs...))
}

// askMaster asks the sentinel at addr for the master's host:port.
func (c *Connector) askMaster(ctx context.Context, addr string) (string, error) {
	sc := c.sentinelClient(addr)
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(ctx, c.failover.MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", addr, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name answered %q", addr, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}
