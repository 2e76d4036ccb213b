package main

import (
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs/worker"
	ups "github.com/asyncgw/asyncgw/upstream"
	"github.com/asyncgw/asyncgw/webhook"
)

// reloader applies the configuration file, read again on SIGHUP, to the
// parts of a running process: the gateway's routes, tenants, keys,
// schemas and limits, the workers' upstream options, the upstream hosts'
// limits, and the webhooks' tenants and secrets. What the process was built around (listeners,
// Redis, queues, the workers' pool, logging) changes only with a restart;
// a reload that changes it says so and keeps the running value.
type reloader struct {
	load    func() (*config, error)
	running *config
	gateway *gateway.Gateway  // nil in a worker process
	worker  *worker.Worker    // nil in a gateway process
	hooks   *webhook.Webhooks // never nil
	// limits are the upstream hosts' limits (never nil).
	limits *ups.Limiter
	// embedded: the process runs its own in-memory Redis.
	embedded bool
	// demo is the demo route, added to every configuration of the demo.
	demo *gateway.Route
	// applied, when set, is called with each configuration applied (to
	// make the metric series of new routes and tenants).
	applied func(*config)
	log     *slog.Logger
}

// onSIGHUP reloads on every SIGHUP until the returned function is called.
func (r *reloader) onSIGHUP() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				r.reload()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

// reload reads the configuration again and applies it. A configuration
// that cannot be read or applied is logged in one line, and the running
// one is kept whole.
func (r *reloader) reload() {
	if r.load == nil {
		r.log.Error("config reload: this process has no configuration to read again")
		return
	}
	next, err := r.load()
	if err != nil {
		r.log.Error("config reload failed; the running configuration is kept", "err", err)
		return
	}
	if kept := r.keepRunning(next); len(kept) > 0 {
		r.log.Warn("config reload: these settings take effect only after a restart; their running values are kept",
			"keys", strings.Join(kept, ","))
	}
	if r.demo != nil {
		next.Gateway.Demo = true
		next.Gateway.Routes = append(next.Gateway.Routes, *r.demo)
	}
	// Everything is checked before anything is applied: the gateway's
	// configuration is the one that can still be refused.
	if r.gateway != nil {
		if err := r.gateway.Reload(next.Gateway); err != nil {
			r.log.Error("config reload failed; the running configuration is kept", "err", configError(next.Path, err))
			return
		}
	}
	if err := r.hooks.Reload(next.Webhooks); err != nil {
		// next.Webhooks was checked by loadConfig, with the same rules.
		r.log.Error("config reload: webhooks not reloaded", "err", configError(next.Path, err))
	}
	if r.worker != nil {
		r.worker.SetRoutes(next.Worker.Routes)
	}
	if err := r.limits.SetLimits(next.Upstreams); err != nil {
		// next.Upstreams was checked by loadConfig, with the same rules.
		r.log.Error("config reload: upstreams not reloaded", "err", configError(next.Path, err))
	}
	r.running = next
	if r.applied != nil {
		r.applied(next)
	}
	r.log.Info("config reloaded", "path", next.Path, "routes", len(next.Gateway.Routes), "tenants", len(next.Gateway.Auth.Tenants))
}

// keepRunning sets in next the settings that need a restart to their
// running values, and returns the keys of those that differed.
func (r *reloader) keepRunning(next *config) []string {
	run := r.running
	var kept []string
	keep := func(key string, running, read any) {
		if !reflect.DeepEqual(running, read) {
			kept = append(kept, key)
		}
	}
	if r.embedded && next.RedisURL == "" {
		next.RedisURL = run.RedisURL // still the embedded one
	}
	keep("listen", run.Listen, next.Listen)
	keep("redis", run.redisConn(), next.redisConn())
	keep("redis.require_durable", run.RequireDurable, next.RequireDurable)
	st, nst := run.Status, next.Status
	st.ReplicaAckObserver, nst.ReplicaAckObserver = nil, nil // set by serve
	nst.PlainPubSub = st.PlainPubSub                         // set by serve for the embedded Redis
	keep("records/idempotency/dlq/fairness/auth.tenants[].weight/redis.prefix/redis.min_replicas_ack/redis.replica_ack_timeout", st, nst)
	keep("queues", run.Worker.Queues, next.Worker.Queues)
	keep("gateway.rate_limit_store", run.RateLimitStore, next.RateLimitStore)
	keep("metrics", [2]any{run.MetricsListen, run.Pprof}, [2]any{next.MetricsListen, next.Pprof})
	keep("log", [2]string{run.LogFormat, run.LogLevel}, [2]string{next.LogFormat, next.LogLevel})
	keep("tracing", run.Tracing, next.Tracing)
	w, nw := run.Worker, next.Worker
	w.Routes, nw.Routes, w.Senders, nw.Senders, w.Hooks, nw.Hooks = nil, nil, nil, nil, worker.Hooks{}, worker.Hooks{}
	w.Wake, nw.Wake = nil, nil     // set by serve, not the file
	w.Limits, nw.Limits = nil, nil // set by serve; upstreams reload
	keep("worker", w, nw)
	g, ng := run.Gateway, next.Gateway
	keep("gateway.shutdown_timeout", g.ShutdownTimeout, ng.ShutdownTimeout)
	keep("gateway.drain_delay", g.DrainDelay, ng.DrainDelay)
	wh, nwh := run.Webhooks, next.Webhooks
	keep("webhooks.queue", wh.Queue, nwh.Queue)
	keep("webhooks.timeout", wh.Timeout, nwh.Timeout)
	keep("webhooks.allow_http/allow_private_networks/allow_cidrs", wh.Policy, nwh.Policy)

	// The running values stay, so that the rest of next agrees with
	// what runs (routes may name only the running queues).
	next.Listen, next.RedisURL, next.RequireDurable, next.Status = run.Listen, run.RedisURL, run.RequireDurable, run.Status
	next.RedisSentinel, next.RedisTLS = run.RedisSentinel, run.RedisTLS
	next.MinReplicasAck, next.ReplicaAckTimeout, next.Gateway.RedisTimeout = run.MinReplicasAck, run.ReplicaAckTimeout, g.RedisTimeout
	next.Worker.Queues = maps.Clone(run.Worker.Queues)
	next.Gateway.Queues = slices.Clone(run.Gateway.Queues)
	next.Gateway.ShutdownTimeout, next.Gateway.DrainDelay = g.ShutdownTimeout, g.DrainDelay
	next.AdminQueues = run.AdminQueues
	return kept
}
