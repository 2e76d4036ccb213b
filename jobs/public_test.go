package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestAsynqLinked: a binary that links asynq finds its version, the one
// internal/keyspace/asynq.go describes, and so takes the direct path.
func TestAsynqLinked(t *testing.T) {
	if got := keyspace.AsynqLinked(); got != keyspace.AsynqVersion {
		t.Fatalf("linked asynq %q, want %s", got, keyspace.AsynqVersion)
	}
	if !keyspace.AsynqDirect() {
		t.Fatal("AsynqDirect is false with the version keyspace describes")
	}
}

// TestAsynqPublicAPI: with asynq's public API only (another asynq version,
// or ASYNCGW_ASYNQ_DIRECT=off), jobs are accepted, run and ended all the
// same, an Idempotency-Key still stands for one job, and none of asynq's
// scripts is served by the worker: asynq takes, retires and counts every
// task itself.
func TestAsynqPublicAPI(t *testing.T) {
	t.Parallel()
	rdb, store, queue := storeOnShared(t)
	client := jobs.NewClient(rdb, store, nil)
	jobs.PublicOnly(client)
	const n = 10
	var ids []string
	for i := range n {
		j := newJob(queue)
		j.IdempotencyKey, j.IdempotencyFingerprint = "key-"+strconv.Itoa(i), "fp"
		if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		ids = append(ids, j.ID)
	}
	again := newJob(queue)
	again.IdempotencyKey, again.IdempotencyFingerprint = "key-3", "fp"
	var taken *jobs.KeyTaken
	if err := client.Submit(t.Context(), again, &jobs.Request{}, time.Time{}); !errors.As(err, &taken) || taken.JobID != ids[3] {
		t.Fatalf("second Submit with a key: %v, want the key's job %s", err, ids[3])
	}
	if _, err := client.Inspector().GetTaskInfo(shardQueue(queue), again.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("task of the refused job: %v, want it taken back", err)
	}

	w, err := jobs.NewWorker(jobs.WorkerConfig{Queues: map[string]int{queue: 1}, Concurrency: 4, ShutdownTimeout: 2 * time.Second}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	jobs.WorkerPublicOnly(w)
	w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) { return nil, nil })
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	for _, id := range ids {
		awaitState(t, store, id, jobs.StateSucceeded)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	testutil.WaitFor(t, waitTimeout, "asynq's count of the tasks done", func() bool {
		info, err := insp.GetQueueInfo(shardQueue(queue))
		return err == nil && info.ProcessedTotal == n && info.Active == 0
	})
	if asks, trips := jobs.TakeCounts(w); asks != 0 || trips != 0 {
		t.Errorf("the worker served %d dequeues in %d takes; want none: asynq's own", asks, trips)
	}
	if d := jobs.DonesAnswered(w); d != 0 {
		t.Errorf("the worker answered %d of asynq's Dones; want none", d)
	}
	if skips, forwards, sweeps := jobs.IdleCounts(w); skips+forwards+sweeps != 0 {
		t.Errorf("the worker answered %d dequeues, %d forwards and %d janitor calls itself; want none: asynq polls", skips, forwards, sweeps)
	}
}
