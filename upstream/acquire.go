package upstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// Reason is which limit held a call back: a label of the metrics.
type Reason string

// The reasons a call is held back.
const (
	ReasonConcurrency Reason = "concurrency"
	ReasonRate        Reason = "rate"
	ReasonPaused      Reason = "paused"
)

// HeldError says that a call may not be made now, why, and when to try
// again. The worker holds its job back for Wait without using an
// attempt.
type HeldError struct {
	Host   string
	Reason Reason
	// InUse is how many calls are in flight to the host; Limit is the
	// concurrency they are held to (the adaptive one when adaptive).
	InUse, Limit int
	// Max is the configured limit.
	Max Limit
	// Wait is when to try again: the host's next reservation (see the
	// upstream_acquire script).
	Wait time.Duration
}

func (e *HeldError) Error() string {
	switch e.Reason {
	case ReasonConcurrency:
		if e.Max.Adaptive && e.Limit < e.Max.Concurrency {
			return fmt.Sprintf("%s%s: concurrency %d in use (adaptive, at most %d)", HeldPrefix, e.Host, e.Limit, e.Max.Concurrency)
		}
		return fmt.Sprintf("%s%s: concurrency %d in use", HeldPrefix, e.Host, e.Limit)
	case ReasonRate:
		return fmt.Sprintf("%s%s: rate %s/s (burst %d) reached", HeldPrefix, e.Host, strconv.FormatFloat(e.Max.Rate, 'g', -1, 64), e.Max.Burst)
	default:
		return fmt.Sprintf("%s%s: paused by its Retry-After", HeldPrefix, e.Host)
	}
}

// HeldPrefix starts every HeldError's message.
const HeldPrefix = "waiting for upstream "

// Limited reports whether host has limits (and a job calling it asks
// Acquire for a slot).
func (l *Limiter) Limited(host string) bool {
	if l == nil {
		return false
	}
	_, ok := l.limit(host)
	return ok
}

// Outcome is how a call went, for Release.
type Outcome struct {
	// Called is false when no call was made after all.
	Called bool
	// Overload: the upstream answered 429 or 503, or the call timed out.
	Overload bool
	// Failed: the call failed otherwise (any other error answer, no
	// answer): its time says nothing of the upstream's speed.
	Failed bool
	// RetryAfter is the upstream's Retry-After on a 429 or 503: every call
	// to the host then waits that long (at most Config.MaxPause).
	RetryAfter time.Duration
}

// Lease is a slot taken for one call; Release gives it back. A nil Lease
// (a host without limits) does nothing.
type Lease struct {
	l       *Limiter
	host    string
	keys    keyspace.UpstreamKeys
	lim     Limit
	holder  string
	started time.Time

	mu    sync.Mutex
	timer *time.Timer
	done  bool
}

// Acquire takes a slot for a call to host by job, a name of the job's run
// that stays the same while it is held back (the worker gives its task's
// key). It returns a nil Lease and no error for a host without limits,
// without a round trip; a *HeldError when a limit holds the call back;
// another error when Redis could not be asked.
func (l *Limiter) Acquire(ctx context.Context, host, job string) (*Lease, error) {
	if l == nil {
		return nil, nil
	}
	lim, ok := l.limit(host)
	if !ok {
		return nil, nil
	}
	host = strings.ToLower(host)
	keys := keyspace.Upstream(l.cfg.Prefix, host)
	holder := l.id + ":" + strconv.FormatUint(l.seq.Add(1), 36)
	adaptive := "0"
	if lim.Adaptive {
		adaptive = "1"
	}
	res, err := keyspace.UpstreamAcquire.Run(ctx, l.rdb,
		[]string{keys.Leases, keys.TAT, keys.Pause, keys.State, keys.Held},
		holder, l.cfg.Lease.Milliseconds(), lim.Concurrency,
		strconv.FormatFloat(lim.Rate, 'g', -1, 64), lim.Burst, adaptive, job, l.cfg.MaxWait.Milliseconds(),
	).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("upstream %s limits: %w", host, err)
	}
	if len(res) < 3 {
		return nil, fmt.Errorf("upstream %s limits: script returned %d values", host, len(res))
	}
	if res[0] != 0 && len(res) == 4 {
		reason := map[int64]Reason{1: ReasonConcurrency, 2: ReasonRate, 3: ReasonPaused}[res[0]]
		held := &HeldError{Host: host, Reason: reason, InUse: int(res[1]), Limit: int(res[2]), Max: lim,
			Wait: time.Duration(res[3]) * time.Millisecond}
		if on := l.cfg.Hooks.Held; on != nil {
			on(host, reason, held.Wait)
		}
		return nil, held
	}
	ls := &Lease{l: l, host: host, keys: keys, lim: lim, holder: holder, started: time.Now()}
	if lim.Concurrency > 0 {
		if on := l.cfg.Hooks.Acquired; on != nil {
			on(host)
		}
		ls.mu.Lock()
		ls.timer = time.AfterFunc(l.cfg.Lease/3, ls.renew)
		ls.mu.Unlock()
	}
	return ls, nil
}

// renew extends the lease while the call runs, every third of a lease.
func (ls *Lease) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), ls.l.cfg.Lease/3)
	kept, err := keyspace.UpstreamRenew.Run(ctx, ls.l.rdb, []string{ls.keys.Leases}, ls.holder, ls.l.cfg.Lease.Milliseconds()).Int()
	cancel()
	switch {
	case err != nil:
		ls.l.log.Warn("could not renew an upstream slot; it ends by itself unless a later renewal goes through", "upstream", ls.host, "err", err)
	case kept == 0:
		ls.l.log.Warn("an upstream slot ended before its call did (its renewals were late): the call goes on beyond the limit", "upstream", ls.host)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !ls.done {
		ls.timer.Reset(ls.l.cfg.Lease / 3)
	}
}

// Release gives the slot back, telling the limiter how the call went. It
// never fails: a slot that cannot be given back ends with its lease.
//
// With Config.HandOff, a slot given back while jobs are held back for the
// host, their time still to come, no pause lasts and the rate (if any) has
// a token, names the first of them (as given to Acquire), earliest first:
// a job brought forward then takes the slot rather than leaving it empty
// until its time. Any of them may have taken a slot meanwhile, or be
// waiting in its worker.
func (ls *Lease) Release(o Outcome) (waiting []string) {
	if ls == nil {
		return nil
	}
	ls.mu.Lock()
	if ls.done {
		ls.mu.Unlock()
		return nil
	}
	ls.done = true
	if ls.timer != nil {
		ls.timer.Stop()
	}
	ls.mu.Unlock()
	l, lim := ls.l, ls.lim
	if lim.Concurrency > 0 {
		if on := l.cfg.Hooks.Released; on != nil {
			on(ls.host)
		}
	}
	pause := min(o.RetryAfter, l.cfg.MaxPause)
	if !o.Called || !o.Overload {
		pause = 0
	}
	if lim.Concurrency == 0 && pause == 0 {
		return nil // a rate alone: nothing to give back
	}
	ms, outcome := time.Since(ls.started).Milliseconds(), "ok"
	switch {
	case !o.Called:
		ms = -1
	case o.Overload:
		outcome = "overload"
	case o.Failed:
		outcome = "slow"
	}
	adaptive := "0"
	if lim.Adaptive {
		adaptive = "1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	handOff := 0
	if lim.Concurrency > 0 {
		handOff = l.cfg.HandOff
	}
	res, err := keyspace.UpstreamRelease.Run(ctx, l.rdb, []string{ls.keys.Leases, ls.keys.Pause, ls.keys.State, ls.keys.Held, ls.keys.TAT},
		ls.holder, ms, outcome, pause.Milliseconds(), lim.Concurrency, adaptive, handOff,
		strconv.FormatFloat(lim.Rate, 'g', -1, 64), lim.Burst).Slice()
	if err != nil || len(res) < 2 {
		l.log.Warn("could not give an upstream slot back; it ends with its lease", "upstream", ls.host, "lease", l.cfg.Lease, "err", err)
		return nil
	}
	for _, v := range res[2:] {
		if s, ok := v.(string); ok {
			waiting = append(waiting, s)
		}
	}
	if paused, _ := res[1].(int64); paused == 1 {
		l.log.Info("upstream asked for a pause (Retry-After): no calls to it until then", "upstream", ls.host, "pause", pause)
		if on := l.cfg.Hooks.Paused; on != nil {
			on(ls.host, pause)
		}
	}
	return waiting
}
