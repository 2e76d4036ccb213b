// Package jobstest gives the tests of jobs/submit and jobs/worker the
// store, queue and jobs they share: a status.Store on the test binary's
// shared Redis with a key prefix and queue of the test's own.
package jobstest

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// StoreOnShared is a Store on the shared Redis with the test's own key
// prefix, and a queue of its own, registered as a process registers its
// queues when it starts.
func StoreOnShared(t *testing.T) (*redis.Client, *status.Store, string) {
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

// AwaitState waits up to 15s for a job of tenant "default" to reach a
// state, and returns it.
func AwaitState(t *testing.T, store *status.Store, id string, want jobs.State) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	testutil.WaitFor(t, 15*time.Second, "job "+string(want), func() bool {
		var err error
		j, err = store.Get(t.Context(), "default", id)
		return err == nil && j.State == want
	})
	return j
}

// ShardQueue is the asynq queue of queue with one shard.
func ShardQueue(queue string) string { return "s0}" + queue }

// NewJob is a queued job of type "t" on queue, of the tenant "default".
func NewJob(queue string) *jobs.Job {
	now := time.Now().UTC()
	return &jobs.Job{ID: jobs.NewID(), Type: "t", State: jobs.StateQueued, Queue: queue,
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now, Tenant: "default"}
}
