package worker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
)

// spaceOnly is a Store that has only a layout: enough for a worker that
// records nothing.
type spaceOnly struct {
	Store
	ks *keyspace.Space
}

func (s spaceOnly) Space() *keyspace.Space { return s.ks }

// TestRecoverLeaseExpired: the worker's recoverer puts back, at the head of
// their queue and marked pending, the tasks whose lease ended more than
// leaseSlack ago, and only those; a lease whose task is gone is dropped.
// Run again, it finds nothing left to do and fails on nothing (asynq's
// recoverers, one per fetch loop, each failed on the tasks another had
// taken back).
func TestRecoverLeaseExpired(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	store := spaceOnly{ks: testSpace(t)}
	priority := redistest.Queue(t, "default")
	queue := store.ks.Queue(0, priority)
	ids := enqueueTasks(t, rdb, queue, 5)
	c := newTakeClient(rdb, testSpace(t), func() int { return 1 }, nil)
	for _, id := range ids[:4] {
		if got := askDequeue(t, c, queue); got != id {
			t.Fatalf("dequeued %q, want %q", got, id)
		}
	}
	// ids[4] stays pending. Of the four taken: a worker that died long
	// ago, one that died just now (within the slack), one alive, and one
	// whose task hash is gone.
	base := "asynq:{" + queue + "}:"
	now := time.Now()
	ctx := t.Context()
	for id, at := range map[string]time.Time{
		ids[0]: now.Add(-leaseSlack - 2*time.Second),
		ids[1]: now.Add(-leaseSlack / 2),
		ids[2]: now.Add(30 * time.Second),
		ids[3]: now.Add(-time.Minute),
	} {
		if err := rdb.ZAdd(ctx, base+"lease", redis.Z{Score: float64(at.Unix()), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Del(ctx, base+"t:"+ids[3]).Err(); err != nil {
		t.Fatal(err)
	}

	w, err := New(Config{Queues: map[string]int{priority: 1}, Concurrency: 1}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := w.recoverLeaseExpired(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("recoverLeaseExpired = %d, %v; want 1 task taken back", n, err)
	}
	if state := rdb.HGet(ctx, base+"t:"+ids[0], "state").Val(); state != "pending" {
		t.Errorf("task taken back is %q, want pending", state)
	}
	active := rdb.LRange(ctx, base+"active", 0, -1).Val()
	slices.Sort(active)
	if !slices.Equal(active, []string{ids[1], ids[2]}) {
		t.Errorf("active %q, want the tasks whose lease has not ended long enough ago: %q", active, ids[1:3])
	}
	leased := rdb.ZRange(ctx, base+"lease", 0, -1).Val()
	slices.Sort(leased)
	if !slices.Equal(leased, []string{ids[1], ids[2]}) {
		t.Errorf("leased %q, want %q", leased, ids[1:3])
	}
	if got := rdb.LRange(ctx, base+"pending", 0, -1).Val(); !slices.Equal(got, []string{ids[4], ids[0]}) {
		t.Errorf("pending %q, want the task taken back at the head (the right): %q", got, []string{ids[4], ids[0]})
	}
	if got := askDequeue(t, c, queue); got != ids[0] {
		t.Errorf("next task taken %q, want the one taken back, %q", got, ids[0])
	}

	// Later, the one within the slack is due too; a second pass over the
	// same state takes back nothing more and fails on nothing.
	for _, want := range []int{1, 0} {
		n, err = w.recoverLeaseExpired(ctx, now.Add(leaseSlack))
		if err != nil || n != want {
			t.Fatalf("recoverLeaseExpired later = %d, %v; want %d", n, err, want)
		}
	}
	if p, a, l := queueCounts(t, rdb, queue); p != 2 || a != 2 || l != 2 {
		t.Errorf("pending %d, active %d, leased %d; want 2, 2 (the task taken again and the live one), 2", p, a, l)
	}
}

// TestTakeClientAnswersLeaseListing: asynq's recoverers' listing of
// lease-expired tasks is answered with none, without going to Redis; a
// listing by another script (another asynq version) goes to Redis.
func TestTakeClientAnswersLeaseListing(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	queue := redistest.Queue(t, "default")
	enqueueTasks(t, rdb, queue, 1)
	c := newTakeClient(rdb, testSpace(t), func() int { return 1 }, nil)
	id := askDequeue(t, c, queue)
	base := "asynq:{" + queue + "}:"
	if err := rdb.ZAdd(t.Context(), base+"lease", redis.Z{Score: 1, Member: id}).Err(); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-30 * time.Second).Unix()
	res, err := c.EvalSha(context.Background(), keyspace.AsynqListLeaseExpiredSHA, []string{base + "lease"}, cutoff, base+"t:").Slice()
	if err != nil || len(res) != 0 {
		t.Fatalf("asynq's listing answered %v, %v; want none", res, err)
	}
	if n := c.leaseLists.Load(); n != 1 {
		t.Errorf("%d listings counted, want 1", n)
	}
	other := redis.NewScript(`return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])`)
	got, err := other.Run(t.Context(), c, []string{base + "lease"}, cutoff, base+"t:").StringSlice()
	if err != nil || !slices.Equal(got, []string{id}) {
		t.Errorf("another listing script answered %q, %v; want it run by Redis: [%s]", got, err, id)
	}
}

// TestRecoverEveryQueue: the recoverer looks at every queue of the
// worker, whichever order it comes to them in: a queue with nothing to
// take back does not end the sweep. (It did: the tasks of a worker that
// died on one queue of several came back only on the sweeps that looked
// at that queue first, well after the documented 40s.)
func TestRecoverEveryQueue(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	store := spaceOnly{ks: testSpace(t)}
	queues := map[string]int{}
	for i := range 20 {
		queues[redistest.Queue(t, fmt.Sprintf("empty%d", i))] = 1
	}
	priority := redistest.Queue(t, "busy")
	queues[priority] = 1
	queue := store.ks.Queue(0, priority)
	ids := enqueueTasks(t, rdb, queue, 1)
	c := newTakeClient(rdb, testSpace(t), func() int { return 1 }, nil)
	if got := askDequeue(t, c, queue); got != ids[0] {
		t.Fatalf("dequeued %q, want %q", got, ids[0])
	}
	ctx := t.Context()
	now := time.Now()
	if err := rdb.ZAdd(ctx, "asynq:{"+queue+"}:lease", redis.Z{Score: float64(now.Add(-time.Minute).Unix()), Member: ids[0]}).Err(); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Queues: queues, Concurrency: 1}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.recoverLeaseExpired(ctx, now); err != nil || n != 1 {
		t.Fatalf("recoverLeaseExpired over %d queues = %d, %v; want the 1 task taken back", len(queues), n, err)
	}
}
