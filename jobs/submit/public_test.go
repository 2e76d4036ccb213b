package submit_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
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
// or ASYNCGW_ASYNQ_DIRECT=off), jobs are accepted all the same, each with
// its task on asynq's queue, and an Idempotency-Key still stands for one
// job. (The worker's half of the public path is worker's
// TestAsynqPublicAPI.)
func TestAsynqPublicAPI(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, store, nil)
	submit.PublicOnly(client)
	const n = 10
	var ids []string
	for i := range n {
		j := jobstest.NewJob(queue)
		j.IdempotencyKey, j.IdempotencyFingerprint = "key-"+strconv.Itoa(i), "fp"
		if err := client.Submit(t.Context(), j, &jobs.Request{}, time.Time{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
		ids = append(ids, j.ID)
	}
	again := jobstest.NewJob(queue)
	again.IdempotencyKey, again.IdempotencyFingerprint = "key-3", "fp"
	var taken *jobs.KeyTaken
	if err := client.Submit(t.Context(), again, &jobs.Request{}, time.Time{}); !errors.As(err, &taken) || taken.JobID != ids[3] {
		t.Fatalf("second Submit with a key: %v, want the key's job %s", err, ids[3])
	}
	if _, err := client.Inspector().GetTaskInfo(jobstest.ShardQueue(queue), again.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("task of the refused job: %v, want it taken back", err)
	}

	info, err := client.Inspector().GetQueueInfo(jobstest.ShardQueue(queue))
	if err != nil {
		t.Fatal(err)
	}
	if info.Pending != n {
		t.Errorf("asynq holds %d pending tasks, want the %d accepted jobs'", info.Pending, n)
	}
}
