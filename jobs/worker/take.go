package worker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// takeClient serves three of asynq's scripts itself, recognised by their
// SHA-1s (keyspace.AsynqDequeueSHA, AsynqDoneSHA, AsynqListLeaseExpiredSHA):
// its dequeue, its Done of a task without a uniqueness lock, and its
// listing of lease-expired tasks. A call of a script of the same shape but
// another SHA-1 (another asynq version) goes to Redis as it is, with a
// warning: tasks are then taken one per round trip, retired by asynq, and
// recovered by asynq's recoverers too (TestTakeClientUnknownDequeue,
// TestTakeClientUnknownDone, TestOneRecovererPerWorker say so).

// keepFor bounds how long takeClient remembers a task it retired for
// asynq's Done, or the record read with a task for its run: both normally
// come at once, but asynq skips the Done of a task whose lease ran out,
// and puts back a task handed over as it stops.
const keepFor = time.Minute

// takeBatch bounds how many tasks one round trip takes off a queue, and
// takeHold how long a task taken for the worker waits to be asked for
// before it goes back to its queue.
const (
	takeBatch = 8
	takeHold  = time.Second
)

// takeClient is the Redis client of a Worker's asynq servers. asynq takes
// one task per round trip; takeClient, asked for one, takes several in
// one, hands over the first and holds the others for the next asks of any
// of the worker's fetch loops. It takes as many as the worker has room
// for now (less the tasks it holds), or as were asked for off that queue
// in the last quarter of takeHold if that is more, and at most
// takeBatch: under a steady load, about what the next quarter of
// takeHold will ask for. Every other command passes through. With each
// task it reads the job record the task's hash names, which the task's
// run takes (record) instead of reading it in a round trip of its own.
//
// A held task is active and leased in Redis, as a running one is: if the
// process dies, its lease runs out and asynq's recoverer puts it back
// without using an attempt. One not asked for within takeHold, and all of
// them when the worker stops, go back to the head of their queue.
type takeClient struct {
	redis.UniversalClient
	ks *keyspace.Space
	// public: asynq is not the version keyspace describes (or the direct
	// path is switched off), and every call passes through.
	public bool
	// room is how many more tasks the worker could start now.
	room func() int
	// watch, when set, knows which queues are idle: asks of a queue found
	// empty, and asynq's forwarder and janitor calls with nothing to do,
	// are answered without Redis (see watch.go).
	watch *queueWatch
	log   *slog.Logger
	// unknownDequeue warns once of a dequeue by another script than
	// asynqDequeueSHA: another asynq version, whose asks pass through.
	unknownDequeue sync.Once
	// unknownDone is unknownDequeue for asynq's done; once it happened,
	// noRetire tells the worker not to retire tasks itself.
	unknownDone sync.Once
	noRetire    atomic.Bool
	// unknownList is unknownDequeue for asynq's listing of lease-expired
	// tasks, whose calls are otherwise answered with none (leaseLists
	// counts them).
	unknownList sync.Once
	leaseLists  atomic.Int64

	mu      sync.Mutex
	queues  map[string]*takeQueue // by pending list
	stopped bool

	// retiredAt holds, by task hash, the tasks retired with their job's
	// end (see TaskDone) whose Done asynq has not asked for yet.
	retiredAt map[string]time.Time
	// records holds, by task hash, the job records read with the tasks
	// handed over whose runs have not asked for them yet.
	records map[string]keptRecord

	// asks counts the dequeues asked for, trips the round trips made for
	// them; dones the Done asks answered without one.
	asks, trips, dones atomic.Int64
}

// takeQueue is what takeClient keeps of one queue: its keys, the tasks
// taken off it and not yet handed over (oldest first), and how many were
// asked for in this quarter of takeHold and the last.
type takeQueue struct {
	keys keyspace.AsynqQueueKeys
	// fair is the queue's fair line; nil for a queue that is not one of
	// the layout's.
	fair         *keyspace.FairKeys
	tasks        []heldTask
	asks, recent int
}

type heldTask struct {
	id, msg string
	rec     taskRecord
	at      time.Time
}

// taskRecord is a job record as a take read it with the job's task: its
// t, doc, seq and req fields; doc is "" when the record was gone.
type taskRecord struct {
	tenant, doc, seq, req string
}

// keptRecord is a taskRecord whose task was handed over at at.
type keptRecord struct {
	taskRecord
	at time.Time
}

func newTakeClient(rdb redis.UniversalClient, ks *keyspace.Space, room func() int, log *slog.Logger) *takeClient {
	return &takeClient{
		UniversalClient: rdb, ks: ks, room: room, log: orDiscard(log), public: !keyspace.AsynqDirect(),
		queues: map[string]*takeQueue{}, retiredAt: map[string]time.Time{},
		records: map[string]keptRecord{},
	}
}

// retiring reports whether the worker is to retire its tasks with their
// job's end (see TaskDone): as long as asynq's done is the one takeClient
// knows.
func (c *takeClient) retiring() bool { return !c.public && !c.noRetire.Load() }

// retired records that the task of hash key was retired with its job's
// end, so that asynq's Done of it needs no round trip.
func (c *takeClient) retired(key string) {
	c.mu.Lock()
	c.retiredAt[key] = time.Now()
	c.mu.Unlock()
}

// record returns, and forgets, the job record read with the task of hash
// key when it was taken; ok is false when none was.
func (c *takeClient) record(key string) (rec taskRecord, ok bool) {
	c.mu.Lock()
	r, ok := c.records[key]
	delete(c.records, key)
	c.mu.Unlock()
	return r.taskRecord, ok
}

// forget drops what was kept longer than age ago for a task that did not
// come back for it: a retired task whose Done never came (asynq skips it
// when the lease ran out), a record read with a task whose run never
// started (asynq puts a task back when it stops).
func (c *takeClient) forget(age time.Duration) {
	cutoff := time.Now().Add(-age)
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, at := range c.retiredAt {
		if !at.After(cutoff) {
			delete(c.retiredAt, key)
		}
	}
	for key, r := range c.records {
		if !r.at.After(cutoff) {
			delete(c.records, key)
		}
	}
}

// EvalSha serves asynq's dequeue from the tasks held, or by taking a
// batch, its Done of a task already retired at once, and its recoverers'
// listing of lease-expired tasks with none (the worker recovers them
// itself: recover.go); any other script runs as it is.
func (c *takeClient) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	if c.public {
		return c.UniversalClient.EvalSha(ctx, sha, keys, args...)
	}
	if len(keys) == 1 && isAsynqKey(keys[0], "lease") {
		if sha != keyspace.AsynqListLeaseExpiredSHA {
			c.unknownList.Do(func() {
				c.log.Warn("asynq's listing of lease-expired tasks is not the one this version knows: each fetch loop runs asynq's recoverer too", "sha", sha)
			})
			return c.UniversalClient.EvalSha(ctx, sha, keys, args...)
		}
		c.leaseLists.Add(1)
		cmd := redis.NewCmd(ctx, "evalsha", sha)
		cmd.SetVal([]any{})
		return cmd
	}
	if len(keys) == 5 && isAsynqKey(keys[0], "active") && isAsynqKey(keys[1], "lease") {
		if sha != keyspace.AsynqDoneSHA {
			c.unknownDone.Do(func() {
				c.noRetire.Store(true)
				c.log.Warn("asynq's done script is not the one this version knows: tasks are retired by asynq, in a round trip of their own", "sha", sha)
			})
			return c.UniversalClient.EvalSha(ctx, sha, keys, args...)
		}
		c.mu.Lock()
		_, ok := c.retiredAt[keys[2]]
		delete(c.retiredAt, keys[2])
		c.mu.Unlock()
		if ok {
			c.dones.Add(1)
			cmd := redis.NewCmd(ctx, "evalsha", sha)
			cmd.SetVal("OK")
			return cmd
		}
	}
	if c.watch != nil && len(keys) <= 2 && (sha == keyspace.AsynqForwardSHA || sha == keyspace.AsynqDeleteCompletedSHA) {
		return c.idleWork(ctx, sha, keys, args)
	}
	if sha != keyspace.AsynqDequeueSHA || len(keys) != 4 || len(args) != 2 {
		if len(keys) == 4 && isAsynqKey(keys[0], "pending") && isAsynqKey(keys[3], "lease") {
			c.unknownDequeue.Do(func() {
				c.log.Warn("asynq's dequeue script is not the one this version knows: tasks are taken one per round trip", "sha", sha)
			})
		}
		return c.UniversalClient.EvalSha(ctx, sha, keys, args...)
	}
	c.asks.Add(1)
	cmd := redis.NewCmd(ctx, "evalsha", sha)
	id, msg, err := c.take(ctx, keys, args)
	switch {
	case err != nil:
		cmd.SetErr(err)
	case id == "":
		cmd.SetErr(redis.Nil)
	default:
		cmd.SetVal(msg)
	}
	return cmd
}

// idleWork serves asynq's forwarder (keys: a scheduled or retry set and
// its pending list) and janitor (keys: a completed set) calls: with 0,
// without Redis, when the watch says there is nothing to do; otherwise
// from Redis, telling the watch what was done.
func (c *takeClient) idleWork(ctx context.Context, sha string, keys []string, args []any) *redis.Cmd {
	forward := sha == keyspace.AsynqForwardSHA
	if forward && len(keys) != 2 || !forward && len(keys) != 1 {
		return c.UniversalClient.EvalSha(ctx, sha, keys, args...)
	}
	if forward && !c.watch.forward(keys[0]) || !forward && !c.watch.sweep(keys[0]) {
		cmd := redis.NewCmd(ctx, "evalsha", sha)
		cmd.SetVal(int64(0))
		return cmd
	}
	cmd := c.UniversalClient.EvalSha(ctx, sha, keys, args...)
	if n, err := cmd.Int64(); err == nil {
		c.watch.idle(keys[0], n)
		if forward && n > 0 {
			c.watch.wake(keys[1])
		}
	}
	return cmd
}

// take hands over the oldest task held for the queue of keys, or takes a
// batch off it and hands over the first; "" when the queue has none (or
// is paused).
func (c *takeClient) take(ctx context.Context, keys []string, args []any) (id, msg string, err error) {
	c.mu.Lock()
	q := c.queues[keys[0]]
	if q == nil {
		name, _, _ := keyspace.ParseAsynqKey(keys[0])
		q = &takeQueue{keys: keyspace.AsynqQueue(name)}
		if fair, ok := c.ks.FairOf(name); ok {
			q.fair = &fair
		}
		c.queues[keys[0]] = q
	}
	q.asks++
	if len(q.tasks) > 0 {
		t := q.tasks[0]
		q.tasks = q.tasks[1:]
		c.handLocked(q, t)
		c.mu.Unlock()
		return t.id, t.msg, nil
	}
	var gen uint64
	if c.watch != nil {
		var skip bool
		if skip, gen = c.watch.skip(keys[0]); skip {
			c.mu.Unlock()
			return "", "", nil
		}
	}
	n := 1
	if !c.stopped {
		n = min(takeBatch, max(1, c.room()-c.heldLocked(), q.recent))
	}
	c.mu.Unlock()

	c.trips.Add(1)
	taken, err := c.takeBatch(ctx, q.keys, q.fair, args[0], n)
	if err == nil && c.watch != nil {
		c.watch.taken(keys[0], gen, len(taken))
	}
	if err != nil || len(taken) == 0 {
		return "", "", err
	}
	c.mu.Lock()
	first := taken[0]
	c.handLocked(q, first)
	q.tasks = append(q.tasks, taken[1:]...)
	stopped := c.stopped && len(q.tasks) > 0
	c.mu.Unlock()
	if stopped {
		c.putBack(ctx, 0, false)
	}
	return first.id, first.msg, nil
}

// takeBatch takes up to n tasks off queue q (its pending list and its
// fair line in turn), leased until expiry, and
// reads them with their records: asynq's dequeue, n at a time, in two
// round trips (keyspace's take and claim), as a script may touch only the
// keys it is given and the tasks' keys are known only once they are taken.
// A task whose hash is gone stays active and leased, for the recoverer.
func (c *takeClient) takeBatch(ctx context.Context, q keyspace.AsynqQueueKeys, fair *keyspace.FairKeys, expiry any, n int) ([]heldTask, error) {
	keys := []string{q.Pending, q.Paused, q.Active, q.Lease}
	if fair != nil {
		keys = append(keys, fair.Line, fair.State)
	}
	ids, err := keyspace.Take.Run(ctx, c.UniversalClient, keys, expiry, n).StringSlice()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	keys = make([]string, 0, 2*len(ids))
	for _, id := range ids {
		keys = append(keys, q.TaskPrefix+id, c.ks.Record(id))
	}
	res, err := keyspace.Claim.Run(ctx, c.UniversalClient, keys).Slice()
	if err != nil {
		// The tasks stay active and leased: the recoverer puts them back.
		return nil, err
	}
	str := func(v any) string { s, _ := v.(string); return s }
	now := time.Now()
	out := make([]heldTask, 0, len(ids))
	for i, id := range ids {
		r := res[5*i : 5*i+5]
		if r[0] == nil {
			continue // the task's hash is gone
		}
		out = append(out, heldTask{
			id: id, msg: str(r[0]), at: now,
			rec: taskRecord{tenant: str(r[1]), doc: str(r[2]), seq: str(r[3]), req: str(r[4])},
		})
	}
	return out, nil
}

// handLocked keeps the record read with t, which is handed over now, for
// its run; c.mu is held.
func (c *takeClient) handLocked(q *takeQueue, t heldTask) {
	if t.rec.doc != "" {
		c.records[q.keys.TaskPrefix+t.id] = keptRecord{taskRecord: t.rec, at: time.Now()}
	}
}

// heldLocked counts the tasks held; c.mu is held.
func (c *takeClient) heldLocked() int {
	n := 0
	for _, q := range c.queues {
		n += len(q.tasks)
	}
	return n
}

// putBack returns the tasks held for longer than age to their queues.
// With count, it also starts a new quarter of takeHold in the counts of
// asks.
func (c *takeClient) putBack(ctx context.Context, age time.Duration, count bool) {
	type batch struct {
		q    *takeQueue
		keys []string
		ids  []any
	}
	var out []batch
	cutoff := time.Now().Add(-age)
	c.mu.Lock()
	for _, q := range c.queues {
		if count {
			q.recent, q.asks = q.asks, 0
		}
		// Held tasks are in the order taken: the old ones come first.
		k := 0
		for k < len(q.tasks) && !q.tasks[k].at.After(cutoff) {
			k++
		}
		if k == 0 {
			continue
		}
		keys := make([]string, 0, k+3)
		keys = append(keys, q.keys.Active, q.keys.Lease, q.keys.Pending)
		ids := make([]any, 0, k)
		// Each goes to the front of the queue (RPUSH): the oldest goes
		// last, so that it is taken first again.
		for i := k - 1; i >= 0; i-- {
			keys = append(keys, q.keys.TaskPrefix+q.tasks[i].id)
			ids = append(ids, q.tasks[i].id)
		}
		q.tasks = append(q.tasks[:0], q.tasks[k:]...)
		out = append(out, batch{q, keys, ids})
	}
	c.mu.Unlock()
	for _, b := range out {
		// A task not put back stays active and leased: asynq's recoverer
		// returns it once its lease runs out.
		if keyspace.PutBack.Run(ctx, c.UniversalClient, b.keys, b.ids...).Err() == nil && c.watch != nil {
			c.watch.wake(b.q.keys.Pending)
		}
	}
}

// holdLoop puts back the tasks not asked for within takeHold, counts the
// asks of each quarter of it and forgets what was kept for a task that did
// not come back for it within keepFor, until ctx ends.
func (c *takeClient) holdLoop(ctx context.Context) {
	t := time.NewTicker(takeHold / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.putBack(ctx, takeHold, true)
			c.forget(keepFor)
		}
	}
}

// stop makes every later ask take one task at a time, and puts back the
// tasks held.
func (c *takeClient) stop(ctx context.Context) {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.putBack(ctx, 0, false)
}

// isAsynqKey reports whether key is a key of kind of an asynq queue.
func isAsynqKey(key, kind string) bool {
	_, k, ok := keyspace.ParseAsynqKey(key)
	return ok && k == kind
}
