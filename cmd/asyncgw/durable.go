package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redisconn"
)

// durabilityProblems reads Redis' appendonly, appendfsync and
// maxmemory-policy and says, in plain words, what keeps an accepted job (a
// 202) from surviving a crash or restart of Redis. Durable is appendonly yes,
// appendfsync always and maxmemory-policy noeviction: then it returns nil.
// A Redis that will not answer CONFIG GET (managed services often disable or
// rename CONFIG) gives one problem that starts with "cannot check: ".
func durabilityProblems(ctx context.Context, rdb redis.Cmdable) []string {
	settings := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync", "maxmemory-policy"} {
		// One parameter a call: CONFIG GET takes several only since Redis 7.
		m, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return []string{fmt.Sprintf("cannot check: CONFIG GET %s failed (%s); "+
				"make sure Redis runs with appendonly yes, appendfsync always and maxmemory-policy noeviction", name, strings.TrimSpace(err.Error()))}
		}
		v, ok := m[name]
		if !ok {
			return []string{fmt.Sprintf("cannot check: CONFIG GET %s: Redis does not report it; "+
				"make sure Redis runs with appendonly yes, appendfsync always and maxmemory-policy noeviction", name)}
		}
		settings[name] = strings.ToLower(v)
	}

	var problems []string
	if v := settings["appendonly"]; v != "yes" {
		// appendfsync does nothing without the AOF: this one problem says
		// both.
		problems = append(problems, fmt.Sprintf("appendonly is %s: an accepted job is lost if Redis restarts; use appendonly yes with appendfsync always", v))
	} else {
		switch v := settings["appendfsync"]; v {
		case "always":
		case "everysec":
			problems = append(problems, "appendfsync is everysec: up to 1 s of accepted jobs can be lost in a crash; use always")
		default:
			problems = append(problems, fmt.Sprintf("appendfsync is %s: accepted jobs not yet written to disk by the OS (often 30 s of them) can be lost in a crash; use always", v))
		}
	}
	if v := settings["maxmemory-policy"]; v != "noeviction" {
		problems = append(problems, fmt.Sprintf("maxmemory-policy is %s: Redis may evict queued jobs; use noeviction", v))
	}
	return problems
}

// minReplicasProblem reads min-replicas-to-write on a master and says
// what is wrong with it when redis.min_replicas_ack (want) is 1 or more,
// or "" when nothing is.
func minReplicasProblem(ctx context.Context, rdb redis.Cmdable, want int) string {
	const name = "min-replicas-to-write"
	m, err := rdb.ConfigGet(ctx, name).Result()
	if err != nil {
		return fmt.Sprintf("cannot check: CONFIG GET %s failed (%s); make sure the master runs with min-replicas-to-write %d", name, strings.TrimSpace(err.Error()), want)
	}
	if n, _ := strconv.Atoi(m[name]); n < 1 {
		return fmt.Sprintf("min-replicas-to-write is %s: a master cut off from its replicas keeps taking writes that a failover then drops; use min-replicas-to-write %d (redis.min_replicas_ack) with min-replicas-max-lag 10", cmpOr(m[name], "unset"), want)
	}
	return ""
}

// durableNode is one Redis node the durability check reads.
type durableNode struct {
	addr string
	// role is "master" or "replica" in a Sentinel deployment or a
	// cluster, "" for the one node of redis.url (which is checked as the
	// master).
	role string
	rdb  redis.Cmdable
	err  error // set when the node could not be reached
}

// durabilityNodes returns the nodes the durability check reads: the node
// of redis.url, the master and each replica the sentinels name, or every
// master of a cluster and each of its replicas. rdb is the process's
// client; done closes the clients made for the other nodes.
func durabilityNodes(ctx context.Context, conn *redisconn.Connector, rdb redis.Cmdable) (nodes []durableNode, done func()) {
	if conn.Cluster() {
		return clusterDurabilityNodes(ctx, conn)
	}
	if !conn.Sentinel() {
		return []durableNode{{addr: conn.Addr(), rdb: rdb}}, func() {}
	}
	master, err := conn.MasterAddr(ctx)
	if err != nil {
		master = conn.Addr()
	}
	nodes = append(nodes, durableNode{addr: master, role: "master", rdb: rdb})
	replicas, err := conn.Replicas(ctx)
	if err != nil {
		nodes = append(nodes, durableNode{addr: "the replicas", role: "replica", err: err})
	}
	var clients []*redis.Client
	for _, addr := range replicas {
		c := conn.NodeClient(addr)
		clients = append(clients, c)
		nodes = append(nodes, durableNode{addr: addr, role: "replica", rdb: c})
	}
	return nodes, func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
}

// clusterDurabilityNodes returns every master of the cluster and each of
// its replicas, each with a client of its own (the cluster client would
// send CONFIG GET to any one node).
func clusterDurabilityNodes(ctx context.Context, conn *redisconn.Connector) (nodes []durableNode, done func()) {
	shards, err := conn.Shards(ctx)
	if err != nil {
		return []durableNode{{addr: "the cluster's masters", role: "master", err: err}}, func() {}
	}
	var clients []*redis.Client
	add := func(addr, role string) {
		c := conn.NodeClient(addr)
		clients = append(clients, c)
		nodes = append(nodes, durableNode{addr: addr, role: role, rdb: c})
	}
	for _, s := range shards {
		add(s.Master, "master")
		for _, r := range s.Replicas {
			add(r, "replica")
		}
	}
	return nodes, func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
}

// checkDurability runs durabilityProblems against each node (and, when
// minReplicas is 1 or more, minReplicasProblem against the master). Each
// problem is a warning of its own, unless require (redis.require_durable)
// is set: then the problems are one start-up error, naming each node
// that fails, and nothing is logged.
func checkDurability(ctx context.Context, nodes []durableNode, minReplicas int, require bool, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var failed []string // one part of the error per node
	for _, n := range nodes {
		var problems []string
		if n.err != nil {
			problems = []string{fmt.Sprintf("cannot check: %s", n.err)}
		} else {
			problems = durabilityProblems(ctx, n.rdb)
			if minReplicas >= 1 && n.role != "replica" {
				if p := minReplicasProblem(ctx, n.rdb, minReplicas); p != "" {
					problems = append(problems, p)
				}
			}
		}
		if len(problems) == 0 {
			continue
		}
		at := n.addr
		if n.role != "" {
			at += " (" + n.role + ")"
		}
		if !require {
			for _, p := range problems {
				attrs := []any{"redis_durability", p}
				if n.role != "" {
					attrs = append([]any{"redis_node", at}, attrs...)
				}
				log.Warn("REDIS MAY NOT BE DURABLE: an accepted job (202) can be lost if Redis crashes or restarts; "+
					"set redis.require_durable: true to refuse to start", attrs...)
			}
			continue
		}
		msg := problems[0]
		if len(problems) > 1 {
			var b strings.Builder
			for i, p := range problems {
				fmt.Fprintf(&b, " %d) %s", i+1, p)
			}
			msg = b.String()[1:]
		}
		failed = append(failed, fmt.Sprintf("Redis at %s fails the durability check: %s", at, msg))
	}
	if len(failed) > 0 {
		return fmt.Errorf("redis.require_durable: %s", strings.Join(failed, "; "))
	}
	return nil
}
