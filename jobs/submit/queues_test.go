package submit_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/jobstest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// TestQueueInfoMatchesAsynq: a queue as read from asynq's keys directly is
// the queue asynq's inspector reports (summed over shards): pending,
// scheduled, active, retry, done, paused, and the oldest pending task's
// wait.
func TestQueueInfoMatchesAsynq(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	// In accept order on the pending lists, where the inspector looks.
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: 4, FIFO: true}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	queue := redistest.Queue(t, "default")
	direct := submit.New(rdb, store, nil)
	public := submit.New(rdb, store, nil)
	submit.PublicOnly(public)
	if err := direct.RegisterQueues(t.Context(), []string{queue}); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		var at time.Time
		if i%3 == 0 {
			at = time.Now().Add(time.Hour)
		}
		if err := direct.Submit(t.Context(), jobstest.NewJob(queue), &jobs.Request{}, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := direct.SetPaused(t.Context(), queue, true); err != nil {
		t.Fatal(err)
	}
	got, err := direct.QueueInfo(t.Context(), queue)
	if err != nil {
		t.Fatal(err)
	}
	want, err := public.QueueInfo(t.Context(), queue)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pending != 6 || got.Scheduled != 3 || !got.Paused {
		t.Errorf("direct read %+v, want 6 pending, 3 scheduled, paused", got)
	}
	lat := got.Latency - want.Latency
	got.Latency, want.Latency = 0, 0
	if !reflect.DeepEqual(got, want) || lat < -time.Second || lat > time.Second {
		t.Errorf("direct read %+v (latency %+v apart), asynq's inspector %+v", got, lat, want)
	}

	// New jobs in the fair lines, which asynq does not know, are pending.
	fairStore, err := status.New(status.Config{Prefix: store.Space().Prefix(), Shards: 4}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	fair := submit.New(rdb, fairStore, nil)
	for range 2 {
		if err := fair.Submit(t.Context(), jobstest.NewJob(queue), &jobs.Request{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := direct.QueueInfo(t.Context(), queue); err != nil || got.Pending != 8 || got.Latency <= 0 || !reflect.DeepEqual(got.PendingByTenant, map[string]int{"default": 2}) {
		t.Errorf("with 2 jobs in fair lines: %+v, %v; want 8 pending, a latency and 2 by tenant default", got, err)
	}
	if got, err := public.QueueInfo(t.Context(), queue); err != nil || got.Pending != 6 {
		t.Errorf("asynq's inspector with 2 jobs in fair lines: %+v, %v; want its 6 pending", got, err)
	}
}
