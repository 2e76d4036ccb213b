package status

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestFairLine runs one queue's fair line through the store: tenants
// with waiting jobs are taken in turn (a: 4 jobs, then b: 1, c: 2 → a, b
// and c; then a and the late d; then a and c; then a's last), each
// tenant's jobs in accept order; a tenant that comes late starts level with the next job to run,
// not behind the backlog; a canceled job is withdrawn; the line's state
// counts each tenant's waiting jobs and forgets a tenant with none.
func TestFairLine(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	ks := b.store.Space()
	queue := redistest.Queue(t, "default")
	q := keyspace.AsynqQueue(ks.Queue(0, queue))
	fair := ks.Fair(0, queue)
	ids := map[string][]string{}
	accept := func(tenant string) *jobs.Job {
		t.Helper()
		j := acceptNow(t, b, queue, tenant)
		ids[tenant] = append(ids[tenant], j.ID)
		return j
	}
	take := func(n int) []string { t.Helper(); return takeFair(t, b, queue, n) }
	waiting := func() map[string]int {
		t.Helper()
		st, err := b.rdb.HGetAll(ctx, fair.State).Result()
		if err != nil {
			t.Fatal(err)
		}
		return keyspace.ParseFairTenants(st)
	}
	sameSet := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: took %v, want %v in any order", what, got, want)
		}
	}

	for range 4 {
		accept("a")
	}
	accept("b")
	accept("c")
	canceled := accept("c")
	accept("c")
	if got, want := waiting(), map[string]int{"a": 4, "b": 1, "c": 3}; !maps.Equal(got, want) {
		t.Errorf("waiting %v, want %v", got, want)
	}
	if ok, err := b.store.Withdraw(ctx, canceled); err != nil || !ok {
		t.Fatalf("Withdraw: %v, %v", ok, err)
	}
	if n, _ := b.rdb.Exists(ctx, q.TaskPrefix+canceled.ID).Result(); n != 0 {
		t.Error("a withdrawn job's task is still there")
	}
	if ok, err := b.store.Withdraw(ctx, canceled); err != nil || ok {
		t.Errorf("Withdraw again: %v, %v; want false", ok, err)
	}
	c := []string{ids["c"][0], ids["c"][2]}

	sameSet("first round", take(3), ids["a"][0], ids["b"][0], c[0])
	if got, want := waiting(), map[string]int{"a": 3, "c": 1}; !maps.Equal(got, want) {
		t.Errorf("waiting %v, want %v (b has none left, and is forgotten)", got, want)
	}
	// d comes now: level with the next round, not behind a's backlog.
	// (c's last job keeps the turn after the withdrawn one's.)
	d := accept("d")
	sameSet("second round", take(2), ids["a"][1], d.ID)
	sameSet("third round", take(2), ids["a"][2], c[1])
	if got := take(3); !slices.Equal(got, ids["a"][3:]) {
		t.Errorf("last round: took %v, want a's last %v", got, ids["a"][3:])
	}
	if got := waiting(); len(got) != 0 {
		t.Errorf("waiting %v after every job was taken, want none", got)
	}
	if n, _ := b.rdb.Exists(ctx, fair.Line).Result(); n != 0 {
		t.Error("the fair line is still there, empty")
	}
}

// TestFairLineWeights: a tenant of weight 3 is taken three times for each
// turn of a tenant of weight 1 while both have jobs waiting; a weight out
// of range is refused.
func TestFairLineWeights(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{TenantWeights: map[string]int{"big": 3}})
	queue := redistest.Queue(t, "default")
	tenantOf := map[string]string{}
	for _, tenant := range []string{"small", "small", "small", "big", "big", "big", "big", "big", "big"} {
		tenantOf[acceptNow(t, b, queue, tenant).ID] = tenant
	}
	got := takeFair(t, b, queue, 8)
	// Virtual starts: small 1, 2, 3; big ⅓, ⅔, 1, 1⅓, 1⅔, 2. The first
	// eight: big, big, then small and big at 1, big, big, then small and
	// big at 2.
	var order []string
	for _, id := range got {
		order = append(order, tenantOf[id])
	}
	count := func(tenants []string, who string) int {
		n := 0
		for _, x := range tenants {
			if x == who {
				n++
			}
		}
		return n
	}
	if len(order) != 8 || count(order[:4], "big") != 3 || count(order, "small") != 2 || order[0] != "big" || order[1] != "big" {
		t.Errorf("taken %v, want big three times for each small (big, big, then small and big, …)", order)
	}
	if _, err := New(Config{Prefix: "x", TenantWeights: map[string]int{"a": 0}}, b.rdb); err == nil || !strings.Contains(err.Error(), "weight 0 must be from 1 to 100") {
		t.Errorf("weight 0: %v", err)
	}
}

// acceptNow accepts a new job of tenant on queue, due now, with its task.
func acceptNow(t *testing.T, b *testBundle, queue, tenant string) *jobs.Job {
	t.Helper()
	ks := b.store.Space()
	j := newJob(tenant)
	j.Queue = queue
	task := keyspace.NewTaskWrite(keyspace.Task{Type: jobs.TaskType, Payload: []byte(`{}`), ID: j.ID,
		Queue: ks.JobQueue(j.ID, j.Queue), MaxRetry: 3, Timeout: time.Minute}, time.Time{}, time.Now())
	if err := b.store.Accept(testContext(t), j, &jobs.Request{}, task); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return j
}

// takeFair takes up to n tasks off queue (shard 0) as a worker does: its
// pending list and its fair line in turn.
func takeFair(t *testing.T, b *testBundle, queue string, n int) []string {
	t.Helper()
	ks := b.store.Space()
	q := keyspace.AsynqQueue(ks.Queue(0, queue))
	fair := ks.Fair(0, queue)
	got, err := keyspace.Take.Run(testContext(t), b.rdb, []string{q.Pending, q.Paused, q.Active, q.Lease, fair.Line, fair.State},
		time.Now().Add(time.Minute).Unix(), n).StringSlice()
	if err != nil {
		t.Fatalf("take: %v", err)
	}
	return got
}

// TestFairLineTakesTurnsWithComebacks: while a queue has tasks on its
// pending list (retries, jobs whose delay is up, replays) and new jobs in
// its fair line, takes alternate between the two, one take of one task
// after another too: what comes back gets half of the takes, not all of
// them while it lasts.
func TestFairLineTakesTurnsWithComebacks(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	queue := redistest.Queue(t, "default")
	fifo, err := New(Config{Prefix: b.store.Space().Prefix(), FIFO: true}, b.rdb)
	if err != nil {
		t.Fatal(err)
	}
	source := map[string]string{}
	for range 3 {
		source[acceptNow(t, &testBundle{rdb: b.rdb, store: fifo}, queue, "a").ID] = "pending"
	}
	for range 4 {
		source[acceptNow(t, b, queue, "b").ID] = "line"
	}
	var order []string
	for range 7 {
		got := takeFair(t, b, queue, 1)
		if len(got) != 1 {
			t.Fatalf("took %v, want one task", got)
		}
		order = append(order, source[got[0]])
	}
	if want := []string{"pending", "line", "pending", "line", "pending", "line", "line"}; !slices.Equal(order, want) {
		t.Errorf("took from %v, want %v", order, want)
	}
}
