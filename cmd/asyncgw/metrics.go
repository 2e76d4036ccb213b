package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/telemetry"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/webhook"
)

// countedSender counts each webhook delivery attempt by outcome.
type countedSender struct {
	worker.Sender
	m *telemetry.Metrics
}

func (s countedSender) Send(ctx context.Context, j *jobs.Job, req *jobs.Request) (*jobs.Result, error) {
	res, err := s.Sender.Send(ctx, j, req)
	if ctx.Err() == nil {
		s.m.WebhookAttempt(webhook.Outcome(res, err))
	}
	return res, err
}

// listenMetrics binds metrics.listen. It is done with the other start-up
// checks, so that a taken address stops asyncgw before anything starts;
// serveMetrics serves on it once the first figures are in.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	return ln, nil
}

// serveMetrics serves /metrics (and /healthz) on ln until stop is called:
// for worker processes, which have no gateway listener, and for operators
// who keep metrics off the public port.
func serveMetrics(ln net.Listener, m *telemetry.Metrics, profiler bool, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	if profiler {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// knownSeries is what a process running cmd will report under, from its
// configuration (see telemetry.Known). gw is nil in a worker process.
func knownSeries(cmd string, cfg *config, gw *gateway.Gateway) telemetry.Known {
	k := telemetry.Known{Tenants: []string{gateway.DefaultTenant}}
	if cfg.Gateway.Auth.Enabled {
		k.Tenants = k.Tenants[:0]
		for _, t := range cfg.Gateway.Auth.Tenants {
			k.Tenants = append(k.Tenants, t.Name)
		}
	}
	if gw != nil {
		s := gw.Series()
		g := &telemetry.KnownGateway{Jobs: s.Jobs, RateLimited: s.RateLimited, Breakers: s.Breakers, Queues: cfg.AdminQueues}
		for _, e := range s.Writes {
			g.Writes = append(g.Writes, telemetry.Endpoint{Method: e.Method, Route: e.Path})
		}
		k.Gateway = g
	}
	if cmd == "gateway" {
		return k
	}
	w := &telemetry.KnownWorker{
		Jobs:    map[string][]string{webhook.JobType: {cfg.Webhooks.Queue}},
		Queues:  slices.Sorted(maps.Keys(cfg.Worker.Queues)),
		Senders: []string{webhook.Kind},
	}
	hosts := map[string]bool{}
	for _, r := range cfg.Gateway.Routes {
		// As the gateway defaults them: its own queue, and those a client
		// may pick (every queue unless the route lists them).
		qs := append([]string{cmpOr(r.Queue, "default")}, r.Priorities...)
		if len(r.Priorities) == 0 {
			qs = append(qs, cfg.Gateway.Queues...)
		}
		slices.Sort(qs)
		w.Jobs[r.Name] = slices.Compact(qs)
		// Breakers are kept per host:port of the called URL; a host that
		// is itself a placeholder is known only once called.
		if u, err := url.Parse(r.Upstream); err == nil && u.Host != "" && !strings.ContainsAny(u.Host, "{}") && !strings.HasPrefix(u.Host, ":") {
			hosts[u.Host] = true
		}
	}
	w.Upstreams = slices.Sorted(maps.Keys(hosts))
	k.Worker = w
	return k
}

// readiness is what asyncgw_ready reports for a process: the gateway's
// readiness (which checks Redis) when it runs one, else whether check
// finds Redis reachable and a master.
func readiness(gw *gateway.Gateway, check func(context.Context) error) telemetry.ReadyCheck {
	if gw != nil {
		return gw.Readiness
	}
	return func(ctx context.Context) []string {
		if err := check(ctx); err != nil {
			return []string{gateway.RedisReason(err)}
		}
		return nil
	}
}
