package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/memredis"
	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/internal/telemetry"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/ratelimit"
	"github.com/asyncgw/asyncgw/status"
	ups "github.com/asyncgw/asyncgw/upstream"
	"github.com/asyncgw/asyncgw/webhook"
)

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve starts what cmd names and runs it until ctx is done. It builds
// every part before it starts any, so that a bad configuration stops it with
// one line and nothing half-started.
func serve(ctx context.Context, cmd string, cfg *config, stderr io.Writer) error {
	// Log lines go out from a writer goroutine, batched under load; what
	// is queued is written before serve returns.
	out := newLogOut(stderr)
	defer out.Close()
	log := newLogger(cfg, out)
	redis.SetLogger(redisLogger{log})
	if cfg.AsynqPublicOnly {
		keyspace.AsynqPublicOnly()
		log.Info("redis.asynq_direct is false: asyncgw uses asynq's public API only")
	} else if !keyspace.AsynqDirect() {
		log.Warn("asynq is not the version internal/keyspace/asynq.go describes: asyncgw uses asynq's public API only (tasks are enqueued by asynq's client, taken one per round trip and retired by asynq)",
			"asynq_linked", keyspace.AsynqLinked(), "asynq_described", keyspace.AsynqVersion)
	}
	var mem *memredis.Server
	if !cfg.redisSet() {
		if cmd != "all" {
			return fmt.Errorf("redis.url, redis.sentinel or redis.cluster: required for %q (the embedded Redis lives inside one process; run asyncgw without a command to use it)", cmd)
		}
		var err error
		mem, err = memredis.Start()
		if err != nil {
			return err
		}
		defer mem.Close()
		cfg.RedisURL = mem.URL()
		// miniredis has no sharded pub/sub (SPUBLISH).
		cfg.Status.PlainPubSub = true
	}
	// Every client comes from conn: with Sentinel, all of them follow
	// the master; with Cluster, the slots' masters.
	conn, err := redisconn.New(cfg.redisConn())
	if err != nil {
		return configError(cfg.Path, err)
	}
	metrics := telemetry.NewMetrics(version)
	// Connections say whose they are in Redis's CLIENT LIST, unless the
	// URL names them (?client_name=).
	copts := redisconn.Options{ClientName: clientName(cmd), PoolSize: 2*cfg.Worker.Concurrency + 64}
	rdb := conn.Client(copts)
	defer rdb.Close()
	rdb.AddHook(metrics.RedisHook())
	// The accept path has its own pool that never retries: a client is
	// better served by a quick 503 than by a wait, and the breaker does the
	// rest.
	copts.NoRetries = true
	frontRDB := conn.Client(copts)
	defer frontRDB.Close()
	frontRDB.AddHook(metrics.RedisHook())

	// The master's switches are logged, and tell the event hub to
	// subscribe again on the new master (go-redis' failover client does
	// not move pub/sub connections), and the waits for replicas that a
	// failover is under way. Nil with redis.url.
	switches := conn.Switches(log)
	_ = switches.Start(ctx)
	defer switches.Stop(context.Background())
	if cfg.Status.MinReplicasAck > 0 {
		cfg.Status.ReplicaAckObserver = metrics.ReplicaAck
		if switches != nil {
			cfg.Status.Failovers = switches
		}
	}
	// Readiness asks the node for its ROLE (a sentinel or a replica
	// answers PING too), and says what it heard in asyncgw_redis_not_master;
	// on a cluster, every master whether the cluster serves every slot.
	checkMaster := func(ctx context.Context) error {
		err := redisconn.CheckMaster(ctx, rdb)
		var nm *redisconn.NotMasterError
		if err == nil || errors.As(err, &nm) {
			metrics.RedisRole(err == nil)
		}
		return err
	}
	store, err := status.New(cfg.Status, rdb)
	if err != nil {
		return configError(cfg.Path, err)
	}
	frontStore, err := status.New(cfg.Status, frontRDB)
	if err != nil {
		return configError(cfg.Path, err)
	}

	// The upstream hosts' limits, counted in Redis for every process:
	// workers keep them, the admin API reports them.
	limits, err := ups.New(rdb, ups.Config{Prefix: store.Space().Prefix(), Limits: cfg.Upstreams, HandOff: worker.LimitHandOff, Hooks: metrics.UpstreamHooks()}, log)
	if err != nil {
		return configError(cfg.Path, err)
	}
	// Operator actions use the ordinary pool: they are rare, and a bulk
	// replay is better retried than failed.
	ops := admin.New(store, submit.New(rdb, store, log), cfg.AdminQueues, admin.Hooks{Replayed: metrics.Replayed}, log).WithUpstreams(limits)
	hooks, err := webhook.New(cfg.Webhooks)
	if err != nil {
		return configError(cfg.Path, err)
	}
	var wk *worker.Worker
	var dispatcher *webhook.Dispatcher
	// The event hub: a gateway's event streams and Prefer: wait listen
	// through it, and a worker hears of queued jobs through it.
	hub := status.NewHub(rdb, store, log)
	if cmd != "gateway" {
		cfg.Worker.Wake = hub.Wake()
		cfg.Worker.Senders = map[string]worker.Sender{webhook.Kind: countedSender{webhook.NewSender(hooks, store, nil, log), metrics}}
		cfg.Worker.Hooks = metrics.WorkerHooks()
		cfg.Worker.Limits = limits
		wk, err = worker.New(cfg.Worker, rdb, store, nil, log)
		if err != nil {
			return configError(cfg.Path, err)
		}
		dispatcher = webhook.NewDispatcher(hooks, store, submit.New(rdb, store, log), log)
	}

	var ln net.Listener
	var gw *gateway.Gateway
	var monitor *submit.Monitor
	if cmd != "worker" {
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer ln.Close()
		if cfg.Demo {
			cfg.Gateway.Demo = true
			cfg.Gateway.Routes = append(cfg.Gateway.Routes, demoRoute(ln.Addr().String()))
		}
		client := submit.New(frontRDB, frontStore, log)
		monitor = submit.NewMonitor(submit.MonitorConfig{Queues: cfg.Gateway.Queues}, client, log)
		var limiter ratelimit.Limiter
		if cfg.RateLimitStore == "redis" {
			if limiter, err = ratelimit.NewRedis(frontRDB, ratelimit.RedisConfig{Prefix: cfg.Status.Prefix}); err != nil {
				return configError(cfg.Path, err)
			}
		}
		gw, err = gateway.New(cfg.Gateway, gateway.Deps{
			Jobs:     client,
			Admin:    ops,
			Store:    frontStore,
			Hub:      hub,
			Queues:   monitor,
			Limiter:  limiter,
			Webhooks: hooks,
			Metrics:  metrics,
			MetricsHandler: func() http.Handler {
				if cfg.MetricsListen != "" {
					return nil // served on its own listener
				}
				return metrics.Handler()
			}(),
			Upstreams: func() map[string]breaker.State {
				if wk == nil {
					return nil
				}
				return wk.UpstreamStates()
			},
			// ROLE, not PING: a sentinel answers PING, and a replica
			// refuses writes.
			Ping:   checkMaster,
			Logger: log,
		})
		if err != nil {
			return configError(cfg.Path, err)
		}
	}

	// Every series the dashboard and the alerts read exists from the
	// first scrape.
	metrics.Prime(knownSeries(cmd, cfg, gw))

	if mem != nil {
		log.Warn("NO REDIS CONFIGURED: using an embedded in-memory Redis. Jobs are NOT durable and are lost when asyncgw stops. Set redis.url or ASYNCGW_REDIS_URL for real use.")
	}
	if err := checkReachable(ctx, conn, rdb, log); err != nil {
		return err
	}
	// asynq's inspector lists the queues in asynq's set, which the accept
	// script does not write (see submit.Client.RegisterQueues).
	if err := ops.Jobs().RegisterQueues(ctx, cfg.AdminQueues); err != nil {
		log.Warn("could not register the queues with asynq: its inspector lists them once they are used", "err", err)
	}
	if mem == nil { // the embedded Redis has had its warning above
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nodes, done := durabilityNodes(dctx, conn, rdb)
		err := checkDurability(ctx, nodes, cfg.MinReplicasAck, cfg.RequireDurable, log)
		done()
		cancel()
		if err != nil {
			return err
		}
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	shutdownTracing, err := telemetry.SetupTracing(ctx, cfg.Tracing, version)
	if err != nil {
		return configError(cfg.Path, fmt.Errorf("tracing: %w", err))
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(sctx)
	}()
	var metricsLn net.Listener
	if cfg.MetricsListen != "" {
		if metricsLn, err = listenMetrics(cfg.MetricsListen); err != nil {
			return err
		}
		defer metricsLn.Close()
	}
	// What runs beside the HTTP server lives until the server has
	// drained and stopped, not only until the signal: event streams and
	// Prefer: wait keep their subscriptions while the gateway drains.
	life := context.WithoutCancel(ctx)
	wctx, stopWatch := context.WithCancel(life)
	defer stopWatch()
	metrics.WatchQueues(wctx, ops, store, 5*time.Second, log)
	metrics.WatchUpstreams(wctx, limits, 5*time.Second, log)
	if switches != nil {
		hub.Switches = switches
	}
	if err := hub.Start(life); err != nil {
		return err
	}
	defer hub.Stop(context.Background())
	if monitor != nil {
		_ = monitor.Start(life)
		defer monitor.Stop(context.Background())
	}

	// stopping is done at the signal, or when the gateway fails.
	stopping, stop := context.WithCancel(ctx)
	defer stop()
	context.AfterFunc(stopping, func() { log.Info("shutting down") })
	// asyncgw_ready is checked by the process itself, not only when a
	// load balancer asks /readyz (a worker has no /readyz at all).
	metrics.WatchReady(stopping, readiness(gw, checkMaster), 5*time.Second, log)
	if metricsLn != nil {
		defer serveMetrics(metricsLn, metrics, cfg.Pprof, log)()
	}
	workersDone := make(chan struct{})
	if wk != nil {
		if err := wk.Start(life); err != nil {
			return err
		}
		log.Info("workers started", "concurrency", wk.Concurrency())
		_ = dispatcher.Start(life)
		// Running jobs get their grace period while the gateway drains.
		go func() {
			defer close(workersDone)
			<-stopping.Done()
			_ = dispatcher.Stop(context.Background())
			_ = wk.Stop(context.Background())
		}()
	} else {
		close(workersDone)
	}
	rl := &reloader{load: cfg.reload, running: cfg, gateway: gw, worker: wk, hooks: hooks, limits: limits, log: log, embedded: mem != nil,
		applied: func(next *config) { metrics.Prime(knownSeries(cmd, next, gw)) }}
	if gw != nil && cfg.Demo {
		demo := demoRoute(ln.Addr().String())
		rl.demo = &demo
	}
	stopReload := rl.onSIGHUP()
	defer stopReload()
	var serveErr error
	if gw != nil {
		log.Info("gateway listening", "addr", "http://"+ln.Addr().String(), "demo", cfg.Demo)
		if cfg.Demo {
			log.Info(fmt.Sprintf("try: curl -si -X POST http://%s/v1/demo -H 'Content-Type: application/json' -d '{\"hello\":\"world\"}'", ln.Addr()))
		}
		serveErr = gw.Serve(stopping, ln)
	} else {
		<-stopping.Done()
	}
	stop()
	<-workersDone
	log.Info("stopped")
	return serveErr
}

// checkReachable makes sure, at start, that rdb reaches a Redis server:
// it answers PING, and ROLE says it is no sentinel (a sentinel answers
// PING, then refuses every command an accept needs). A replica is only
// warned about: it may be promoted, and until then /readyz says not ready.
// So is a cluster that does not serve every slot yet. A node of a cluster
// named by redis.url is an error: it would answer MOVED for most keys.
func checkReachable(ctx context.Context, conn *redisconn.Connector, rdb redis.UniversalClient, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%s: cannot reach %s: %w", conn.Key(), conn.Addr(), err)
	}
	var nm *redisconn.NotMasterError
	var cs *redisconn.ClusterStateError
	switch err := redisconn.CheckMaster(ctx, rdb); {
	case errors.As(err, &nm) && nm.Role == "sentinel":
		return fmt.Errorf("%s: %s is a Redis Sentinel, not a Redis server; use redis.sentinel {master_name, addrs} to reach the master it watches", conn.Key(), conn.Addr())
	case errors.As(err, &nm):
		log.Warn("redis is not a master: writes fail and /readyz says not ready until it is", "redis", conn.Addr(), "role", nm.Role)
	case errors.As(err, &cs):
		log.Warn("redis cluster does not serve every slot: writes to some fail and /readyz says not ready until it does", "redis", conn.Addr(), "node", cs.Node, "state", cs.State)
	case err != nil:
		return fmt.Errorf("%s: cannot reach %s: %w", conn.Key(), conn.Addr(), err)
	}
	if !conn.Cluster() {
		// INFO cluster: a server without cluster support says
		// cluster_enabled:0 or nothing.
		if info, err := rdb.Info(ctx, "cluster").Result(); err == nil && strings.Contains(info, "cluster_enabled:1") {
			return fmt.Errorf("%s: %s is a node of a Redis Cluster; use redis.cluster {addrs} to reach the cluster", conn.Key(), conn.Addr())
		}
	}
	return nil
}

// demoRoute is the route of the built-in demo: POST /v1/demo goes to the
// demo upstream served by the gateway itself.
func demoRoute(addr string) gateway.Route {
	return gateway.Route{
		Name:        "demo",
		Method:      "POST",
		Path:        "/v1/demo",
		Upstream:    "http://" + addr + "/_demo/upstream",
		MaxAttempts: 3,
		Backoff:     jobs.Backoff{Base: jobs.Duration(time.Second), Max: jobs.Duration(10 * time.Second)},
	}
}

// clientName is the Redis client name of the connections of a process
// that runs cmd: asyncgw (gateway and workers), asyncgw-gateway or
// asyncgw-worker.
func clientName(cmd string) string {
	if cmd == "all" {
		return "asyncgw"
	}
	return "asyncgw-" + cmd
}
