package status

import (
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
)

// TestRecordExpiry: a record, its events and its deliveries have no expiry
// while the job runs, get one when it ends, and lose it again when a dead
// job is replayed.
func TestRecordExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Retention: time.Hour, DeadRetention: 2 * time.Hour})
	ctx := testContext(t)
	ttls := func(j *jobs.Job) [3]time.Duration {
		t.Helper()
		var out [3]time.Duration
		for i, k := range []string{b.store.jobKey(j.Tenant, j.ID), b.store.eventsKey(j.Tenant, j.ID), b.store.deliveriesKey(j.Tenant, j.ID)} {
			d, err := b.rdb.TTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[i] = d
		}
		return out
	}
	// A key without an expiry reads -1 (seconds, as TTL reports it).
	none := [3]time.Duration{-1, -1, -1}
	within := func(got [3]time.Duration, want time.Duration) bool {
		for _, d := range got {
			if d <= want-time.Minute || d > want {
				return false
			}
		}
		return true
	}

	j := b.create(t, "acme")
	if err := b.store.AddDelivery(ctx, "acme", j.ID, 1, "d1"); err != nil {
		t.Fatal(err)
	}
	j = b.setState(t, j, jobs.StateRunning)
	if got := ttls(j); got != none {
		t.Fatalf("running job's keys expire: %v", got)
	}
	b.setState(t, j, jobs.StateSucceeded)
	if got := ttls(j); !within(got, time.Hour) {
		t.Fatalf("succeeded job's keys expire in %v, want the retention (1h)", got)
	}

	d := b.create(t, "acme")
	if err := b.store.AddDelivery(ctx, "acme", d.ID, 1, "d2"); err != nil {
		t.Fatal(err)
	}
	d = b.setState(t, d, jobs.StateDead)
	if got := ttls(d); !within(got, 2*time.Hour) {
		t.Fatalf("dead job's keys expire in %v, want the dead retention (2h)", got)
	}
	if _, err := b.store.Reopen(ctx, "acme", d.ID, func(j *jobs.Job) error {
		j.State = jobs.StateQueued
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := ttls(d); got != none {
		t.Fatalf("replayed job's keys still expire: %v", got)
	}
}
