package worker_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// countingLoads is a real store that counts the records read back whole.
type countingLoads struct {
	*status.Store
	loads atomic.Int64
}

func (c *countingLoads) Load(ctx context.Context, tenant, id string) (*jobs.Job, *jobs.Request, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, tenant, id)
}

// calls is an upstream that answers each call with the next status of
// codes (then 200), and remembers when each call came.
type calls struct {
	codes []int
	at    chan time.Time
	n     atomic.Int64
}

func (c *calls) serve(w http.ResponseWriter, _ *http.Request) {
	c.at <- time.Now()
	if i := int(c.n.Add(1)) - 1; i < len(c.codes) {
		w.WriteHeader(c.codes[i])
		return
	}
	w.WriteHeader(http.StatusOK)
}

// submitJob stores a job with its task on queue, calling url, before any
// worker runs.
func submitJob(t *testing.T, client *submit.Client, queue, url string) *jobs.Job {
	t.Helper()
	j := jobstest.NewJob(queue)
	req := &jobs.Request{Method: http.MethodPost, URL: url, Body: []byte(`{"n":1}`),
		Timeout: jobs.Duration(5 * time.Second), Backoff: jobs.Backoff{Base: jobs.Duration(10 * time.Millisecond)}}
	if err := client.Submit(t.Context(), j, req, time.Time{}); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return j
}

// TestWorkerRunsFromTakenRecord: a run starts from the record read with
// its task, without reading it back: a first run and a retry alike.
func TestWorkerRunsFromTakenRecord(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	rec := &countingLoads{Store: store}
	ok := upstream(t, (&calls{at: make(chan time.Time, 4)}).serve)
	flaky := upstream(t, (&calls{codes: []int{http.StatusServiceUnavailable}, at: make(chan time.Time, 4)}).serve)
	client := submit.New(rdb, store, nil)

	once := submitJob(t, client, queue, ok.URL)
	startWorker(t, rdb, rec, queue, nil)
	j := jobstest.AwaitState(t, store, once.ID, jobs.StateSucceeded)
	if j.Attempt != 1 || rec.loads.Load() != 0 {
		t.Errorf("attempt %d, %d record reads; want one attempt and no read", j.Attempt, rec.loads.Load())
	}

	twice := submitJob(t, client, queue, flaky.URL)
	j = jobstest.AwaitState(t, store, twice.ID, jobs.StateSucceeded)
	if j.Attempt != 2 || rec.loads.Load() != 0 {
		t.Errorf("attempt %d, %d record reads; want two attempts and no read", j.Attempt, rec.loads.Load())
	}
}

// afterTake is a Redis client that calls fn after each take of tasks (the
// worker's take script), before the tasks taken are handed over.
type afterTake struct {
	redis.UniversalClient
	fn func()
}

func (a *afterTake) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	cmd := a.UniversalClient.EvalSha(ctx, sha, keys, args...)
	if sha == worker.TakeScriptSHA {
		a.fn()
	}
	return cmd
}

// TestWorkerRereadsChangedRecord: a run acts on the record as it is when
// it starts. A job held back until later (as an open breaker does) before
// its task is taken waits until it is due; a job canceled after its task
// was taken with its record, and before it runs, is read again and not
// called.
func TestWorkerRereadsChangedRecord(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	if err := worker.LoadTakeScript(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	rec := &countingLoads{Store: store}
	up := &calls{at: make(chan time.Time, 4)}
	srv := upstream(t, up.serve)
	client := submit.New(rdb, store, nil)

	held := submitJob(t, client, queue, srv.URL)
	due := time.Now().Add(1500 * time.Millisecond).UTC()
	if _, err := store.Update(t.Context(), "default", held.ID, func(j *jobs.Job) error {
		j.State, j.NextAttemptAt, j.Error = jobs.StateRetrying, &due, "held back"
		return nil
	}); err != nil {
		t.Fatalf("hold back: %v", err)
	}
	canceled := submitJob(t, client, queue, srv.URL)
	var cancelOnce sync.Once
	cancel := func() {
		cancelOnce.Do(func() {
			if _, err := store.Update(context.Background(), "default", canceled.ID, func(j *jobs.Job) error {
				j.State = jobs.StateCanceled
				return nil
			}); err != nil {
				t.Errorf("cancel: %v", err)
			}
		})
	}

	startWorker(t, &afterTake{UniversalClient: rdb, fn: cancel}, rec, queue, nil)
	j := jobstest.AwaitState(t, store, held.ID, jobs.StateSucceeded)
	if at := <-up.at; at.Before(due) {
		t.Errorf("upstream called %s before the job was due", due.Sub(at))
	}
	if j.Attempt != 1 || j.Error != "" {
		t.Errorf("held job: attempt %d, error %q; want one clean attempt", j.Attempt, j.Error)
	}
	time.Sleep(200 * time.Millisecond) // both tasks were ready at once
	if n := up.n.Load(); n != 1 {
		t.Errorf("upstream called %d times; want once (the canceled job not at all)", n)
	}
	if j, _ := store.Get(t.Context(), "default", canceled.ID); j == nil || j.State != jobs.StateCanceled {
		t.Errorf("canceled job is now %+v", j)
	}
	if n := rec.loads.Load(); n != 1 {
		t.Errorf("%d record reads; want one, of the job canceled after its take", n)
	}
}
