package status

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
)

// allJobs pages through ListJobs with page size limit and returns the jobs
// in the order served, failing on a repeated ID or an oversized page.
func (b *testBundle) allJobs(t *testing.T, f JobFilter, limit, budget int) []*jobs.Job {
	t.Helper()
	var out []*jobs.Job
	seen := map[string]bool{}
	cursor := ""
	for range 10000 {
		page, next, err := b.store.ListJobs(testContext(t), f, cursor, limit, budget)
		if err != nil {
			t.Fatalf("ListJobs: %v", err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d, limit %d", len(page), limit)
		}
		for _, j := range page {
			if seen[j.ID] {
				t.Fatalf("job %s served twice", j.ID)
			}
			seen[j.ID] = true
			out = append(out, j)
		}
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("paging did not end")
	return nil
}

// indexScore is when the job index says j was accepted.
func (b *testBundle) indexScore(t *testing.T, j *jobs.Job) int64 {
	t.Helper()
	ks := b.store.Space()
	v, err := b.rdb.ZScore(testContext(t), ks.JobIndex(ks.ShardOf(j.ID), j.Tenant), j.ID).Result()
	if err != nil {
		t.Fatalf("ZSCORE of %s: %v", j.ID, err)
	}
	return int64(v)
}

func TestListJobsNewestFirstAcrossShards(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 4})
	var mine []*jobs.Job
	for range 30 {
		mine = append(mine, b.create(t, "acme"))
	}
	for range 5 {
		b.create(t, "other")
	}
	for _, limit := range []int{1, 7, 30, 100} {
		got := b.allJobs(t, JobFilter{Tenant: "acme"}, limit, 0)
		if len(got) != len(mine) {
			t.Fatalf("limit %d: listed %d jobs, want %d", limit, len(got), len(mine))
		}
		for i, j := range got {
			if j.Tenant != "acme" {
				t.Fatalf("listed a job of %q", j.Tenant)
			}
			if i > 0 {
				prev, cur := got[i-1], j
				ps, cs := b.indexScore(t, prev), b.indexScore(t, cur)
				if ps < cs || ps == cs && prev.ID < cur.ID {
					t.Fatalf("limit %d: %s (%d) listed before %s (%d): not newest first", limit, prev.ID, ps, cur.ID, cs)
				}
			}
		}
	}
	all := b.allJobs(t, JobFilter{}, 8, 0)
	if len(all) != 35 {
		t.Fatalf("every tenant: listed %d jobs, want 35", len(all))
	}
}

func TestListJobsFilters(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 3})
	var done []string
	for i := range 20 {
		j := b.create(t, "acme")
		if i%4 == 0 {
			b.setState(t, j, jobs.StateSucceeded)
			done = append(done, j.ID)
		}
	}
	other := newJob("acme")
	other.Type = "refunds"
	if err := b.store.Create(testContext(t), other, &jobs.Request{}); err != nil {
		t.Fatal(err)
	}

	ids := func(js []*jobs.Job) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		slices.Sort(out)
		return out
	}
	slices.Sort(done)
	if got := ids(b.allJobs(t, JobFilter{Tenant: "acme", State: jobs.StateSucceeded}, 2, 0)); !slices.Equal(got, done) {
		t.Errorf("state filter: %v, want %v", got, done)
	}
	if got := ids(b.allJobs(t, JobFilter{Tenant: "acme", Type: "refunds"}, 10, 0)); !slices.Equal(got, []string{other.ID}) {
		t.Errorf("type filter: %v, want [%s]", got, other.ID)
	}
	// A small budget answers short pages with cursors, and still finds
	// every match.
	if got := ids(b.allJobs(t, JobFilter{Tenant: "acme", State: jobs.StateSucceeded}, 10, 3)); !slices.Equal(got, done) {
		t.Errorf("state filter, budget 3: %v, want %v", got, done)
	}
	page, next, err := b.store.ListJobs(testContext(t), JobFilter{Tenant: "acme", State: jobs.StateSucceeded}, "", 10, 3)
	if err != nil || len(page) > 3 || next == "" {
		t.Errorf("budget 3: %d jobs, next %q, err %v; want at most 3 and a cursor", len(page), next, err)
	}

	// Time range: everything is in [now-1h, now+1h), nothing before.
	now := time.Now()
	if got := b.allJobs(t, JobFilter{Tenant: "acme", Since: now.Add(-time.Hour), Until: now.Add(time.Hour)}, 50, 0); len(got) != 21 {
		t.Errorf("since/until around now: %d jobs, want 21", len(got))
	}
	if got := b.allJobs(t, JobFilter{Tenant: "acme", Until: now.Add(-time.Hour)}, 50, 0); len(got) != 0 {
		t.Errorf("until an hour ago: %d jobs, want 0", len(got))
	}
	if got := b.allJobs(t, JobFilter{Tenant: "nobody"}, 50, 0); len(got) != 0 {
		t.Errorf("another tenant: %d jobs, want 0", len(got))
	}
}

func TestListJobsDropsExpiredAndTrims(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 2, Retention: time.Minute, JobIndexRetention: time.Minute})
	ctx := testContext(t)
	ks := b.store.Space()
	gone := b.create(t, "acme")
	kept := b.create(t, "acme")
	// The record expired: the listing skips it and takes it out.
	if err := b.rdb.Del(ctx, ks.Record(gone.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	got := b.allJobs(t, JobFilter{Tenant: "acme"}, 10, 0)
	if len(got) != 1 || got[0].ID != kept.ID {
		t.Fatalf("listed %v, want only %s", got, kept.ID)
	}
	if err := b.rdb.ZScore(ctx, ks.JobIndex(ks.ShardOf(gone.ID), "acme"), gone.ID).Err(); err == nil {
		t.Errorf("the expired job is still in the index")
	}
	// An accept trims what is older than the index's horizon.
	index := ks.JobIndex(ks.ShardOf(kept.ID), "acme")
	old := time.Now().Add(-2 * time.Minute).UnixMilli()
	if err := b.rdb.ZAdd(ctx, index, redis.Z{Score: float64(old), Member: "aaold"}).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && ks.ShardOf(b.create(t, "acme").ID) != ks.ShardOf(kept.ID); i++ {
	}
	if err := b.rdb.ZScore(ctx, index, "aaold").Err(); err == nil {
		t.Errorf("an entry past the horizon was not trimmed by the next accept")
	}
	// An index that no accept touches for a horizon expires.
	if ttl := b.rdb.PTTL(ctx, index).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("the index's TTL is %s, want up to the horizon (1m)", ttl)
	}
}

func TestListJobsBadCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	for _, c := range []string{"!!", "eA", "ai8xMjMvYWNtZS8", (dlqPos{ms: 1, tenant: "a", id: "abc"}).cursor(dlqCursorTag)} {
		if _, _, err := b.store.ListJobs(testContext(t), JobFilter{}, c, 10, 0); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

func TestFindJob(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 2})
	j := b.create(t, "acme")
	got, err := b.store.FindJob(testContext(t), j.ID)
	if err != nil || got.Tenant != "acme" || got.ID != j.ID {
		t.Fatalf("FindJob: %+v, %v", got, err)
	}
	if _, err := b.store.FindJob(testContext(t), jobs.NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindJob of no job: %v, want ErrNotFound", err)
	}
}
