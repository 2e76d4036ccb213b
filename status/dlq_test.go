package status

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
)

// kill stores a job of tenant in queue with type typ and ends it dead at
// diedAt with error msg.
func (b *testBundle) kill(t *testing.T, tenant, queue, typ, msg string, diedAt time.Time) *jobs.Job {
	t.Helper()
	j := newJob(tenant)
	j.Queue, j.Type = queue, typ
	if err := b.store.Create(testContext(t), j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := b.store.Update(testContext(t), tenant, j.ID, func(j *jobs.Job) error {
		at := diedAt.UTC()
		j.State, j.FinishedAt, j.Error = jobs.StateDead, &at, msg
		return nil
	})
	if err != nil {
		t.Fatalf("Update to dead: %v", err)
	}
	return got
}

// allDead pages through the dead-letter queue with page size limit and
// returns the IDs in the order served, failing on a repeated ID.
func (b *testBundle) allDead(t *testing.T, f DLQFilter, limit, scan int) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	cursor := ""
	for range 10000 {
		page, next, err := b.store.DeadLetters(testContext(t), f, cursor, limit, scan)
		if err != nil {
			t.Fatalf("DeadLetters: %v", err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		for _, d := range page {
			if seen[d.Job.ID] {
				t.Fatalf("job %s served twice", d.Job.ID)
			}
			seen[d.Job.ID] = true
			ids = append(ids, d.Job.ID)
		}
		if next == "" {
			return ids
		}
		cursor = next
	}
	t.Fatal("paging did not end")
	return nil
}

func TestDeadLettersOrderAndPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	base := time.UnixMilli(testTime.UnixMilli())
	type dead struct {
		at     time.Time
		tenant string
		id     string
	}
	var want []dead
	// Several tenants and queues, and many deaths in the same millisecond
	// (more than one read batch), to exercise the merge and its ties.
	for i := range 300 {
		tenant := []string{"acme", "beta", "zeta"}[i%3]
		queue := []string{"default", "low"}[i%2]
		at := base
		if i%10 == 0 {
			at = base.Add(time.Duration(i) * time.Millisecond)
		}
		j := b.kill(t, tenant, queue, "orders", "boom", at)
		want = append(want, dead{at, tenant, j.ID})
	}
	// A job that is not dead is not in the queue.
	b.setState(t, b.create(t, "acme"), jobs.StateSucceeded)

	slices.SortFunc(want, func(x, y dead) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		if x.tenant != y.tenant {
			return map[bool]int{true: -1, false: 1}[x.tenant < y.tenant]
		}
		return map[bool]int{true: -1, false: 1}[x.id < y.id]
	})
	var wantIDs []string
	for _, d := range want {
		wantIDs = append(wantIDs, d.id)
	}
	for _, limit := range []int{1, 7, 1000} {
		got := b.allDead(t, DLQFilter{}, limit, 0)
		if !slices.Equal(got, wantIDs) {
			t.Fatalf("limit %d: got %d jobs, want %d in death order", limit, len(got), len(wantIDs))
		}
	}
	// A small scan budget gives short pages but loses nothing.
	if got := b.allDead(t, DLQFilter{Tenant: "zeta"}, 50, 13); len(got) != 100 {
		t.Fatalf("zeta with a scan budget: %d jobs, want 100", len(got))
	}

	counts, err := b.store.DeadLetterCounts(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if counts["default"] != 150 || counts["low"] != 150 {
		t.Fatalf("DeadLetterCounts = %v, want 150 per queue", counts)
	}
}

func TestDeadLettersFilter(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	t0 := testTime
	a := b.kill(t, "acme", "default", "orders", "upstream answered 503 Service Unavailable", t0)
	c := b.kill(t, "acme", "low", "refunds", "dial tcp: connection refused", t0.Add(time.Minute))
	d := b.kill(t, "beta", "default", "orders", "upstream answered 500", t0.Add(2*time.Minute))

	tests := []struct {
		name string
		f    DLQFilter
		want []string
	}{
		{"all", DLQFilter{}, []string{a.ID, c.ID, d.ID}},
		{"tenant", DLQFilter{Tenant: "acme"}, []string{a.ID, c.ID}},
		{"queue", DLQFilter{Queue: "default"}, []string{a.ID, d.ID}},
		{"type", DLQFilter{Type: "refunds"}, []string{c.ID}},
		{"error ignores case", DLQFilter{Error: "UPSTREAM answered"}, []string{a.ID, d.ID}},
		{"since", DLQFilter{Since: t0.Add(time.Minute)}, []string{c.ID, d.ID}},
		{"until is exclusive", DLQFilter{Until: t0.Add(time.Minute)}, []string{a.ID}},
		{"range", DLQFilter{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Minute)}, []string{c.ID, d.ID}},
		{"all of them", DLQFilter{Tenant: "acme", Queue: "low", Type: "refunds", Error: "refused"}, []string{c.ID}},
		{"nothing", DLQFilter{Tenant: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.allDead(t, tt.f, 2, 0); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	page, _, err := b.store.DeadLetters(testContext(t), DLQFilter{Type: "refunds"}, "", 10, 0)
	if err != nil || len(page) != 1 {
		t.Fatalf("DeadLetters = %v, %v", page, err)
	}
	got := page[0]
	if got.Tenant != "acme" || !got.DeadAt.Equal(time.UnixMilli(t0.Add(time.Minute).UnixMilli())) ||
		got.Job.Error != "dial tcp: connection refused" || got.Job.Queue != "low" || got.Job.State != jobs.StateDead {
		t.Fatalf("dead letter = %+v (job %+v)", got, got.Job)
	}
}

func TestDeadLettersBadCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	for _, c := range []string{"%%%", "bm90LWEtY3Vyc29y", (dlqPos{ms: 1, tenant: "a{b", id: jobs.NewID()}).cursor(dlqCursorTag), (dlqPos{ms: 1, tenant: "a", id: "short"}).cursor(dlqCursorTag)} {
		if _, _, err := b.store.DeadLetters(testContext(t), DLQFilter{}, c, 10, 0); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: err = %v, want ErrBadCursor", c, err)
		}
	}
}

func TestDeadLetterLeavesOnReplayAndDelete(t *testing.T) {
	t.Parallel()
	const retention = time.Hour
	b := setup(t, Config{Retention: retention})
	ctx := testContext(t)
	j := b.kill(t, "acme", "default", "orders", "boom", testTime)
	k := b.kill(t, "beta", "low", "orders", "boom", testTime)

	d, err := b.store.FindDeadLetter(ctx, k.ID)
	if err != nil || d.Tenant != "beta" || d.Job.ID != k.ID {
		t.Fatalf("FindDeadLetter = %+v, %v", d, err)
	}
	if _, err := b.store.FindDeadLetter(ctx, jobs.NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindDeadLetter of an unknown job = %v, want ErrNotFound", err)
	}

	// A replay (reopen) takes the job out; dying again puts it back.
	if _, err := b.store.Reopen(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State, j.FinishedAt = jobs.StateQueued, nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.FindDeadLetter(ctx, j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replayed job still in the dead-letter queue: %v", err)
	}
	if got := b.allDead(t, DLQFilter{}, 10, 0); !slices.Equal(got, []string{k.ID}) {
		t.Fatalf("dead letters after replay = %v", got)
	}
	b.setState(t, j, jobs.StateDead)
	if got := b.allDead(t, DLQFilter{}, 10, 0); len(got) != 2 {
		t.Fatalf("dead letters after dying again = %v, want 2", got)
	}

	// Delete: out of the queue, the record expires like any ended job.
	if err := b.store.DeleteDeadLetter(ctx, "beta", "low", k.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.store.DeleteDeadLetter(ctx, "beta", "low", k.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if got := b.allDead(t, DLQFilter{}, 10, 0); !slices.Equal(got, []string{j.ID}) {
		t.Fatalf("dead letters after delete = %v", got)
	}
	if ttl := b.ttl(t, b.store.jobKey("beta", k.ID)); ttl < int64((retention-time.Minute)/time.Second) {
		t.Fatalf("TTL of a deleted dead letter = %d, want about %s", ttl, retention)
	}
	if got, err := b.store.Get(ctx, "beta", k.ID); err != nil || got.State != jobs.StateDead {
		t.Fatalf("deleted dead letter reads %+v, %v; want still dead", got, err)
	}
	live := b.create(t, "acme")
	if err := b.store.DeleteDeadLetter(ctx, "acme", "default", live.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of a live job = %v, want ErrNotFound", err)
	}
}

func TestDeadRetention(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{DeadRetention: 2 * time.Hour})
	j := b.kill(t, "acme", "default", "orders", "boom", testTime)
	if ttl := b.ttl(t, b.store.jobKey("acme", j.ID)); ttl < int64(time.Hour/time.Second) {
		t.Fatalf("TTL of a dead job with dead retention = %d, want about 2h", ttl)
	}
	// Once the record is gone the entry is dropped by the next read.
	if err := b.rdb.Del(testContext(t), b.store.jobKey("acme", j.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if got := b.allDead(t, DLQFilter{}, 10, 0); len(got) != 0 {
		t.Fatalf("dead letters = %v, want none", got)
	}
	if n := b.rdb.ZCard(testContext(t), b.store.dlqKey("acme", "default")).Val(); n != 0 {
		t.Fatalf("dead-letter list keeps %d expired entries", n)
	}

	if _, err := New(Config{DeadRetention: time.Second}, nil); err == nil {
		t.Fatal("a dead retention under a minute was accepted")
	}
}

func TestDeadLettersWithoutAny(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	page, next, err := b.store.DeadLetters(testContext(t), DLQFilter{}, "", 10, 0)
	if err != nil || len(page) != 0 || next != "" {
		t.Fatalf("DeadLetters on an empty queue = %v, %q, %v", page, next, err)
	}
	counts, err := b.store.DeadLetterCounts(testContext(t))
	if err != nil || len(counts) != 0 {
		t.Fatalf("DeadLetterCounts = %v, %v", counts, err)
	}
}
