package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// idleBudget is the most Redis commands per second an idle worker process
// may cost, with 16 shards and the default queues and concurrency.
const idleBudget = 1000

// idleWindow is how long the idle cost is counted: long enough to take
// in the periodic work (heartbeats every 5s, janitors every 8s).
const idleWindow = 10 * time.Second

// commandStats reads the calls of every command from INFO commandstats,
// and total_commands_processed from INFO stats.
func commandStats(t testing.TB, rdb *redis.Client) (total int64, calls map[string]int64) {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats", "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	calls = map[string]int64{}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			total, _ = strconv.ParseInt(v, 10, 64)
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[name], _ = strconv.ParseInt(n, 10, 64)
	}
	return total, calls
}

// idleCost starts a worker with the default queues and concurrency on a
// Redis server of its own with shards shards, lets it settle, and counts
// the commands Redis processes over idleWindow: per second in all, and by
// command (script calls count once for the EVALSHA and once for each
// command the script runs, as Redis counts them), and returns the worker.
func idleCost(t *testing.T, shards int) (perSec float64, byCmd string, w *worker.Worker) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: shards}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	w, err = worker.New(worker.Config{ShutdownTimeout: 2 * time.Second}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	// Start-up (queue registration, script loads, the first recovery) is
	// not idle cost.
	settle := time.NewTimer(time.Second)
	<-settle.C
	total0, calls0 := commandStats(t, rdb)
	start := time.Now()
	window := time.NewTimer(idleWindow)
	<-window.C
	total1, calls1 := commandStats(t, rdb)
	elapsed := time.Since(start).Seconds()
	// One INFO of ours is counted in the window.
	perSec = float64(total1-total0-1) / elapsed
	type row struct {
		name string
		n    int64
	}
	var rows []row
	for name, n := range calls1 {
		if d := n - calls0[name]; d > 0 && name != "info" {
			rows = append(rows, row{name, d})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, " %s %.0f/s", r.name, float64(r.n)/elapsed)
	}
	return perSec, b.String(), w
}

// TestIdleWorkerCost: an idle worker process with 16 shards × 3 priorities
// (48 asynq queues, 3 fetch loops) costs Redis at most idleBudget commands
// per second in all, counted by the Redis process; one shard is logged
// beside it.
func TestIdleWorkerCost(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 16} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			t.Parallel()
			perSec, byCmd, w := idleCost(t, shards)
			t.Logf("idle worker, %d shards: %.0f commands/s:%s", shards, perSec, byCmd)
			if shards == 16 && perSec > idleBudget {
				t.Errorf("idle worker with 16 shards costs %.0f Redis commands/s, want at most %d:%s", perSec, idleBudget, byCmd)
			}
			// Each of asynq's idle calls was seen and answered: were one
			// of its scripts another than keyspace names, its calls would
			// pass through, and cost less than the budget all the same.
			if skips, forwards, sweeps := worker.IdleCounts(w); skips == 0 || forwards == 0 || sweeps == 0 {
				t.Errorf("answered without Redis: %d dequeues, %d forwarder and %d janitor calls; want some of each (are asynq's scripts still the ones keyspace names?)", skips, forwards, sweeps)
			}
		})
	}
}

// deafWake is a WakeSource that never wakes: the worker finds queued jobs
// by its poll alone.
type deafWake struct{}

func (deafWake) Listen(ctx context.Context, _ func(int, string)) { <-ctx.Done() }

// shardedBundle is a worker on two priorities of its own over 16 shards,
// on the shared Redis, with the Store and Client around it.
type shardedBundle struct {
	rdb    *redis.Client
	store  *status.Store
	client *submit.Client
	worker *worker.Worker
	queues []string
}

// setupSharded starts a worker over 16 shards whose WakeSource is wake
// (nil: an event hub's, as cmd/asyncgw wires it), running jobs of type "t"
// at once.
func setupSharded(t *testing.T, wake worker.WakeSource) *shardedBundle {
	t.Helper()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: 16}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if wake == nil {
		wake = hubWake(t, rdb, store)
	}
	queues := []string{redistest.Queue(t, "high"), redistest.Queue(t, "low")}
	w, err := worker.New(worker.Config{
		Queues: map[string]int{queues[0]: 3, queues[1]: 1}, Concurrency: 4, Fetchers: 2,
		ShutdownTimeout: 2 * time.Second, Wake: wake,
	}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) { return nil, nil })
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return &shardedBundle{rdb: rdb, store: store, client: submit.New(rdb, store, nil), worker: w, queues: queues}
}

// awaitIdle waits until the worker answers dequeues without Redis: it has
// found its queues empty.
func (b *shardedBundle) awaitIdle(t *testing.T) {
	t.Helper()
	skips0, _, _ := worker.IdleCounts(b.worker)
	testutil.WaitFor(t, waitTimeout, "the worker to skip the queues it found empty", func() bool {
		skips, _, _ := worker.IdleCounts(b.worker)
		return skips > skips0+100
	})
}

// submit accepts a job of priority queue, due at processAt (zero: now).
func (b *shardedBundle) submit(t *testing.T, queue string, processAt time.Time) string {
	t.Helper()
	j := jobstest.NewJob(queue)
	if err := b.client.Submit(t.Context(), j, &jobs.Request{}, processAt); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return j.ID
}

// TestIdleWorkerRunsWhatComes: an idle worker over 16 shards, which
// answers its fetch loops' asks of empty queues and its forwarders' and
// janitors' calls without Redis, still runs every job that comes, on
// every priority: accepted now (woken by the accept's event), scheduled
// (moved by a forwarder when due), and put on a queue without any event
// (found by the poll).
func TestIdleWorkerRunsWhatComes(t *testing.T) {
	t.Parallel()
	b := setupSharded(t, nil)
	b.awaitIdle(t)
	for _, q := range b.queues {
		for range 5 {
			jobstest.AwaitState(t, b.store, b.submit(t, q, time.Time{}), jobs.StateSucceeded)
			b.awaitIdle(t)
		}
	}
	jobstest.AwaitState(t, b.store, b.submit(t, b.queues[1], time.Now().Add(time.Second)), jobs.StateSucceeded)
	if _, forwards, _ := worker.IdleCounts(b.worker); forwards == 0 {
		t.Error("no forwarder call answered without Redis (is asynq's forward script still the one keyspace names?)")
	}
}

// TestIdleWorkerPollFindsWork: without any event (a deaf WakeSource), the
// watch's poll finds a job on a queue the worker found empty, whichever
// shard and priority it is on, and a job scheduled on an idle shard.
func TestIdleWorkerPollFindsWork(t *testing.T) {
	t.Parallel()
	b := setupSharded(t, deafWake{})
	b.awaitIdle(t)
	var ids []string
	for range 8 {
		ids = append(ids, b.submit(t, b.queues[0], time.Time{}), b.submit(t, b.queues[1], time.Time{}))
	}
	ids = append(ids, b.submit(t, b.queues[0], time.Now().Add(time.Second)))
	for _, id := range ids {
		jobstest.AwaitState(t, b.store, id, jobs.StateSucceeded)
	}
}

// TestIdleWorkerPausedQueue: a paused queue keeps its tasks, which the
// poll sees on every round; the worker does not run them, and runs them
// once the queue is resumed.
func TestIdleWorkerPausedQueue(t *testing.T) {
	t.Parallel()
	b := setupSharded(t, deafWake{})
	b.awaitIdle(t)
	ks := b.store.Space()
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	for _, q := range ks.Queues(b.queues[0]) {
		if err := insp.PauseQueue(q); err != nil {
			t.Fatal(err)
		}
	}
	id := b.submit(t, b.queues[0], time.Time{})
	other := b.submit(t, b.queues[1], time.Time{})
	jobstest.AwaitState(t, b.store, other, jobs.StateSucceeded)
	b.awaitIdle(t)
	if j, err := b.store.Get(t.Context(), "default", id); err != nil || j.State != jobs.StateQueued {
		t.Fatalf("job on a paused queue: %v %v, want it queued", j.State, err)
	}
	for _, q := range ks.Queues(b.queues[0]) {
		if err := insp.UnpauseQueue(q); err != nil {
			t.Fatal(err)
		}
	}
	jobstest.AwaitState(t, b.store, id, jobs.StateSucceeded)
}

// hubWake is the WakeSource of an event hub on rdb, started for t.
func hubWake(t testing.TB, rdb redis.UniversalClient, store *status.Store) worker.WakeSource {
	t.Helper()
	hub := status.NewHub(rdb, store, nil)
	wake := hub.Wake()
	if err := hub.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hub.Stop(context.Background()) })
	return wake
}

// TestHubWake: an event hub's WakeSource says once that it listens, then
// names the shard and priority of each job accepted, and of none that
// only changes state.
func TestHubWake(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: 16}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	type wake struct {
		shard    int
		priority string
	}
	woke := make(chan wake, 16)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go hubWake(t, rdb, store).Listen(ctx, func(shard int, priority string) { woke <- wake{shard, priority} })
	next := func(what string) wake {
		t.Helper()
		select {
		case w := <-woke:
			return w
		case <-time.After(waitTimeout):
			t.Fatalf("no wake for %s", what)
			return wake{}
		}
	}
	if w := next("the subscription"); w != (wake{-1, ""}) {
		t.Fatalf("first wake %+v, want every queue's", w)
	}
	queue := redistest.Queue(t, "default")
	client := submit.New(rdb, store, nil)
	for range 4 {
		j := jobstest.NewJob(queue)
		if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		want := wake{store.Space().ShardOf(j.ID), queue}
		if w := next("job " + j.ID); w != want {
			t.Errorf("wake %+v for job %s, want %+v", w, j.ID, want)
		}
		// A change of state that queues nothing wakes nothing.
		if _, err := store.Advance(t.Context(), j, func(j *jobs.Job) error {
			j.State = jobs.StateRunning
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case w := <-woke:
		t.Errorf("unexpected wake %+v", w)
	default:
	}
}

// BenchmarkPickup measures enqueue→start of single jobs arriving at an
// idle worker (default queues and concurrency), one shard against 16, and
// 16 shards with the poll alone (no events): each job is accepted after
// the worker has found its queues empty again, and its wait is from the
// accept's start to its handler's start. Reports p50 and p99 in ms.
//
//	go test -run '^$' -bench Pickup -benchtime 200x ./jobs/
func BenchmarkPickup(b *testing.B) {
	for _, tc := range []struct {
		name   string
		shards int
		wake   worker.WakeSource
	}{
		{"shards=1", 1, nil},
		{"shards=16", 16, nil}, // nil: an event hub's
		{"shards=16/poll-only", 16, deafWake{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rdb := redistest.Start(b).Client(b)
			store, err := status.New(status.Config{Prefix: redistest.Prefix(b), Shards: tc.shards}, rdb)
			if err != nil {
				b.Fatal(err)
			}
			wake := tc.wake
			if wake == nil {
				wake = hubWake(b, rdb, store)
			}
			w, err := worker.New(worker.Config{ShutdownTimeout: 2 * time.Second, Wake: wake}, rdb, store, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			started := make(chan time.Time, 1)
			w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
				started <- time.Now()
				return nil, nil
			})
			if err := w.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer w.Stop(context.Background())
			client := submit.New(rdb, store, nil)
			waits := make([]time.Duration, 0, b.N)
			for b.Loop() {
				// Idle again: every fetch loop has found the queues empty.
				skips0, _, _ := worker.IdleCounts(w)
				for skips, _, _ := worker.IdleCounts(w); skips < skips0+200; skips, _, _ = worker.IdleCounts(w) {
					pause := time.NewTimer(5 * time.Millisecond)
					<-pause.C
				}
				at := time.Now()
				if err := client.Submit(b.Context(), jobstest.NewJob("default"), &jobs.Request{}, time.Time{}); err != nil {
					b.Fatal(err)
				}
				select {
				case s := <-started:
					waits = append(waits, s.Sub(at))
				case <-time.After(waitTimeout):
					b.Fatal("job not started")
				}
			}
			slices.Sort(waits)
			ms := func(q float64) float64 { return float64(waits[int(q*float64(len(waits)-1))]) / 1e6 }
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
