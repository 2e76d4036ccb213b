package status

import (
	"errors"
	"testing"

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
