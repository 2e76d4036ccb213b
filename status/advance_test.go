package status

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestAdvance: from an up-to-date copy, Advance writes the change without
// reading the record (fn sees the copy); from a stale copy it reads the
// record again and applies fn to that, and a job canceled in between is
// left canceled.
func TestAdvance(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")
	if j.Version != "1" {
		t.Fatalf("version after create %q, want 1", j.Version)
	}

	// Up to date: fn runs once, on the copy it was given.
	calls := 0
	running, err := b.store.Advance(ctx, j, func(c *jobs.Job) error {
		calls++
		c.State, c.Attempt = jobs.StateRunning, 1
		return nil
	})
	if err != nil || calls != 1 || running.State != jobs.StateRunning || running.Version != "2" {
		t.Fatalf("Advance: %+v, %v after %d calls; want running at version 2 after one call", running, err, calls)
	}
	if j.State != jobs.StateQueued || j.Version != "1" {
		t.Errorf("Advance changed the job it started from: %+v", j)
	}
	if got, err := b.store.Get(ctx, "acme", j.ID); err != nil || got.State != jobs.StateRunning || got.Version != "2" {
		t.Fatalf("record after Advance: %+v, %v", got, err)
	}

	// Stale: the record moved on (here to retrying) since running was read.
	retrying, err := b.store.Update(ctx, "acme", j.ID, func(c *jobs.Job) error {
		c.State, c.Error = jobs.StateRetrying, "503"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen []jobs.State
	got, err := b.store.Advance(ctx, running, func(c *jobs.Job) error {
		seen = append(seen, c.State)
		c.State = jobs.StateSucceeded
		return nil
	})
	if err != nil || got.State != jobs.StateSucceeded || got.Error != "503" {
		t.Fatalf("Advance from a stale copy: %+v, %v; want succeeded on top of the record (error kept)", got, err)
	}
	if len(seen) != 2 || seen[1] != retrying.State {
		t.Errorf("fn saw %v; want the stale copy, then the record as re-read (retrying)", seen)
	}
	evs, err := b.store.Events(ctx, "acme", j.ID, 0)
	if err != nil || len(evs) != 4 {
		t.Fatalf("events %v, %v; want queued, running, retrying, succeeded", evs, err)
	}

	// Canceled in between: the job stays canceled.
	k := b.create(t, "acme")
	b.setState(t, k, jobs.StateCanceled)
	if _, err := b.store.Advance(ctx, k, func(c *jobs.Job) error {
		c.State = jobs.StateSucceeded
		return nil
	}); !errors.Is(err, ErrFinished) {
		t.Fatalf("Advance of a job canceled since: %v, want ErrFinished", err)
	}
	if cur, err := b.store.Get(ctx, "acme", k.ID); err != nil || cur.State != jobs.StateCanceled {
		t.Fatalf("record: %+v, %v; want canceled", cur, err)
	}
}

// TestLoad reads a job and its request in one go.
func TestLoad(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	j := b.create(t, "acme")
	got, req, err := b.store.Load(testContext(t), "acme", j.ID)
	if err != nil || got.ID != j.ID || got.Version != "1" || req.URL != "http://127.0.0.1/x" {
		t.Fatalf("Load: %+v, %+v, %v", got, req, err)
	}
	if _, _, err := b.store.Load(testContext(t), "acme", jobs.NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of an unknown job: %v, want ErrNotFound", err)
	}
}

// TestAdvanceAt: from an up-to-date copy AdvanceAt writes the change; from
// a stale one, or for a job that ended since, it writes nothing and says
// ErrChanged.
func TestAdvanceAt(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	toRunning := func(c *jobs.Job) error {
		c.State, c.Attempt = jobs.StateRunning, 1
		return nil
	}

	j := b.create(t, "acme")
	running, err := b.store.AdvanceAt(ctx, j, toRunning)
	if err != nil || running.State != jobs.StateRunning || running.Version != "2" {
		t.Fatalf("AdvanceAt: %+v, %v; want running at version 2", running, err)
	}
	// j is now stale.
	if got, err := b.store.AdvanceAt(ctx, j, toRunning); !errors.Is(err, jobs.ErrChanged) || got != j {
		t.Fatalf("AdvanceAt from a stale copy: %+v, %v; want the copy back and ErrChanged", got, err)
	}

	k := b.create(t, "acme")
	b.setState(t, k, jobs.StateCanceled)
	if _, err := b.store.AdvanceAt(ctx, k, toRunning); !errors.Is(err, jobs.ErrChanged) {
		t.Fatalf("AdvanceAt of a job canceled since: %v, want ErrChanged", err)
	}
	if _, err := b.store.AdvanceAt(ctx, &jobs.Job{ID: jobs.NewID(), Tenant: "acme"}, toRunning); !errors.Is(err, jobs.ErrChanged) {
		t.Fatalf("AdvanceAt without a version: %v, want ErrChanged", err)
	}
	for id, want := range map[string]int{j.ID: 2, k.ID: 2} {
		if evs, err := b.store.Events(ctx, "acme", id, 0); err != nil || len(evs) != want {
			t.Errorf("job %s: %d events, %v; want %d (nothing written from a stale copy)", id, len(evs), err, want)
		}
	}
}

// TestFinishRetiresTask: Finish with a TaskDone writes the end and, in the
// same step, retires the task as asynq's Done does, counting it
// processed; a task no longer active (taken back by asynq's recoverer) is
// left alone, and so is everything when the record refuses the write.
func TestFinishRetiresTask(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	base := redistest.Prefix(t) + ":{q}:"
	taskDone := func(id string) *keyspace.TaskDone {
		return &keyspace.TaskDone{
			Active: base + "active", Lease: base + "lease", Key: base + "t:" + id,
			Processed: base + "processed:2026-11-22", Total: base + "processed", ID: id,
			StatsExpire: time.Now().Add(time.Hour).Unix(), MaxCount: math.MaxInt64,
		}
	}
	// activate puts a task for id on the queue as asynq's dequeue leaves it.
	activate := func(id string) {
		t.Helper()
		if err := b.rdb.HSet(ctx, base+"t:"+id, "msg", "m", "state", "active").Err(); err != nil {
			t.Fatal(err)
		}
		b.rdb.LPush(ctx, base+"active", id)
		b.rdb.ZAdd(ctx, base+"lease", redis.Z{Score: float64(time.Now().Add(30 * time.Second).Unix()), Member: id})
	}
	toSucceeded := func(c *jobs.Job) error {
		c.State = jobs.StateSucceeded
		return nil
	}

	j := b.create(t, "acme")
	activate(j.ID)
	got, retired, err := b.store.Finish(ctx, j, taskDone(j.ID), toSucceeded)
	if err != nil || !retired || got.State != jobs.StateSucceeded {
		t.Fatalf("Finish: %+v, retired %v, %v; want succeeded and the task retired", got, retired, err)
	}
	if a, l, h := b.rdb.LLen(ctx, base+"active").Val(), b.rdb.ZCard(ctx, base+"lease").Val(), b.rdb.Exists(ctx, base+"t:"+j.ID).Val(); a != 0 || l != 0 || h != 0 {
		t.Fatalf("after Finish: %d active, %d leased, task hash %d; want none", a, l, h)
	}
	if d, tot := b.rdb.Get(ctx, base+"processed:2026-11-22").Val(), b.rdb.Get(ctx, base+"processed").Val(); d != "1" || tot != "1" {
		t.Fatalf("processed counts %q (day), %q (all); want 1, 1", d, tot)
	}
	if ttl := b.rdb.TTL(ctx, base+"processed:2026-11-22").Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("day's count expires in %s, want within the hour given", ttl)
	}

	// The total starts again from one past the largest count, as asynq's.
	b.rdb.Set(ctx, base+"processed", strconv.FormatInt(math.MaxInt64, 10), 0)
	k := b.create(t, "acme")
	activate(k.ID)
	if _, retired, err := b.store.Finish(ctx, k, taskDone(k.ID), toSucceeded); err != nil || !retired {
		t.Fatalf("Finish: retired %v, %v", retired, err)
	}
	if tot := b.rdb.Get(ctx, base+"processed").Val(); tot != "1" {
		t.Fatalf("total after the largest count: %q, want 1", tot)
	}

	// Not active: the job ends, the task is left as it is.
	m := b.create(t, "acme")
	if _, retired, err := b.store.Finish(ctx, m, taskDone(m.ID), toSucceeded); err != nil || retired {
		t.Fatalf("Finish of a job whose task is not active: retired %v, %v; want false, nil", retired, err)
	}
	// Canceled since: nothing is written, the task stays active.
	n := b.create(t, "acme")
	activate(n.ID)
	b.setState(t, n, jobs.StateCanceled)
	if _, retired, err := b.store.Finish(ctx, n, taskDone(n.ID), toSucceeded); !errors.Is(err, ErrFinished) || retired {
		t.Fatalf("Finish of a canceled job: retired %v, %v; want false, ErrFinished", retired, err)
	}
	if a, l := b.rdb.LLen(ctx, base+"active").Val(), b.rdb.ZCard(ctx, base+"lease").Val(); a != 1 || l != 1 {
		t.Fatalf("after a refused Finish: %d active, %d leased; want the task left as it was", a, l)
	}
	// Without a TaskDone it is Advance.
	o := b.create(t, "acme")
	if got, retired, err := b.store.Finish(ctx, o, nil, toSucceeded); err != nil || retired || got.State != jobs.StateSucceeded {
		t.Fatalf("Finish without a task: %+v, retired %v, %v", got, retired, err)
	}
}
