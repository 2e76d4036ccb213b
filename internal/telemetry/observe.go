package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// The methods below are what gateway.Metrics and the jobs and admin hooks
// call; cmd/asyncgw connects them.

// Accepted counts a stored job.
func (m *Metrics) Accepted(queue, jobType string) {
	m.JobsAccepted.WithLabelValues(queue, jobType).Inc()
}

// Rejected counts a refused write.
func (m *Metrics) Rejected(reason string) { m.JobsRejected.WithLabelValues(reason).Inc() }

// RateLimited counts a 429 of a route's rate limit.
func (m *Metrics) RateLimited(tenant, route string) {
	m.RateLimitHits.WithLabelValues(tenant, route).Inc()
}

// Completed counts a job that reached a terminal state.
func (m *Metrics) Completed(queue, jobType, state string) {
	m.JobsCompleted.WithLabelValues(queue, jobType, state).Inc()
}

// StreamOpened counts an open event stream.
func (m *Metrics) StreamOpened(scope string) { m.SSESubscribers.WithLabelValues(scope).Inc() }

// StreamClosed uncounts a closed event stream.
func (m *Metrics) StreamClosed(scope string) { m.SSESubscribers.WithLabelValues(scope).Dec() }

// EventSent counts an event written to a stream.
func (m *Metrics) EventSent() { m.SSEEventsSent.Inc() }

// RedisRole records what the Redis node this process writes to said it
// is: a master or not. A check that got no answer records nothing.
func (m *Metrics) RedisRole(master bool) {
	if master {
		m.RedisNotMaster.Set(0)
	} else {
		m.RedisNotMaster.Set(1)
	}
}

// Ready records a readiness check (/readyz, or WatchReady).
func (m *Metrics) Ready(ok bool) {
	if ok {
		m.ReadyGauge.Set(1)
	} else {
		m.ReadyGauge.Set(0)
	}
}

// stateValue is a breaker state as asyncgw_breaker_state reports it.
func stateValue(s breaker.State) float64 {
	switch s {
	case breaker.HalfOpen:
		return 1
	case breaker.Open:
		return 2
	}
	return 0
}

// BreakerChanged records a breaker's new state. Breakers named after
// webhook destinations (which clients choose) are only counted, never
// labelled by name.
func (m *Metrics) BreakerChanged(kind, name string, to breaker.State) {
	m.BreakerChanges.WithLabelValues(kind, string(to)).Inc()
	if name != "" {
		m.BreakerState.WithLabelValues(kind, name).Set(stateValue(to))
	}
}

// WorkerHooks returns the worker's hooks, counting into m.
func (m *Metrics) WorkerHooks() worker.Hooks {
	return worker.Hooks{
		Ended: func(j *jobs.Job) { m.Completed(j.Queue, j.Type, string(j.State)) },
		BreakerChanged: func(host string, _, to breaker.State) {
			m.BreakerChanged("upstream", host, to)
		},
		SenderBreakerChanged: func(kind string, _, to breaker.State) { m.BreakerChanged(kind, "", to) },
		Started: func(j *jobs.Job, wait time.Duration) {
			m.JobQueueWait.WithLabelValues(j.Queue).Observe(wait.Seconds())
			m.JobsStarted.WithLabelValues(j.Queue, j.Tenant).Inc()
		},
		Attempted: func(j *jobs.Job, outcome jobs.State, d time.Duration) {
			m.JobRunTime.WithLabelValues(j.Queue, string(outcome)).Observe(d.Seconds())
		},
	}
}

// Replayed counts a job replayed from the dead-letter queue.
func (m *Metrics) Replayed(queue string) { m.JobsReplayed.WithLabelValues(queue).Inc() }

// WebhookAttempt counts a webhook delivery attempt by outcome.
func (m *Metrics) WebhookAttempt(outcome string) { m.WebhookAttempts.WithLabelValues(outcome).Inc() }

// ReplicaAck counts a write's wait for replicas and times it; outcome is
// acked, timeout or error (status.ReplicaAckObserver).
func (m *Metrics) ReplicaAck(outcome string, wait time.Duration) {
	m.ReplicaAcks.WithLabelValues(outcome).Inc()
	m.ReplicaAckWait.Observe(wait.Seconds())
}

// RedisHook returns a go-redis hook timing every round trip by command.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := next(ctx, network, addr)
		h.observe("dial", start, err)
		return c, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		if refused(err, cmd) {
			err = nil
		}
		h.observe(commandName(cmd), start, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		if refused(err, cmds...) {
			err = nil
		}
		h.observe("pipeline", start, err)
		return err
	}
}

// observe times a round trip. The error counter of a command is made with
// its first round trip, failed or not, so that its first error is an
// increase from 0 that rate() sees, not the start of a new series. Answers
// that are part of a working exchange are not errors: a nil answer, and
// the NOSCRIPT with which Redis asks go-redis to send a script it does not
// have yet (after which the EVAL is timed as such).
func (h redisHook) observe(cmd string, start time.Time, err error) {
	h.m.RedisDuration.WithLabelValues(cmd).Observe(time.Since(start).Seconds())
	errs := h.m.RedisErrors.WithLabelValues(cmd)
	if err != nil && !errors.Is(err, redis.Nil) && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		errs.Inc()
	}
}

// refused reports whether err is Redis refusing one of the optional
// commands go-redis sends on every new connection (CLIENT SETINFO, and
// with RESP3 CLIENT MAINT_NOTIFICATIONS), which Redis before 7.2 does not
// know and go-redis goes on without: counting it would count an error per
// connection.
func refused(err error, cmds ...redis.Cmder) bool {
	var re redis.Error
	if !errors.As(err, &re) || len(cmds) == 0 {
		return false
	}
	for _, c := range cmds {
		args := c.Args()
		if len(args) < 2 || !strings.EqualFold(fmt.Sprint(args[0]), "client") {
			return false
		}
		if sub := strings.ToLower(fmt.Sprint(args[1])); sub != "setinfo" && sub != "maint_notifications" {
			return false
		}
	}
	return true
}

// knownCommands bounds the command label: anything else is "other".
var knownCommands = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`evalsha eval script hget hgetall hmget hset hdel hincrby get set del exists expire
		pexpire persist ttl pttl zadd zrem zrange zrangebyscore zcard zscore zcount lrange lindex rpush lpush
		xadd xrange xrevrange smembers sadd srem scard publish subscribe ping config info multi exec
		incr incrby decr keys scan type lpop rpop llen brpoplpush lmove blmove`) {
		knownCommands[c] = true
	}
}

func commandName(cmd redis.Cmder) string {
	n := strings.ToLower(cmd.Name())
	if knownCommands[n] {
		return n
	}
	return "other"
}
