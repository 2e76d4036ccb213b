package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// TestOneRecovererPerWorker: a worker with several fetch loops (asynq
// servers) runs one recoverer: each server's own listing of lease-expired
// tasks is answered with none (which also checks that asynq still lists
// them with the script the worker knows), and the worker's recoverer takes
// back the task of a worker that died, at start, without a single "NOT
// FOUND" line.
func TestOneRecovererPerWorker(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, store, nil)
	j := jobstest.NewJob(queue)
	if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	// A worker that died while running it: the task is active, its lease
	// ended a minute ago.
	base := "asynq:{" + jobstest.ShardQueue(queue) + "}:"
	ctx := t.Context()
	fair, _ := store.Space().FairOf(jobstest.ShardQueue(queue))
	took, err := keyspace.Take.Run(ctx, rdb, []string{base + "pending", base + "paused", base + "active", base + "lease", fair.Line, fair.State},
		time.Now().Add(-time.Minute).Unix(), 1).StringSlice()
	if err != nil || !slices.Equal(took, []string{j.ID}) {
		t.Fatalf("take: %v, %v; want [%s]", took, err, j.ID)
	}
	if err := rdb.HSet(ctx, base+"t:"+j.ID, "state", "active").Err(); err != nil {
		t.Fatal(err)
	}

	const fetchers = 3
	var log testutil.SyncBuffer
	w, err := worker.New(worker.Config{
		Queues: map[string]int{queue: 1}, Concurrency: fetchers, Fetchers: fetchers,
		ShutdownTimeout: 2 * time.Second,
	}, rdb, store, nil, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) { return nil, nil })
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	got := jobstest.AwaitState(t, store, j.ID, jobs.StateSucceeded)
	if got.Attempt != 1 {
		t.Errorf("job ended with attempt %d, want 1: a crash does not use up an attempt", got.Attempt)
	}
	// Each server's recoverer lists at its start.
	testutil.WaitFor(t, waitTimeout, "every fetch loop's recoverer to list lease-expired tasks", func() bool {
		return worker.LeaseListsAnswered(w) >= fetchers
	})
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, "took back the tasks of workers that died") {
		t.Errorf("the worker's recoverer did not take the task back; log:\n%s", out)
	}
	if strings.Contains(out, "NOT FOUND") || strings.Contains(out, "recoverer:") {
		t.Errorf("recoverer lines in the log:\n%s", out)
	}
	if ti, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(jobstest.ShardQueue(queue), j.ID); err == nil && ti.Retried != 0 {
		t.Errorf("task retried %d times, want 0", ti.Retried)
	}
}
