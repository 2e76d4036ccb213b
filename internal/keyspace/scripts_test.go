package keyspace_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/ratelimit"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/upstream"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestScriptsDeclareTheirKeys runs every script through the code that
// calls it — accepts with and without Idempotency-Keys and callbacks, a
// worker taking, running and retiring jobs, a death, a delete from the
// dead-letter queue, a cancel, the outbox, a delivery, a rate limit, a
// put-back, a recovery and an upstream's limits — with four shards, on a
// one-node Redis Cluster, each script sent with a "#!lua" shebang. Under it Redis refuses a call
// whose keys are in more than one slot; the test also checks each call's
// keys itself, and watches MONITOR for any key a script touches that it
// did not declare.
func TestScriptsDeclareTheirKeys(t *testing.T) {
	cluster := redistest.StartCluster(t, redistest.WithMasters(1), redistest.WithReplicas(0))
	addr := cluster.Addrs()[0]
	mon := startMonitor(t, addr)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	strict := &strictScripts{t: t, bySHA: map[string]string{}, calls: map[string]int{}}
	for _, name := range keyspace.ScriptNames() {
		strict.bySHA[strings.ToLower(scriptSHA(name))] = name
	}
	rdb.AddHook(strict)

	ctx := t.Context()
	drive(t, ctx, rdb)

	// Everything ran, and each script at least once.
	for _, name := range keyspace.ScriptNames() {
		if strict.count(name) == 0 {
			t.Errorf("script %s never ran: drive it", name)
		}
	}
	for _, err := range strict.errs() {
		t.Error(err)
	}

	// Every key each script touched is one it declared.
	marker := "end-of-test-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := rdb.Echo(ctx, marker).Err(); err != nil {
		t.Fatal(err)
	}
	lines := mon.until(t, marker)
	keysOf := getKeys(rdb)
	var cur *evalCall
	checked := 0
	for _, l := range lines {
		args, fromLua, ok := redistest.ParseMonitorLine(l)
		if !ok || len(args) == 0 {
			continue
		}
		if !fromLua {
			cur = nil
			if strings.EqualFold(args[0], "eval") && len(args) >= 3 && strings.HasPrefix(args[1], "#!lua") {
				n, _ := strconv.Atoi(args[2])
				cur = &evalCall{name: scriptName(args[1]), keys: args[3 : 3+n]}
			}
			continue
		}
		if cur == nil {
			continue // a command of one of asynq's own scripts
		}
		for _, k := range keysOf(ctx, args) {
			checked++
			if !slices.Contains(cur.keys, k) {
				t.Errorf("script %s: %s touches %q, which it did not declare (KEYS %q)", cur.name, args[0], k, cur.keys)
			}
		}
	}
	if checked == 0 {
		t.Fatal("MONITOR showed no key touched by a script: the watch is broken")
	}
}

// drive runs every script through its callers.
func drive(t *testing.T, ctx context.Context, rdb *redis.Client) {
	const tenant, queue = "acme", "default"
	store, err := status.New(status.Config{Prefix: "kst", Shards: 4}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	ks := store.Space()
	client := submit.New(rdb, store, nil)
	if err := client.RegisterQueues(ctx, []string{queue}); err != nil {
		t.Fatal(err)
	}
	submit := func(typ, key, callback string, at time.Time) *jobs.Job {
		t.Helper()
		now := time.Now().UTC()
		j := &jobs.Job{ID: client.NewID(tenant, key), Type: typ, State: jobs.StateQueued, Queue: queue,
			MaxAttempts: 1, CreatedAt: now, UpdatedAt: now, Tenant: tenant, CallbackURL: callback,
			CallbackEvents: []jobs.State{jobs.StateQueued, jobs.StateSucceeded}}
		if key != "" {
			j.IdempotencyKey, j.IdempotencyFingerprint = key, "fp"
		}
		if !at.IsZero() {
			j.State, j.NextAttemptAt = jobs.StateScheduled, &at
		}
		if err := client.Submit(ctx, j, &jobs.Request{Method: http.MethodPost}, at); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		return j
	}
	var run []*jobs.Job
	for i := range 12 {
		key, cb := "", ""
		if i%2 == 0 {
			key = "key-" + strconv.Itoa(i)
		}
		if i%3 == 0 {
			cb = "https://hooks.example/acme"
		}
		run = append(run, submit("ok", key, cb, time.Time{}))
	}
	dead := submit("dead", "", "", time.Time{})
	later := submit("ok", "", "", time.Now().Add(time.Hour))

	// Jobs with an ordering key: in line on their key's shard, one with
	// an Idempotency-Key, one scheduled, one canceled while it waits, one
	// that dies and is replayed into its line.
	ordered := func(typ, key, idem string, at time.Time) *jobs.Job {
		t.Helper()
		now := time.Now().UTC()
		j := &jobs.Job{ID: client.NewID(tenant, key), Type: typ, State: jobs.StateQueued, Queue: queue,
			MaxAttempts: 1, CreatedAt: now, UpdatedAt: now, Tenant: tenant, OrderingKey: key}
		if idem != "" {
			j.IdempotencyKey, j.IdempotencyFingerprint = idem, "fp"
		}
		if !at.IsZero() {
			j.State, j.NextAttemptAt = jobs.StateScheduled, &at
		}
		if err := client.Submit(ctx, j, &jobs.Request{Method: http.MethodPost}, at); err != nil {
			t.Fatalf("Submit ordered: %v", err)
		}
		return j
	}
	orderedDead := ordered("dead", "acct-2", "", time.Time{})
	run = append(run,
		ordered("ok", "acct-1", "", time.Time{}),
		ordered("ok", "acct-1", "idem-acct-1", time.Time{}),
		ordered("ok", "acct-1", "", time.Now().Add(time.Second)),
		ordered("ok", "acct-2", "", time.Time{}))
	waiter := ordered("ok", "acct-1", "", time.Time{})
	if _, err := client.Cancel(ctx, tenant, waiter.ID); err != nil {
		t.Fatalf("Cancel waiting job: %v", err)
	}
	run = append(run, ordered("ok", "acct-1", "", time.Time{}))

	// New jobs wait in their queue's fair line: one is canceled there
	// (withdrawn), and one shard's line is moved to its pending list, as
	// a worker on asynq's public API moves it.
	withdrawn := submit("ok", "", "", time.Time{})
	if _, err := client.Cancel(ctx, tenant, withdrawn.ID); err != nil {
		t.Fatalf("Cancel job in the fair line: %v", err)
	}
	moved := submit("ok", "", "", time.Time{})
	run = append(run, moved)
	fair, _ := ks.FairOf(ks.JobQueue(moved.ID, queue))
	if n, err := keyspace.Unfair.Run(ctx, rdb, []string{fair.Line, fair.State, keyspace.AsynqQueue(ks.JobQueue(moved.ID, queue)).Pending}, 100).Int(); err != nil || n == 0 {
		t.Fatalf("Unfair: moved %d, %v", n, err)
	}

	w, err := worker.New(worker.Config{Queues: map[string]int{queue: 1}, Concurrency: 4, ShutdownTimeout: 2 * time.Second}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("ok", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) { return json.RawMessage(`{}`), nil })
	w.Handle("dead", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
		return nil, worker.GiveUp(errors.New("refused"))
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	for _, j := range append(run, dead) {
		want := jobs.StateSucceeded
		if j == dead {
			want = jobs.StateDead
		}
		testutil.WaitFor(t, 20*time.Second, "job "+j.ID+" "+string(want), func() bool {
			got, err := store.Get(ctx, tenant, j.ID)
			return err == nil && got.State == want
		})
	}
	testutil.WaitFor(t, 20*time.Second, "ordered job "+orderedDead.ID+" dead", func() bool {
		got, err := store.Get(ctx, tenant, orderedDead.ID)
		return err == nil && got.State == jobs.StateDead
	})
	if _, err := client.Replay(ctx, tenant, orderedDead.ID, time.Time{}); err != nil {
		t.Fatalf("Replay ordered: %v", err)
	}
	testutil.WaitFor(t, 20*time.Second, "replayed job "+orderedDead.ID+" dead again", func() bool {
		got, err := store.Get(ctx, tenant, orderedDead.ID)
		return err == nil && got.State == jobs.StateDead && got.Replays == 1
	})
	// A line left in a promote set, as a process that died between a
	// job's end and the next one's start leaves it.
	line := ks.OrderingLine(tenant, "acct-3")
	rdb.SAdd(ctx, ks.PromoteSet(ks.ShardFor(tenant, "acct-3")), line)
	if _, err := store.PromoteLines(ctx); err != nil {
		t.Fatalf("PromoteLines: %v", err)
	}
	if err := store.DeleteDeadLetter(ctx, tenant, queue, dead.ID); err != nil {
		t.Fatalf("DeleteDeadLetter: %v", err)
	}
	if _, err := client.Cancel(ctx, tenant, later.ID); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if _, err := store.ClaimOutbox(ctx, tenant, 10, time.Minute); err != nil {
		t.Fatalf("ClaimOutbox: %v", err)
	}
	if err := store.AddDelivery(ctx, tenant, run[0].ID, 1, "delivery-1"); err != nil {
		t.Fatalf("AddDelivery: %v", err)
	}
	limiter, err := ratelimit.NewRedis(rdb, ratelimit.RedisConfig{Prefix: "kst"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := limiter.Allow(ctx, tenant, ratelimit.Limit{Rate: 1, Burst: 1}); err != nil {
		t.Fatalf("rate limit: %v", err)
	}

	// An upstream's limits: a slot taken, renewed, refused, given back
	// with a Retry-After, and the use read.
	up, err := upstream.New(rdb, upstream.Config{Prefix: "kst", Lease: 300 * time.Millisecond, HandOff: 1, Limits: map[string]upstream.Limit{
		"payments.internal:8443": {Concurrency: 1, Rate: 100, Adaptive: true},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := up.Acquire(ctx, "payments.internal:8443", run[0].ID)
	if err != nil {
		t.Fatalf("upstream acquire: %v", err)
	}
	leases := keyspace.Upstream("kst", "payments.internal:8443").Leases
	taken := rdb.ZRangeWithScores(ctx, leases, 0, 0).Val()
	if len(taken) != 1 {
		t.Fatalf("upstream leases: %v", taken)
	}
	first := taken[0].Score
	testutil.WaitFor(t, 5*time.Second, "the lease renewed", func() bool {
		return rdb.ZScore(ctx, leases, taken[0].Member.(string)).Val() > first
	})
	if _, err := up.Acquire(ctx, "payments.internal:8443", run[1].ID); err == nil {
		t.Fatal("upstream acquire: a second slot of one")
	}
	lease.Release(upstream.Outcome{Called: true, Overload: true, RetryAfter: time.Second})
	if _, err := up.Usage(ctx); err != nil {
		t.Fatalf("upstream usage: %v", err)
	}

	// A put-back and a recovery, as the worker makes them, of tasks on a
	// queue of their own.
	for shard := range ks.Shards() {
		q := keyspace.AsynqQueue(ks.Queue(shard, "spare"))
		id := ks.PlaceID(jobs.NewID(), shard)
		rdb.HSet(ctx, q.TaskPrefix+id, "msg", "m", "state", "active")
		rdb.LPush(ctx, q.Active, id)
		rdb.ZAdd(ctx, q.Lease, redis.Z{Score: 1, Member: id})
		if err := keyspace.Recover.Run(ctx, rdb, []string{q.Lease, q.Active, q.Pending, q.TaskPrefix + id}, 10, id).Err(); err != nil {
			t.Fatalf("recover: %v", err)
		}
		rdb.LMove(ctx, q.Pending, q.Active, "RIGHT", "LEFT")
		if err := keyspace.PutBack.Run(ctx, rdb, []string{q.Active, q.Lease, q.Pending, q.TaskPrefix + id}, id).Err(); err != nil {
			t.Fatalf("put back: %v", err)
		}
	}
}

// strictScripts is a go-redis hook that sends each of keyspace's scripts
// as EVAL with a "#!lua" shebang, checks that each call's keys share one
// slot, and counts the calls.
type strictScripts struct {
	t     *testing.T
	bySHA map[string]string

	mu    sync.Mutex
	calls map[string]int
	bad   []error
}

func (s *strictScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *strictScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := s.rewrite(cmd)
		err := next(ctx, cmd)
		s.outcome(name, cmd)
		return err
	}
}

func (s *strictScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = s.rewrite(cmd)
		}
		err := next(ctx, cmds)
		for i, cmd := range cmds {
			s.outcome(names[i], cmd)
		}
		return err
	}
}

// rewrite turns an EVALSHA of one of keyspace's scripts into an EVAL of its
// source behind a shebang, and returns the script's name ("" for any other
// command).
func (s *strictScripts) rewrite(cmd redis.Cmder) string {
	args := cmd.Args()
	if len(args) < 3 || !strings.EqualFold(fmt.Sprint(args[0]), "evalsha") {
		return ""
	}
	name, ok := s.bySHA[strings.ToLower(fmt.Sprint(args[1]))]
	if !ok {
		return "" // one of asynq's
	}
	args[0], args[1] = "eval", "#!lua\n"+keyspace.Source(name)
	n, _ := strconv.Atoi(fmt.Sprint(args[2]))
	var slot uint16
	for i := range n {
		k := fmt.Sprint(args[3+i])
		if i == 0 {
			slot = keyspace.Slot(k)
		} else if keyspace.Slot(k) != slot {
			s.fail(fmt.Errorf("script %s: key %q is in slot %d, the first key in %d", name, k, keyspace.Slot(k), slot))
		}
	}
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
	return name
}

func (s *strictScripts) outcome(name string, cmd redis.Cmder) {
	if name == "" {
		return
	}
	if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
		s.fail(fmt.Errorf("script %s: %w", name, err))
	}
}

func (s *strictScripts) fail(err error) {
	s.mu.Lock()
	s.bad = append(s.bad, err)
	s.mu.Unlock()
}

func (s *strictScripts) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *strictScripts) errs() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bad)
}

// scriptSHA is the SHA-1 of a script as go-redis sends it.
func scriptSHA(name string) string { return redis.NewScript(keyspace.Source(name)).Hash() }

// scriptName reads a script's name from its header ("-- name: …").
func scriptName(src string) string {
	for _, l := range strings.Split(src, "\n") {
		if n, _, ok := strings.Cut(strings.TrimPrefix(l, "-- "), ":"); ok && strings.HasPrefix(l, "-- ") {
			return n
		}
	}
	return "?"
}

type evalCall struct {
	name string
	keys []string
}

// getKeys returns a function that names the keys of a command, as Redis
// reads them (COMMAND GETKEYS), caching by command shape.
func getKeys(rdb *redis.Client) func(context.Context, []string) []string {
	return func(ctx context.Context, args []string) []string {
		a := make([]any, 0, len(args)+2)
		a = append(a, "command", "getkeys")
		for _, x := range args {
			a = append(a, x)
		}
		keys, err := rdb.Do(ctx, a...).StringSlice()
		if err != nil {
			return nil // a command without keys (TIME)
		}
		return keys
	}
}

// monitor reads a Redis MONITOR feed.
type monitor struct {
	mu    sync.Mutex
	lines []string
	seen  chan struct{}
}

func startMonitor(t *testing.T, addr string) *monitor {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("MONITOR: %q, %v", l, err)
	}
	m := &monitor{seen: make(chan struct{}, 1)}
	go func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.lines = append(m.lines, strings.TrimSuffix(strings.TrimPrefix(l, "+"), "\r\n"))
			m.mu.Unlock()
			select {
			case m.seen <- struct{}{}:
			default:
			}
		}
	}()
	return m
}

// until waits for a line that contains marker and returns every line
// before it.
func (m *monitor) until(t *testing.T, marker string) []string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		m.mu.Lock()
		for i, l := range m.lines {
			if strings.Contains(l, marker) {
				out := slices.Clone(m.lines[:i])
				m.mu.Unlock()
				return out
			}
		}
		m.mu.Unlock()
		select {
		case <-m.seen:
		case <-deadline:
			t.Fatal("MONITOR never showed the end marker")
		}
	}
}
