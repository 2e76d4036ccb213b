package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/asyncgw/asyncgw/admin"
)

// QueueSource reports the queues (admin.Service).
type QueueSource interface {
	Queues(ctx context.Context) ([]admin.Queue, error)
}

// OutboxSource reports the webhook outboxes (status.Store).
type OutboxSource interface {
	OutboxTenants(ctx context.Context) ([]string, error)
	OutboxSize(ctx context.Context, tenant string) (int64, error)
}

// OrderingSource reports the ordering keys' backlog (status.Store): jobs
// waiting by tenant, and lines whose next job is being started.
type OrderingSource interface {
	OrderingBacklog(ctx context.Context) (waiting map[string]int64, promoting int64, err error)
}

// WatchQueues reads the queue, dead-letter and outbox figures every
// interval until ctx is done, so that a scrape never reads Redis: the
// gauges hold the last figures, and asyncgw_queue_stats_age_seconds says
// how old they are. The first reading is made before it returns, so that
// the first scrape holds real figures rather than none (or zeros that
// would read as a sudden change). outbox may be nil; when it is also an
// OrderingSource, the ordering keys' backlog is read too.
func (m *Metrics) WatchQueues(ctx context.Context, q QueueSource, outbox OutboxSource, every time.Duration, log *slog.Logger) {
	orderingSeen := map[string]bool{} // tenants with a waiting figure
	fairSeen := map[[2]string]bool{}  // queues and tenants with a pending figure
	read := func() {
		rctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		qs, err := q.Queues(rctx)
		if err != nil {
			log.Debug("read queue figures", "err", err)
			return
		}
		for _, x := range qs {
			m.QueueDepth.WithLabelValues(x.Name, "pending").Set(float64(x.Pending))
			m.QueueDepth.WithLabelValues(x.Name, "scheduled").Set(float64(x.Scheduled))
			m.QueueDepth.WithLabelValues(x.Name, "retry").Set(float64(x.Retry))
			m.QueueDepth.WithLabelValues(x.Name, "active").Set(float64(x.Active))
			m.QueueOldestAge.WithLabelValues(x.Name).Set(x.LatencySeconds)
			paused := 0.0
			if x.Paused {
				paused = 1
			}
			m.QueuePaused.WithLabelValues(x.Name).Set(paused)
			m.DLQSize.WithLabelValues(x.Name).Set(float64(x.Dead))
		}
		// As for the ordering keys below: a tenant whose fair backlog
		// emptied reads 0 rather than its last figure.
		now := map[[2]string]bool{}
		for _, x := range qs {
			for t, n := range x.PendingByTenant {
				now[[2]string{x.Name, t}] = true
				fairSeen[[2]string{x.Name, t}] = true
				m.QueueTenantPending.WithLabelValues(x.Name, t).Set(float64(n))
			}
		}
		for k := range fairSeen {
			if !now[k] {
				m.QueueTenantPending.WithLabelValues(k[0], k[1]).Set(0)
			}
		}
		if outbox != nil {
			ts, err := outbox.OutboxTenants(rctx)
			if err != nil {
				return
			}
			var n int64
			for _, t := range ts {
				k, err := outbox.OutboxSize(rctx, t)
				if err != nil {
					return
				}
				n += k
			}
			m.WebhookOutbox.Set(float64(n))
		}
		if ord, ok := outbox.(OrderingSource); ok {
			waiting, promoting, err := ord.OrderingBacklog(rctx)
			if err != nil {
				return
			}
			// A tenant whose lines emptied reads 0 (its count is
			// deleted from Redis), so that its series falls to 0
			// rather than keeping its last figure.
			for t := range orderingSeen {
				if _, ok := waiting[t]; !ok {
					m.OrderingWaiting.WithLabelValues(t).Set(0)
				}
			}
			for t, n := range waiting {
				orderingSeen[t] = true
				m.OrderingWaiting.WithLabelValues(t).Set(float64(n))
			}
			m.OrderingPromoting.Set(float64(promoting))
		}
		m.statsAt.Store(time.Now().UnixNano())
	}
	poll(ctx, every, read, nil)
}
