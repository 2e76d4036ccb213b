// Package status keeps the record of every job and its event log in Redis,
// and fans state changes out to the subscribers of this process through one
// Redis subscription (Hub).
//
// Keys are laid out for Redis Cluster: everything one script touches shares
// the tenant's hash tag, "<prefix>:{<tenant>}:…".
package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/autopipe"
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
}

// DefaultReplicaAckTimeout is ReplicaAckTimeout's default, and
// MaxReplicaAckTimeout its largest value.
const (
	DefaultReplicaAckTimeout = 200 * time.Millisecond
	MaxReplicaAckTimeout     = 10 * time.Second
)

func (c Config) withDefaults() Config {
	c.Prefix = cmp.Or(c.Prefix, "asyncgw")
	c.Retention = cmp.Or(c.Retention, 7*24*time.Hour)
	c.StreamMaxLen = cmp.Or(c.StreamMaxLen, 10000)
	c.IdempotencyTTL = cmp.Or(c.IdempotencyTTL, 24*time.Hour)
	if c.MinReplicasAck > 0 {
		c.ReplicaAckTimeout = cmp.Or(c.ReplicaAckTimeout, DefaultReplicaAckTimeout)
	}
	return c
}

func (c Config) validate() error {
	if strings.ContainsAny(c.Prefix, "{}\n ") {
		return fmt.Errorf("prefix %q: must not contain braces or spaces", c.Prefix)
	}
	if c.Retention < time.Minute {
		return fmt.Errorf("retention %s: must be at least 1m", c.Retention)
	}
	if c.DeadRetention != 0 && c.DeadRetention < time.Minute {
		return fmt.Errorf("dead retention %s: must be at least 1m (or 0: until replayed or deleted)", c.DeadRetention)
	}
	if c.IdempotencyTTL < time.Minute {
		return fmt.Errorf("idempotency ttl %s: must be at least 1m", c.IdempotencyTTL)
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
	// channel is Channel(); streamMaxLen and idemTTL are the Accept
	// arguments that never change, made once.
	channel               string
	streamMaxLen, idemTTL any
	// outboxes are the tenants this Store has put in the outbox set.
	outboxes sync.Map
	// accepts, updates and loads carry concurrent Accepts, state changes
	// and Loads to Redis in shared pipelines.
	accepts, updates, loads *autopipe.Pipe
	// acks confirms writes on replicas; nil when MinReplicasAck is 0.
	acks *acker
}

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
	s := &Store{
		rdb: rdb, cfg: cfg, channel: cfg.Prefix + ":events",
		streamMaxLen: cfg.StreamMaxLen, idemTTL: int64(cfg.IdempotencyTTL / time.Second),
		accepts: autopipe.New(rdb, pipeSlots, pipeBatch),
		updates: autopipe.New(rdb, pipeSlots, pipeBatch),
		loads:   autopipe.New(rdb, pipeSlots, pipeBatch),
	}
	if cfg.MinReplicasAck > 0 {
		s.acks = newAcker(rdb, s.ackKey(), cfg.MinReplicasAck, cfg.ReplicaAckTimeout, cfg.ReplicaAckObserver, cfg.Failovers)
	}
	return s, nil
}

// Channel names the pub/sub channels of events: each tenant's events are
// published on TenantChannel, Channel + ":" + tenant. Nothing is published
// on Channel itself; a Hub subscribes to it to hold its connection.
func (s *Store) Channel() string { return s.channel }

// TenantChannel is the pub/sub channel on which a tenant's events are
// published.
func (s *Store) TenantChannel(tenant string) string { return s.channel + ":" + tenant }

// ValidTenant reports whether name can be used as a tenant: 1–64 characters
// of letters, digits, '-', '_' and '.'.
func ValidTenant(name string) bool { return jobs.ValidName(name) }

func (s *Store) jobKey(tenant, id string) string {
	return s.cfg.Prefix + ":{" + tenant + "}:job:" + id
}

func (s *Store) eventsKey(tenant, id string) string { return eventsKeyOf(s.jobKey(tenant, id)) }

// eventsKeyOf is the event list of the job whose record is at jobKey.
func eventsKeyOf(jobKey string) string { return jobKey + ":ev" }

func (s *Store) streamKey(tenant string) string {
	return s.cfg.Prefix + ":{" + tenant + "}:events"
}

func (s *Store) keys(tenant, id string) []string {
	return []string{s.jobKey(tenant, id), s.eventsKey(tenant, id), s.streamKey(tenant)}
}

// dlqKey is the dead-letter list of one tenant and queue: a sorted set of
// job IDs scored by when they died (unix ms).
func (s *Store) dlqKey(tenant, queue string) string {
	return s.cfg.Prefix + ":{" + tenant + "}:dlq:" + queue
}

// dlqListsKey is the set of every dead-letter list ("tenant/queue") that
// was ever written, so that the dead-letter queue can be read whole.
func (s *Store) dlqListsKey() string { return s.cfg.Prefix + ":dlq:lists" }

// The record is a hash: doc (the job resource as JSON, with the tenant),
// req (the stored request), state, seq (events so far). Its state and doc
// are the job's latest event, seq; the events before it are in the event
// list, whose i-th element (0-based) is event i+1, "state\ndoc". So a new
// job has no list: each change first appends the event the record held,
// unless the list has it already (records of versions that appended every
// event at once). Both scripts append the event to the tenant stream and publish it on the
// tenant's channel (channel:tenant) as "tenant\nid\nseq\nstreamID\nkind\ndoc".

// A job with a callback keeps its URL in the record's cb field and the
// states it is told about in cbev (",succeeded,failed,"). Both scripts put
// each event to be sent into the tenant's outbox, a sorted set of
// "id\nseq" scored by when it is due (unix ms), in the same step as the
// event itself: an event is never written without its webhook.

// acceptScript stores a job in one step. KEYS job, stream, outbox (a new
// job has no event list: its only event is in its record),
// then the idempotency key (when ARGV[12] is 1), then the task hash, its
// pending list or scheduled set and asynq's set of queues (when ARGV[14] is
// 1). ARGV doc, req, state, maxlen, channel, tenant, id, idempotency ttl,
// callback URL ("" for none), callback states, now (unix ms), has key,
// fingerprint, has task, task message, task scheduled (0/1), its score
// (unix s) or pending since (unix ns), queue. The task is written as
// asynq's client writes it (see jobs.TaskWrite), and names the record
// (jobs.TaskRecordField). Returns the stream ID;
// false if the job or its task exists; or, when the key stands for a job
// already, {s, fp, id, st} of that key ("p" for s: an earlier version's
// claim still pending), having written nothing.
var acceptScript = redis.NewScript(`
local k = 4
local idem
if ARGV[12] == '1' then
  idem = KEYS[k]
  k = k + 1
  local v = redis.call('HMGET', idem, 's', 'fp', 'id', 'st')
  if v[1] then return v end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if ARGV[14] == '1' then
  if redis.call('EXISTS', KEYS[k]) == 1 then return false end
  if ARGV[16] == '1' then
    redis.call('HSET', KEYS[k], 'msg', ARGV[15], 'state', 'scheduled', '` + jobs.TaskRecordField + `', KEYS[1])
    redis.call('ZADD', KEYS[k+1], ARGV[17], ARGV[7])
  else
    redis.call('HSET', KEYS[k], 'msg', ARGV[15], 'state', 'pending', 'pending_since', ARGV[17], '` + jobs.TaskRecordField + `', KEYS[1])
    redis.call('LPUSH', KEYS[k+1], ARGV[7])
  end
  redis.call('SADD', KEYS[k+2], ARGV[18])
end
if idem then
  redis.call('HSET', idem, 's', 'd', 'fp', ARGV[13], 'id', ARGV[7], 'st', ARGV[3])
  redis.call('EXPIRE', idem, ARGV[8])
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'req', ARGV[2], 'state', ARGV[3], 'seq', 1)
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'cb', ARGV[9], 'cbev', ARGV[10])
  if string.find(ARGV[10], ',' .. ARGV[3] .. ',', 1, true) then
    redis.call('ZADD', KEYS[3], ARGV[11], ARGV[7] .. '\n1')
  end
end
local sid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'j', ARGV[7], 's', 1, 'k', ARGV[3], 'd', ARGV[1])
redis.call('PUBLISH', ARGV[5] .. ':' .. ARGV[6], ARGV[6] .. '\n' .. ARGV[7] .. '\n1\n' .. sid .. '\n' .. ARGV[3] .. '\n' .. ARGV[1])
return sid
`)

// updateScript: KEYS job, events, stream, dead-letter list, outbox,
// deliveries; ARGV doc, state, expected seq, from-terminal allowed (0/1),
// ttl seconds (0: none), maxlen, channel, tenant, id, has raw result body
// (0/1), raw result body, time of death (unix ms), now (unix ms). A job
// that becomes dead joins the dead-letter list; one that leaves dead (a
// replay) is taken out of it. Only a job that ended has an expiry, so only
// one that leaves a terminal state loses it. With KEYS 7 to 11 and ARGV
// 14 to 16 (jobs.TaskDone: the task's active list, lease, hash, processed
// counts; its ID, the day's count's expiry, the largest total), the
// written job's task is retired as asynq's Done does it, if it is still
// active. Returns {seq, sid, retired (0/1)}, or {-1} not found, {-2}
// terminal, {-3} conflict.
var updateScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'state', 'seq', 'cbev', 'doc')
if not cur[1] then return {-1} end
if cur[2] ~= ARGV[3] then return {-3} end
local s = cur[1]
local ended = s == 'succeeded' or s == 'failed' or s == 'dead' or s == 'canceled'
if ended and ARGV[4] ~= '1' then return {-2} end
local seq = tonumber(cur[2]) + 1
if redis.call('LLEN', KEYS[2]) < seq - 1 then
  redis.call('RPUSH', KEYS[2], s .. '\n' .. cur[4])
end
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2], 'seq', seq, 'rbody', ARGV[11])
else
  redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2], 'seq', seq)
end
if cur[3] and string.find(cur[3], ',' .. ARGV[2] .. ',', 1, true) then
  redis.call('ZADD', KEYS[5], ARGV[13], ARGV[9] .. '\n' .. seq)
end
local sid = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'j', ARGV[9], 's', seq, 'k', ARGV[2], 'd', ARGV[1])
redis.call('PUBLISH', ARGV[7] .. ':' .. ARGV[8], ARGV[8] .. '\n' .. ARGV[9] .. '\n' .. seq .. '\n' .. sid .. '\n' .. ARGV[2] .. '\n' .. ARGV[1])
if ARGV[2] == 'dead' then
  redis.call('ZADD', KEYS[4], ARGV[12], ARGV[9])
elseif s == 'dead' then
  redis.call('ZREM', KEYS[4], ARGV[9])
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[6], ttl)
elseif ended then
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
  redis.call('PERSIST', KEYS[6])
end
local retired = 0
if #KEYS > 6 and redis.call('LREM', KEYS[7], 0, ARGV[14]) > 0 then
  redis.call('ZREM', KEYS[8], ARGV[14])
  redis.call('DEL', KEYS[9])
  if redis.call('INCR', KEYS[10]) == 1 then
    redis.call('EXPIREAT', KEYS[10], ARGV[15])
  end
  if redis.call('GET', KEYS[11]) == ARGV[16] then
    redis.call('SET', KEYS[11], 1)
  else
    redis.call('INCR', KEYS[11])
  end
  retired = 1
end
return {seq, sid, retired}
`)

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
func (s *Store) Accept(ctx context.Context, j *jobs.Job, req *jobs.Request, task *jobs.TaskWrite) error {
	doc, rq := PublicJSON(j), jobs.AppendRequestJSON(nil, req)
	if j.CallbackURL != "" {
		if err := s.registerOutbox(ctx, j.Tenant); err != nil {
			return err
		}
	}
	jobKey := s.jobKey(j.Tenant, j.ID)
	keys := make([]string, 0, 7)
	keys = append(keys, jobKey, s.streamKey(j.Tenant), s.outboxKey(j.Tenant))
	args := make([]any, 0, 18)
	args = append(args,
		doc, rq, string(j.State), s.streamMaxLen, s.channel, j.Tenant, j.ID,
		s.idemTTL, j.CallbackURL, callbackStates(j.CallbackEvents),
		time.Now().UnixMilli())
	if j.IdempotencyKey != "" {
		keys = append(keys, s.idemKey(j.Tenant, j.IdempotencyKey))
		args = append(args, 1, j.IdempotencyFingerprint)
	} else {
		args = append(args, 0, "")
	}
	if task != nil {
		keys = append(keys, task.Key, task.List, task.Queues)
		scheduled, score := 0, task.PendingSince
		if task.Scheduled {
			scheduled, score = 1, task.Score
		}
		args = append(args, 1, task.Msg, scheduled, score, task.Queue)
	} else {
		args = append(args, 0, "", 0, 0, "")
	}
	res, err := s.eval(ctx, s.accepts, acceptScript, keys, args...).Result()
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
		if err := s.awaitReplicas(ctx); err != nil {
			return err
		}
		return &jobs.KeyTaken{Pending: str(0) == "p", Fingerprint: str(1), JobID: str(2), State: jobs.State(str(3))}
	}
	j.Version = "1" // one event so far
	return s.awaitReplicas(ctx)
}

// Get returns the job, or ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant, id string) (*jobs.Job, error) {
	j, _, err := s.get(ctx, tenant, id)
	return j, err
}

func (s *Store) get(ctx context.Context, tenant, id string) (*jobs.Job, string, error) {
	vals, err := s.rdb.HMGet(ctx, s.jobKey(tenant, id), "doc", "seq").Result()
	if err != nil {
		return nil, "", fmt.Errorf("read job record: %w", err)
	}
	doc, ok := vals[0].(string)
	if !ok {
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
	err := s.loads.Do(ctx, func(p redis.Pipeliner) { cmd = p.HMGet(ctx, s.jobKey(tenant, id), "doc", "seq", "req") })
	if err != nil {
		return nil, nil, fmt.Errorf("read job record: %w", err)
	}
	vals, err := cmd.Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read job record: %w", err)
	}
	doc, ok := vals[0].(string)
	if !ok {
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
	b, err := s.rdb.HGet(ctx, s.jobKey(tenant, id), "rbody").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read job result: %w", err)
	}
	return b, nil
}

// Request returns the stored request of a job.
func (s *Store) Request(ctx context.Context, tenant, id string) (*jobs.Request, error) {
	b, err := s.rdb.HGet(ctx, s.jobKey(tenant, id), "req").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
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
	j, _, err := s.updateDone(ctx, tenant, id, fn, reopen, nil)
	return j, err
}

// updateDone is update that also retires done's task (see Finish).
func (s *Store) updateDone(ctx context.Context, tenant, id string, fn func(*jobs.Job) error, reopen bool, done *jobs.TaskDone) (*jobs.Job, bool, error) {
	for range 50 {
		j, seq, err := s.get(ctx, tenant, id)
		if err != nil {
			return nil, false, err
		}
		if j.State.Terminal() && !reopen {
			return j, false, ErrFinished
		}
		before := *j
		if err := fn(j); err != nil {
			return &before, false, err
		}
		var retired bool
		j.Version, retired, err = s.write(ctx, j, seq, reopen, done)
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
func (s *Store) Finish(ctx context.Context, j *jobs.Job, done *jobs.TaskDone, fn func(*jobs.Job) error) (*jobs.Job, bool, error) {
	if j.Version == "" || j.State.Terminal() {
		return s.updateDone(ctx, j.Tenant, j.ID, fn, false, done)
	}
	next, retired, err := s.advanceAt(ctx, j, fn, done)
	if errors.Is(err, jobs.ErrChanged) {
		return s.updateDone(ctx, j.Tenant, j.ID, fn, false, done)
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

func (s *Store) advanceAt(ctx context.Context, j *jobs.Job, fn func(*jobs.Job) error, done *jobs.TaskDone) (*jobs.Job, bool, error) {
	if j.Version == "" {
		return j, false, jobs.ErrChanged
	}
	next := *j
	if err := fn(&next); err != nil {
		return j, false, err
	}
	var err error
	var retired bool
	next.Version, retired, err = s.write(ctx, &next, j.Version, false, done)
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
// an error wrapping jobs.ErrNotReplicated.
func (s *Store) write(ctx context.Context, j *jobs.Job, seq string, reopen bool, done *jobs.TaskDone) (string, bool, error) {
	doc := PublicJSON(j)
	ttl := int64(0)
	switch {
	case j.State == jobs.StateDead:
		ttl = int64(s.cfg.DeadRetention / time.Second)
		// The list must be findable before the job is in it.
		if err := s.rdb.SAdd(ctx, s.dlqListsKey(), j.Tenant+"/"+j.Queue).Err(); err != nil {
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
	keys = append(keys, s.keys(j.Tenant, j.ID)...)
	keys = append(keys, s.dlqKey(j.Tenant, j.Queue), s.outboxKey(j.Tenant), s.deliveriesKey(j.Tenant, j.ID))
	args := make([]any, 0, 16)
	args = append(args, doc, string(j.State), seq, allow, ttl, s.cfg.StreamMaxLen, s.Channel(), j.Tenant, j.ID, hasRaw, raw,
		deadAt(j).UnixMilli(), time.Now().UnixMilli())
	if done != nil {
		keys = append(keys, done.Active, done.Lease, done.Key, done.Processed, done.Total)
		args = append(args, done.ID, done.StatsExpire, done.MaxCount)
	}
	res, err := s.eval(ctx, s.updates, updateScript, keys, args...).Slice()
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
	return strconv.FormatInt(code, 10), retired, s.awaitReplicas(ctx)
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
	key := s.jobKey(tenant, id)
	var rec *redis.SliceCmd
	var list *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HMGet(ctx, key, "state", "seq", "doc")
		list = p.LRange(ctx, eventsKeyOf(key), after, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read job events: %w", err)
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

// TenantEvents returns up to count events of the tenant's stream after the
// stream ID after ("" or "0": from the oldest kept).
func (s *Store) TenantEvents(ctx context.Context, tenant, after string, count int64) ([]jobs.Event, error) {
	start := "-"
	if after != "" && after != "0" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, s.streamKey(tenant), start, "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read tenant events: %w", err)
	}
	evs := make([]jobs.Event, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["j"].(string)
		kind, _ := m.Values["k"].(string)
		data, _ := m.Values["d"].(string)
		seq, _ := strconv.ParseInt(fmt.Sprint(m.Values["s"]), 10, 64)
		evs = append(evs, jobs.Event{
			Seq: seq, StreamID: m.ID, Tenant: tenant, JobID: id,
			Kind: kind, Data: []byte(data),
		})
	}
	return evs, nil
}

// ValidStreamID reports whether id looks like a Redis stream ID ("ms-n").
func ValidStreamID(id string) bool {
	ms, n, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(n, 10, 64)
	return err1 == nil && err2 == nil
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

var _ jobs.Recorder = (*Store)(nil)

// TenantTail returns the ID of the newest event in the tenant's stream, or
// "0-0" when it is empty: the point a live-only subscriber starts after.
func (s *Store) TenantTail(ctx context.Context, tenant string) (string, error) {
	msgs, err := s.rdb.XRevRangeN(ctx, s.streamKey(tenant), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read tenant stream tail: %w", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// CompareStreamIDs orders two stream IDs ("ms-n"): -1, 0 or +1. Malformed
// IDs sort first.
func CompareStreamIDs(a, b string) int {
	am, an := splitStreamID(a)
	bm, bn := splitStreamID(b)
	switch {
	case am != bm:
		return cmp.Compare(am, bm)
	default:
		return cmp.Compare(an, bn)
	}
}

func splitStreamID(id string) (uint64, uint64) {
	ms, n, _ := strings.Cut(id, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(n, 10, 64)
	return a, b
}
