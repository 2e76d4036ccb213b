// Package breaker provides the circuit breakers of asyncgw: around Redis on
// the accept path, per upstream host in the workers, and (later) per
// webhook destination. It wraps sony/gobreaker and hides its types.
package breaker

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrOpen is returned, without running anything, while a breaker is open
// (or half-open and already probing).
var ErrOpen = errors.New("circuit breaker open")

// Config configures a Breaker.
type Config struct {
	// Name appears in logs and metrics. Required.
	Name string
	// Window is the rolling window failures are counted in. Defaults to 10s.
	Window time.Duration
	// MinRequests is how many calls the window needs before the failure
	// ratio can trip the breaker. Defaults to 5.
	MinRequests uint32
	// FailureRatio trips the breaker when reached. Defaults to 0.5.
	FailureRatio float64
	// ConsecutiveFailures trips the breaker on its own. Defaults to 5.
	ConsecutiveFailures uint32
	// OpenTimeout is how long the breaker stays open before it lets probes
	// through. Defaults to 1s.
	OpenTimeout time.Duration
	// Probes is how many calls a half-open breaker lets through; that many
	// successes close it. Defaults to 1.
	Probes uint32
	// IsFailure says which errors count against the breaker. Defaults to
	// every non-nil error.
	IsFailure func(error) bool
	// IsExcluded says which errors are not counted at all, neither as
	// failure nor as success (e.g. a call cut short by shutdown).
	IsExcluded func(error) bool
	// OnChange is called after each state change (for events and metrics).
	OnChange func(name string, from, to State)
}

// State is a breaker's state.
type State string

// Breaker states.
const (
	Closed   State = "closed"
	HalfOpen State = "half-open"
	Open     State = "open"
)

func (c Config) withDefaults() Config {
	c.Window = cmp.Or(c.Window, 10*time.Second)
	c.MinRequests = cmp.Or(c.MinRequests, 5)
	c.FailureRatio = cmp.Or(c.FailureRatio, 0.5)
	c.ConsecutiveFailures = cmp.Or(c.ConsecutiveFailures, 5)
	c.OpenTimeout = cmp.Or(c.OpenTimeout, time.Second)
	c.Probes = cmp.Or(c.Probes, 1)
	return c
}

func (c Config) validate() error {
	if c.Name == "" {
		return errors.New("breaker: name is required")
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		return fmt.Errorf("breaker %s: failure_ratio %v must be in (0, 1]", c.Name, c.FailureRatio)
	}
	return nil
}

// Breaker stops calls to something that keeps failing, and lets a few
// through again after a pause to see whether it is back.
type Breaker struct {
	cfg Config
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// New returns a closed Breaker. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Breaker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	isFailure := cfg.IsFailure
	if isFailure == nil {
		isFailure = func(err error) bool { return err != nil }
	}
	b := &Breaker{cfg: cfg}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         cfg.Name,
		MaxRequests:  cfg.Probes,
		Interval:     cfg.Window,
		BucketPeriod: cfg.Window / 10,
		Timeout:      cfg.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if c.ConsecutiveFailures >= cfg.ConsecutiveFailures {
				return true
			}
			return c.Requests >= cfg.MinRequests && float64(c.TotalFailures)/float64(c.Requests) >= cfg.FailureRatio
		},
		IsSuccessful: func(err error) bool { return !isFailure(err) },
		IsExcluded:   cfg.IsExcluded,
		OnStateChange: func(name string, from, to gobreaker.State) {
			logger.Warn("circuit breaker changed state", "breaker", name, "from", toState(from), "to", toState(to))
			if cfg.OnChange != nil {
				cfg.OnChange(name, toState(from), toState(to))
			}
		},
	})
	return b, nil
}

// Do runs fn unless the breaker is open, and counts its outcome. While open
// it returns an error wrapping ErrOpen at once.
func (b *Breaker) Do(fn func() error) error {
	done, err := b.Allow()
	if err != nil {
		return err
	}
	err = fn()
	done(err)
	return err
}

// Allow asks to make one call: while the breaker is open it returns an
// error wrapping ErrOpen; otherwise the caller makes the call and reports
// its outcome with done (exactly once).
func (b *Breaker) Allow() (done func(error), err error) {
	done, err = b.cb.Allow()
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%s: %w", b.cfg.Name, ErrOpen)
	}
	return done, err
}

// State is the breaker's current state.
func (b *Breaker) State() State { return toState(b.cb.State()) }

// Name is the breaker's name.
func (b *Breaker) Name() string { return b.cfg.Name }

// OpenTimeout is how long the breaker stays open.
func (b *Breaker) OpenTimeout() time.Duration { return b.cfg.OpenTimeout }

func toState(s gobreaker.State) State {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}
