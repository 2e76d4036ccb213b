// Package admin holds the operator's side of asyncgw, shared by the admin
// API (gateway) and the `asyncgw dlq` and `asyncgw queues` commands: queue
// statistics, pausing and resuming queues, the dead-letter queue
// (listing, replaying one job or many at a set rate, deleting), and the
// upstream hosts' limits and their use.
package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/upstream"
)

// Errors callers branch on.
var (
	// ErrUnknownQueue: the queue is neither configured nor known to Redis.
	ErrUnknownQueue = errors.New("unknown queue")
	// ErrNotFound: the job is not in the dead-letter queue.
	ErrNotFound = status.ErrNotFound
	// ErrBusy: the job's previous cycle is still being cleared; try again.
	ErrBusy = errors.New("the job's last run is still being cleared away; try again in a moment")
)

// Hooks are called on operator actions, for metrics. Any may be nil.
type Hooks struct {
	// Replayed is called once per job replayed from the dead-letter queue.
	Replayed func(queue string)
}

// Service carries out operator actions on one Redis.
type Service struct {
	store  *status.Store
	jobs   *submit.Client
	queues []string
	hooks  Hooks
	log    *slog.Logger
	// upstreams reads the upstream hosts' limits (upstreams.go).
	upstreams *upstream.Limiter
}

// New returns a Service. queues are the configured queues, reported even
// while asynq has never seen them.
func New(store *status.Store, client *submit.Client, queues []string, hooks Hooks, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, jobs: client, queues: queues, hooks: hooks, log: logger}
}

// Jobs is the client the service acts through.
func (s *Service) Jobs() *submit.Client { return s.jobs }

// Queue is the state of one queue.
type Queue struct {
	Name string `json:"name"`
	// Pending, Scheduled, Retry and Active count tasks in each asynq state.
	Pending   int `json:"pending"`
	Scheduled int `json:"scheduled"`
	Retry     int `json:"retry"`
	Active    int `json:"active"`
	// Dead counts the queue's jobs in the dead-letter queue.
	Dead int64 `json:"dead"`
	// LatencySeconds is how long the oldest pending job has waited.
	LatencySeconds float64 `json:"latency_seconds"`
	Paused         bool    `json:"paused"`
	// PendingByTenant counts, by tenant, the new jobs among Pending that
	// wait in the queue's fair lines, where tenants are taken in turn
	// (status/fair.go); tenants with none are left out.
	PendingByTenant map[string]int `json:"pending_by_tenant,omitempty"`
}

// Queues reports every configured queue, and any other queue Redis holds
// jobs for, by name.
func (s *Service) Queues(ctx context.Context) ([]Queue, error) {
	known, err := s.jobs.KnownQueues(ctx)
	if err != nil {
		return nil, err
	}
	names := slices.Clone(s.queues)
	for _, q := range known {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	dead, err := s.store.DeadLetterCounts(ctx)
	if err != nil {
		return nil, err
	}
	for q := range dead {
		if !slices.Contains(names, q) {
			names = append(names, q)
		}
	}
	slices.Sort(names)
	out := make([]Queue, 0, len(names))
	for _, name := range names {
		q := Queue{Name: name, Dead: dead[name]}
		info, err := s.jobs.QueueInfo(ctx, name)
		if err != nil {
			return nil, err
		}
		q.Pending, q.Scheduled, q.Retry, q.Active = info.Pending, info.Scheduled, info.Retry, info.Active
		q.LatencySeconds = math.Round(info.Latency.Seconds()*1000) / 1000
		q.Paused, q.PendingByTenant = info.Paused, info.PendingByTenant
		out = append(out, q)
	}
	return out, nil
}

// SetPaused pauses or resumes a queue: while paused, workers take no jobs
// from it, and jobs are still accepted into it. It is idempotent.
func (s *Service) SetPaused(ctx context.Context, queue string, paused bool) (Queue, error) {
	known, err := s.jobs.KnownQueues(ctx)
	if err != nil {
		return Queue{}, err
	}
	if !slices.Contains(s.queues, queue) && !slices.Contains(known, queue) {
		return Queue{}, fmt.Errorf("%w %q", ErrUnknownQueue, queue)
	}
	if err := s.jobs.SetPaused(ctx, queue, paused); err != nil {
		return Queue{}, err
	}
	s.log.Info("queue paused state changed", "queue", queue, "paused", paused)
	all, err := s.Queues(ctx)
	if err != nil {
		return Queue{}, err
	}
	for _, q := range all {
		if q.Name == queue {
			return q, nil
		}
	}
	return Queue{Name: queue, Paused: paused}, nil
}

// DeadLetters returns a page of the dead-letter queue (see
// status.Store.DeadLetters); limit is 1–1000, default 100.
func (s *Service) DeadLetters(ctx context.Context, f status.DLQFilter, cursor string, limit int) ([]status.DeadLetter, string, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	return s.store.DeadLetters(ctx, f, cursor, limit, scanBudget)
}

// scanBudget bounds the entries one page request looks at, so that a
// narrow filter over a long dead-letter queue answers in bounded time.
const scanBudget = 20000

// DeadLetter returns one dead letter by job ID.
func (s *Service) DeadLetter(ctx context.Context, id string) (*status.DeadLetter, error) {
	return s.store.FindDeadLetter(ctx, id)
}

// Replay puts one dead job back on its queue now, as a new cycle of the
// same job.
func (s *Service) Replay(ctx context.Context, id string) (*jobs.Job, error) {
	d, err := s.store.FindDeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.replay(ctx, d, time.Time{})
}

func (s *Service) replay(ctx context.Context, d *status.DeadLetter, at time.Time) (*jobs.Job, error) {
	j, err := s.jobs.Replay(ctx, d.Tenant, d.Job.ID, at)
	switch {
	case errors.Is(err, jobs.ErrNotDead):
		return nil, ErrNotFound
	case errors.Is(err, jobs.ErrExists):
		return nil, ErrBusy
	case err != nil:
		return nil, err
	}
	s.log.Info("job replayed from the dead-letter queue", "job_id", j.ID, "tenant", d.Tenant, "queue", j.Queue, "replays", j.Replays)
	if s.hooks.Replayed != nil {
		s.hooks.Replayed(j.Queue)
	}
	return j, nil
}

// Delete takes a job out of the dead-letter queue for good; its record
// stays readable as dead for the records' retention.
func (s *Service) Delete(ctx context.Context, id string) error {
	d, err := s.store.FindDeadLetter(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDeadLetter(ctx, d.Tenant, d.Job.Queue, id); err != nil {
		return err
	}
	s.log.Info("job deleted from the dead-letter queue", "job_id", id, "tenant", d.Tenant, "queue", d.Job.Queue)
	return nil
}

// Bulk replay limits.
const (
	// DefaultRate is the replay rate when none is given, in jobs per second.
	DefaultRate = 50.0
	// MaxBulk is the most jobs one bulk replay puts back.
	MaxBulk = 10000
	// sampleSize is how many matching jobs a bulk answer shows.
	sampleSize = 10
	// maxFailures is how many failed replays a bulk answer lists.
	maxFailures = 100
)

// BulkReplay asks to replay every dead letter matching Filter.
type BulkReplay struct {
	Filter status.DLQFilter
	// DryRun only counts and samples.
	DryRun bool
	// Rate spreads the replayed jobs out: at most Rate of them become due
	// per second. Defaults to DefaultRate.
	Rate float64
	// Limit caps how many jobs this call replays (1–MaxBulk, default
	// MaxBulk); call again for the rest.
	Limit int
}

// BulkResult says what a bulk replay matched and did.
type BulkResult struct {
	// Matched counts the dead letters that matched, whether replayed or not.
	Matched int `json:"matched"`
	// Sample shows the first few matches, oldest first.
	Sample []status.DeadLetter `json:"sample"`
	// DryRun echoes the request.
	DryRun bool `json:"dry_run"`
	// Replayed counts the jobs put back on their queues.
	Replayed int `json:"replayed"`
	// Skipped counts matches that left the dead-letter queue meanwhile.
	Skipped int `json:"skipped"`
	// Remaining counts matches left for another call (over Limit).
	Remaining int `json:"remaining"`
	// FailedCount counts replays that could not be made; Failed lists the
	// first 100 of them.
	FailedCount int       `json:"failed_count"`
	Failed      []Failure `json:"failed"`
	// Rate is the rate used, in jobs per second.
	Rate float64 `json:"rate"`
	// LastDueAt is when the last replayed job becomes due.
	LastDueAt *time.Time `json:"last_due_at,omitempty"`
}

// Failure is one replay that could not be made.
type Failure struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// Validate checks a bulk replay request.
func (b BulkReplay) Validate() error {
	if b.Rate < 0 || b.Rate > 100000 || math.IsNaN(b.Rate) {
		return fmt.Errorf("rate %v: must be between 0 (default %v) and 100000 jobs per second", b.Rate, DefaultRate)
	}
	if b.Limit < 0 || b.Limit > MaxBulk {
		return fmt.Errorf("limit %d: must be from 1 to %d (0: %d)", b.Limit, MaxBulk, MaxBulk)
	}
	return nil
}

// ReplayMatching replays the dead letters matching the request, oldest
// first. Only jobs that died before the call are considered, so a
// replayed job that dies again during the call is not replayed twice.
// The first Rate jobs are due at once; the next Rate at the second
// boundary after the next one, and so on (asynq schedules in whole
// seconds, so a boundary less than a second away would let two batches
// through in one second), so that the upstream sees at most Rate replays
// per second. The schedule lives in Redis: it survives restarts.
func (s *Service) ReplayMatching(ctx context.Context, b BulkReplay) (*BulkResult, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	b.Rate = cmp.Or(b.Rate, DefaultRate)
	b.Limit = cmp.Or(b.Limit, MaxBulk)
	start := time.Now()
	res := &BulkResult{DryRun: b.DryRun, Rate: b.Rate, Failed: []Failure{}}
	m, err := s.matchDead(ctx, b.Filter, start, b.DryRun, b.Limit)
	if err != nil {
		return nil, err
	}
	res.Matched, res.Sample = m.matched, m.sample
	if b.DryRun {
		return res, nil
	}
	todo := m.todo
	res.Remaining = res.Matched - len(todo)
	// The first scheduled batch is due at least one whole second after the
	// first: at the boundary after the coming one.
	base := start.Truncate(time.Second).Add(time.Second)
	for i := range todo {
		var at time.Time
		if sec := math.Floor(float64(i) / b.Rate); sec >= 1 {
			at = base.Add(time.Duration(sec) * time.Second)
		}
		_, err := s.replay(ctx, &todo[i], at)
		switch {
		case errors.Is(err, ErrNotFound):
			res.Skipped++
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.FailedCount++
			if len(res.Failed) < maxFailures {
				res.Failed = append(res.Failed, Failure{ID: todo[i].Job.ID, Error: err.Error()})
			}
		default:
			res.Replayed++
			due := cmp.Or(at, time.Now()).UTC()
			res.LastDueAt = &due
		}
	}
	s.log.Info("bulk replay from the dead-letter queue", "matched", res.Matched, "replayed", res.Replayed,
		"skipped", res.Skipped, "failed", res.FailedCount, "rate", b.Rate)
	return res, nil
}

// OrderingLine is the line of tenant's jobs with ordering key key: its
// length and its first limit jobs, head first.
func (s *Service) OrderingLine(ctx context.Context, tenant, key string, limit int) (int64, []*jobs.Job, error) {
	return s.store.OrderingLine(ctx, tenant, key, limit)
}

// DisabledEndpoints lists the webhook endpoints that answered 410 Gone, of
// one tenant or (tenant "") of all.
func (s *Service) DisabledEndpoints(ctx context.Context, tenant string) ([]status.DisabledEndpoint, error) {
	return s.store.DisabledEndpoints(ctx, tenant)
}

// EnableEndpoint lets webhook deliveries to url go out again for tenant.
// It reports whether the endpoint was disabled.
func (s *Service) EnableEndpoint(ctx context.Context, tenant, url string) (bool, error) {
	ok, err := s.store.EnableEndpoint(ctx, tenant, url)
	if ok {
		// Not the URL: it may carry the receiver's token.
		s.log.Info("webhook endpoint enabled", "tenant", tenant)
	}
	return ok, err
}
