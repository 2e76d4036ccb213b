package submit_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// failingAccept is a real store whose Accept fails before anything is
// written, as when Redis is unreachable.
type failingAccept struct{ *status.Store }

func (failingAccept) Accept(context.Context, *jobs.Job, *jobs.Request, *keyspace.TaskWrite) error {
	return errors.New("connection refused")
}

// lostReply is a real store whose Accept runs but reports an error, as when
// Redis dies or stalls after running the script and before answering.
type lostReply struct{ *status.Store }

func (s lostReply) Accept(ctx context.Context, j *jobs.Job, req *jobs.Request, task *keyspace.TaskWrite) error {
	if err := s.Store.Accept(ctx, j, req, task); err != nil {
		return err
	}
	return errors.New("i/o timeout")
}

// TestSubmitKeepsStoredJobWhenReplyIsLost: a write that ran but whose
// answer was lost is an accepted job, with its task.
func TestSubmitKeepsStoredJobWhenReplyIsLost(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, lostReply{store}, nil)
	j := jobstest.NewJob(queue)
	if err := client.Submit(t.Context(), j, &jobs.Request{URL: "http://127.0.0.1:9/"}, time.Time{}); err != nil {
		t.Fatalf("Submit: %v, want success: the job is stored", err)
	}
	if _, err := client.Inspector().GetTaskInfo(jobstest.ShardQueue(queue), j.ID); err != nil {
		t.Fatalf("task of a stored job: %v, want it there", err)
	}
}

// TestSubmitReportsFailedAccept: a write that did not run is reported as
// such, and left nothing behind.
func TestSubmitReportsFailedAccept(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, failingAccept{store}, nil)
	j := jobstest.NewJob(queue)
	err := client.Submit(t.Context(), j, &jobs.Request{URL: "http://127.0.0.1:9/"}, time.Time{})
	if !errors.Is(err, jobs.ErrUnavailable) {
		t.Fatalf("Submit: %v, want ErrUnavailable", err)
	}
	if _, err := client.Inspector().GetTaskInfo(jobstest.ShardQueue(queue), j.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Fatalf("task after a failed accept: %v, want none", err)
	}
	if _, err := store.Get(t.Context(), "default", j.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("record after a failed accept: %v, want ErrNotFound", err)
	}
}

// TestSubmitWithTakenKeyStoresNothing: a second job with the same
// Idempotency-Key is refused with what the key stands for, and neither its
// record nor its task is written.
func TestSubmitWithTakenKeyStoresNothing(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	client := submit.New(rdb, store, nil)
	first, second := jobstest.NewJob(queue), jobstest.NewJob(queue)
	first.IdempotencyKey, first.IdempotencyFingerprint = "k-1", "fp-a"
	second.IdempotencyKey, second.IdempotencyFingerprint = "k-1", "fp-b"
	req := &jobs.Request{URL: "http://127.0.0.1:9/"}
	if err := client.Submit(t.Context(), first, req, time.Time{}); err != nil {
		t.Fatal(err)
	}
	err := client.Submit(t.Context(), second, req, time.Time{})
	var taken *jobs.KeyTaken
	if !errors.As(err, &taken) {
		t.Fatalf("second Submit: %v, want *KeyTaken", err)
	}
	want := jobs.KeyTaken{Fingerprint: "fp-a", JobID: first.ID, State: jobs.StateQueued}
	if *taken != want {
		t.Errorf("KeyTaken %+v, want %+v", *taken, want)
	}
	if _, err := client.Inspector().GetTaskInfo(jobstest.ShardQueue(queue), second.ID); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("task of the refused job: %v, want none", err)
	}
	if _, err := store.Get(t.Context(), "default", second.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("record of the refused job: %v, want none", err)
	}
}

// TestTaskWriteMatchesAsynq: the task Submit writes itself reads back
// through asynq exactly as the task asynq's own client writes for the same
// options, due now and scheduled, on the queue of the job's priority and
// shard; and asynq knows the queue once it is registered.
func TestTaskWriteMatchesAsynq(t *testing.T) {
	t.Parallel()
	rdb, store, queue := jobstest.StoreOnShared(t)
	ac := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	client := submit.New(rdb, store, nil)
	req := &jobs.Request{URL: "http://127.0.0.1:9/", Timeout: jobs.Duration(90 * time.Second)}
	for _, delay := range []time.Duration{0, time.Hour} {
		j := jobstest.NewJob(queue)
		var at time.Time
		if delay > 0 {
			at = time.Now().Add(delay)
			j.State, j.NextAttemptAt = jobs.StateScheduled, &at
		}
		if err := client.Submit(t.Context(), j, req, at); err != nil {
			t.Fatal(err)
		}
		aq := store.Space().JobQueue(j.ID, queue)
		got, err := insp.GetTaskInfo(aq, j.ID)
		if err != nil {
			t.Fatalf("asynq reads the task: %v", err)
		}
		// The same task through asynq's client, under another ID.
		opts := []asynq.Option{asynq.TaskID(jobs.NewID()), asynq.Queue(aq), asynq.MaxRetry(j.MaxAttempts + 1),
			asynq.Timeout(time.Duration(req.Timeout) + 30*time.Second)}
		if delay > 0 {
			opts = append(opts, asynq.ProcessAt(at))
		}
		ref, err := ac.Enqueue(asynq.NewTask(jobs.TaskType, got.Payload), opts...)
		if err != nil {
			t.Fatal(err)
		}
		want, err := insp.GetTaskInfo(aq, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		want.ID = got.ID
		if delay == 0 {
			// Due "now": asynq reports the time it was read.
			got.NextProcessAt, want.NextProcessAt = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("delay %s: task as written\n%+v\nwant, as asynq writes it,\n%+v", delay, got, want)
		}
		var p struct {
			T  string `json:"t"`
			ID string `json:"id"`
		}
		if err := json.Unmarshal(got.Payload, &p); err != nil || p.T != j.Tenant || p.ID != j.ID {
			t.Errorf("payload %s: want the record's tenant and ID", got.Payload)
		}
	}
	if err := client.RegisterQueues(t.Context(), []string{queue}); err != nil {
		t.Fatal(err)
	}
	queues, err := insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	if aq := store.Space().Queue(0, queue); !slices.Contains(queues, aq) {
		t.Errorf("asynq's queues %v lack %s", queues, aq)
	}
}
