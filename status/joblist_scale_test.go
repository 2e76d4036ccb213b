package status

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
)

// commandCounter counts the commands sent through a client, by name.
type commandCounter struct {
	mu    sync.Mutex
	n     map[string]int
	total map[string]int
}

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *commandCounter) add(cmd redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := strings.ToLower(cmd.Name())
	if name == "zrange" || name == "zrangebyscore" {
		name = "zrange"
	}
	c.n[name]++
	c.total[name]++
}

// take returns the counts so far and starts again.
func (c *commandCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestListingsAtScale: with 100,000 jobs in the index and 10,000 dead
// letters, a page of jobs or dead letters, and what the overview counts,
// read a bounded number of entries and records, whatever the totals: the
// cursor-paged reads the console's pages and GET /v1/jobs make. It counts
// commands, not time.
func TestListingsAtScale(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 4})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ks := b.store.Space()
	tenants := []string{"acme", "globex", "initech"}
	const jobsN, deadN = 100000, 10000

	// Seed records and index entries directly, a pipeline at a time.
	base := time.Now().Add(-time.Hour).UnixMilli()
	pipe := b.rdb.Pipeline()
	flush := func() {
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	for _, tn := range tenants {
		pipe.SAdd(ctx, ks.JobTenants(), tn)
		pipe.SAdd(ctx, ks.DeadLetterLists(), tn+"/default")
	}
	for i := range jobsN {
		tn := tenants[i%len(tenants)]
		j := newJob(tn)
		if i < deadN {
			j.State, j.Error = jobs.StateDead, "upstream answered 502 Bad Gateway"
		}
		shard := ks.ShardOf(j.ID)
		at := base + int64(i)*30 // 100,000 jobs over the last hour
		pipe.HSet(ctx, ks.Record(j.ID), "t", tn, "doc", PublicJSON(j), "state", string(j.State), "seq", 1)
		pipe.ZAdd(ctx, ks.JobIndex(shard, tn), redis.Z{Score: float64(at), Member: j.ID})
		if i < deadN {
			pipe.ZAdd(ctx, ks.DeadLetters(shard, tn, "default"), redis.Z{Score: float64(at), Member: j.ID})
		}
		if i%2000 == 1999 {
			flush()
		}
	}
	flush()

	count := &commandCounter{n: map[string]int{}, total: map[string]int{}}
	b.rdb.AddHook(count)
	const limit, budget = 50, 5000

	// A page of every tenant's jobs, newest first, then the next.
	cursor := ""
	for page := range 3 {
		items, next, err := b.store.ListJobs(ctx, JobFilter{}, cursor, limit, budget)
		if err != nil || len(items) != limit || next == "" {
			t.Fatalf("page %d: %d jobs, next %q, err %v", page, len(items), next, err)
		}
		n := count.take()
		if n["hmget"] > limit+1 {
			t.Errorf("page %d of jobs read %d records for %d jobs", page, n["hmget"], limit)
		}
		// One batch of each tenant's shards at most (limit+1 entries each).
		if n["zrange"] > 2*len(tenants)*ks.Shards() {
			t.Errorf("page %d of jobs read the index %d times", page, n["zrange"])
		}
		cursor = next
	}
	// One tenant's jobs.
	if items, _, err := b.store.ListJobs(ctx, JobFilter{Tenant: "globex"}, "", limit, budget); err != nil || len(items) != limit {
		t.Fatalf("globex's page: %d jobs, %v", len(items), err)
	}
	if n := count.take(); n["hmget"] > limit+1 {
		t.Errorf("a tenant's page read %d records", n["hmget"])
	}
	// A filter that matches none of the newest jobs looks at no more than
	// the budget, and hands back a cursor.
	items, next, err := b.store.ListJobs(ctx, JobFilter{State: jobs.StateDead}, "", limit, budget)
	if err != nil || len(items) != 0 || next == "" {
		t.Fatalf("state=dead among the newest: %d jobs, next %q, %v; want none yet and a cursor", len(items), next, err)
	}
	if n := count.take(); n["hmget"] > budget {
		t.Errorf("a filtered page read %d records, over its budget of %d", n["hmget"], budget)
	}

	// A page of dead letters, as the console's page asks for it.
	letters, dnext, err := b.store.DeadLetters(ctx, DLQFilter{}, "", limit, 20000)
	if err != nil || len(letters) != limit || dnext == "" {
		t.Fatalf("dead letters: %d, next %q, %v", len(letters), dnext, err)
	}
	if n := count.take(); n["hmget"] > 2*64 {
		t.Errorf("a page of dead letters read %d records", n["hmget"])
	}

	// What the overview counts reads no record at all.
	accepted, err := b.store.AcceptedSince(ctx, time.UnixMilli(base))
	if err != nil || accepted != jobsN {
		t.Fatalf("AcceptedSince: %d, %v; want %d", accepted, err, jobsN)
	}
	counts, err := b.store.DeadLetterCounts(ctx)
	if err != nil || counts["default"] != deadN {
		t.Fatalf("DeadLetterCounts: %v, %v; want %d", counts, err, deadN)
	}
	n := count.take()
	if n["hmget"] != 0 || n["zcount"] != len(tenants)*ks.Shards() || n["zcard"] != len(tenants)*ks.Shards() {
		t.Errorf("the overview's counts sent %v; want one ZCOUNT and one ZCARD per tenant and shard, no record read", n)
	}
	if all := count.total; all["scan"] > 0 || all["keys"] > 0 {
		t.Errorf("a listing scanned the key space: %v", all)
	}
}
