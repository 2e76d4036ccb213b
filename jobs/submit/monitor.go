package submit

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"sync"
	"time"
)

// QueueStats is a recent reading of one queue.
type QueueStats struct {
	Queue string
	// Pending, Active, Scheduled and Retry count tasks in each asynq state.
	Pending, Active, Scheduled, Retry int
	// Depth is the work not yet done and due: pending + active + retry.
	Depth int
	// Latency is how long the oldest pending task has waited.
	Latency time.Duration
	// DrainRate is how many tasks per second the queue has been finishing
	// lately (smoothed).
	DrainRate float64
	Paused    bool
	// PendingByTenant counts, by tenant, the new jobs among Pending in
	// the queue's fair lines (nil when none).
	PendingByTenant map[string]int
	// At is when the reading was taken.
	At time.Time
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// Queues to watch. Required.
	Queues []string
	// Interval between readings. Defaults to 1s.
	Interval time.Duration
}

// drainWindow is the time constant of the drain rate's moving average.
const drainWindow = 5 * time.Second

// Monitor keeps recent statistics of the queues, read once per interval
// for everybody, so admission decisions cost no Redis call.
type Monitor struct {
	cfg  MonitorConfig
	jobs *Client
	log  *slog.Logger
	// fair: new jobs join fair lines (the client's store keeps them),
	// which EstimateWait counts as the take serves them.
	fair bool

	mu        sync.RWMutex
	stats     map[string]QueueStats
	processed map[string]int

	stop chan struct{}
	done chan struct{}
}

// NewMonitor returns a Monitor reading the queues through the client.
func NewMonitor(cfg MonitorConfig, c *Client, logger *slog.Logger) *Monitor {
	cfg.Interval = cmp.Or(cfg.Interval, time.Second)
	return &Monitor{
		cfg: cfg, jobs: c, log: orDiscard(logger), fair: c != nil && c.fairLines(),
		stats: map[string]QueueStats{}, processed: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Start takes a first reading and keeps reading until Stop.
func (m *Monitor) Start(context.Context) error {
	m.read()
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				m.read()
			case <-m.stop:
				return
			}
		}
	}()
	return nil
}

// Stop stops reading.
func (m *Monitor) Stop(context.Context) error {
	close(m.stop)
	<-m.done
	return nil
}

func (m *Monitor) read() {
	for _, q := range m.cfg.Queues {
		info, err := m.jobs.QueueInfo(context.Background(), q)
		if err != nil || !info.Known {
			// A queue that never had a task is empty.
			continue
		}
		now := time.Now()
		m.mu.Lock()
		prev, seen := m.stats[q]
		rate := prev.DrainRate
		if seen {
			if dt := now.Sub(prev.At).Seconds(); dt > 0 {
				done := float64(max(info.ProcessedTotal-m.processed[q], 0))
				// An exponential moving average over drainWindow, whatever
				// the interval between readings.
				alpha := 1 - math.Exp(-dt/drainWindow.Seconds())
				rate += alpha * (done/dt - rate)
			}
		}
		m.processed[q] = info.ProcessedTotal
		m.stats[q] = QueueStats{
			Queue: q, Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled, Retry: info.Retry,
			Depth:   info.Pending + info.Active + info.Retry,
			Latency: info.Latency, DrainRate: rate, Paused: info.Paused, PendingByTenant: info.PendingByTenant, At: now,
		}
		m.mu.Unlock()
	}
}

// Stats returns the latest reading of a queue (zero if none yet).
func (m *Monitor) Stats(queue string) QueueStats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.stats[queue]
}

// EstimateWait guesses how long a job tenant puts on queue now waits
// before it starts: the jobs ahead of it over the drain rate, or the
// oldest task's wait. In accept order that is the whole backlog. With
// fair lines, where tenants are taken in turn, it is the tenant's own
// waiting jobs and, of each other tenant's, as many again and one more at
// most; and as many of the pending list's again and one more, since takes
// alternate between the pending list and the fair line.
func (m *Monitor) EstimateWait(queue, tenant string) time.Duration {
	s := m.Stats(queue)
	ahead := s.Pending
	if m.fair {
		own := s.PendingByTenant[tenant]
		list, line := s.Pending, own
		for t, n := range s.PendingByTenant {
			list -= n
			if t != tenant {
				line += min(n, own+1)
			}
		}
		ahead = line + min(max(list, 0), line+1)
	}
	switch {
	case ahead <= 0:
		return 0
	case s.DrainRate > 0:
		return time.Duration(float64(ahead) / s.DrainRate * float64(time.Second))
	}
	return s.Latency
}

// RetryAfterSeconds rounds a wait up to whole seconds, at least 1 and at
// most limit.
func RetryAfterSeconds(d time.Duration, limit int) int {
	s := int(math.Ceil(d.Seconds()))
	return min(max(s, 1), limit)
}
