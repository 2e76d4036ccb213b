package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/internal/redistest"
)

// The environment variables that choose the harness's Redis (see the
// package comment).
const (
	// EnvRedis is "single" (the default) or "cluster".
	EnvRedis = "ASYNCGW_TEST_REDIS"
	// EnvShards is the store's shard count, 1 by default.
	EnvShards = "ASYNCGW_TEST_SHARDS"
)

// redisEnv is what the environment asks of the harness's Redis.
type redisEnv struct {
	cluster bool
	shards  int
}

var (
	envOnce sync.Once
	envVal  redisEnv
	envErr  error
)

// fromEnv reads EnvRedis and EnvShards, failing t when one is not
// understood.
func fromEnv(t testing.TB) redisEnv {
	t.Helper()
	envOnce.Do(func() {
		envVal.shards = 1
		switch v := os.Getenv(EnvRedis); v {
		case "", "single":
		case "cluster":
			envVal.cluster = true
		default:
			envErr = fmt.Errorf("%s=%q: want single or cluster", EnvRedis, v)
			return
		}
		if v := os.Getenv(EnvShards); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > keyspace.MaxShards {
				envErr = fmt.Errorf("%s=%q: want a shard count from 1 to %d", EnvShards, v, keyspace.MaxShards)
				return
			}
			envVal.shards = n
		}
	})
	if envErr != nil {
		t.Fatalf("e2e: %v", envErr)
	}
	return envVal
}

// OnCluster reports whether harnesses without a dedicated server run on a
// Redis Cluster (ASYNCGW_TEST_REDIS=cluster).
func OnCluster(t testing.TB) bool { return fromEnv(t).cluster }

// nodeClients returns the harness's clients of one node: srv, or the
// shared server when srv is nil. The first is the harness's pool; the
// second the gateways'. On the shared server they are one client; on a
// dedicated one (a test that stops or kills it) they are made as
// cmd/asyncgw makes them: context deadlines honoured, quick dial retries,
// and a gateway pool that never retries.
func nodeClients(t testing.TB, srv *redistest.Server) (main, front redis.UniversalClient) {
	t.Helper()
	dedicated := srv != nil
	if !dedicated {
		srv = redistest.Shared(t)
	}
	ropts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatalf("e2e: redis url: %v", err)
	}
	ropts.PoolSize = 64
	if dedicated {
		ropts.ContextTimeoutEnabled = true
		ropts.DialTimeout = time.Second
		ropts.DialerRetries, ropts.DialerRetryTimeout = 2, 20*time.Millisecond
	}
	c := redis.NewClient(ropts)
	t.Cleanup(func() { _ = c.Close() })
	if !dedicated {
		return c, c
	}
	fast := *ropts
	fast.MaxRetries, fast.DialerRetries = -1, 1
	f := redis.NewClient(&fast)
	t.Cleanup(func() { _ = f.Close() })
	return c, f
}

// clusterClients returns the harness's clients of the cluster d, made as
// cmd/asyncgw makes them with redis.cluster (slot map reloaded every
// second; the gateways' pool never retries).
func clusterClients(t testing.TB, d *redistest.Cluster) (main, front redis.UniversalClient) {
	t.Helper()
	conn, err := redisconn.New(redisconn.Config{Cluster: redisconn.Cluster{Addrs: d.Addrs()}})
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	main = conn.Client(redisconn.Options{ClientName: "e2e", PoolSize: 64})
	front = conn.Client(redisconn.Options{ClientName: "e2e-front", PoolSize: 64, NoRetries: true})
	t.Cleanup(func() {
		_ = main.Close()
		_ = front.Close()
	})
	return main, front
}

// masterRanger is what a cluster client offers to reach every master.
type masterRanger interface {
	ForEachMaster(ctx context.Context, fn func(ctx context.Context, client *redis.Client) error) error
}

// scan returns every key matching pattern: on a cluster, of every master.
func scan(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	var mu sync.Mutex
	var keys []string
	one := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if mr, ok := rdb.(masterRanger); ok {
		err = mr.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	} else {
		err = one(ctx, rdb)
	}
	if err != nil {
		t.Fatalf("e2e: scan %s: %v", pattern, err)
	}
	return keys
}
