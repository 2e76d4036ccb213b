package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// TestWorkerDropsOrphanTask checks the last line of defence: a task whose
// record never appeared (the accept failed and could not take it back) is
// dropped once it is older than the orphan grace, without running.
func TestWorkerDropsOrphanTask(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	ran := make(chan struct{}, 1)
	w, err := worker.New(worker.Config{
		Queues: map[string]int{queue: 1}, Concurrency: 1, ShutdownTimeout: time.Second,
		OrphanGrace: time.Second,
	}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("t", func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
		ran <- struct{}{}
		return nil, nil
	})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	// The task as Submit makes it, enqueued a while ago, with no record.
	id := jobs.NewID()
	payload := fmt.Sprintf(`{"t":"default","id":%q,"c":%d}`, id, time.Now().Add(-time.Minute).UnixMilli())
	ac := asynq.NewClientFromRedisClient(rdb)
	if _, err := ac.Enqueue(asynq.NewTask(jobs.TaskType, []byte(payload)), asynq.TaskID(id), asynq.Queue(queue)); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := insp.GetTaskInfo(jobstest.ShardQueue(queue), id)
		if errors.Is(err, asynq.ErrTaskNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan task still there after %s (%v)", waitTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-ran:
		t.Fatal("the orphan task ran a handler")
	default:
	}
	if _, err := store.Get(t.Context(), "default", id); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("record for the orphan: %v, want none", err)
	}
}
