package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/upstream"
)

// Config configures a Worker.
type Config struct {
	// Queues maps queue names to their weights. Defaults to
	// {critical: 6, default: 3, low: 1}.
	Queues map[string]int
	// Concurrency is how many jobs run at once. Defaults to 50.
	Concurrency int
	// Fetchers is how many loops take tasks off the queues, sharing
	// Concurrency. A loop starts one job at a time, each after a Redis
	// round trip unless a batch taken for the worker holds its task (see
	// takeClient), which bounds how fast one loop can start jobs whatever
	// the concurrency. Defaults to one per 16 of Concurrency, at most 4.
	Fetchers int
	// TaskCheckInterval is how long an idle fetcher waits before looking at
	// the queues again. Defaults to 10ms (asynq's 1s costs ~1.3s p99 pickup).
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval is how often due retries and scheduled jobs
	// are moved to their queues, and how often an idle worker looks for
	// tasks that no event announced (see watch.go). Defaults to 100ms.
	DelayedTaskCheckInterval time.Duration
	// RecoverInterval is how often the worker takes back the tasks of
	// worker processes that died, once their lease has run out (see
	// recover.go): after a kill -9, a job runs again within 35s plus this.
	// Defaults to 5s.
	RecoverInterval time.Duration
	// ShutdownTimeout is how long Stop lets running jobs finish before they
	// are put back on their queues. Defaults to 10s.
	ShutdownTimeout time.Duration
	// OrphanGrace is how long a task waits for its record before it is
	// dropped: the remains of a failed accept by an earlier version, which
	// enqueued before recording. Defaults to 1m.
	OrphanGrace time.Duration
	// UpstreamBreaker configures the circuit breaker kept for each
	// upstream host (Name, IsFailure and IsExcluded are set by the
	// worker). While a host's breaker is open its jobs are not run: they
	// wait for the open timeout and come back without using an attempt.
	// Defaults: open after 10 failures in a row, or half of at least 20
	// calls failing within 1m; stay open 30s; 1 probe.
	UpstreamBreaker breaker.Config
	// Senders make the calls of jobs whose Request.Kind names them, such
	// as webhook deliveries. Each kind keeps breakers of its own, one per
	// destination host, set up like UpstreamBreaker.
	Senders map[string]Sender
	// Routes are the upstream call options of job types, by type name
	// (a route's name). A type not listed gets the defaults.
	Routes map[string]RouteOptions
	// Hooks are called on events worth counting (metrics).
	Hooks Hooks
	// Limits are the upstream hosts' limits (concurrency, rate,
	// Retry-After pauses), counted in Redis across every worker process.
	// A job a limit holds back waits without using an attempt (see
	// limits.go). Defaults to none: no host is limited.
	Limits *upstream.Limiter
	// Wake tells the worker when jobs are queued, so that an idle worker
	// looks at a queue it found empty at once rather than at its next
	// poll, every DelayedTaskCheckInterval (see watch.go): status.Hub's
	// Wake. Defaults to none (the poll alone).
	Wake WakeSource
}

// RouteOptions are what a worker adds to the upstream calls of one job
// type, from the configuration rather than from the stored job.
type RouteOptions struct {
	// Headers are set on every upstream call of the type, replacing the
	// client's headers of the same names. They are never stored nor logged.
	Headers map[string]string
	// MaxResponse is the most of an upstream answer that is kept; a larger
	// answer is recorded with its status, headers and size but without its
	// body. Defaults to DefaultMaxResponse.
	MaxResponse int64
}

// DefaultMaxResponse is the default RouteOptions.MaxResponse: 10 MiB.
const DefaultMaxResponse = 10 << 20

// Hooks are called by the worker on events worth counting. Any may be nil;
// they must not block.
type Hooks struct {
	// Ended is called once per job the worker ends: succeeded, failed or
	// dead (a cancel is recorded by the gateway, not here).
	Ended func(j *jobs.Job)
	// BreakerChanged is called when an upstream host's breaker changes
	// state (not for the destinations of Senders).
	BreakerChanged func(host string, from, to breaker.State)
	// SenderBreakerChanged is called when the breaker of a Sender's
	// destination changes state, with the request kind.
	SenderBreakerChanged func(kind string, from, to breaker.State)
	// Started is called when a job's first attempt starts (again after a
	// replay), with how long it waited since it was accepted or due.
	Started func(j *jobs.Job, wait time.Duration)
	// Attempted is called after each attempt that ran, with its outcome
	// (succeeded, failed, dead, or retrying when another follows) and
	// duration.
	Attempted func(j *jobs.Job, outcome jobs.State, d time.Duration)
}

// DefaultFetchers is the number of fetch loops for a concurrency when none
// is configured: one per 16, at least 1 and at most 4.
func DefaultFetchers(concurrency int) int { return min(4, max(1, concurrency/16)) }

// DefaultQueues are the queues and weights used when none are configured.
func DefaultQueues() map[string]int { return map[string]int{"critical": 6, "default": 3, "low": 1} }

func (c Config) withDefaults() Config {
	if len(c.Queues) == 0 {
		c.Queues = DefaultQueues()
	}
	c.Concurrency = cmp.Or(c.Concurrency, 50)
	c.Fetchers = cmp.Or(c.Fetchers, DefaultFetchers(c.Concurrency))
	c.TaskCheckInterval = cmp.Or(c.TaskCheckInterval, 10*time.Millisecond)
	c.DelayedTaskCheckInterval = cmp.Or(c.DelayedTaskCheckInterval, 100*time.Millisecond)
	c.RecoverInterval = cmp.Or(c.RecoverInterval, 5*time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 10*time.Second)
	c.OrphanGrace = cmp.Or(c.OrphanGrace, time.Minute)
	b := &c.UpstreamBreaker
	b.Name = "upstream"
	b.Window = cmp.Or(b.Window, time.Minute)
	b.MinRequests = cmp.Or(b.MinRequests, 20)
	b.ConsecutiveFailures = cmp.Or(b.ConsecutiveFailures, 10)
	b.OpenTimeout = cmp.Or(b.OpenTimeout, 30*time.Second)
	b.IsFailure = upstreamFailure
	b.IsExcluded = func(err error) bool { return errors.Is(err, errNotCalled) || errors.Is(err, context.Canceled) }
	return c
}

// upstreamFailure tells an upstream's breaker which outcomes count against
// the upstream: no answer, or 408, 429, 5xx. A final 4xx is the request's
// fault, not the upstream's.
func upstreamFailure(err error) bool {
	var ue *upstreamError
	return errors.As(err, &ue)
}

// probeFailed marks the error of a job whose call was a failed probe.
const probeFailed = "probe failed"

// errNotCalled reports to a breaker that the call it allowed was not made.
var errNotCalled = errors.New("upstream not called")

func (c Config) validate() error {
	for q, w := range c.Queues {
		if err := ValidateQueueName(q); err != nil {
			return err
		}
		if w < 1 {
			return fmt.Errorf("queues.%s: weight %d must be at least 1", q, w)
		}
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("worker.concurrency: %d must be at least 1", c.Concurrency)
	}
	if c.RecoverInterval < 0 {
		return fmt.Errorf("worker.recover_interval: %s must not be negative", c.RecoverInterval)
	}
	if c.Fetchers < 1 || c.Fetchers > c.Concurrency {
		return fmt.Errorf("worker.fetchers: %d must be between 1 and the concurrency (%d)", c.Fetchers, c.Concurrency)
	}
	return nil
}

// ValidateQueueName checks a queue name: 1–64 characters of letters,
// digits, '-', '_' and '.'.
func ValidateQueueName(q string) error {
	if !jobs.ValidName(q) {
		return fmt.Errorf("queues: invalid queue name %q (letters, digits, '-', '_', '.'; at most 64)", q)
	}
	return nil
}

// Sender makes the call of a job whose Request.Kind names it, in place of
// the plain forward of an upstream request. It returns the destination's
// answer and nil; an error made by RetryLater for what may be retried
// (which counts against the destination's breaker); or a Permanent error.
type Sender interface {
	Send(ctx context.Context, j *jobs.Job, req *jobs.Request) (*jobs.Result, error)
}

// HandlerFunc runs a job of a type registered by the embedding program. It
// gets the job's payload; what it returns becomes the job's result body. An
// error wrapped with Permanent fails the job at once; any other error is
// retried.
type HandlerFunc func(ctx context.Context, j *jobs.Job, payload []byte) (json.RawMessage, error)

// GiveUp marks an error that ends the job as dead at once: it goes to the
// dead-letter queue, to be replayed once what stopped it is fixed.
func GiveUp(err error) error { return &giveUpError{err} }

type giveUpError struct{ err error }

func (e *giveUpError) Error() string { return e.err.Error() }
func (e *giveUpError) Unwrap() error { return e.err }

// Permanent marks an error that retrying cannot fix.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Worker runs jobs: it takes tasks off the queues, replays each job's
// request against its upstream and records the outcome.
type Worker struct {
	cfg Config
	// srvs are the fetch loops: asynq servers sharing the concurrency,
	// which take tasks through take.
	srvs []*asynq.Server
	// queues are the asynq queues of cfg.Queues (one per priority and
	// shard) and their weights.
	queues   map[string]int
	take     *takeClient
	running  atomic.Int64 // jobs in process
	stopHold context.CancelFunc
	rec      Store
	http     *http.Client
	log      *slog.Logger
	breakers map[string]*breaker.Group // by Request.Kind ("" for upstreams)

	rampsMu sync.Mutex
	ramps   map[string]*ramp // by Request.Kind and host
	// limitWaits counts the jobs waiting in the worker for a slot of an
	// upstream's limits, and freed wakes them (limits.go).
	limitWaits atomic.Int64
	// insp brings held-back jobs forward to a freed slot (handOff).
	insp    *asynq.Inspector
	limitMu sync.Mutex
	freed   chan struct{}

	mu       sync.RWMutex
	handlers map[string]HandlerFunc
	// routes are cfg.Routes, replaced by SetRoutes.
	routes atomic.Pointer[map[string]RouteOptions]
}

// New returns a Worker on rdb recording in rec. client makes the
// upstream calls (nil: a client that follows no redirects).
func New(cfg Config, rdb redis.UniversalClient, rec Store, client *http.Client, logger *slog.Logger) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				MaxIdleConnsPerHost: cfg.Concurrency,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	w := &Worker{
		cfg: cfg, rec: rec, http: client, log: orDiscard(logger),
		handlers: map[string]HandlerFunc{}, ramps: map[string]*ramp{},
		breakers: map[string]*breaker.Group{},
	}
	w.SetRoutes(cfg.Routes)
	// Each queue is a priority, spread over the shards: one asynq queue
	// per shard, with the priority's weight.
	w.queues = map[string]int{}
	ks := rec.Space()
	for q, weight := range cfg.Queues {
		for _, aq := range ks.Queues(q) {
			w.queues[aq] = weight
		}
	}
	w.insp = asynq.NewInspectorFromRedisClient(rdb)
	w.take = newTakeClient(rdb, ks, func() int { return cfg.Concurrency - int(w.running.Load()) }, w.log)
	w.take.watch = newQueueWatch(ks, slices.Sorted(maps.Keys(cfg.Queues)), cfg.DelayedTaskCheckInterval, w.log)
	probes := int(cmp.Or(cfg.UpstreamBreaker.Probes, 1))
	kinds := []string{""}
	for k := range cfg.Senders {
		kinds = append(kinds, k)
	}
	for _, kind := range kinds {
		bc := cfg.UpstreamBreaker
		if kind != "" {
			bc.Name = kind
		}
		bc.OnChange = func(host string, from, to breaker.State) {
			if from == breaker.HalfOpen && to == breaker.Closed {
				w.ramp(kind, host).start(probes, cfg.Concurrency)
			}
			if on := cfg.Hooks.BreakerChanged; on != nil && kind == "" {
				on(host, from, to)
			}
			if on := cfg.Hooks.SenderBreakerChanged; on != nil && kind != "" {
				on(kind, from, to)
			}
		}
		g, err := breaker.NewGroup(bc, w.log)
		if err != nil {
			return nil, fmt.Errorf("%s breaker: %w", bc.Name, err)
		}
		w.breakers[kind] = g
	}
	for i := range cfg.Fetchers {
		// The concurrency, shared out as evenly as it goes.
		n := cfg.Concurrency / cfg.Fetchers
		if i < cfg.Concurrency%cfg.Fetchers {
			n++
		}
		w.srvs = append(w.srvs, asynq.NewServerFromRedisClient(w.take, asynq.Config{
			Concurrency:              n,
			Queues:                   w.queues,
			TaskCheckInterval:        cfg.TaskCheckInterval,
			DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			RetryDelayFunc:           func(_ int, err error, _ *asynq.Task) time.Duration { return retryDelay(err) },
			IsFailure:                isFailure,
			Logger:                   asynqLogger{w.log},
			LogLevel:                 asynq.WarnLevel,
		}))
	}
	return w, nil
}

// isFailure tells asynq whether an error uses up an attempt: only a failed
// upstream call does, never a crash or our own store being unreachable.
func isFailure(err error) bool {
	if errors.Is(err, asynq.ErrLeaseExpired) {
		return false
	}
	var un *uncounted
	return !errors.As(err, &un)
}

// Concurrency is how many jobs the worker runs at once.
func (w *Worker) Concurrency() int { return w.cfg.Concurrency }

// Handle registers a Go handler for a job type.
func (w *Worker) Handle(jobType string, h HandlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handlers[jobType] = h
}

// Start starts taking jobs off the queues.
func (w *Worker) Start(ctx context.Context) error {
	// asynq's inspector lists the queues in asynq's set; the accept script
	// does not add them to it (see submit.Client.RegisterQueues).
	names := make([]any, 0, len(w.queues))
	for q := range w.queues {
		names = append(names, q)
	}
	if err := w.take.SAdd(ctx, keyspace.AsynqQueuesKey, names...).Err(); err != nil {
		w.log.Warn("could not register the queues with asynq: its inspector will not list them until a task is retried", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go w.take.holdLoop(ctx)
	// One recoverer per process, not one per fetch loop (recover.go);
	// on asynq's public API only, asynq's recoverers do it.
	if !w.take.public {
		go w.recoverLoop(ctx)
		go w.take.watch.loop(ctx, w.take.UniversalClient, w.cfg.Wake)
	} else {
		go w.publicLoop(ctx)
	}
	w.stopHold = cancel
	for i, srv := range w.srvs {
		if err := srv.Start(asynq.HandlerFunc(w.process)); err != nil {
			w.take.stop(ctx)
			cancel()
			w.shutdown(w.srvs[:i])
			return fmt.Errorf("start worker: %w", err)
		}
	}
	return nil
}

// shutdown stops the fetch loops together, so that their grace periods
// run at the same time.
func (w *Worker) shutdown(srvs []*asynq.Server) {
	var wg sync.WaitGroup
	for _, srv := range srvs {
		wg.Go(srv.Shutdown)
	}
	wg.Wait()
}

// Stop stops fetching, lets running jobs finish for up to ShutdownTimeout
// and puts the unfinished ones back on their queues.
func (w *Worker) Stop(ctx context.Context) error {
	// Tasks taken but not started go back first, for other workers.
	w.take.stop(context.WithoutCancel(ctx))
	if w.stopHold != nil {
		w.stopHold()
	}
	w.shutdown(w.srvs)
	return nil
}

func (w *Worker) process(ctx context.Context, task *asynq.Task) error {
	w.running.Add(1)
	defer w.running.Add(-1)
	p, err := jobs.ParseTaskPayload(task.Payload())
	if err != nil {
		w.log.Error("drop task with unreadable payload", "err", err)
		return fmt.Errorf("decode task: %w", asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	attempt := retried + 1
	log := runLog{l: w.log, id: p.ID, tenant: p.Tenant, attempt: attempt}

	// A run starts from the record read with its task, if any; when the
	// record has moved on since (a cancel, a run held back meanwhile),
	// nothing was written and the run starts again from the record as it
	// is now.
	if j, req, ok := w.takenRecord(ctx, p); ok {
		err := w.attempt(ctx, log, p, attempt, j, req, true)
		if !errors.Is(err, errStale) {
			return err
		}
	}
	j, req, err := w.awaitRecord(ctx, p)
	if errors.Is(err, jobs.ErrNotFound) {
		if time.Since(time.UnixMilli(p.Created)) > w.cfg.OrphanGrace {
			log.Warn("drop task whose record never appeared (a failed accept)")
			return nil
		}
		return &uncounted{Delay: time.Second, Err: err}
	}
	if err != nil {
		return &uncounted{Delay: time.Second, Err: err}
	}
	return w.attempt(ctx, log, p, attempt, j, req, false)
}

// errStale: the record read with a task is no longer the job's; nothing
// was written or called, and the run is to start again from the record.
var errStale = errors.New("record read with the task is out of date")

// takenRecord is the job and request read with the task of ctx when it was
// taken (see takeClient); ok is false when none were, or they do not
// decode, or are not the job of p.
func (w *Worker) takenRecord(ctx context.Context, p jobs.TaskPayload) (*jobs.Job, *jobs.Request, bool) {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	rec, ok := w.take.record(keyspace.AsynqQueue(queue).TaskPrefix + id)
	if !ok || rec.seq == "" || rec.tenant != p.Tenant {
		return nil, nil, false
	}
	j, req := new(jobs.Job), new(jobs.Request)
	if jobs.DecodeJob([]byte(rec.doc), j) != nil || jobs.DecodeRequest([]byte(rec.req), req) != nil || j.ID != p.ID {
		return nil, nil, false
	}
	j.Tenant, j.Version = p.Tenant, rec.seq
	return j, req, true
}

// attempt runs one attempt of job j, read from its record now or, when
// taken, with its task: then the change to running is written only if the
// record is still as it was read, and errStale is returned otherwise,
// before the upstream is called.
func (w *Worker) attempt(ctx context.Context, log runLog, p jobs.TaskPayload, attempt int, j *jobs.Job, req *jobs.Request, taken bool) error {
	switch {
	case p.Cycle < j.Replays:
		return nil // a task of an earlier cycle
	case p.Cycle > j.Replays:
		// A replay whose record is not reopened yet, or never will be.
		if time.Since(time.UnixMilli(p.Created)) > w.cfg.OrphanGrace {
			log.Warn("drop replay task whose record was never reopened", "cycle", p.Cycle)
			return nil
		}
		return &uncounted{Delay: time.Second, Err: fmt.Errorf("replay %d not recorded yet", p.Cycle)}
	case j.State.Terminal():
		return nil // canceled, or a duplicate run of a finished job
	}
	log.typ = j.Type
	if attempt > j.MaxAttempts {
		// The last attempt failed but recording "dead" did not go through.
		return w.finish(ctx, log, j, jobs.StateDead, nil, "attempts exhausted")
	}
	if err := awaitDue(ctx, j); err != nil {
		return err
	}
	// An upstream whose breaker is open is not called: the job comes back
	// after the open timeout, without using an attempt.
	done := func(error) {}
	var probe *breaker.Breaker // set when this call tests a half-open breaker
	if req.URL != "" {
		host := upstreamHost(req.URL)
		group := w.breakers[req.Kind]
		if group == nil {
			return w.finish(ctx, log, j, jobs.StateFailed, nil, fmt.Sprintf("no sender for request kind %q", req.Kind))
		}
		b := group.Get(host)
		allowed, err := b.Allow()
		if err != nil {
			return w.holdBack(ctx, log, j, untilProbe(b), err)
		}
		// A failed probe is free once per attempt: the job was only picked
		// to test the upstream. Twice would let a job that always fails
		// keep a breaker flapping without ever using up its attempts.
		if b.State() == breaker.HalfOpen && !(j.Attempt == attempt && strings.Contains(j.Error, probeFailed)) {
			probe = b
		}
		// Just back from an outage: pace the calls (see ramp).
		r := w.ramp(req.Kind, host)
		if !r.acquire() {
			allowed(errNotCalled)
			return w.holdBack(ctx, log, j, 500*time.Millisecond+rand.N(time.Second),
				fmt.Errorf("upstream %s is recovering: calls are paced", host))
		}
		// The host's configured limits (limits.go): a slot, or a wait
		// without using an attempt. Nothing at all for a host without.
		lease, err := w.acquireLimit(ctx, host, j)
		if err != nil {
			allowed(errNotCalled)
			r.drop()
			return w.holdForLimit(ctx, log, j, err)
		}
		done = func(err error) {
			allowed(err)
			switch {
			case errors.Is(err, errNotCalled):
				r.drop()
			default:
				r.release(!upstreamFailure(err))
			}
			w.releaseLimit(lease, err)
		}
	}

	now := time.Now().UTC()
	var waited time.Duration // set on a cycle's first start
	advance := w.rec.Advance
	if taken {
		advance = w.rec.AdvanceAt
	}
	j, err := advance(ctx, j, func(j *jobs.Job) error {
		waited = 0
		if j.StartedAt == nil {
			waited = now.Sub(dueAt(j))
		}
		j.State, j.Attempt, j.UpdatedAt, j.NextAttemptAt = jobs.StateRunning, attempt, now, nil
		if j.StartedAt == nil {
			j.StartedAt = &now
		}
		return nil
	})
	if err != nil {
		done(errNotCalled)
	}
	switch {
	case taken && (errors.Is(err, jobs.ErrChanged) || errors.Is(err, jobs.ErrNotFound)):
		return errStale
	case errors.Is(err, jobs.ErrFinished) || errors.Is(err, jobs.ErrNotFound):
		return nil
	case err != nil:
		return &uncounted{Delay: time.Second, Err: err}
	}
	log.Debug("job running", "queue", j.Queue)
	if on := w.cfg.Hooks.Started; on != nil && j.StartedAt != nil && j.StartedAt.Equal(now) {
		on(j, max(waited, 0))
	}

	actx, span := startAttempt(ctx, j, req, now, waited)
	res, runErr := w.run(actx, j, req)
	endAttempt(span, res, runErr)
	done(runErr)
	outcome := attemptOutcome(runErr, attempt >= j.MaxAttempts)
	if on := w.cfg.Hooks.Attempted; on != nil && ctx.Err() == nil {
		on(j, outcome, time.Since(now))
	}
	if ctx.Err() != nil {
		// Canceled (DELETE): the record says so, and the task is done.
		// Shutting down: asynq puts the task back for another run.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		cur, err := w.rec.Get(rctx, p.Tenant, p.ID)
		cancel()
		if err == nil && cur.State.Terminal() {
			return nil
		}
		return &uncounted{Delay: 0, Err: fmt.Errorf("run interrupted: %w", ctx.Err())}
	}
	if probe != nil && upstreamFailure(runErr) {
		// The upstream is still down: a failed probe says so, and uses
		// up no more of the job's attempts than waiting would have.
		return w.holdBack(ctx, log, j, untilProbe(probe),
			fmt.Errorf("%s: %s (%v): %w", probe.Name(), probeFailed, runErr, breaker.ErrOpen))
	}
	switch outcome {
	case jobs.StateSucceeded:
		return w.finish(ctx, log, j, jobs.StateSucceeded, res, "")
	case jobs.StateFailed, jobs.StateDead:
		return w.finish(ctx, log, j, outcome, res, runErr.Error())
	}
	var ra time.Duration
	var ue *upstreamError
	if errors.As(runErr, &ue) {
		ra = ue.RetryAfter
	}
	delay := req.Backoff.Delay(attempt, ra)
	next := time.Now().Add(delay).UTC()
	_, err = w.rec.Advance(ctx, j, func(j *jobs.Job) error {
		j.State, j.UpdatedAt, j.NextAttemptAt = jobs.StateRetrying, time.Now().UTC(), &next
		j.Result, j.Error = res, runErr.Error()
		return nil
	})
	if errors.Is(err, jobs.ErrFinished) || errors.Is(err, jobs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return &uncounted{Delay: time.Second, Err: err}
	}
	log.Info("job will retry", "err", runErr, "delay", delay)
	return &retryError{Delay: delay, Err: runErr}
}

// dueAt is when a job became due to start: when it was accepted, when it
// was scheduled for, or when it was replayed, whichever is latest.
func dueAt(j *jobs.Job) time.Time {
	t := j.CreatedAt
	if j.NextAttemptAt != nil && j.NextAttemptAt.After(t) {
		t = *j.NextAttemptAt
	}
	if j.ReplayedAt != nil && j.ReplayedAt.After(t) {
		t = *j.ReplayedAt
	}
	return t
}

// attemptOutcome is what an attempt's error does to its job: it ends it
// (succeeded, failed or dead) or, as StateRetrying, calls for another.
func attemptOutcome(err error, last bool) jobs.State {
	switch {
	case err == nil:
		return jobs.StateSucceeded
	case IsPermanent(err):
		return jobs.StateFailed
	case IsGiveUp(err), last:
		return jobs.StateDead
	}
	return jobs.StateRetrying
}

// upstreamHost is the breaker key of an upstream URL: its host and port.
func upstreamHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return u.Host
}

// ramp returns the pacing of calls to a host by a kind of request.
func (w *Worker) ramp(kind, host string) *ramp {
	key := kind + " " + host
	w.rampsMu.Lock()
	defer w.rampsMu.Unlock()
	r := w.ramps[key]
	if r == nil {
		if len(w.ramps) >= 4096 {
			clear(w.ramps) // only a host in an active ramp loses its pacing
		}
		r = &ramp{}
		w.ramps[key] = r
	}
	return r
}

// untilProbe is how long a job waits for an open breaker: the open timeout,
// stretched by up to half at random.
func untilProbe(b *breaker.Breaker) time.Duration {
	open := b.OpenTimeout()
	return open + rand.N(open/2+1)
}

// notRun starts the error of a job held back (holdBack).
const notRun = "not run: "

// holdBack records that a job waits for its upstream (an open breaker, or
// calls paced after an outage) and hands the task back to asynq for delay
// without using an attempt. Callers add jitter to delay so that held-back
// jobs do not all come back at the same instant.
func (w *Worker) holdBack(ctx context.Context, log runLog, j *jobs.Job, delay time.Duration, cause error) error {
	next := time.Now().Add(delay).UTC()
	msg := fmt.Sprintf("%s%v; next try in %s", notRun, cause, delay.Round(time.Second))
	_, err := w.rec.Advance(ctx, j, func(j *jobs.Job) error {
		j.State, j.UpdatedAt, j.NextAttemptAt, j.Error = jobs.StateRetrying, time.Now().UTC(), &next, msg
		return nil
	})
	if errors.Is(err, jobs.ErrFinished) || errors.Is(err, jobs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return &uncounted{Delay: time.Second, Err: err}
	}
	log.Debug("job held back", "reason", cause, "delay", delay)
	return &uncounted{Delay: delay, Err: cause}
}

// awaitRecord reads the job's record and request, waiting briefly for
// them: a replay's task is enqueued just before its record is reopened,
// and a task may come from a version that enqueued before recording.
func (w *Worker) awaitRecord(ctx context.Context, p jobs.TaskPayload) (*jobs.Job, *jobs.Request, error) {
	wait := 2 * time.Millisecond
	deadline := time.Now().Add(2 * time.Second)
	for {
		j, req, err := w.rec.Load(ctx, p.Tenant, p.ID)
		if !errors.Is(err, jobs.ErrNotFound) || time.Now().After(deadline) {
			return j, req, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// maxEarly bounds how long awaitDue waits in the handler; a task that
// comes even earlier goes back to asynq until it is due.
const maxEarly = 2 * time.Second

// awaitDue waits until a scheduled job or a retry is due. asynq keeps
// scheduled and retry times in whole seconds (the score is Unix seconds), so
// it hands a task over up to a second before its time: a job delayed by 1s,
// or retried after a Retry-After of 1s, could otherwise run almost at once.
// A job held back by an upstream's limits (holdForLimit) does not wait:
// its time was a whole second already (heldDelay), it may have been
// brought forward to take a free slot (handOff), and the limits decide
// again. Other holds (a breaker, a ramp) are not rounded, and wait.
func awaitDue(ctx context.Context, j *jobs.Job) error {
	if j.NextAttemptAt == nil || strings.HasPrefix(j.Error, notRun+upstream.HeldPrefix) {
		return nil
	}
	early := time.Until(*j.NextAttemptAt)
	if early <= 0 {
		return nil
	}
	if early > maxEarly {
		return &uncounted{Delay: early, Err: fmt.Errorf("job is not due for %s", early)}
	}
	t := time.NewTimer(early)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return &uncounted{Delay: 0, Err: fmt.Errorf("wait until due: %w", ctx.Err())}
	case <-t.C:
		return nil
	}
}

// finish records that job last ended in state s. In a run of an asynq
// task, the same write retires the task, and asynq's Done of it is then
// answered without a round trip of its own (takeClient.retired).
func (w *Worker) finish(ctx context.Context, log runLog, last *jobs.Job, s jobs.State, res *jobs.Result, msg string) error {
	now := time.Now().UTC()
	var done *keyspace.TaskDone
	if id, ok := asynq.GetTaskID(ctx); ok && w.take.retiring() {
		queue, _ := asynq.GetQueueName(ctx)
		done = keyspace.NewTaskDone(queue, id, now)
	}
	j, retired, err := w.rec.Finish(ctx, last, done, func(j *jobs.Job) error {
		j.State, j.UpdatedAt, j.FinishedAt, j.NextAttemptAt = s, now, &now, nil
		if res != nil {
			j.Result = res
		}
		j.Error = msg
		return nil
	})
	if errors.Is(err, jobs.ErrFinished) || errors.Is(err, jobs.ErrNotFound) {
		return nil
	}
	if retired {
		w.take.retired(done.Key)
	}
	if errors.Is(err, jobs.ErrNotReplicated) && retired {
		// Written on the master with the task's retirement, but not
		// confirmed by the replicas: there is no task left to run again
		// here. A failover that loses the end loses the retirement with
		// it (replication keeps the master's order), and the new
		// master's recoverer runs the still active task again.
		log.Warn("job end not confirmed by replicas; a failover would run it again", "state", string(s), "err", err)
		return nil
	}
	if err != nil {
		// The outcome is not recorded (or, not confirmed by the
		// replicas, may be lost in a failover): run again rather than
		// lose it. The next run finds the end if it stood.
		return &uncounted{Delay: time.Second, Err: fmt.Errorf("record %s: %w", s, err)}
	}
	log.Info("job ended", "state", string(s), "err", msg)
	w.wakeLine(j)
	if w.cfg.Hooks.Ended != nil {
		w.cfg.Hooks.Ended(j)
	}
	return nil
}

// run performs one attempt: a Go handler for registered types, otherwise
// the stored HTTP request.
func (w *Worker) run(ctx context.Context, j *jobs.Job, req *jobs.Request) (*jobs.Result, error) {
	if req.URL == "" {
		w.mu.RLock()
		h := w.handlers[j.Type]
		w.mu.RUnlock()
		if h == nil {
			return nil, fmt.Errorf("no handler for job type %q", j.Type)
		}
		if req.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout))
			defer cancel()
		}
		body, err := h(ctx, j, req.Body)
		var res *jobs.Result
		if body != nil {
			if !json.Valid(body) {
				// It could not be stored in the job resource.
				return nil, Permanent(fmt.Errorf("handler for %q returned invalid JSON", j.Type))
			}
			res = &jobs.Result{Status: http.StatusOK, Headers: map[string]string{"Content-Type": "application/json"}, Body: body}
		}
		return res, err
	}
	if req.Kind != "" {
		return w.cfg.Senders[req.Kind].Send(ctx, j, req)
	}
	return forward(ctx, w.http, j, req, w.routeOptions(j.Type))
}

// SetRoutes replaces Config.Routes for the calls that start from now
// on (a configuration reload).
func (w *Worker) SetRoutes(routes map[string]RouteOptions) {
	routes = maps.Clone(routes)
	w.routes.Store(&routes)
}

// routeOptions are the call options of a job type, with defaults.
func (w *Worker) routeOptions(jobType string) RouteOptions {
	o := (*w.routes.Load())[jobType]
	o.MaxResponse = cmp.Or(o.MaxResponse, DefaultMaxResponse)
	return o
}

// IsPermanent reports whether err, returned by a Sender or handler, fails
// its job at once.
func IsPermanent(err error) bool {
	var perm *permanentError
	return errors.As(err, &perm)
}

// IsGiveUp reports whether err sends its job to the dead-letter queue at
// once.
func IsGiveUp(err error) bool {
	var g *giveUpError
	return errors.As(err, &g)
}
