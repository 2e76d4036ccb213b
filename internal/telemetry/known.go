package telemetry

import (
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/jobs"
)

// Known is what a process can tell from its configuration about the series
// it will report. Prime makes them at zero before anything happens, so
// that the first scrape of a fresh process already holds every series the
// dashboard and the alerts read, and so that the first event on a series
// is an increase rate() sees rather than the birth of the series.
type Known struct {
	// Gateway is set in a process that serves the HTTP API.
	Gateway *KnownGateway
	// Worker is set in a process that runs jobs.
	Worker *KnownWorker
	// Tenants are the configured tenants ("default" with auth off).
	Tenants []string
}

// KnownGateway is what a gateway reports under (gateway.Series).
type KnownGateway struct {
	// Writes are the endpoints that accept writes, by method and route
	// template.
	Writes []Endpoint
	// Jobs maps each job type a client may submit to the queues it may go
	// to.
	Jobs map[string][]string
	// RateLimited maps each route with a rate limit to the tenants it
	// limits.
	RateLimited map[string][]string
	// Breakers maps a breaker kind (redis, precheck) to the names of its
	// breakers.
	Breakers map[string][]string
	// Queues are the queues the admin API replays dead jobs into.
	Queues []string
}

// Endpoint is an HTTP method and a route template.
type Endpoint struct{ Method, Route string }

// KnownWorker is what a worker reports under.
type KnownWorker struct {
	// Jobs maps each job type the worker runs (webhook deliveries
	// included) to the queues it may come from.
	Jobs map[string][]string
	// Queues are the queues the worker takes jobs from.
	Queues []string
	// Upstreams are the upstream hosts (host:port) the routes call.
	Upstreams []string
	// Senders are the request kinds with breakers of their own, such as
	// webhook deliveries.
	Senders []string
}

// Label values of the fixed sets, as the Help of each metric lists them.
var (
	rejectReasons = []string{
		ReasonAuth, ReasonValidation, ReasonIdempotency, ReasonRateLimit,
		ReasonBackpressure, ReasonRedisUnavailable, ReasonPrecheck, ReasonOther,
	}
	workerEnds      = []jobs.State{jobs.StateSucceeded, jobs.StateFailed, jobs.StateDead}
	attemptOutcomes = []jobs.State{jobs.StateSucceeded, jobs.StateFailed, jobs.StateDead, jobs.StateRetrying}
	breakerStates   = []breaker.State{breaker.Closed, breaker.HalfOpen, breaker.Open}
	streamScopes    = []string{"job", "tenant"}
	// webhookOutcomes are what webhook.Outcome returns.
	webhookOutcomes = []string{"delivered", "retry", "gone", "refused", "disabled"}
	// replicaAckOutcomes are the outcomes of status.ReplicaAckObserver.
	replicaAckOutcomes = []string{"acked", "timeout", "error"}
)

// Prime makes the series of k at zero. Counters and histograms start at
// zero and breakers closed, which is the truth before the first event;
// the queue figures are not primed, since WatchQueues reads them before
// the process serves its metrics.
func (m *Metrics) Prime(k Known) {
	// Every process reads the queue figures (WatchQueues): each tenant's
	// backlogs start at 0.
	var queues []string
	if k.Gateway != nil {
		queues = append(queues, k.Gateway.Queues...)
	}
	if k.Worker != nil {
		queues = append(queues, k.Worker.Queues...)
	}
	for _, t := range k.Tenants {
		m.OrderingWaiting.WithLabelValues(t)
		for _, q := range queues {
			m.QueueTenantPending.WithLabelValues(q, t)
		}
	}
	if g := k.Gateway; g != nil {
		for _, e := range g.Writes {
			// The code of an accepted write; other codes start with
			// their first answer.
			m.HTTPRequests.WithLabelValues(e.Route, e.Method, "202")
			m.HTTPDuration.WithLabelValues(e.Route, e.Method)
		}
		for jobType, queues := range g.Jobs {
			for _, q := range queues {
				m.JobsAccepted.WithLabelValues(q, jobType)
				m.JobsCompleted.WithLabelValues(q, jobType, string(jobs.StateCanceled))
			}
		}
		for _, r := range rejectReasons {
			m.JobsRejected.WithLabelValues(r)
		}
		for route, tenants := range g.RateLimited {
			for _, t := range tenants {
				m.RateLimitHits.WithLabelValues(t, route)
			}
		}
		for kind, names := range g.Breakers {
			m.primeBreakers(kind, names)
		}
		for _, q := range g.Queues {
			m.JobsReplayed.WithLabelValues(q)
		}
		for _, s := range streamScopes {
			m.SSESubscribers.WithLabelValues(s)
		}
	}
	// Every process writes; without redis.min_replicas_ack its waits
	// stay at zero.
	for _, o := range replicaAckOutcomes {
		m.ReplicaAcks.WithLabelValues(o)
	}
	if w := k.Worker; w != nil {
		for jobType, queues := range w.Jobs {
			for _, q := range queues {
				for _, s := range workerEnds {
					m.JobsCompleted.WithLabelValues(q, jobType, string(s))
				}
			}
		}
		for _, q := range w.Queues {
			m.JobQueueWait.WithLabelValues(q)
			for _, t := range k.Tenants {
				m.JobsStarted.WithLabelValues(q, t)
			}
			for _, o := range attemptOutcomes {
				m.JobRunTime.WithLabelValues(q, string(o))
			}
		}
		m.primeBreakers("upstream", w.Upstreams)
		for _, kind := range w.Senders {
			m.primeBreakers(kind, nil) // destinations are not labelled
		}
		for _, o := range webhookOutcomes {
			m.WebhookAttempts.WithLabelValues(o)
		}
	}
}

// primeBreakers makes the transition counters of a kind of breaker, and
// the state of each named one (closed).
func (m *Metrics) primeBreakers(kind string, names []string) {
	for _, s := range breakerStates {
		m.BreakerChanges.WithLabelValues(kind, string(s))
	}
	for _, n := range names {
		m.BreakerState.WithLabelValues(kind, n).Set(stateValue(breaker.Closed))
	}
}
