package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func TestMain(m *testing.M) { redistest.Main(m) }

// waitTimeout bounds every wait of these tests.
const waitTimeout = 15 * time.Second

// workerBundle is a Worker on a queue of its own, with the Store and Client
// around it, on the shared Redis server.
type workerBundle struct {
	store  *status.Store
	client *submit.Client
	worker *worker.Worker
	queue  string
}

// setupWorker returns a started Worker with handlers registered, stopped
// when t ends.
func setupWorker(t *testing.T, handlers map[string]worker.HandlerFunc) *workerBundle {
	t.Helper()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t)}, rdb)
	if err != nil {
		t.Fatalf("status.New: %v", err)
	}
	queue := redistest.Queue(t, "default")
	w := startWorker(t, rdb, store, queue, handlers)
	return &workerBundle{store: store, client: submit.New(rdb, store, nil), worker: w, queue: queue}
}

// startWorker starts a Worker on queue recording in rec, stopped when t
// ends.
func startWorker(t *testing.T, rdb redis.UniversalClient, rec worker.Store, queue string, handlers map[string]worker.HandlerFunc) *worker.Worker {
	t.Helper()
	w, err := worker.New(worker.Config{
		Queues:          map[string]int{queue: 1},
		Concurrency:     2,
		ShutdownTimeout: 2 * time.Second,
	}, rdb, rec, nil, nil)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	for typ, h := range handlers {
		w.Handle(typ, h)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatalf("Worker.Start: %v", err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

// submit puts a job of jobType on the bundle's queue and returns its ID.
func (b *workerBundle) submit(t *testing.T, jobType string, req *jobs.Request) string {
	t.Helper()
	now := time.Now().UTC()
	j := &jobs.Job{
		ID: jobs.NewID(), Type: jobType, State: jobs.StateQueued, Queue: b.queue,
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now, Tenant: "default",
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := b.client.Submit(ctx, j, req, time.Time{}); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return j.ID
}

// await polls the job until it is in state want, failing t if it ends in
// another state or does not get there in time.
func (b *workerBundle) await(t *testing.T, id string, want jobs.State) *jobs.Job {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := b.store.Get(t.Context(), "default", id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if j.State == want {
			return j
		}
		if j.State.Terminal() {
			t.Fatalf("job ended %s (error %q), want %s", j.State, j.Error, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s after %s, want %s", j.State, waitTimeout, want)
		}
		<-tick.C
	}
}

// upstream starts an HTTP server on 127.0.0.1 with h, closed when t ends.
func upstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// longBackoff keeps a retrying job waiting (up to an hour), so a test sees
// its first attempt only.
var longBackoff = jobs.Backoff{Base: jobs.Duration(time.Hour), Max: jobs.Duration(time.Hour)}

func TestWorkerForwardsRequest(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	gotBody := make(chan []byte, 1)
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r.Clone(context.Background())
		gotBody <- body
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", "/orders/7")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "{ \"id\": 7 }\n")
	})
	b := setupWorker(t, nil)
	id := b.submit(t, "orders", &jobs.Request{
		Method: http.MethodPut,
		URL:    srv.URL + "/orders?src=test",
		Header: http.Header{
			"Content-Type": {"application/json"},
			"X-Custom":     {"a", "b"},
		},
		Body:    []byte(`{"sku":"x1"}`),
		Timeout: jobs.Duration(5 * time.Second),
	})

	j := b.await(t, id, jobs.StateSucceeded)
	if j.Attempt != 1 || j.StartedAt == nil || j.FinishedAt == nil || j.Error != "" {
		t.Errorf("job = attempt %d started %v finished %v error %q; want one clean attempt", j.Attempt, j.StartedAt, j.FinishedAt, j.Error)
	}
	if j.Result == nil || j.Result.Status != http.StatusCreated || string(j.Result.Body) != `{"id":7}` {
		t.Fatalf("result = %+v, want 201 with the upstream's JSON", j.Result)
	}
	if loc := j.Result.Headers["Location"]; loc != "/orders/7" {
		t.Errorf("result Location header = %q", loc)
	}
	if raw, err := b.store.ResultBody(t.Context(), "default", id); err != nil || string(raw) != "{ \"id\": 7 }\n" {
		t.Errorf("stored result body = %q, %v; want the upstream's bytes", raw, err)
	}

	r := <-got
	if r.Method != http.MethodPut || r.URL.RequestURI() != "/orders?src=test" {
		t.Errorf("upstream got %s %s", r.Method, r.URL.RequestURI())
	}
	if body := <-gotBody; string(body) != `{"sku":"x1"}` {
		t.Errorf("upstream got body %q", body)
	}
	for k, want := range map[string]string{
		"Idempotency-Key":   id,
		"X-Asyncgw-Job-Id":  id,
		"X-Asyncgw-Attempt": "1",
		"Content-Type":      "application/json",
		"User-Agent":        "asyncgw",
	} {
		if v := r.Header.Get(k); v != want {
			t.Errorf("upstream got %s: %q, want %q", k, v, want)
		}
	}
	if v := r.Header.Values("X-Custom"); strings.Join(v, ",") != "a,b" {
		t.Errorf("upstream got X-Custom %q, want both values", v)
	}
}

func TestWorkerOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header map[string]string
		want   jobs.State
	}{
		{"422 fails", http.StatusUnprocessableEntity, nil, jobs.StateFailed},
		{"404 fails", http.StatusNotFound, nil, jobs.StateFailed},
		{"503 retries", http.StatusServiceUnavailable, nil, jobs.StateRetrying},
		{"429 retries", http.StatusTooManyRequests, nil, jobs.StateRetrying},
		{"408 retries", http.StatusRequestTimeout, nil, jobs.StateRetrying},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := upstream(t, func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, "no")
			})
			b := setupWorker(t, nil)
			id := b.submit(t, "orders", &jobs.Request{URL: srv.URL, Backoff: longBackoff})
			j := b.await(t, id, tt.want)
			if j.Result == nil || j.Result.Status != tt.status || string(j.Result.Body) != `"no"` {
				t.Errorf("result = %+v, want %d with the upstream's body", j.Result, tt.status)
			}
			if j.Attempt != 1 || calls.Load() != 1 {
				t.Errorf("attempt %d after %d calls, want 1", j.Attempt, calls.Load())
			}
			if !strings.Contains(j.Error, http.StatusText(tt.status)) {
				t.Errorf("error %q does not name the status", j.Error)
			}
			switch tt.want {
			case jobs.StateFailed:
				if j.FinishedAt == nil || j.NextAttemptAt != nil {
					t.Errorf("failed job: finished %v, next attempt %v", j.FinishedAt, j.NextAttemptAt)
				}
			case jobs.StateRetrying:
				if j.FinishedAt != nil || j.NextAttemptAt == nil || j.NextAttemptAt.After(time.Now().Add(time.Hour)) {
					t.Errorf("retrying job: finished %v, next attempt %v", j.FinishedAt, j.NextAttemptAt)
				}
			}
		})
	}
}

func TestWorkerHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv := upstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	b := setupWorker(t, nil)
	// The schedule alone would retry within a millisecond.
	id := b.submit(t, "orders", &jobs.Request{URL: srv.URL, Backoff: jobs.Backoff{
		Base: jobs.Duration(time.Millisecond), Max: jobs.Duration(time.Hour),
	}})
	before := time.Now()
	j := b.await(t, id, jobs.StateRetrying)
	if j.NextAttemptAt == nil || j.NextAttemptAt.Before(before.Add(590*time.Second)) || j.NextAttemptAt.After(time.Now().Add(600*time.Second)) {
		t.Fatalf("next attempt at %v, want about 10 minutes from now", j.NextAttemptAt)
	}
}

func TestWorkerDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	target := upstream(t, func(w http.ResponseWriter, _ *http.Request) {
		followed.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	srv := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	})
	b := setupWorker(t, nil)
	id := b.submit(t, "orders", &jobs.Request{URL: srv.URL, Backoff: longBackoff})

	j := b.await(t, id, jobs.StateFailed)
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect target was called %d times", n)
	}
	if j.Result == nil || j.Result.Status != http.StatusFound || j.Result.Headers["Location"] != target.URL+"/elsewhere" {
		t.Fatalf("result = %+v, want the 302 itself", j.Result)
	}
}

func TestWorkerGoHandler(t *testing.T) {
	t.Parallel()
	type call struct {
		job     *jobs.Job
		payload string
	}
	calls := make(chan call, 10)
	b := setupWorker(t, map[string]worker.HandlerFunc{
		"ok": func(_ context.Context, j *jobs.Job, payload []byte) (json.RawMessage, error) {
			calls <- call{j, string(payload)}
			return json.RawMessage(`{"sent":true}`), nil
		},
		"bad": func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
			return nil, worker.Permanent(errors.New("payload refused"))
		},
		"flaky": func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
			return nil, errors.New("smtp down")
		},
	})

	t.Run("result", func(t *testing.T) {
		t.Parallel()
		id := b.submit(t, "ok", &jobs.Request{Body: []byte(`{"to":"a@example.com"}`)})
		j := b.await(t, id, jobs.StateSucceeded)
		if j.Result == nil || j.Result.Status != http.StatusOK || string(j.Result.Body) != `{"sent":true}` {
			t.Fatalf("result = %+v, want 200 with the handler's JSON", j.Result)
		}
		c := <-calls
		if c.job.ID != id || c.job.Type != "ok" || c.job.Attempt != 1 || c.payload != `{"to":"a@example.com"}` {
			t.Fatalf("handler got job %s type %s attempt %d payload %q", c.job.ID, c.job.Type, c.job.Attempt, c.payload)
		}
	})
	t.Run("permanent error", func(t *testing.T) {
		t.Parallel()
		id := b.submit(t, "bad", &jobs.Request{Backoff: longBackoff})
		j := b.await(t, id, jobs.StateFailed)
		if j.Error != "payload refused" || j.Attempt != 1 || j.FinishedAt == nil {
			t.Fatalf("failed job: error %q attempt %d finished %v", j.Error, j.Attempt, j.FinishedAt)
		}
	})
	t.Run("plain error", func(t *testing.T) {
		t.Parallel()
		id := b.submit(t, "flaky", &jobs.Request{Backoff: longBackoff})
		j := b.await(t, id, jobs.StateRetrying)
		if j.Error != "smtp down" || j.Attempt != 1 || j.NextAttemptAt == nil || j.FinishedAt != nil {
			t.Fatalf("retrying job: error %q attempt %d next %v finished %v", j.Error, j.Attempt, j.NextAttemptAt, j.FinishedAt)
		}
	})
}

// TestTasksTakenInBatches: a worker with a backlog takes its tasks
// several per Redis round trip (which also checks that asynq still asks
// with the dequeue script takeClient knows), runs each job once, and
// leaves nothing taken behind when it stops.
func TestTasksTakenInBatches(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, store, nil)
	const n = 600
	ids := make([]string, 0, n)
	for range n {
		j := jobstest.NewJob(queue)
		if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		ids = append(ids, j.ID)
	}
	var mu sync.Mutex
	runs := map[string]int{}
	w, err := worker.New(worker.Config{
		Queues: map[string]int{queue: 1}, Concurrency: 50, ShutdownTimeout: 2 * time.Second,
	}, rdb, store, nil, nil)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	w.Handle("t", func(_ context.Context, j *jobs.Job, _ []byte) (json.RawMessage, error) {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		return nil, nil
	})
	if err := w.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// waitTimeout is well within asynq's lease (30s): a task taken and
	// then lost would only come back after it.
	for _, id := range ids {
		jobstest.AwaitState(t, store, id, jobs.StateSucceeded)
	}
	asks, trips := worker.TakeCounts(w)
	t.Logf("%d tasks asked for in %d round trips", asks, trips)
	if err := w.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	mu.Lock()
	for _, id := range ids {
		if runs[id] != 1 {
			t.Errorf("job %s ran %d times", id, runs[id])
		}
	}
	mu.Unlock()
	if asks < n || trips > asks/2 {
		t.Errorf("%d tasks asked for in %d round trips: not taken in batches", asks, trips)
	}
	base := "asynq:{" + jobstest.ShardQueue(queue) + "}:"
	if a, l := rdb.LLen(t.Context(), base+"active").Val(), rdb.ZCard(t.Context(), base+"lease").Val(); a != 0 || l != 0 {
		t.Errorf("after stop: %d tasks active, %d leased; want none", a, l)
	}
}

// TestTaskRetiredWithItsEnd: the write that records a job's end (success
// or failure) also retires its task, and asynq's own Done of it, which
// follows, needs no round trip (which also checks that asynq still calls
// Done with the script takeClient knows). Nothing of the tasks is left in
// Redis but asynq's processed counts.
func TestTaskRetiredWithItsEnd(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, store, nil)
	const n = 40
	ids := make([]string, 0, n)
	for i := range n {
		j := jobstest.NewJob(queue)
		if i%4 == 0 {
			j.Type = "refused"
		}
		if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		ids = append(ids, j.ID)
	}
	w, err := worker.New(worker.Config{
		Queues: map[string]int{queue: 1}, Concurrency: 8, ShutdownTimeout: 2 * time.Second,
	}, rdb, store, nil, nil)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) { return nil, nil })
	w.Handle("refused", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
		return nil, worker.Permanent(errors.New("refused"))
	})
	if err := w.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer w.Stop(context.Background())
	for i, id := range ids {
		want := jobs.StateSucceeded
		if i%4 == 0 {
			want = jobs.StateFailed
		}
		jobstest.AwaitState(t, store, id, want)
	}
	testutil.WaitFor(t, waitTimeout, "asynq's Done of every task", func() bool { return worker.DonesAnswered(w) == n })
	base := "asynq:{" + jobstest.ShardQueue(queue) + "}:"
	ctx := t.Context()
	if a, l := rdb.LLen(ctx, base+"active").Val(), rdb.ZCard(ctx, base+"lease").Val(); a != 0 || l != 0 {
		t.Errorf("%d tasks active, %d leased; want none", a, l)
	}
	for _, id := range ids {
		if rdb.Exists(ctx, base+"t:"+id).Val() != 0 {
			t.Errorf("task %s still stored", id)
		}
	}
	day := base + "processed:" + time.Now().UTC().Format(time.DateOnly)
	if tot, d := rdb.Get(ctx, base+"processed").Val(), rdb.Get(ctx, day).Val(); tot != strconv.Itoa(n) || d != strconv.Itoa(n) {
		t.Errorf("processed %q in all, %q today; want %d", tot, d, n)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	info, err := insp.GetQueueInfo(jobstest.ShardQueue(queue))
	if err != nil || info.Processed != n || info.ProcessedTotal != n || info.Active != 0 || info.Size != 0 {
		t.Errorf("asynq's view of the queue: %+v, %v; want %d processed and nothing left", info, err, n)
	}
}
