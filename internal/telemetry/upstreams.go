package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/asyncgw/asyncgw/upstream"
)

// upstreamMetrics are the metrics of the upstream hosts' limits.
type upstreamMetrics struct {
	UpstreamHeld        *prometheus.CounterVec   // upstream, limit
	UpstreamHoldTime    *prometheus.HistogramVec // upstream, limit
	UpstreamPauses      *prometheus.CounterVec   // upstream
	UpstreamInUse       *prometheus.GaugeVec     // upstream
	UpstreamJobsHeld    *prometheus.GaugeVec     // upstream
	UpstreamConcurrency *prometheus.GaugeVec     // upstream
	UpstreamPaused      *prometheus.GaugeVec     // upstream
}

// holdReasons are the label values of limit.
var holdReasons = []upstream.Reason{upstream.ReasonConcurrency, upstream.ReasonRate, upstream.ReasonPaused}

func newUpstreamMetrics() upstreamMetrics {
	return upstreamMetrics{
		UpstreamHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asyncgw_upstream_held_total", Help: "Jobs held back by an upstream host's limits (upstreams:), by host and limit: concurrency, rate, or paused (the host's Retry-After). Each hold puts the job back without using an attempt.",
		}, []string{"upstream", "limit"}),
		UpstreamHoldTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "asyncgw_upstream_hold_seconds", Help: "How long each hold by an upstream host's limits was to last, by host and limit.", Buckets: waitBuckets,
		}, []string{"upstream", "limit"}),
		UpstreamPauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "asyncgw_upstream_pauses_total", Help: "Pauses of every call to an upstream host, asked for by its Retry-After on a 429 or 503, by host.",
		}, []string{"upstream"}),
		UpstreamInUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "asyncgw_upstream_slots_in_use", Help: "Calls in flight to an upstream host with a concurrency limit, across every worker process (read from Redis every few seconds: aggregate with max).",
		}, []string{"upstream"}),
		UpstreamJobsHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "asyncgw_upstream_jobs_held", Help: "Jobs waiting for an upstream host's limits, across every worker process (read from Redis every few seconds: aggregate with max).",
		}, []string{"upstream"}),
		UpstreamConcurrency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "asyncgw_upstream_concurrency_limit", Help: "The concurrency an upstream host is held to: its adaptive limit, or the configured one.",
		}, []string{"upstream"}),
		UpstreamPaused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "asyncgw_upstream_paused", Help: "1 while an upstream host's Retry-After pauses every call to it.",
		}, []string{"upstream"}),
	}
}

// UpstreamHooks returns the upstream limiter's hooks, counting into m.
func (m *Metrics) UpstreamHooks() upstream.Hooks {
	return upstream.Hooks{
		Held: func(host string, reason upstream.Reason, wait time.Duration) {
			m.UpstreamHeld.WithLabelValues(host, string(reason)).Inc()
			m.UpstreamHoldTime.WithLabelValues(host, string(reason)).Observe(wait.Seconds())
		},
		Paused: func(host string, _ time.Duration) { m.UpstreamPauses.WithLabelValues(host).Inc() },
	}
}

// UsageSource reports the upstream hosts' use (upstream.Limiter).
type UsageSource interface {
	Usage(ctx context.Context) ([]upstream.Usage, error)
}

// WatchUpstreams reads the limited upstream hosts' use every interval
// until ctx is done, as WatchQueues does the queues': the first reading
// before it returns. The counters of every host read start at zero.
func (m *Metrics) WatchUpstreams(ctx context.Context, src UsageSource, every time.Duration, log *slog.Logger) {
	read := func() {
		rctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		us, err := src.Usage(rctx)
		if err != nil {
			log.Debug("read upstream limits", "err", err)
			return
		}
		// Hosts dropped by a reload go.
		for _, g := range []*prometheus.GaugeVec{m.UpstreamInUse, m.UpstreamJobsHeld, m.UpstreamConcurrency, m.UpstreamPaused} {
			g.Reset()
		}
		for _, u := range us {
			for _, r := range holdReasons {
				m.UpstreamHeld.WithLabelValues(u.Host, string(r))
			}
			m.UpstreamPauses.WithLabelValues(u.Host)
			m.UpstreamInUse.WithLabelValues(u.Host).Set(float64(u.InUse))
			m.UpstreamJobsHeld.WithLabelValues(u.Host).Set(float64(u.Held))
			limit := u.Limit.Concurrency
			if u.EffectiveConcurrency > 0 {
				limit = u.EffectiveConcurrency
			}
			m.UpstreamConcurrency.WithLabelValues(u.Host).Set(float64(limit))
			paused := 0.0
			if u.PausedUntil != nil {
				paused = 1
			}
			m.UpstreamPaused.WithLabelValues(u.Host).Set(paused)
		}
	}
	poll(ctx, every, read, nil)
}
