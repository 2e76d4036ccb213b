package status

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestOrderingLine runs an ordering key's line through the store on one
// Redis node and on a 3-master cluster with 6 shards: only the head has a
// task; its end starts the next; a waiting job canceled leaves the line; a
// promotion lost (the promote script failing, as a process dying between
// a job's end and the next one's start would leave it) is made by
// PromoteLines; a dead job replayed joins the end; and the backlog counts
// follow.
func TestOrderingLine(t *testing.T) {
	t.Parallel()
	t.Run("node", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Shared(t)
		testOrderingLine(t, 1, func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: srv.Addr()}) })
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(0))
		testOrderingLine(t, 6, func() redis.UniversalClient { return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()}) })
	})
}

// failPromote is a go-redis hook that fails every call of the promote
// script, before it reaches Redis.
type failPromote struct{}

func (failPromote) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failPromote) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if isPromote(cmd) {
			cmd.SetErr(errors.New("promote lost"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (failPromote) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if isPromote(cmd) {
				cmd.SetErr(errors.New("promote lost"))
				return cmd.Err()
			}
		}
		return next(ctx, cmds)
	}
}

func isPromote(cmd redis.Cmder) bool {
	args := cmd.Args()
	if len(args) < 2 {
		return false
	}
	name, _ := args[0].(string)
	body, _ := args[1].(string)
	return strings.EqualFold(name, "evalsha") && body == keyspace.Promote.Hash() ||
		strings.EqualFold(name, "eval") && body == keyspace.Source("promote")
}

func testOrderingLine(t *testing.T, shards int, dial func() redis.UniversalClient) {
	const tenant, key = "acme", "acct-42"
	prefix := redistest.Prefix(t)
	rdb := dial()
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := New(Config{Prefix: prefix, Shards: shards}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	ks := st.Space()
	ctx := testContext(t)
	shard := ks.ShardFor(tenant, key)
	line := ks.OrderingLine(tenant, key)

	accept := func() *jobs.Job {
		t.Helper()
		j := newJob(tenant)
		j.ID, j.OrderingKey = ks.PlaceID(j.ID, shard), key
		task := keyspace.NewTaskWrite(keyspace.Task{Type: jobs.TaskType, Payload: []byte(`{}`), ID: j.ID,
			Queue: ks.JobQueue(j.ID, j.Queue), MaxRetry: 3, Timeout: time.Minute}, time.Time{}, time.Now())
		if err := st.Accept(ctx, j, &jobs.Request{}, task); err != nil {
			t.Fatalf("Accept: %v", err)
		}
		return j
	}
	taskOf := func(j *jobs.Job) string {
		return keyspace.AsynqQueue(ks.JobQueue(j.ID, j.Queue)).TaskPrefix + j.ID
	}
	hasTask := func(j *jobs.Job) bool {
		t.Helper()
		n, err := rdb.Exists(ctx, taskOf(j)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	// pending lists the tasks waiting on j's queue: its pending list's
	// and its fair line's.
	pending := func(j *jobs.Job) []string {
		t.Helper()
		ids, err := rdb.LRange(ctx, keyspace.AsynqQueue(ks.JobQueue(j.ID, j.Queue)).Pending, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		fair, _ := ks.FairOf(ks.JobQueue(j.ID, j.Queue))
		members, err := rdb.ZRange(ctx, fair.Line, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			id, _, _ := strings.Cut(m, "\n")
			ids = append(ids, id)
		}
		return ids
	}
	end := func(s *Store, j *jobs.Job, state jobs.State) {
		t.Helper()
		_, err := s.Update(ctx, tenant, j.ID, func(j *jobs.Job) error {
			j.State = state
			return nil
		})
		if err != nil {
			t.Fatalf("Update %s to %s: %v", j.ID, state, err)
		}
		if hasTask(j) {
			// As the worker's end retires it, or a cancel deletes it.
			if _, err := s.Withdraw(ctx, j); err != nil {
				t.Fatal(err)
			}
			rdb.Del(ctx, taskOf(j))
			rdb.LRem(ctx, keyspace.AsynqQueue(ks.JobQueue(j.ID, j.Queue)).Pending, 0, j.ID)
		}
	}
	backlog := func(wantWaiting, wantPromoting int64) {
		t.Helper()
		w, p, err := st.OrderingBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w[tenant] != wantWaiting || p != wantPromoting {
			t.Fatalf("backlog: %d waiting, %d promoting; want %d, %d", w[tenant], p, wantWaiting, wantPromoting)
		}
	}
	lineIs := func(want ...*jobs.Job) {
		t.Helper()
		got, err := rdb.LRange(ctx, line, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			id, _, _ := keyspace.ParseOrderingEntry(e)
			ids = append(ids, id)
		}
		var wantIDs []string
		for _, j := range want {
			wantIDs = append(wantIDs, j.ID)
		}
		if strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
			t.Fatalf("line %v, want %v", ids, wantIDs)
		}
	}

	if shards > 1 {
		// A job whose ID is not on its key's shard is refused, nothing
		// written: its line and its records would be in two slots.
		j := newJob(tenant)
		j.ID, j.OrderingKey = ks.PlaceID(j.ID, (shard+1)%shards), key
		task := keyspace.NewTaskWrite(keyspace.Task{Type: jobs.TaskType, Payload: []byte(`{}`), ID: j.ID,
			Queue: ks.JobQueue(j.ID, j.Queue), MaxRetry: 3, Timeout: time.Minute}, time.Time{}, time.Now())
		if err := st.Accept(ctx, j, &jobs.Request{}, task); !errors.Is(err, errOffShard) {
			t.Fatalf("Accept off its key's shard: %v, want errOffShard", err)
		}
	}
	a, b, c := accept(), accept(), accept()
	if !hasTask(a) || hasTask(b) || hasTask(c) {
		t.Fatalf("tasks: head %v, others %v %v; want the head's only", hasTask(a), hasTask(b), hasTask(c))
	}
	if tmsg, _ := rdb.HGet(ctx, ks.Record(b.ID), "tmsg").Result(); tmsg == "" {
		t.Fatal("a waiting job's record holds no task message")
	}
	lineIs(a, b, c)
	backlog(2, 0)

	// The head ends: the next one gets its task at once.
	end(st, a, jobs.StateSucceeded)
	if !hasTask(b) || hasTask(c) {
		t.Fatalf("after the head's end: b has a task %v, c %v; want b only", hasTask(b), hasTask(c))
	}
	if got := pending(b); len(got) != 1 || got[0] != b.ID {
		t.Fatalf("pending %v, want [%s]", got, b.ID)
	}
	if n, _ := rdb.HExists(ctx, ks.Record(b.ID), "tmsg").Result(); n {
		t.Fatal("the promoted job's record still holds its task message")
	}
	lineIs(b, c)
	backlog(1, 0)

	// A waiting job canceled leaves the line; the head keeps its place.
	end(st, c, jobs.StateCanceled)
	lineIs(b)
	backlog(0, 0)
	if hasTask(c) {
		t.Fatal("the canceled waiting job has a task")
	}

	// A promotion lost: the line stays in the promote set, the next job
	// without a task, until PromoteLines.
	d := accept()
	lossy := dial()
	t.Cleanup(func() { _ = lossy.Close() })
	lossy.AddHook(failPromote{})
	lst, err := New(Config{Prefix: prefix, Shards: shards}, lossy)
	if err != nil {
		t.Fatal(err)
	}
	end(lst, b, jobs.StateDead)
	if hasTask(d) {
		t.Fatal("d has a task although its promotion failed")
	}
	if ok, _ := rdb.SIsMember(ctx, ks.PromoteSet(shard), line).Result(); !ok {
		t.Fatal("the line is not in the promote set after a lost promotion")
	}
	backlog(0, 1)
	if n, err := st.PromoteLines(ctx); err != nil || n < 1 {
		t.Fatalf("PromoteLines: %d, %v", n, err)
	}
	if !hasTask(d) {
		t.Fatal("PromoteLines did not start the line's head")
	}
	backlog(0, 0)

	// The dead job replayed joins the end, behind d and a job accepted
	// before the replay; it gets its task when it is the head.
	e := accept()
	if _, err := st.Reopen(ctx, tenant, b.ID, func(j *jobs.Job) error {
		j.State = jobs.StateQueued
		return nil
	}); !errors.Is(err, errNeedsRejoin) {
		t.Fatalf("Reopen of a dead job with an ordering key: %v, want errNeedsRejoin", err)
	}
	replay := keyspace.NewTaskWrite(keyspace.Task{Type: jobs.TaskType, Payload: []byte(`{"r":1}`), ID: b.ID,
		Queue: ks.JobQueue(b.ID, b.Queue), MaxRetry: 3, Timeout: time.Minute}, time.Time{}, time.Now())
	if _, err := st.Rejoin(ctx, tenant, b.ID, replay, func(j *jobs.Job) error {
		j.State, j.Replays = jobs.StateQueued, 1
		return nil
	}); err != nil {
		t.Fatalf("Rejoin: %v", err)
	}
	lineIs(d, e, b)
	backlog(2, 0)
	end(st, d, jobs.StateSucceeded)
	end(st, e, jobs.StateFailed)
	if !hasTask(b) {
		t.Fatal("the replayed job did not get its task when it became the head")
	}
	if msg, _ := rdb.HGet(ctx, taskOf(b), "msg").Result(); msg != string(replay.Msg) {
		t.Fatal("the replayed job's task is not its replay's")
	}
	end(st, b, jobs.StateSucceeded)
	lineIs()
	backlog(0, 0)
	if n, _ := rdb.Exists(ctx, line).Result(); n != 0 {
		t.Fatal("an empty line is left in Redis")
	}
}
