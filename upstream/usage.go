package upstream

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// Usage is what one limited upstream host uses now, across every worker
// process.
type Usage struct {
	Host string `json:"host"`
	// Limit is the configured limit (burst filled in).
	Limit Limit `json:"limit"`
	// InUse counts the calls in flight (live slots).
	InUse int `json:"in_use"`
	// EffectiveConcurrency is the adaptive limit, when adaptive.
	EffectiveConcurrency int `json:"effective_concurrency,omitempty"`
	// Held counts the jobs held back by the limits, waiting to come back.
	Held int `json:"held"`
	// PausedUntil is when a Retry-After pause ends, while one lasts.
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	// LatencyMS is the recent call time (moving average), in ms; 0 before
	// any call with concurrency.
	LatencyMS int64 `json:"latency_ms"`
}

// Usage reads the use of every limited host, sorted by host: one round
// trip per host.
func (l *Limiter) Usage(ctx context.Context) ([]Usage, error) {
	if l == nil {
		return nil, nil
	}
	limits := l.Limits()
	hosts := make([]string, 0, len(limits))
	for h := range limits {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	out := make([]Usage, len(hosts))
	now := time.Now().UTC()
	for i, h := range hosts {
		k := keyspace.Upstream(l.cfg.Prefix, h)
		v, err := keyspace.UpstreamUsage.Run(ctx, l.rdb, []string{k.Leases, k.Pause, k.State, k.Held}).Int64Slice()
		if err == nil && len(v) != 6 {
			err = fmt.Errorf("script returned %d values", len(v))
		}
		if err != nil {
			return nil, fmt.Errorf("read upstream %s limits: %w", h, err)
		}
		u := Usage{Host: h, Limit: limits[h], InUse: int(v[0]), Held: int(v[1]), LatencyMS: v[4]}
		if u.Limit.Adaptive {
			u.EffectiveConcurrency = u.Limit.Concurrency
			if v[2] > 0 {
				u.EffectiveConcurrency = max(1, int(v[2]/1000))
			}
		}
		if v[3] > 0 {
			t := now.Add(time.Duration(v[3]) * time.Millisecond)
			u.PausedUntil = &t
		}
		out[i] = u
	}
	return out, nil
}
