package worker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// TestAsynqPublicAPI: with asynq's public API only (another asynq version,
// or ASYNCGW_ASYNQ_DIRECT=off), jobs are run and ended all the same, and
// none of asynq's scripts is served by the worker: asynq takes, retires
// and counts every task itself. (The submitting half of the public path
// is submit's TestAsynqPublicAPI.)
func TestAsynqPublicAPI(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, store, nil)
	const n = 10
	var ids []string
	for range n {
		j := jobstest.NewJob(queue)
		if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		ids = append(ids, j.ID)
	}

	w, err := worker.New(worker.Config{Queues: map[string]int{queue: 1}, Concurrency: 4, ShutdownTimeout: 2 * time.Second}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	worker.PublicOnly(w)
	w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) { return nil, nil })
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	for _, id := range ids {
		jobstest.AwaitState(t, store, id, jobs.StateSucceeded)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	testutil.WaitFor(t, waitTimeout, "asynq's count of the tasks done", func() bool {
		info, err := insp.GetQueueInfo(jobstest.ShardQueue(queue))
		return err == nil && info.ProcessedTotal == n && info.Active == 0
	})
	if asks, trips := worker.TakeCounts(w); asks != 0 || trips != 0 {
		t.Errorf("the worker served %d dequeues in %d takes; want none: asynq's own", asks, trips)
	}
	if d := worker.DonesAnswered(w); d != 0 {
		t.Errorf("the worker answered %d of asynq's Dones; want none", d)
	}
	if skips, forwards, sweeps := worker.IdleCounts(w); skips+forwards+sweeps != 0 {
		t.Errorf("the worker answered %d dequeues, %d forwards and %d janitor calls itself; want none: asynq polls", skips, forwards, sweeps)
	}
}
