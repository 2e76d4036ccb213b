// Package upstream keeps the limits of the upstream hosts that workers
// call: how many calls may be in flight to a host (concurrency), how many
// may start per second (rate and burst), a pause that a host asks for
// with Retry-After, and an adaptive concurrency that follows the host's
// latency and overloads. The limits are counted in Redis, so that they
// hold across every worker process of a deployment; each host's keys
// share one hash tag, so that a call touches one slot (Redis Cluster).
//
// A call takes a slot with one round trip (Acquire) and gives it back
// with one more (Lease.Release). A slot is a lease that ends by itself
// one Config.Lease (15s) after its holder last renewed it; the holder
// renews it every third of that while the call runs, so a worker killed
// mid-call frees its slots within one lease. A call refused is told when
// to come back (HeldError.Wait), spread out behind the calls held before
// it. A host without limits costs nothing: no round trip, no allocation.
package upstream

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is what one upstream host may be asked: its zero value limits
// nothing, but still makes the host honour Retry-After as a whole.
type Limit struct {
	// Concurrency caps the calls in flight to the host, across every
	// worker process. 0: no cap.
	Concurrency int `json:"concurrency,omitempty"`
	// Rate caps the calls started per second, across every worker
	// process. 0: no cap.
	Rate float64 `json:"rate,omitempty"`
	// Burst is how many calls may start at once after a quiet spell.
	// Defaults to max(1, Rate).
	Burst int `json:"burst,omitempty"`
	// Adaptive lets the effective concurrency follow the host within
	// Concurrency: it grows by one per round of calls answered no slower
	// than 1.5× the host's baseline latency, and halves on a 429, 503 or
	// timeout. Needs Concurrency.
	Adaptive bool `json:"adaptive,omitempty"`
}

// withDefaults fills Burst.
func (l Limit) withDefaults() Limit {
	if l.Rate > 0 && l.Burst == 0 {
		l.Burst = max(1, int(l.Rate))
	}
	return l
}

// Validate reports an error naming the field ("concurrency: …") when the
// limit cannot be kept.
func (l Limit) Validate() error {
	switch {
	case l.Concurrency < 0:
		return fmt.Errorf("concurrency: %d must be at least 1", l.Concurrency)
	case l.Concurrency > 100000:
		return fmt.Errorf("concurrency: %d must be at most 100000", l.Concurrency)
	case l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate > 1e6:
		return fmt.Errorf("rate: %v must be a positive number of calls per second, at most 1000000", l.Rate)
	case l.Burst < 0 || l.Burst > 1e6:
		return fmt.Errorf("burst: %d must be between 1 and 1000000", l.Burst)
	case l.Burst > 0 && l.Rate == 0:
		return errors.New("burst: needs rate")
	case l.Adaptive && l.Concurrency == 0:
		return errors.New("adaptive: needs concurrency (the most it adapts up to)")
	}
	return nil
}

// ValidateHost checks a limits key: a host or host:port as an upstream
// URL names it, without scheme, path or braces.
func ValidateHost(host string) error {
	if host == "" || strings.ContainsAny(host, "{}/?#@ \t\r\n") || strings.Contains(host, "://") {
		return errors.New("must be a host or host:port, as in the upstream URL (no scheme, path or braces)")
	}
	return nil
}

// DefaultLease is Config.Lease's default: the longest a killed worker
// keeps a slot.
const DefaultLease = 15 * time.Second

// Config configures a Limiter.
type Config struct {
	// Prefix starts every key. Defaults to "asyncgw".
	Prefix string
	// Limits are the limits by upstream host ("host" or "host:port",
	// matched without regard to case against the host of the called URL).
	// Defaults to none.
	Limits map[string]Limit
	// Lease is how long a slot outlives its holder's last renewal: the
	// longest a killed worker keeps a slot. The holder renews every
	// third of it. Defaults to 15s.
	Lease time.Duration
	// MaxWait is the furthest ahead a held-back call is told to come
	// back; with a longer backlog it comes back then and is told again.
	// Defaults to 1m.
	MaxWait time.Duration
	// MaxPause caps the pause a Retry-After puts on a whole host.
	// Defaults to 10m.
	MaxPause time.Duration
	// HandOff is how many of the jobs held back for a host a release of
	// one of its slots names, so that the caller can bring one forward to
	// take the slot (see Lease.Release). 0: none.
	HandOff int
	// Hooks are called on events worth counting.
	Hooks Hooks
}

// Hooks are called by a Limiter on events worth counting (metrics). Any
// may be nil; they must not block.
type Hooks struct {
	// Held is called when a call is held back, with why and for how long.
	Held func(host string, reason Reason, wait time.Duration)
	// Acquired is called when a call takes a slot, and Released when it
	// gives it back (for the slots this process holds).
	Acquired, Released func(host string)
	// Paused is called when an upstream's Retry-After pauses it.
	Paused func(host string, d time.Duration)
}

func (c Config) withDefaults() Config {
	c.Prefix = cmp.Or(c.Prefix, "asyncgw")
	c.Lease = cmp.Or(c.Lease, DefaultLease)
	c.MaxWait = cmp.Or(c.MaxWait, time.Minute)
	c.MaxPause = cmp.Or(c.MaxPause, 10*time.Minute)
	return c
}

func (c Config) validate() error {
	if strings.ContainsAny(c.Prefix, "{}\n ") {
		return fmt.Errorf("prefix %q: must not contain braces or spaces", c.Prefix)
	}
	if c.Lease < 300*time.Millisecond {
		return fmt.Errorf("lease %s: must be at least 300ms", c.Lease)
	}
	return validateLimits(c.Limits)
}

// validateLimits checks every host and limit, naming the bad one as
// `"host".field: …`.
func validateLimits(limits map[string]Limit) error {
	seen := make(map[string]string, len(limits))
	for _, host := range slices.Sorted(maps.Keys(limits)) {
		l := limits[host]
		if err := ValidateHost(host); err != nil {
			return fmt.Errorf("%q: %w", host, err)
		}
		if other, ok := seen[strings.ToLower(host)]; ok {
			return fmt.Errorf("%q: the same host as %q (case does not matter)", host, other)
		}
		seen[strings.ToLower(host)] = host
		if err := l.Validate(); err != nil {
			return fmt.Errorf("%q.%w", host, err)
		}
	}
	return nil
}

// Limiter keeps the limits of upstream hosts in Redis.
type Limiter struct {
	rdb redis.UniversalClient
	cfg Config
	log *slog.Logger
	// limits are by lower-cased host, replaced by SetLimits.
	limits atomic.Pointer[map[string]Limit]
	// id names this process's leases; seq tells its leases apart.
	id  string
	seq atomic.Uint64
}

// New returns a Limiter on rdb.
func New(rdb redis.UniversalClient, cfg Config, logger *slog.Logger) (*Limiter, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("upstreams: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	l := &Limiter{rdb: rdb, cfg: cfg, log: logger, id: hex.EncodeToString(b[:])}
	l.store(cfg.Limits)
	return l, nil
}

func (l *Limiter) store(limits map[string]Limit) {
	m := make(map[string]Limit, len(limits))
	for h, lim := range limits {
		m[strings.ToLower(h)] = lim.withDefaults()
	}
	l.limits.Store(&m)
}

// SetLimits replaces the limits for the calls that start from now on (a
// configuration reload). Calls in flight keep their slots.
func (l *Limiter) SetLimits(limits map[string]Limit) error {
	if err := validateLimits(limits); err != nil {
		return fmt.Errorf("upstreams: %w", err)
	}
	l.store(limits)
	return nil
}

// Limits returns the limits by host (lower-cased), with defaults filled.
func (l *Limiter) Limits() map[string]Limit { return maps.Clone(*l.limits.Load()) }

// LeaseTime is Config.Lease: the longest a killed worker keeps a slot.
func (l *Limiter) LeaseTime() time.Duration { return l.cfg.Lease }

// limit is host's limit, if it has one.
func (l *Limiter) limit(host string) (Limit, bool) {
	lim, ok := (*l.limits.Load())[strings.ToLower(host)]
	return lim, ok
}
