package worker_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// The store a worker runs on, and the wake source it hears from.
var (
	_ worker.Store      = (*status.Store)(nil)
	_ worker.WakeSource = (*status.Wake)(nil)
)

// storeOnShared is a Store on the shared Redis with the test's own key
// prefix, and a queue of its own, registered as a process registers its
// queues when it starts.
func storeOnShared(t *testing.T) (*redis.Client, *status.Store, string) {
	t.Helper()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t)}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	queue := redistest.Queue(t, "default")
	if err := submit.New(rdb, store, nil).RegisterQueues(t.Context(), []string{queue}); err != nil {
		t.Fatal(err)
	}
	return rdb, store, queue
}

// shardQueue is the asynq queue of queue with one shard.
func shardQueue(queue string) string { return "s0}" + queue }

func newJob(queue string) *jobs.Job {
	now := time.Now().UTC()
	return &jobs.Job{ID: jobs.NewID(), Type: "t", State: jobs.StateQueued, Queue: queue,
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now, Tenant: "default"}
}
