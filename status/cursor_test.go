package status

import (
	"errors"
	"fmt"
	"testing"

	"github.com/asyncgw/asyncgw/jobs"
)

// eventKey names an event: its job and number.
func eventKey(ev jobs.Event) string { return fmt.Sprintf("%s#%d", ev.JobID, ev.Seq) }

// spread stores, for tenant, three jobs on every shard of b's store and
// moves them through two more states, interleaved over the shards, and
// returns how many events that made.
func (b *testBundle) spread(t *testing.T, tenant string) int {
	t.Helper()
	var all []*jobs.Job
	for shard := range b.store.Space().Shards() {
		for range 3 {
			j := newJob(tenant)
			j.ID = b.store.Space().PlaceID(j.ID, shard)
			if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
				t.Fatal(err)
			}
			all = append(all, j)
		}
	}
	for _, s := range []jobs.State{jobs.StateRunning, jobs.StateSucceeded} {
		for i := len(all) - 1; i >= 0; i-- {
			b.setState(t, all[i], s)
		}
	}
	return 3 * len(all)
}

// TestTenantEventsAcrossShards: with 4 shards, a tenant's events on every
// shard are all read, each shard's (and each job's) in their order; from
// the cursor of any event, reading gives exactly the events after it;
// reading page by page, one event at a time, gives each exactly once.
func TestTenantEventsAcrossShards(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 4})
	ctx := testContext(t)
	tail, err := b.store.TenantTail(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	n := b.spread(t, "acme")
	b.spread(t, "other")

	all, err := b.store.TenantEvents(ctx, "acme", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != n {
		t.Fatalf("%d events, want %d", len(all), n)
	}
	lastOfShard := map[int]string{}
	lastOfJob := map[string]int64{}
	for _, ev := range all {
		if ev.Tenant != "acme" {
			t.Fatalf("event of tenant %s", ev.Tenant)
		}
		shard := b.store.Space().ShardOf(ev.JobID)
		if last, ok := lastOfShard[shard]; ok && CompareStreamIDs(last, ev.StreamID) >= 0 {
			t.Errorf("shard %d: stream ID %s after %s", shard, ev.StreamID, last)
		}
		lastOfShard[shard] = ev.StreamID
		if ev.Seq != lastOfJob[ev.JobID]+1 {
			t.Errorf("job %s: event %d after %d", ev.JobID, ev.Seq, lastOfJob[ev.JobID])
		}
		lastOfJob[ev.JobID] = ev.Seq
	}
	if len(lastOfShard) != 4 {
		t.Fatalf("events on %d shards, want 4", len(lastOfShard))
	}

	// From every event's cursor: exactly the rest.
	for i, ev := range all {
		rest, err := b.store.TenantEvents(ctx, "acme", ev.Cursor, 1000)
		if err != nil {
			t.Fatalf("after event %d (%s): %v", i, ev.Cursor, err)
		}
		if len(rest) != n-i-1 {
			t.Fatalf("after event %d: %d events, want %d", i, len(rest), n-i-1)
		}
		for k, r := range rest {
			if eventKey(r) != eventKey(all[i+1+k]) || r.Cursor != all[i+1+k].Cursor {
				t.Fatalf("after event %d: event %d is %s, want %s", i, k, eventKey(r), eventKey(all[i+1+k]))
			}
		}
	}
	// The tail taken before is where a live subscriber starts: it reads
	// them all too.
	if got, err := b.store.TenantEvents(ctx, "acme", tail, 1000); err != nil || len(got) != n {
		t.Fatalf("after the tail taken before: %d events, %v; want %d", len(got), err, n)
	}

	// Page by page: every event exactly once.
	seen := map[string]int{}
	after := ""
	for range 2 * n {
		page, err := b.store.TenantEvents(ctx, "acme", after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		seen[eventKey(page[0])]++
		after = page[0].Cursor
	}
	if len(seen) != n {
		t.Errorf("paging one by one saw %d events, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("event %s seen %d times", k, c)
		}
	}

	// The tail now: nothing after it, then exactly a new event.
	tail, err = b.store.TenantTail(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if tail != all[n-1].Cursor {
		t.Errorf("TenantTail = %s, want the last event's cursor %s", tail, all[n-1].Cursor)
	}
	if got, err := b.store.TenantEvents(ctx, "acme", tail, 1000); err != nil || len(got) != 0 {
		t.Fatalf("after the tail: %d events, %v", len(got), err)
	}
	j := b.create(t, "acme")
	if got, err := b.store.TenantEvents(ctx, "acme", tail, 1000); err != nil || len(got) != 1 || got[0].JobID != j.ID {
		t.Fatalf("after the tail and a new job: %+v, %v", got, err)
	}
}

// TestCursorLive: a cursor advanced by events as they are heard live, in
// any order across shards, skips those heard already and resumes in the
// store exactly after what it has.
func TestCursorLive(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 3})
	ctx := testContext(t)
	n := b.spread(t, "acme")
	all, err := b.store.TenantEvents(ctx, "acme", "", 1000)
	if err != nil || len(all) != n {
		t.Fatalf("%d events, %v", len(all), err)
	}
	// Hear shard 2's events first, then shard 0's, then half of shard 1's.
	cur, err := b.store.ParseCursor("")
	if err != nil {
		t.Fatal(err)
	}
	heard := map[string]bool{}
	hear := func(shard int, most int) {
		for _, ev := range all {
			if b.store.Space().ShardOf(ev.JobID) != shard || most == 0 {
				continue
			}
			ev.Cursor = ""
			if !cur.Advance(ev) {
				t.Fatalf("event %s not new", eventKey(ev))
			}
			if cur.Advance(ev) {
				t.Fatalf("event %s new twice", eventKey(ev))
			}
			heard[eventKey(ev)] = true
			most--
		}
	}
	hear(2, -1)
	hear(0, -1)
	hear(1, 4)
	rest, err := b.store.TenantEvents(ctx, "acme", cur.String(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest)+len(heard) != n {
		t.Fatalf("heard %d, then read %d; want %d in all", len(heard), len(rest), n)
	}
	for _, ev := range rest {
		if heard[eventKey(ev)] {
			t.Errorf("event %s read again", eventKey(ev))
		}
	}
}

// TestParseCursor: a cursor this store did not give out is refused; with
// one shard a cursor is a plain stream ID, as before shards.
func TestParseCursor(t *testing.T) {
	t.Parallel()
	four, one := setup(t, Config{Shards: 4}).store, setup(t, Config{}).store
	for _, v := range []string{"x", "1-0", "0.0.0", "0.0.0.0.0", "a.b.c.", "0.0.0.1-0", "0.0.0.A", "0.0.0.01", "0.0.0.-1", "0.0.0.1-", " 0.0.0.0"} {
		if _, err := four.ParseCursor(v); !errors.Is(err, ErrBadEventID) {
			t.Errorf("4 shards: ParseCursor(%q) = %v, want ErrBadEventID", v, err)
		}
	}
	for _, v := range []string{"0.0.0.0", "lq3k2a1b.0.lq3k2a0z-1.z", ""} {
		c, err := four.ParseCursor(v)
		if err != nil || c.String() != v {
			t.Errorf("4 shards: ParseCursor(%q) = %v, %v; want it back", v, c, err)
		}
	}
	for _, v := range []string{"x", "7", "1-x", "0.0.0.0", "1-0-0"} {
		if _, err := one.ParseCursor(v); !errors.Is(err, ErrBadEventID) {
			t.Errorf("1 shard: ParseCursor(%q) = %v, want ErrBadEventID", v, err)
		}
	}
	for _, v := range []string{"1700000000000-0", "0-0", "1-5"} {
		c, err := one.ParseCursor(v)
		if err != nil || c.String() != v {
			t.Errorf("1 shard: ParseCursor(%q) = %v, %v; want it back", v, c, err)
		}
	}
	// With one shard an event's cursor is its stream ID.
	b := setup(t, Config{})
	b.create(t, "acme")
	evs, err := b.store.TenantEvents(testContext(t), "acme", "", 10)
	if err != nil || len(evs) != 1 || evs[0].Cursor != evs[0].StreamID {
		t.Errorf("one shard: events %+v, %v; want one whose cursor is its stream ID", evs, err)
	}
}
