package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
	ups "github.com/asyncgw/asyncgw/upstream"
)

// openAdmin connects to the configured Redis and returns the operator
// service on it, and a function that closes the connection. cmd names the
// command ("dlq" or "queues") in errors. The operator commands work on Redis
// directly, not through a gateway, so that they work while none does.
func (c *cli) openAdmin(ctx context.Context, cmd string) (*admin.Service, func(), error) {
	cfg, err := c.config()
	if err != nil {
		return nil, nil, err
	}
	if !cfg.redisSet() {
		return nil, nil, fmt.Errorf("redis.url, redis.sentinel or redis.cluster: required for %q (give --config FILE with redis.url, redis.sentinel or redis.cluster, or ASYNCGW_REDIS_URL; the embedded Redis of a demo asyncgw lives inside that process and cannot be reached)", cmd)
	}
	conn, err := redisconn.New(cfg.redisConn())
	if err != nil {
		return nil, nil, configError(cfg.Path, err)
	}
	// Warnings only: the command's output is its own.
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	redis.SetLogger(redisLogger{log})
	rdb := conn.Client(redisconn.Options{})
	store, err := status.New(cfg.Status, rdb)
	if err != nil {
		_ = rdb.Close()
		return nil, nil, configError(cfg.Path, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("%s: cannot reach %s: %w", conn.Key(), conn.Addr(), err)
	}
	client := submit.New(rdb, store, log)
	limits, err := ups.New(rdb, ups.Config{Prefix: store.Space().Prefix(), Limits: cfg.Upstreams}, log)
	if err != nil {
		_ = rdb.Close()
		return nil, nil, configError(cfg.Path, err)
	}
	svc := admin.New(store, client, cfg.AdminQueues, admin.Hooks{}, log).WithUpstreams(limits)
	return svc, func() { _ = rdb.Close() }, nil
}

// writeJSON prints v as the admin API would answer it.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
