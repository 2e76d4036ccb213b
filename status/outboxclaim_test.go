package status

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// createOnShard stores a new queued job of tenant on shard, whose callback
// hears of its queued event (one outbox entry).
func (b *testBundle) createOnShard(t *testing.T, tenant string, shard int) *jobs.Job {
	t.Helper()
	j := newJob(tenant)
	j.ID = b.store.ks.PlaceID(j.ID, shard)
	j.CallbackURL, j.CallbackEvents = hookURL, []jobs.State{jobs.StateQueued}
	if err := b.store.Create(testContext(t), j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return j
}

// shardsOf counts entries by the shard they say they came from, checking
// that it is their job's.
func (b *testBundle) shardsOf(t *testing.T, es []OutboxEntry) map[int]int {
	t.Helper()
	out := map[int]int{}
	for _, e := range es {
		if want := b.store.ks.ShardOf(e.JobID); e.Shard != want {
			t.Errorf("entry of job %s says shard %d, the job is on shard %d", e.JobID, e.Shard, want)
		}
		out[e.Shard]++
	}
	return out
}

// TestOutboxShards: with four shards, the outbox API covers every shard:
// sizes are summed, claims take the entries of every shard, each knowing
// its shard, and acknowledgements remove them where they are.
func TestOutboxShards(t *testing.T) {
	t.Parallel()
	const shards, each = 4, 5
	b := setup(t, Config{Shards: shards})
	ctx := testContext(t)
	var all []string
	for shard := range shards {
		for range each {
			all = append(all, member(b.createOnShard(t, "acme", shard).ID, 1))
		}
	}
	slices.Sort(all)
	for shard := range shards {
		if n := b.rdb.ZCard(ctx, b.store.ks.Outbox(shard, "acme")).Val(); n != each {
			t.Fatalf("shard %d's outbox holds %d entries, want %d", shard, n, each)
		}
	}
	if n := b.outboxSize(t, "acme"); n != shards*each {
		t.Fatalf("OutboxSize = %d, want %d (every shard's)", n, shards*each)
	}

	var got []OutboxEntry
	for range shards * each {
		es := b.claim(t, "acme", 7, time.Minute)
		if len(es) == 0 {
			break
		}
		if len(es) > 7 {
			t.Fatalf("ClaimOutbox(7) took %d entries", len(es))
		}
		got = append(got, es...)
	}
	if m := members(got); !slices.Equal(m, all) {
		t.Fatalf("claims took %q, want each of %q once", m, all)
	}
	for shard, n := range b.shardsOf(t, got) {
		if n != each {
			t.Errorf("claimed %d entries of shard %d, want %d", n, shard, each)
		}
	}

	for _, e := range got {
		if err := b.store.AckOutbox(ctx, e); err != nil {
			t.Fatalf("AckOutbox: %v", err)
		}
	}
	if n := b.outboxSize(t, "acme"); n != 0 {
		t.Fatalf("OutboxSize after every ack = %d, want 0", n)
	}
	for shard := range shards {
		if n := b.rdb.ZCard(ctx, b.store.ks.Outbox(shard, "acme")).Val(); n != 0 {
			t.Fatalf("shard %d's outbox holds %d entries after every ack", shard, n)
		}
	}
}

// TestClaimOutboxFair: a shard with a backlog does not starve the others
// (each gets its share of a claim), nor do they slow it down (what they do
// not use goes to it); and a claim smaller than the shard count serves
// every shard in turn.
func TestClaimOutboxFair(t *testing.T) {
	t.Parallel()
	const shards = 4
	b := setup(t, Config{Shards: shards})
	for range 40 {
		b.createOnShard(t, "acme", 0)
	}
	for shard := 1; shard < shards; shard++ {
		b.createOnShard(t, "acme", shard)
		b.createOnShard(t, "acme", shard)
	}

	first := b.claim(t, "acme", 8, time.Minute)
	if got, want := b.shardsOf(t, first), map[int]int{0: 2, 1: 2, 2: 2, 3: 2}; len(first) != 8 || !maps.Equal(got, want) {
		t.Fatalf("first claim of 8 took %v by shard, want %v", got, want)
	}
	second := b.claim(t, "acme", 8, time.Minute)
	if got, want := b.shardsOf(t, second), map[int]int{0: 8}; !maps.Equal(got, want) {
		t.Fatalf("second claim of 8 took %v by shard, want the busy shard's 8", got)
	}
	third := b.claim(t, "acme", 100, time.Minute)
	if got, want := b.shardsOf(t, third), map[int]int{0: 30}; !maps.Equal(got, want) {
		t.Fatalf("third claim took %v by shard, want the rest, %v", got, want)
	}

	// One entry at a time: every shard has one due, and four claims
	// serve the four shards.
	c := setup(t, Config{Shards: shards})
	for shard := range shards {
		c.createOnShard(t, "acme", shard)
		c.createOnShard(t, "acme", shard)
	}
	served := map[int]int{}
	for range shards {
		es := c.claim(t, "acme", 1, time.Minute)
		if len(es) != 1 {
			t.Fatalf("ClaimOutbox(1) took %d entries, want 1", len(es))
		}
		served[es[0].Shard]++
	}
	if len(served) != shards {
		t.Fatalf("four claims of one entry served shards %v, want each of the %d once", served, shards)
	}
}

// TestOutboxCluster: on a cluster of three masters, six shards' outboxes
// are claimed, counted and acknowledged across every master.
func TestOutboxCluster(t *testing.T) {
	t.Parallel()
	const shards = 6
	c := redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(0))
	rdb := c.Client(t)
	s, err := New(Config{Prefix: redistest.Prefix(t), Shards: shards}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	masters := map[string]bool{}
	var all []string
	for shard := range shards {
		masters[c.MasterOf(t, int(keyspace.Slot(s.ks.Outbox(shard, "acme")))).Addr()] = true
		j := newJob("acme")
		j.ID = s.ks.PlaceID(j.ID, shard)
		j.CallbackURL, j.CallbackEvents = hookURL, []jobs.State{jobs.StateQueued}
		if err := s.Create(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
			t.Fatalf("Create on shard %d: %v", shard, err)
		}
		all = append(all, member(j.ID, 1))
	}
	slices.Sort(all)
	if len(masters) != 3 {
		t.Fatalf("the outboxes are on %d masters, want 3", len(masters))
	}
	if n, err := s.OutboxSize(ctx, "acme"); err != nil || n != shards {
		t.Fatalf("OutboxSize = %d, %v; want %d", n, err, shards)
	}
	es, err := s.ClaimOutbox(ctx, "acme", 100, time.Minute)
	if err != nil {
		t.Fatalf("ClaimOutbox: %v", err)
	}
	if got := members(es); !slices.Equal(got, all) {
		t.Fatalf("claimed %q, want %q", got, all)
	}
	for _, e := range es {
		if err := s.AckOutbox(ctx, e); err != nil {
			t.Fatalf("AckOutbox: %v", err)
		}
	}
	if n, err := s.OutboxSize(ctx, "acme"); err != nil || n != 0 {
		t.Fatalf("OutboxSize after the acks = %d, %v; want 0", n, err)
	}
}
