// Package status keeps the record of every job and its event log in Redis,
// and fans state changes out to the subscribers of this process through one
// Redis subscription (Hub).
//
// What it keeps in Redis, and every script it runs, is laid out by
// internal/keyspace: keys sharded by hash tag, so that every script call
// touches one slot.
package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/autopipe"
	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such job for this tenant (or it expired).
	ErrNotFound = jobs.ErrNotFound
	// ErrExists: a job with this ID already exists.
	ErrExists = jobs.ErrExists
	// ErrFinished: the job is in a terminal state and the change was refused.
	ErrFinished = jobs.ErrFinished
	// errConflict: the record changed between read and write; retry.
	errConflict = errors.New("job changed concurrently")
)

// Config configures a Store.
type Config struct {
	// Prefix starts every key. Defaults to "asyncgw".
	Prefix string
	// Shards is how many shards the keys are spread over (see
	// internal/keyspace); it cannot change while Redis holds jobs.
	// Defaults to 1.
	Shards int
	// Retention is how long a record and its events are kept after the job
	// ends, and after a dead job is deleted from the dead-letter queue.
	// Defaults to 7 days.
	Retention time.Duration
	// DeadRetention is how long a dead job stays in the dead-letter queue.
	// Zero (the default) keeps it until it is replayed or deleted.
	DeadRetention time.Duration
	// StreamMaxLen bounds each tenant's event stream (approximately), which
	// is the window GET /v1/events can resume within. Defaults to 10000.
	StreamMaxLen int64
	// JobIndexRetention is how long after its acceptance a job stays in
	// the job index that lists jobs (ListJobs); a job whose record has
	// expired leaves it sooner, when a listing comes across it. Defaults
	// to twice Retention.
	JobIndexRetention time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	// Defaults to 24h.
	IdempotencyTTL time.Duration
	// MinReplicasAck is how many replicas must confirm a write (Redis
	// WAIT) before Accept and every state change return: 0 (the default)
	// waits for none and sends no WAIT. Concurrent writes share one WAIT.
	MinReplicasAck int
	// ReplicaAckTimeout bounds that wait; a write not confirmed in time
	// returns an error wrapping jobs.ErrNotReplicated (the write itself
	// stands). Defaults to 200ms when MinReplicasAck is set.
	ReplicaAckTimeout time.Duration
	// ReplicaAckObserver, if set, is told the outcome and duration of
	// every wait for replicas.
	ReplicaAckObserver ReplicaAckObserver
	// Failovers, if set, tells when a failover is under way; a wait for
	// replicas that it overlaps is not a confirmation (see FailoverFence).
	Failovers FailoverFence
	// FIFO puts every new job due now on its queue's pending list, in
	// accept order whatever its tenant. Defaults to false: on the direct
	// path (keyspace.AsynqDirect) such a job joins its queue's fair line
	// (keyspace.FairKeys), where each tenant's jobs keep their order but
	// the tenants are taken in turn, so that one tenant's backlog does
	// not hold up another's new jobs.
	FIFO bool
	// TenantWeights gives tenants more turns in the fair lines: a tenant
	// of weight w is taken w times for each turn of a tenant of weight 1
	// while both have jobs waiting. A tenant not listed has weight 1.
	TenantWeights map[string]int
	// PlainPubSub publishes events with PUBLISH, and has hubs SUBSCRIBE,
	// for a Redis without sharded pub/sub (the embedded demo Redis).
	// Defaults to false: SPUBLISH and SSUBSCRIBE (Redis 7), which on a
	// cluster reach only the master of the event's shard.
	PlainPubSub bool
}

// MaxTenantWeight is the largest of Config.TenantWeights.
const MaxTenantWeight = 100

// DefaultReplicaAckTimeout is ReplicaAckTimeout's default, and
// MaxReplicaAckTimeout its largest value.
const (
	DefaultReplicaAckTimeout = 200 * time.Millisecond
	MaxReplicaAckTimeout     = 10 * time.Second
)

func (c Config) withDefaults() Config {
	c.Prefix = cmp.Or(c.Prefix, "asyncgw")
	c.Shards = cmp.Or(c.Shards, 1)
	c.Retention = cmp.Or(c.Retention, 7*24*time.Hour)
	c.StreamMaxLen = cmp.Or(c.StreamMaxLen, 10000)
	c.JobIndexRetention = cmp.Or(c.JobIndexRetention, 2*c.Retention)
	c.IdempotencyTTL = cmp.Or(c.IdempotencyTTL, 24*time.Hour)
	if c.MinReplicasAck > 0 {
		c.ReplicaAckTimeout = cmp.Or(c.ReplicaAckTimeout, DefaultReplicaAckTimeout)
	}
	return c
}

func (c Config) validate() error {
	if c.Retention < time.Minute {
		return fmt.Errorf("retention %s: must be at least 1m", c.Retention)
	}
	if c.DeadRetention != 0 && c.DeadRetention < time.Minute {
		return fmt.Errorf("dead retention %s: must be at least 1m (or 0: until replayed or deleted)", c.DeadRetention)
	}
	if c.JobIndexRetention < time.Minute {
		return fmt.Errorf("job index retention %s: must be at least 1m", c.JobIndexRetention)
	}
	if c.IdempotencyTTL < time.Minute {
		return fmt.Errorf("idempotency ttl %s: must be at least 1m", c.IdempotencyTTL)
	}
	for t, w := range c.TenantWeights {
		if w < 1 || w > MaxTenantWeight {
			return fmt.Errorf("tenant %s: weight %d must be from 1 to %d", t, w, MaxTenantWeight)
		}
	}
	if c.StreamMaxLen < 1 {
		return fmt.Errorf("stream_max_len %d: must be positive", c.StreamMaxLen)
	}
	if c.MinReplicasAck < 0 {
		return fmt.Errorf("min_replicas_ack %d: must be 0 or more", c.MinReplicasAck)
	}
	if c.MinReplicasAck > 0 && (c.ReplicaAckTimeout < time.Millisecond || c.ReplicaAckTimeout > MaxReplicaAckTimeout) {
		return fmt.Errorf("replica_ack_timeout %s: must be from 1ms to %s", c.ReplicaAckTimeout, MaxReplicaAckTimeout)
	}
	return nil
}

// Store reads and writes job records and event logs.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
	ks  *keyspace.Space
	// publish is the command that publishes events; streamMaxLen and
	// idemTTL are the Accept arguments that never change, made once.
	publish               string
	streamMaxLen, idemTTL any
	// indexHorizon is JobIndexRetention in ms, the accept's last argument.
	indexHorizon any
	// outboxes are the tenants this Store has put in the outbox set.
	outboxes sync.Map
	// indexed are the tenants this Store has put in the job index set.
	indexed sync.Map
	// outboxTurn turns the shard ClaimOutbox serves first.
	outboxTurn atomic.Uint64
	// accepts, updates and loads carry concurrent Accepts, state changes
	// and Loads to Redis in shared pipelines.
	accepts, updates, loads *autopipe.Pipe
	// acks confirms writes on replicas; nil when MinReplicasAck is 0.
	acks *replicaAcks
}

// fairStep is how far a job of tenant moves its virtual start in a fair
// line: 1/weight (keyspace.FairKeys).
func (s *Store) fairStep(tenant string) string {
	w := max(1, s.cfg.TenantWeights[tenant])
	return strconv.FormatFloat(1/float64(w), 'g', -1, 64)
}

// FairLines reports whether new jobs due now join their queue's fair
// line (see Config.FIFO).
func (s *Store) FairLines() bool { return s.fair() }

// fair reports whether new jobs due now join their queue's fair line
// (see Config.FIFO): only on the direct path, as only the worker's own
// take reads the lines.
func (s *Store) fair() bool { return !s.cfg.FIFO && keyspace.AsynqDirect() }

// Accepts in flight share pipelines, and so do state changes and the
// workers' reads: up to pipeSlots pipelines of each at once, each of up to
// pipeBatch commands.
const pipeSlots, pipeBatch = 4, 64

// New returns a Store on rdb.
func New(cfg Config, rdb redis.UniversalClient) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("status config: %w", err)
	}
	ks, err := keyspace.New(cfg.Prefix, cfg.Shards)
	if err != nil {
		return nil, fmt.Errorf("status config: %w", err)
	}
	s := &Store{
		rdb: rdb, cfg: cfg, ks: ks, publish: "SPUBLISH",
		streamMaxLen: cfg.StreamMaxLen, idemTTL: int64(cfg.IdempotencyTTL / time.Second),
		accepts: autopipe.New(rdb, pipeSlots, pipeBatch),
		updates: autopipe.New(rdb, pipeSlots, pipeBatch),
		loads:   autopipe.New(rdb, pipeSlots, pipeBatch),
	}
	s.indexHorizon = cfg.JobIndexRetention.Milliseconds()
	if cfg.PlainPubSub {
		s.publish = "PUBLISH"
	}
	if cfg.MinReplicasAck > 0 {
		s.acks = newReplicaAcks(rdb, ks, ackConfig{
			min: cfg.MinReplicasAck, timeout: cfg.ReplicaAckTimeout, observe: cfg.ReplicaAckObserver, fence: cfg.Failovers,
		})
	}
	return s, nil
}

// EventChannel is the pub/sub channel on which the events of every job on
// shard are published, tenant named in each message (see Hub).
func (s *Store) EventChannel(shard int) string { return s.ks.EventChannel(shard) }

// Channel is the deployment's untagged channel name: nothing is published
// on it; a Hub names its probe channel after it.
func (s *Store) Channel() string { return s.ks.Channel() }

// Sharded reports whether events are published with SPUBLISH (else PUBLISH;
// see Config.PlainPubSub).
func (s *Store) Sharded() bool { return !s.cfg.PlainPubSub }

// ValidTenant reports whether name can be used as a tenant: 1–64 characters
// of letters, digits, '-', '_' and '.'.
func ValidTenant(name string) bool { return jobs.ValidName(name) }

// Space is the layout of the store's keys.
func (s *Store) Space() *keyspace.Space { return s.ks }

// The record is a hash: t (the tenant), doc (the job resource as JSON),
// req (the stored request), state, seq (events so far); see the accept and
// update scripts (internal/keyspace/lua) for how events are kept,
// published and sent as webhooks.

// eval runs script on pipe, in a pipeline shared with the other calls in
// flight.
func (s *Store) eval(ctx context.Context, pipe *autopipe.Pipe, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	var cmd *redis.Cmd
	if err := pipe.Do(ctx, func(p redis.Pipeliner) { cmd = script.EvalSha(ctx, p, keys, args...) }); err != nil {
		cmd = redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis has not seen the script yet (or has forgotten it):
		// nothing ran, and Run sends it whole.
		cmd = script.Run(ctx, s.rdb, keys, args...)
	}
	return cmd
}

// PublicJSON encodes the public job resource, which is also how the record
// stores it.
func PublicJSON(j *jobs.Job) []byte { return jobs.AppendJobJSON(nil, j) }

func decodeDoc(b []byte, tenant string) (*jobs.Job, error) {
	j := new(jobs.Job)
	if err := jobs.DecodeJob(b, j); err != nil {
		return nil, fmt.Errorf("decode job record: %w", err)
	}
	j.Tenant = tenant
	return j, nil
}

// Create stores a new job record and the request it will replay, and
// appends its first event (the job's current state). It fails with
// ErrExists if the ID is taken. It puts no task on a queue: that is Accept.
func (s *Store) Create(ctx context.Context, j *jobs.Job, req *jobs.Request) error {
	return s.Accept(ctx, j, req, nil)
}

// Accept is Create and, in the same step, the job's task (when task is not
// nil) and the job's Idempotency-Key (when it has one): all are written,
// or none. A key that stands for a job already is answered with
// *jobs.KeyTaken.
func (s *Store) Accept(ctx context.Context, j *jobs.Job, req *jobs.Request, task *keyspace.TaskWrite) error {
	doc, rq := PublicJSON(j), jobs.AppendRequestJSON(nil, req)
	if j.CallbackURL != "" {
		if err := s.registerOutbox(ctx, j.Tenant); err != nil {
			return err
		}
	}
	if err := s.registerIndex(ctx, j.Tenant); err != nil {
		return err
	}
	shard := s.ks.ShardOf(j.ID)
	keys := make([]string, 0, 7)
	keys = append(keys, s.ks.Record(j.ID), s.ks.Stream(shard, j.Tenant), s.ks.Outbox(shard, j.Tenant), s.ks.JobIndex(shard, j.Tenant))
	args := make([]any, 0, 20)
	args = append(args,
		doc, rq, string(j.State), s.streamMaxLen, s.ks.EventChannel(shard), j.Tenant, j.ID,
		s.idemTTL, j.CallbackURL, callbackStates(j.CallbackEvents),
		time.Now().UnixMilli())
	if j.IdempotencyKey != "" {
		// On the job's shard: its ordering key's, or its Idempotency-Key's.
		keys = append(keys, s.ks.IdempotencyOn(shard, j.Tenant, j.IdempotencyKey))
		args = append(args, 1, j.IdempotencyFingerprint)
	} else {
		args = append(args, 0, "")
	}
	if task != nil {
		keys = append(keys, task.Key, task.List)
		scheduled, score := 0, task.PendingSince
		if task.Scheduled {
			scheduled, score = 1, task.Score
		}
		args = append(args, 1, task.Msg, scheduled, score)
	} else {
		args = append(args, 0, "", 0, 0)
	}
	args = append(args, s.publish, s.indexHorizon)
	entry := ""
	if j.OrderingKey != "" && task != nil {
		// In line behind the jobs with its key (see ordering.go).
		if err := s.checkPlaced(j); err != nil {
			return err
		}
		keys = append(keys, s.ks.OrderingLine(j.Tenant, j.OrderingKey), s.ks.OrderingWaiting(shard))
		entry = keyspace.OrderingEntry(j.ID, j.Queue)
	}
	args = append(args, entry)
	if s.fair() && task != nil && !task.Scheduled {
		f := s.ks.Fair(shard, j.Queue)
		keys = append(keys, f.Line, f.State)
		args = append(args, 1, s.fairStep(j.Tenant))
	}
	res, err := s.eval(ctx, s.accepts, keyspace.Accept, keys, args...).Result()
	if errors.Is(err, redis.Nil) || (err == nil && res == nil) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("store job: %w", err)
	}
	if v, ok := res.([]any); ok {
		str := func(i int) string {
			if i < len(v) {
				s, _ := v[i].(string)
				return s
			}
			return ""
		}
		// The job the key stands for is answered as accepted again: it
		// must be on the replicas as a new one would be.
		if err := s.awaitReplicas(ctx, shard); err != nil {
			return err
		}
		return &jobs.KeyTaken{Pending: str(0) == "p", Fingerprint: str(1), JobID: str(2), State: jobs.State(str(3))}
	}
	j.Version = "1" // one event so far
	return s.awaitReplicas(ctx, shard)
}

// owned reports whether a record's t field (as HMGET gave it) names
// tenant: another tenant's job is not found.
func owned(t any, tenant string) bool {
	v, _ := t.(string)
	return v == tenant
}

// field reads one field of the record of tenant's job id; ErrNotFound when
// the job or the field is missing.
func (s *Store) field(ctx context.Context, tenant, id, name string) ([]byte, error) {
	vals, err := s.rdb.HMGet(ctx, s.ks.Record(id), name, "t").Result()
	if err != nil {
		return nil, err
	}
	v, ok := vals[0].(string)
	if !ok || !owned(vals[1], tenant) {
		return nil, ErrNotFound
	}
	return []byte(v), nil
}

// Get returns the job, or ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant, id string) (*jobs.Job, error) {
	j, _, err := s.get(ctx, tenant, id)
	return j, err
}

func (s *Store) get(ctx context.Context, tenant, id string) (*jobs.Job, string, error) {
	vals, err := s.rdb.HMGet(ctx, s.ks.Record(id), "doc", "seq", "t").Result()
	if err != nil {
		return nil, "", fmt.Errorf("read job record: %w", err)
	}
	doc, ok := vals[0].(string)
	if !ok || !owned(vals[2], tenant) {
		return nil, "", ErrNotFound
	}
	seq, _ := vals[1].(string)
	j, err := decodeDoc([]byte(doc), tenant)
	if j != nil {
		j.Version = seq
	}
	return j, seq, err
}

// Load returns the job and the request it replays, in one read.
func (s *Store) Load(ctx context.Context, tenant, id string) (*jobs.Job, *jobs.Request, error) {
	var cmd *redis.SliceCmd
	err := s.loads.Do(ctx, func(p redis.Pipeliner) { cmd = p.HMGet(ctx, s.ks.Record(id), "doc", "seq", "req", "t") })
	if err != nil {
		return nil, nil, fmt.Errorf("read job record: %w", err)
	}
	vals, err := cmd.Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read job record: %w", err)
	}
	doc, ok := vals[0].(string)
	if !ok || !owned(vals[3], tenant) {
		return nil, nil, ErrNotFound
	}
	j, err := decodeDoc([]byte(doc), tenant)
	if err != nil {
		return nil, nil, err
	}
	j.Version, _ = vals[1].(string)
	raw, _ := vals[2].(string)
	var req jobs.Request
	if err := jobs.DecodeRequest([]byte(raw), &req); err != nil {
		return nil, nil, fmt.Errorf("decode job request: %w", err)
	}
	return j, &req, nil
}

// ResultBody returns the last upstream answer's body exactly as it came,
// or ErrNotFound when none was stored.
func (s *Store) ResultBody(ctx context.Context, tenant, id string) ([]byte, error) {
	b, err := s.field(ctx, tenant, id, "rbody")
	if err != nil {
		return nil, fmt.Errorf("read job result: %w", err)
	}
	return b, nil
}

// Request returns the stored request of a job.
func (s *Store) Request(ctx context.Context, tenant, id string) (*jobs.Request, error) {
	b, err := s.field(ctx, tenant, id, "req")
	if err != nil {
		return nil, fmt.Errorf("read job request: %w", err)
	}
	var req jobs.Request
	if err := jobs.DecodeRequest(b, &req); err != nil {
		return nil, fmt.Errorf("decode job request: %w", err)
	}
	return &req, nil
}

// Update reads the job, lets fn change it, and writes it back with an event
// for its new state, atomically: if the record changed in between, it reads
// again and calls fn again. fn must set State. A job in a terminal state is
// not changed (ErrFinished, with the job). fn may return an error to abort;
// Update returns it with the job as read.
func (s *Store) Update(ctx context.Context, tenant, id string, fn func(*jobs.Job) error) (*jobs.Job, error) {
	return s.update(ctx, tenant, id, fn, false)
}

// Reopen is Update for a job that may have ended: a replay from the
// dead-letter queue starts a new cycle for the same job.
func (s *Store) Reopen(ctx context.Context, tenant, id string, fn func(*jobs.Job) error) (*jobs.Job, error) {
	return s.update(ctx, tenant, id, fn, true)
}

func (s *Store) update(ctx context.Context, tenant, id string, fn func(*jobs.Job) error, reopen bool) (*jobs.Job, error) {
	j, _, err := s.updateDone(ctx, tenant, id, fn, reopen, nil, nil)
	return j, err
}

// updateDone is update that also retires done's task (see Finish).
func (s *Store) updateDone(ctx context.Context, tenant, id string, fn func(*jobs.Job) error, reopen bool, done *keyspace.TaskDone, rejoin *keyspace.TaskWrite) (*jobs.Job, bool, error) {
	for range 50 {
		j, seq, err := s.get(ctx, tenant, id)
		if err != nil {
			return nil, false, err
		}
		if j.State.Terminal() && !reopen {
			return j, false, ErrFinished
		}
		if reopen && rejoin == nil && j.OrderingKey != "" && j.State.Terminal() {
			// It must join its line with its next task (Rejoin).
			return j, false, fmt.Errorf("reopen job %s: %w", id, errNeedsRejoin)
		}
		before := *j
		if err := fn(j); err != nil {
			return &before, false, err
		}
		var retired bool
		j.Version, retired, err = s.write(ctx, j, seq, reopen, done, rejoin)
		if errors.Is(err, errConflict) {
			continue
		}
		if errors.Is(err, ErrFinished) {
			return &before, false, err
		}
		return j, retired, err
	}
	return nil, false, fmt.Errorf("update job %s: %w", id, errConflict)
}

// Advance is Update from j as last read or written: while the record is
// still at j.Version, fn's change to a copy of j is written in one round
// trip; if it has changed since (a cancel, another run), it is Update.
func (s *Store) Advance(ctx context.Context, j *jobs.Job, fn func(*jobs.Job) error) (*jobs.Job, error) {
	next, _, err := s.Finish(ctx, j, nil, fn)
	return next, err
}

// Finish is Advance that, with done, retires the job's task in the same
// step if it is still active (its queue's active list), and says whether
// it did. The worker finishes a job with it, so that asynq's Done of the
// task costs no round trip of its own.
func (s *Store) Finish(ctx context.Context, j *jobs.Job, done *keyspace.TaskDone, fn func(*jobs.Job) error) (*jobs.Job, bool, error) {
	if j.Version == "" || j.State.Terminal() {
		return s.updateDone(ctx, j.Tenant, j.ID, fn, false, done, nil)
	}
	next, retired, err := s.advanceAt(ctx, j, fn, done)
	if errors.Is(err, jobs.ErrChanged) {
		return s.updateDone(ctx, j.Tenant, j.ID, fn, false, done, nil)
	}
	return next, retired, err
}

// AdvanceAt writes fn's change to a copy of j only if the record is still
// at j.Version, in one round trip. A record that has moved on, ended
// included, is ErrChanged; nothing is written.
func (s *Store) AdvanceAt(ctx context.Context, j *jobs.Job, fn func(*jobs.Job) error) (*jobs.Job, error) {
	next, _, err := s.advanceAt(ctx, j, fn, nil)
	return next, err
}

func (s *Store) advanceAt(ctx context.Context, j *jobs.Job, fn func(*jobs.Job) error, done *keyspace.TaskDone) (*jobs.Job, bool, error) {
	if j.Version == "" {
		return j, false, jobs.ErrChanged
	}
	next := *j
	if err := fn(&next); err != nil {
		return j, false, err
	}
	var err error
	var retired bool
	next.Version, retired, err = s.write(ctx, &next, j.Version, false, done, nil)
	switch {
	case err == nil:
		return &next, retired, nil
	case errors.Is(err, errConflict), errors.Is(err, ErrFinished):
		return j, false, jobs.ErrChanged
	case errors.Is(err, jobs.ErrNotReplicated):
		return &next, retired, err // written, not confirmed
	}
	return j, false, err
}

// write stores j's new state if the record is still at seq, and returns
// its new seq; with done, it also retires that task if it is still
// active, and says whether it did. With MinReplicasAck, a write that the
// replicas did not confirm returns its seq and retired all the same, with
// an error wrapping jobs.ErrNotReplicated. A job with an ordering key
// that ends releases its key, and one that leaves dead joins its line
// again with rejoin, its next task (see ordering.go); the job that
// becomes the head is started before write returns.
func (s *Store) write(ctx context.Context, j *jobs.Job, seq string, reopen bool, done *keyspace.TaskDone, rejoin *keyspace.TaskWrite) (string, bool, error) {
	doc := PublicJSON(j)
	ttl := int64(0)
	switch {
	case j.State == jobs.StateDead:
		ttl = int64(s.cfg.DeadRetention / time.Second)
		// The list must be findable before the job is in it.
		if err := s.rdb.SAdd(ctx, s.ks.DeadLetterLists(), j.Tenant+"/"+j.Queue).Err(); err != nil {
			return "", false, fmt.Errorf("register dead-letter list: %w", err)
		}
	case j.State.Terminal():
		ttl = int64(s.cfg.Retention / time.Second)
	}
	allow := "0"
	if reopen {
		allow = "1"
	}
	hasRaw, raw := "0", []byte(nil)
	if j.Result != nil && j.Result.Raw != nil {
		hasRaw, raw = "1", j.Result.Raw
	}
	keys := make([]string, 0, 11)
	shard := s.ks.ShardOf(j.ID)
	record := s.ks.Record(j.ID)
	keys = append(keys, record, keyspace.EventList(record), s.ks.Stream(shard, j.Tenant),
		s.ks.DeadLetters(shard, j.Tenant, j.Queue), s.ks.Outbox(shard, j.Tenant), keyspace.Deliveries(record))
	args := make([]any, 0, 17)
	args = append(args, doc, string(j.State), seq, allow, ttl, s.cfg.StreamMaxLen, s.ks.EventChannel(shard), j.Tenant, j.ID, hasRaw, raw,
		deadAt(j).UnixMilli(), time.Now().UnixMilli(), s.publish)
	if done != nil {
		keys = append(keys, done.Active, done.Lease, done.Key, done.Processed, done.Total)
		args = append(args, done.ID, done.StatsExpire, done.MaxCount)
	}
	var line string
	if j.OrderingKey != "" {
		line = s.ks.OrderingLine(j.Tenant, j.OrderingKey)
		keys, args = s.orderingArgs(keys, args, j, line, shard, done != nil, rejoin)
	}
	res, err := s.eval(ctx, s.updates, keyspace.Update, keys, args...).Slice()
	if err != nil {
		return "", false, fmt.Errorf("update job record: %w", err)
	}
	code, _ := res[0].(int64)
	switch code {
	case -1:
		return "", false, ErrNotFound
	case -2:
		return "", false, ErrFinished
	case -3:
		return "", false, errConflict
	}
	var retired bool
	if len(res) > 2 {
		n, _ := res[2].(int64)
		retired = n == 1
	}
	if len(res) > 3 {
		if next, _ := res[3].(string); next != "" {
			// Best effort: a promotion that fails here is made by the
			// workers' sweep (PromoteLines), the line being in the
			// promote set.
			_ = s.promote(ctx, j.Tenant, line, next)
		}
	}
	return strconv.FormatInt(code, 10), retired, s.awaitReplicas(ctx, shard)
}

// deadAt is when a dead job died: its finish time.
func deadAt(j *jobs.Job) time.Time {
	if j.FinishedAt != nil {
		return *j.FinishedAt
	}
	return time.Now()
}

// Events returns a job's events after sequence number after (0: all).
func (s *Store) Events(ctx context.Context, tenant, id string, after int64) ([]jobs.Event, error) {
	after = max(after, 0)
	key := s.ks.Record(id)
	var rec *redis.SliceCmd
	var list *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HMGet(ctx, key, "state", "seq", "doc", "t")
		list = p.LRange(ctx, keyspace.EventList(key), after, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read job events: %w", err)
	}
	if !owned(rec.Val()[3], tenant) {
		return nil, nil
	}
	items := list.Val()
	evs := make([]jobs.Event, 0, len(items)+1)
	for i, it := range items {
		kind, data, _ := strings.Cut(it, "\n")
		evs = append(evs, jobs.Event{
			Seq: after + int64(i) + 1, Tenant: tenant, JobID: id,
			Kind: kind, Data: []byte(data),
		})
	}
	if ev, ok := latestEvent(rec.Val(), tenant, id); ok && ev.Seq == after+int64(len(items))+1 {
		evs = append(evs, ev)
	}
	return evs, nil
}

// latestEvent is the event a record holds (see the record's layout above),
// from the values of HMGET state, seq, doc; ok is false for no record.
func latestEvent(v []any, tenant, id string) (jobs.Event, bool) {
	state, _ := v[0].(string)
	seqs, _ := v[1].(string)
	doc, _ := v[2].(string)
	seq, err := strconv.ParseInt(seqs, 10, 64)
	if state == "" || err != nil {
		return jobs.Event{}, false
	}
	return jobs.Event{Seq: seq, Tenant: tenant, JobID: id, Kind: state, Data: []byte(doc)}, true
}

// parseMessage decodes a published event.
func parseMessage(payload string) (jobs.Event, bool) {
	parts := strings.SplitN(payload, "\n", 6)
	if len(parts) != 6 {
		return jobs.Event{}, false
	}
	seq, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return jobs.Event{}, false
	}
	return jobs.Event{
		Tenant: parts[0], JobID: parts[1], Seq: seq, StreamID: parts[3],
		Kind: parts[4], Data: []byte(parts[5]),
	}, true
}
