package worker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// TestQueueAcrossShards: with four shards, a queue is read, paused and
// resumed on all of them: its depth (what admission and the admin views
// read, through QueueInfo and the Monitor) is the sum over the shards;
// while it is paused no shard's task runs, though the worker runs another
// queue's; once resumed, every shard's tasks run.
func TestQueueAcrossShards(t *testing.T) {
	t.Parallel()
	const shards, perShard = 4, 2
	ctx := t.Context()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: shards}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	client := submit.New(rdb, store, nil)
	queue, other := redistest.Queue(t, "default"), redistest.Queue(t, "other")
	if err := client.RegisterQueues(ctx, []string{queue, other}); err != nil {
		t.Fatal(err)
	}
	if err := client.SetPaused(ctx, queue, true); err != nil {
		t.Fatalf("pause: %v", err)
	}
	aqs := store.Space().Queues(queue)
	if len(aqs) != shards {
		t.Fatalf("queue %s is %d asynq queues, want %d", queue, len(aqs), shards)
	}
	for _, aq := range aqs {
		if n := rdb.Exists(ctx, keyspace.AsynqQueue(aq).Paused).Val(); n != 1 {
			t.Fatalf("asynq queue %s is not paused", aq)
		}
	}

	submitTo := func(queue string, shard int) string {
		t.Helper()
		j := jobstest.NewJob(queue)
		j.ID = store.Space().PlaceID(j.ID, shard)
		if err := client.Submit(ctx, j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		return j.ID
	}
	var ids []string
	for shard := range shards {
		for range perShard {
			ids = append(ids, submitTo(queue, shard))
		}
	}
	info, err := client.QueueInfo(ctx, queue)
	if err != nil || !info.Known || !info.Paused || info.Pending != shards*perShard {
		t.Fatalf("QueueInfo of the paused queue = %+v, %v; want known, paused, %d pending", info, err, shards*perShard)
	}
	mon := submit.NewMonitor(submit.MonitorConfig{Queues: []string{queue}, Interval: 20 * time.Millisecond}, client, nil)
	_ = mon.Start(ctx)
	defer mon.Stop(context.Background())
	testutil.WaitFor(t, waitTimeout, "the monitor to read every shard's pending tasks", func() bool {
		st := mon.Stats(queue)
		return st.Pending == shards*perShard && st.Depth == shards*perShard && st.Paused
	})

	var mu sync.Mutex
	ran := map[string]bool{}
	w, err := worker.New(worker.Config{
		Queues: map[string]int{queue: 1, other: 1}, Concurrency: 4, ShutdownTimeout: 2 * time.Second,
	}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("t", func(_ context.Context, j *jobs.Job, _ []byte) (json.RawMessage, error) {
		mu.Lock()
		ran[j.ID] = true
		mu.Unlock()
		return nil, nil
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())

	// The worker runs: a job of the other queue, on every shard, is done.
	for shard := range shards {
		jobstest.AwaitState(t, store, submitTo(other, shard), jobs.StateSucceeded)
	}
	// A few more takes, then nothing of the paused queue may have run.
	asks, _ := worker.TakeCounts(w)
	testutil.WaitFor(t, waitTimeout, "more takes", func() bool {
		now, _ := worker.TakeCounts(w)
		return now >= asks+int64(2*shards)
	})
	mu.Lock()
	for _, id := range ids {
		if ran[id] {
			t.Errorf("job %s (shard %d) of the paused queue ran", id, store.Space().ShardOf(id))
		}
	}
	mu.Unlock()

	if err := client.SetPaused(ctx, queue, false); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if paused, err := client.QueuePaused(ctx, queue); err != nil || paused {
		t.Fatalf("QueuePaused after resume = %v, %v", paused, err)
	}
	for _, id := range ids {
		jobstest.AwaitState(t, store, id, jobs.StateSucceeded)
	}
	testutil.WaitFor(t, waitTimeout, "the monitor to read the queue drained and running", func() bool {
		st := mon.Stats(queue)
		return st.Pending == 0 && !st.Paused
	})
}
