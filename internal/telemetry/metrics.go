// Package telemetry holds asyncgw's Prometheus metrics and OpenTelemetry
// tracing set-up. The packages that do the work report through hooks and
// small interfaces of their own; cmd/asyncgw wires them to a Metrics.
package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Rejection reasons of asyncgw_jobs_rejected_total.
const (
	ReasonAuth             = "auth"
	ReasonValidation       = "validation"
	ReasonIdempotency      = "idempotency"
	ReasonRateLimit        = "rate_limit"
	ReasonBackpressure     = "backpressure"
	ReasonRedisUnavailable = "redis_unavailable"
	ReasonPrecheck         = "precheck"
	ReasonOther            = "other"
)

// Metrics is every metric asyncgw exports, on a registry of its own.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests    *prometheus.CounterVec   // route, method, code
	HTTPDuration    *prometheus.HistogramVec // route, method
	JobsAccepted    *prometheus.CounterVec   // queue, type
	JobsRejected    *prometheus.CounterVec   // reason
	JobsCompleted   *prometheus.CounterVec   // queue, type, state
	JobQueueWait    *prometheus.HistogramVec // queue
	JobsStarted     *prometheus.CounterVec   // queue, tenant
	JobRunTime      *prometheus.HistogramVec // queue, outcome
	JobsReplayed    *prometheus.CounterVec   // queue
	RateLimitHits   *prometheus.CounterVec   // tenant, route
	BreakerState    *prometheus.GaugeVec     // kind, name
	BreakerChanges  *prometheus.CounterVec   // kind, to
	SSESubscribers  *prometheus.GaugeVec     // scope
	SSEEventsSent   prometheus.Counter
	WebhookAttempts *prometheus.CounterVec   // outcome
	RedisDuration   *prometheus.HistogramVec // command
	RedisErrors     *prometheus.CounterVec   // command
	ReplicaAcks     *prometheus.CounterVec   // outcome
	ReplicaAckWait  prometheus.Histogram
	QueueDepth      *prometheus.GaugeVec // queue, state
	QueueOldestAge  *prometheus.GaugeVec // queue
	QueuePaused     *prometheus.GaugeVec // queue
	DLQSize         *prometheus.GaugeVec // queue
	WebhookOutbox   prometheus.Gauge
	// OrderingWaiting and OrderingPromoting are the ordering keys' backlog
	// (status.Store.OrderingBacklog).
	OrderingWaiting *prometheus.GaugeVec // tenant
	// QueueTenantPending is each tenant's new jobs in a queue's fair
	// lines (admin.Queue.PendingByTenant).
	QueueTenantPending *prometheus.GaugeVec // queue, tenant
	OrderingPromoting  prometheus.Gauge
	ReadyGauge         prometheus.Gauge
	RedisNotMaster     prometheus.Gauge
	BuildInfo          *prometheus.GaugeVec // version
	upstreamMetrics

	// statsAt is when WatchQueues last read the figures, or when the
	// Metrics were made if it never has (unix ns).
	statsAt atomic.Int64
}

// latencyBuckets suit request and Redis latencies: 0.5ms to 10s.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// waitBuckets suit time in queue and run time: 1ms to about 3h.
var waitBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800}

// NewMetrics registers every metric, plus the Go runtime and process
// collectors, on a new registry.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.statsAt.Store(time.Now().UnixNano())
	m.upstreamMetrics = newUpstreamMetrics()
	m.HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_http_requests_total", Help: "HTTP requests answered, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	m.HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "asyncgw_http_request_duration_seconds", Help: "Time to answer an HTTP request (event streams: until the stream ends).", Buckets: latencyBuckets,
	}, []string{"route", "method"})
	m.JobsAccepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_jobs_accepted_total", Help: "Jobs accepted (202, or 200 after Prefer: wait), by queue and job type.",
	}, []string{"queue", "type"})
	m.JobsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_jobs_rejected_total", Help: "Writes refused before a job was stored, by reason: auth, validation, idempotency, rate_limit, backpressure, redis_unavailable, precheck, other.",
	}, []string{"reason"})
	m.JobsCompleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_jobs_completed_total", Help: "Jobs that reached a terminal state, by queue, job type and state (succeeded, failed, dead, canceled).",
	}, []string{"queue", "type", "state"})
	m.JobQueueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "asyncgw_job_queue_wait_seconds", Help: "Time from a job's acceptance (or due time) to its first attempt starting.", Buckets: waitBuckets,
	}, []string{"queue"})
	m.JobsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_jobs_started_total", Help: "Jobs whose first attempt started (again after a replay), by queue and tenant: each tenant's share of a queue's workers.",
	}, []string{"queue", "tenant"})
	m.JobRunTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "asyncgw_job_run_seconds", Help: "Duration of one attempt (the upstream call), by queue and outcome (succeeded, failed, dead, or retrying when another attempt follows).", Buckets: waitBuckets,
	}, []string{"queue", "outcome"})
	m.JobsReplayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_jobs_replayed_total", Help: "Jobs replayed from the dead-letter queue, by queue.",
	}, []string{"queue"})
	m.RateLimitHits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_rate_limited_total", Help: "Requests refused by a route's rate limit, by tenant and route (both come from the configuration).",
	}, []string{"tenant", "route"})
	m.BreakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_breaker_state", Help: "State of a circuit breaker: 0 closed, 1 half-open, 2 open. kind is upstream, redis or precheck; webhook destinations are counted in asyncgw_breaker_transitions_total only.",
	}, []string{"kind", "name"})
	m.BreakerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_breaker_transitions_total", Help: "Circuit breaker state changes, by kind and new state.",
	}, []string{"kind", "to"})
	m.SSESubscribers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_sse_subscribers", Help: "Open event streams, by scope (job or tenant).",
	}, []string{"scope"})
	m.SSEEventsSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "asyncgw_sse_events_sent_total", Help: "Events written to event streams.",
	})
	m.WebhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome: delivered, retry (no answer or a non-2xx), gone (410), refused (destination not allowed), disabled (endpoint disabled).",
	}, []string{"outcome"})
	m.RedisDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "asyncgw_redis_command_duration_seconds", Help: "Redis round trips, by command (pipeline for pipelines and transactions).", Buckets: latencyBuckets,
	}, []string{"command"})
	m.RedisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_redis_errors_total", Help: "Redis round trips that failed (not counting nil answers), by command.",
	}, []string{"command"})
	m.ReplicaAcks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "asyncgw_replica_ack_total", Help: "Writes (accepts and state changes) that waited for redis.min_replicas_ack replicas, by outcome: acked, timeout (too few replicas confirmed within redis.replica_ack_timeout), error (no answer from Redis). All zero without min_replicas_ack.",
	}, []string{"outcome"})
	m.ReplicaAckWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "asyncgw_replica_ack_wait_seconds", Help: "Time a write waited for its replicas' confirmation (the batched WAIT it joined), whatever the outcome.", Buckets: latencyBuckets,
	})
	m.QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_queue_depth", Help: "Tasks per queue and state (pending, scheduled, retry, active). Read from Redis at most every few seconds.",
	}, []string{"queue", "state"})
	m.QueueOldestAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_queue_oldest_age_seconds", Help: "How long the oldest pending task of a queue has waited.",
	}, []string{"queue"})
	m.QueuePaused = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_queue_paused", Help: "1 when the queue is paused.",
	}, []string{"queue"})
	m.DLQSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_dlq_size", Help: "Jobs in the dead-letter queue, by queue.",
	}, []string{"queue"})
	m.WebhookOutbox = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "asyncgw_webhook_outbox_pending", Help: "Job events waiting to become webhook deliveries.",
	})
	m.OrderingWaiting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_ordering_waiting_jobs", Help: "Jobs waiting behind an earlier job of their ordering key (X-Ordering-Key), by tenant: every key's line less its head. Read from Redis every few seconds.",
	}, []string{"tenant"})
	m.QueueTenantPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_queue_tenant_pending", Help: "New jobs waiting in a queue's fair lines, by tenant: a tenant's share of the backlog. The workers take the tenants with waiting jobs in turn. Read from Redis every few seconds.",
	}, []string{"queue", "tenant"})
	m.OrderingPromoting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "asyncgw_ordering_lines_promoting", Help: "Ordering keys' lines whose next job is being started after the one before it ended. Momentarily above 0 under load; a line that stays here is started by the workers' sweep within worker.recover_interval.",
	})
	m.RedisNotMaster = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "asyncgw_redis_not_master",
		Help: "1 while the Redis node this process writes to answers ROLE as other than a master (redis.url names a replica, or a failover left this process on the demoted node), 0 otherwise. Checked with readiness.",
	})
	m.ReadyGauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "asyncgw_ready", Help: "1 when the process is ready (what /readyz answers; for a worker, Redis reachable), 0 when not or shutting down. Checked every few seconds by the process itself.",
	})
	m.BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "asyncgw_build_info", Help: "Always 1, labelled with the version.",
	}, []string{"version"})
	for _, c := range []prometheus.Collector{
		m.HTTPRequests, m.HTTPDuration, m.JobsAccepted, m.JobsRejected, m.JobsCompleted,
		m.JobQueueWait, m.JobsStarted, m.JobRunTime, m.JobsReplayed, m.RateLimitHits, m.BreakerState,
		m.BreakerChanges, m.SSESubscribers, m.SSEEventsSent, m.WebhookAttempts,
		m.RedisDuration, m.RedisErrors, m.ReplicaAcks, m.ReplicaAckWait, m.QueueDepth, m.QueueOldestAge, m.QueuePaused,
		m.DLQSize, m.WebhookOutbox, m.OrderingWaiting, m.QueueTenantPending, m.OrderingPromoting, m.ReadyGauge, m.RedisNotMaster, m.BuildInfo,
		m.UpstreamHeld, m.UpstreamHoldTime, m.UpstreamPauses, m.UpstreamInUse,
		m.UpstreamJobsHeld, m.UpstreamConcurrency, m.UpstreamPaused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	m.BuildInfo.WithLabelValues(version).Set(1)
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "asyncgw_queue_stats_age_seconds",
		Help: "Age of the queue, dead-letter and outbox figures (since the process started, until the first reading): it grows while Redis cannot be read.",
	}, func() float64 {
		return time.Since(time.Unix(0, m.statsAt.Load())).Seconds()
	}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// ObserveHTTP records one answered request.
func (m *Metrics) ObserveHTTP(route, method string, code int, d time.Duration) {
	m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// Names lists the names of asyncgw's own metrics (not the Go runtime's).
func (m *Metrics) Names() []string {
	mfs, _ := m.Registry.Gather()
	var out []string
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "asyncgw_") {
			out = append(out, n)
		}
	}
	return out
}
