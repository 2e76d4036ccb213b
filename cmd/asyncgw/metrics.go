package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/asyncgw/asyncgw/internal/telemetry"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/webhook"
)

// countedSender counts each webhook delivery attempt by outcome.
type countedSender struct {
	jobs.Sender
	m *telemetry.Metrics
}

func (s countedSender) Send(ctx context.Context, j *jobs.Job, req *jobs.Request) (*jobs.Result, error) {
	res, err := s.Sender.Send(ctx, j, req)
	if ctx.Err() == nil {
		s.m.WebhookAttempt(webhook.Outcome(res, err))
	}
	return res, err
}

// serveMetrics serves /metrics (and /healthz) on addr until stop is
// called: for worker processes, which have no gateway listener, and for
// operators who keep metrics off the public port.
func serveMetrics(addr string, m *telemetry.Metrics, profiler bool, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
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
	}, nil
}
