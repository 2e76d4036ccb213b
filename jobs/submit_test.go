package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// failingCreate is a real store whose Create fails, as when Redis goes away
// between the enqueue and the record.
type failingCreate struct{ *status.Store }

func (failingCreate) Create(context.Context, *jobs.Job, *jobs.Request) error {
	return errors.New("connection reset")
}

// lostReply is a real store whose Create runs but reports an error, as when
// Redis dies or stalls after running the script and before answering.
type lostReply struct{ *status.Store }

func (s lostReply) Create(ctx context.Context, j *jobs.Job, req *jobs.Request) error {
	if err := s.Store.Create(ctx, j, req); err != nil {
		return err
	}
	return errors.New("i/o timeout")
}

// TestSubmitKeepsStoredJobWhenReplyIsLost: a record write that ran but whose
// answer was lost is an accepted job; its task must not be taken back.
func TestSubmitKeepsStoredJobWhenReplyIsLost(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t)}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	queue := redistest.Queue(t, "default")
	client := jobs.NewClient(rdb, lostReply{store}, nil)
	now := time.Now().UTC()
	j := &jobs.Job{ID: jobs.NewID(), Type: "t", State: jobs.StateQueued, Queue: queue,
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now, Tenant: "default"}
	if err := client.Submit(t.Context(), j, &jobs.Request{URL: "http://127.0.0.1:9/"}, time.Time{}); err != nil {
		t.Fatalf("Submit: %v, want success: the job is stored", err)
	}
	if _, err := client.Inspector().GetTaskInfo(queue, j.ID); err != nil {
		t.Fatalf("task of a stored job: %v, want it kept", err)
	}
}

// TestSubmitTakesTaskBackWhenRecordFails checks that a failed accept leaves
// no task behind: the caller is told nothing was stored, and it is true.
func TestSubmitTakesTaskBackWhenRecordFails(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t)}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	queue := redistest.Queue(t, "default")
	client := jobs.NewClient(rdb, failingCreate{store}, nil)
	now := time.Now().UTC()
	j := &jobs.Job{ID: jobs.NewID(), Type: "t", State: jobs.StateQueued, Queue: queue,
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now, Tenant: "default"}

	err = client.Submit(t.Context(), j, &jobs.Request{URL: "http://127.0.0.1:9/"}, time.Time{})
	if !errors.Is(err, jobs.ErrUnavailable) {
		t.Fatalf("Submit: %v, want ErrUnavailable", err)
	}
	if _, err := client.Inspector().GetTaskInfo(queue, j.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("task after a failed accept: %v, want it gone (ErrTaskNotFound)", err)
	}
	if _, err := store.Get(t.Context(), "default", j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("record after a failed accept: %v, want ErrNotFound", err)
	}
}

// TestWorkerDropsOrphanTask checks the last line of defence: a task whose
// record never appeared (the accept failed and could not take it back) is
// dropped once it is older than the orphan grace, without running.
func TestWorkerDropsOrphanTask(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t)}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	queue := redistest.Queue(t, "default")
	ran := make(chan struct{}, 1)
	w, err := jobs.NewWorker(jobs.WorkerConfig{
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
		_, err := insp.GetTaskInfo(queue, id)
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
