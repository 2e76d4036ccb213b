// Package webhook tells clients that their jobs changed state: it turns
// the events waiting in each tenant's outbox into delivery jobs
// (Dispatcher), and sends each delivery signed per the Standard Webhooks
// specification through an HTTP client that refuses private destinations
// at dial time (Sender, Policy).
//
// A delivery is a job of its own, of type "webhook" on its own queue: it
// is retried on a fixed schedule, behind a circuit breaker per destination
// host, ends in the dead-letter queue when its attempts run out, and can
// be replayed from there like any job. Its webhook-id is its job ID, the
// same for every attempt, so receivers can drop duplicates.
package webhook

import (
	"cmp"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
)

// JobType is the type of every delivery job; no route may take it.
const JobType = "webhook"

// Kind is the jobs.Request kind of deliveries (worker.Config.Senders).
const Kind = "webhook"

// DefaultSchedule is the delay before each retry of a delivery: the first
// try is at once, then after 5s, 5m, 30m, 2h, 5h, 10h and 10h (eight
// tries over about 28 hours), as the Standard Webhooks guidance suggests.
func DefaultSchedule() []time.Duration {
	return []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
}

// DefaultEvents are the states a callback hears of unless configured:
// the terminal ones.
func DefaultEvents() []jobs.State {
	return []jobs.State{jobs.StateSucceeded, jobs.StateFailed, jobs.StateDead, jobs.StateCanceled}
}

// Config configures webhooks.
type Config struct {
	// Policy says which destinations deliveries may reach.
	Policy Policy
	// Secrets sign the deliveries of tenants without secrets of their
	// own. Several sign at once during a rotation.
	Secrets []string
	// Events are the states whose events are sent, unless a tenant says
	// otherwise. Defaults to DefaultEvents.
	Events []jobs.State
	// Tenants holds each tenant's own settings, by name.
	Tenants map[string]Tenant
	// Queue is the queue of delivery jobs. Defaults to "webhooks".
	Queue string
	// Schedule is the delay before each retry; a delivery is tried
	// len(Schedule)+1 times. Defaults to DefaultSchedule.
	Schedule []time.Duration
	// Timeout bounds one delivery attempt. Defaults to 15s.
	Timeout time.Duration
	// PollInterval is how often the outboxes are read when idle.
	// Defaults to 100ms.
	PollInterval time.Duration
}

// Tenant is a tenant's own webhook settings. Empty fields take the
// defaults of Config.
type Tenant struct {
	// URL is where the tenant's jobs report when the request names no
	// callback URL. Empty: only jobs that name one report.
	URL string
	// Events are the states whose events are sent.
	Events []jobs.State
	// Secrets sign the tenant's deliveries.
	Secrets []string
}

func (c Config) withDefaults() Config {
	c.Queue = cmp.Or(c.Queue, "webhooks")
	if len(c.Events) == 0 {
		c.Events = DefaultEvents()
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule()
	}
	c.Timeout = cmp.Or(c.Timeout, 15*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, 100*time.Millisecond)
	return c
}

// Webhooks holds the checked configuration: what the gateway asks at
// accept time, and what the sender and dispatcher share. Reload replaces
// it while they run.
type Webhooks struct {
	cur atomic.Pointer[settings]
}

// settings are one checked configuration of Webhooks.
type settings struct {
	cfg     Config
	signers map[string]*Signer // by tenant; "" for the default
}

// New checks cfg and returns Webhooks.
func New(cfg Config) (*Webhooks, error) {
	st, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	w := &Webhooks{}
	w.cur.Store(st)
	return w, nil
}

// Reload makes cfg's tenants, secrets, events and retry schedule those of
// the deliveries made from now on. Queue, Policy, Timeout and PollInterval
// keep their running values: the worker's queues and the sender's HTTP
// client are built from them, so they change only with a restart. An
// invalid cfg is refused and the running configuration kept.
func (w *Webhooks) Reload(cfg Config) error {
	run := w.settings().cfg
	cfg.Queue, cfg.Policy, cfg.Timeout, cfg.PollInterval = run.Queue, run.Policy, run.Timeout, run.PollInterval
	st, err := newSettings(cfg)
	if err != nil {
		return err
	}
	w.cur.Store(st)
	return nil
}

func (w *Webhooks) settings() *settings { return w.cur.Load() }

func newSettings(cfg Config) (*settings, error) {
	cfg = cfg.withDefaults()
	w := &settings{cfg: cfg, signers: map[string]*Signer{}}
	if !jobs.ValidName(cfg.Queue) {
		return nil, fmt.Errorf("webhooks.queue: invalid queue name %q", cfg.Queue)
	}
	if err := checkEvents(cfg.Events); err != nil {
		return nil, fmt.Errorf("webhooks.events: %w", err)
	}
	for i, d := range cfg.Schedule {
		if d < 0 || d > 48*time.Hour {
			return nil, fmt.Errorf("webhooks.retry_schedule[%d]: %s must be between 0 and 48h", i, d)
		}
	}
	if len(cfg.Schedule) > 50 {
		return nil, errors.New("webhooks.retry_schedule: at most 50 retries")
	}
	if cfg.Timeout < time.Second || cfg.Timeout > 5*time.Minute {
		return nil, fmt.Errorf("webhooks.timeout: %s must be between 1s and 5m", cfg.Timeout)
	}
	if len(cfg.Secrets) > 0 {
		s, err := NewSigner(cfg.Secrets...)
		if err != nil {
			return nil, fmt.Errorf("webhooks.secrets: %w", err)
		}
		w.signers[""] = s
	}
	for name, t := range cfg.Tenants {
		at := fmt.Sprintf("tenant %s", name)
		if len(t.Secrets) > 0 {
			s, err := NewSigner(t.Secrets...)
			if err != nil {
				return nil, fmt.Errorf("%s: webhook secrets: %w", at, err)
			}
			w.signers[name] = s
		}
		if err := checkEvents(t.Events); err != nil {
			return nil, fmt.Errorf("%s: webhook_events: %w", at, err)
		}
		if t.URL != "" {
			if err := cfg.Policy.CheckURL(t.URL); err != nil {
				return nil, fmt.Errorf("%s: webhook_url: %w", at, err)
			}
			if w.signer(name) == nil {
				return nil, fmt.Errorf("%s: webhook_url needs a webhook secret (the tenant's or webhooks.secrets)", at)
			}
		}
	}
	return w, nil
}

func checkEvents(states []jobs.State) error {
	for _, s := range states {
		if !s.Valid() {
			return fmt.Errorf("%q is not a job state", s)
		}
	}
	return nil
}

// Queue is the queue of delivery jobs.
func (w *Webhooks) Queue() string { return w.settings().cfg.Queue }

// signer returns the tenant's signer, or the default one, or nil.
func (w *settings) signer(tenant string) *Signer {
	if s := w.signers[tenant]; s != nil {
		return s
	}
	return w.signers[""]
}

// CallbackError says why a callback URL was refused when a job was
// submitted; its message is fit to show the client.
type CallbackError struct{ Reason string }

func (e *CallbackError) Error() string { return e.Reason }

// Callback decides where a tenant's new job reports: the URL the request
// named (requested), else the tenant's own, else nowhere (""). It checks a
// requested URL against the policy and that the tenant can sign, and
// returns the states to report.
func (wh *Webhooks) Callback(tenant, requested string) (string, []jobs.State, error) {
	w := wh.settings()
	t := w.cfg.Tenants[tenant]
	url := requested
	if url == "" {
		url = t.URL
	} else if err := w.cfg.Policy.CheckURL(url); err != nil {
		return "", nil, &CallbackError{Reason: err.Error()}
	}
	if url == "" {
		return "", nil, nil
	}
	if w.signer(tenant) == nil {
		return "", nil, &CallbackError{Reason: "webhooks are not set up for this tenant (no signing secret is configured)"}
	}
	events := t.Events
	if len(events) == 0 {
		events = w.cfg.Events
	}
	return url, events, nil
}
