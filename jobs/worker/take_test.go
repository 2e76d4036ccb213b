package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// askDequeue asks c for a task of queue as asynq v0.26's dequeue does,
// and returns the task ID of the message it gets ("" for none).
func askDequeue(t *testing.T, c *takeClient, queue string) string {
	t.Helper()
	base := "asynq:{" + queue + "}:"
	keys := []string{base + "pending", base + "paused", base + "active", base + "lease"}
	res, err := c.EvalSha(t.Context(), keyspace.AsynqDequeueSHA, keys, time.Now().Add(30*time.Second).Unix(), base+"t:").Text()
	if err == redis.Nil {
		return ""
	}
	if err != nil {
		t.Fatalf("dequeue: %v", err)
	}
	b := []byte(res)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num == 3 /* TaskMessage.id */ && typ == protowire.BytesType {
			id, _ := protowire.ConsumeString(b)
			return id
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			break
		}
		b = b[n:]
	}
	t.Fatalf("dequeue returned a message without an ID: %q", res)
	return ""
}

// queueCounts reads a queue's pending and active task counts, and its
// lease set's size, as asynq keeps them.
func queueCounts(t *testing.T, rdb redis.UniversalClient, queue string) (pending, active, leased int64) {
	t.Helper()
	base := "asynq:{" + queue + "}:"
	ctx := t.Context()
	return rdb.LLen(ctx, base+"pending").Val(), rdb.LLen(ctx, base+"active").Val(), rdb.ZCard(ctx, base+"lease").Val()
}

// enqueueTasks puts n tasks on queue with asynq's client, with IDs
// task-00, task-01, … in the order they will be taken.
func enqueueTasks(t *testing.T, rdb redis.UniversalClient, queue string, n int) []string {
	t.Helper()
	ac := asynq.NewClientFromRedisClient(rdb)
	ids := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("task-%02d", i)
		if _, err := ac.EnqueueContext(t.Context(), asynq.NewTask("t", nil), asynq.Queue(queue), asynq.TaskID(id)); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestTakeClientBatches: one ask takes as many tasks as the worker has
// room for, up to takeBatch, marked and leased as asynq's dequeue marks
// them; the next asks are served from those, in queue order; put back,
// they return to the front of the queue in their order; a paused queue
// gives nothing.
func TestTakeClientBatches(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	queue := redistest.Queue(t, "take")
	ids := enqueueTasks(t, rdb, queue, 20)
	room := 5
	c := newTakeClient(rdb, testSpace(t), func() int { return room }, nil)

	// Room for 5: one round trip takes 5, the first is handed over.
	if got := askDequeue(t, c, queue); got != ids[0] {
		t.Fatalf("first ask got %q, want %q", got, ids[0])
	}
	if p, a, l := queueCounts(t, rdb, queue); p != 15 || a != 5 || l != 5 {
		t.Fatalf("after one ask: pending %d, active %d, leased %d; want 15, 5, 5", p, a, l)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for _, id := range ids[:5] {
		info, err := insp.GetTaskInfo(queue, id)
		if err != nil || info.State != asynq.TaskStateActive {
			t.Fatalf("task %s: %v, %v; want active", id, info, err)
		}
	}
	if got := askDequeue(t, c, queue); got != ids[1] {
		t.Fatalf("second ask got %q, want %q (held)", got, ids[1])
	}
	if c.trips.Load() != 1 || c.asks.Load() != 2 {
		t.Fatalf("asks %d, round trips %d; want 2, 1", c.asks.Load(), c.trips.Load())
	}

	// Put back, the three held go to the front of the queue in order.
	c.putBack(t.Context(), 0, false)
	if p, a, l := queueCounts(t, rdb, queue); p != 18 || a != 2 || l != 2 {
		t.Fatalf("after put back: pending %d, active %d, leased %d; want 18, 2, 2", p, a, l)
	}
	for _, id := range ids[2:5] {
		info, err := insp.GetTaskInfo(queue, id)
		if err != nil || info.State != asynq.TaskStatePending {
			t.Fatalf("task %s put back: %v, %v; want pending", id, info, err)
		}
	}
	room = 1
	for _, want := range ids[2:5] {
		if got := askDequeue(t, c, queue); got != want {
			t.Fatalf("after put back got %q, want %q", got, want)
		}
	}

	// Paused: nothing is taken.
	if err := insp.PauseQueue(queue); err != nil {
		t.Fatalf("pause: %v", err)
	}
	room = 8
	if got := askDequeue(t, c, queue); got != "" {
		t.Fatalf("paused queue gave %q", got)
	}
	if p, a, _ := queueCounts(t, rdb, queue); p != 15 || a != 5 {
		t.Fatalf("paused: pending %d, active %d; want 15, 5", p, a)
	}
}

// TestTakeClientRecords: a take reads, with each task, the job record of
// the same ID, and keeps it for the task's run from when the task is
// handed over, once; a task whose record is gone has none; a record whose
// run never asked for it is forgotten.
func TestTakeClientRecords(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	queue := redistest.Queue(t, "take")
	ids := enqueueTasks(t, rdb, queue, 4)
	base := "asynq:{" + queue + "}:"
	ctx := t.Context()
	recs := map[string]taskRecord{}
	ks := testSpace(t)
	for i, id := range ids[:2] {
		rec := taskRecord{tenant: "acme", doc: `{"id":"` + id + `"}`, seq: strconv.Itoa(i + 1), req: `{"method":"POST"}`}
		if err := rdb.HSet(ctx, ks.Record(id), "t", rec.tenant, "doc", rec.doc, "seq", rec.seq, "req", rec.req).Err(); err != nil {
			t.Fatal(err)
		}
		recs[base+"t:"+id] = rec
	}
	c := newTakeClient(rdb, ks, func() int { return 8 }, nil)
	for _, id := range ids {
		if got := askDequeue(t, c, queue); got != id {
			t.Fatalf("ask got %q, want %q", got, id)
		}
		key := base + "t:" + id
		rec, ok := c.record(key)
		want, wantOK := recs[key]
		if ok != wantOK || rec != want {
			t.Errorf("task %s: record %+v, %v; want %+v, %v", id, rec, ok, want, wantOK)
		}
		if _, ok := c.record(key); ok {
			t.Errorf("task %s: record given twice", id)
		}
	}
	if c.trips.Load() != 1 {
		t.Errorf("%d round trips; want the four tasks and their records in one", c.trips.Load())
	}

	// A record whose run never asks for it is forgotten.
	if err := rdb.RPush(ctx, base+"pending", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if got := askDequeue(t, c, queue); got != ids[0] {
		t.Fatalf("ask got %q, want %q", got, ids[0])
	}
	c.forget(0)
	if _, ok := c.record(base + "t:" + ids[0]); ok {
		t.Error("record kept after forget")
	}
}

// TestTakeClientStop: once stopped, the tasks held go back and every ask
// takes one task only.
func TestTakeClientStop(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	queue := redistest.Queue(t, "take")
	enqueueTasks(t, rdb, queue, 10)
	c := newTakeClient(rdb, testSpace(t), func() int { return 8 }, nil)
	askDequeue(t, c, queue)
	c.stop(context.Background())
	if p, a, l := queueCounts(t, rdb, queue); p != 9 || a != 1 || l != 1 {
		t.Fatalf("after stop: pending %d, active %d, leased %d; want 9, 1, 1", p, a, l)
	}
	askDequeue(t, c, queue)
	if p, a, _ := queueCounts(t, rdb, queue); p != 8 || a != 2 {
		t.Fatalf("ask after stop: pending %d, active %d; want 8, 2", p, a)
	}
}

// TestTakeClientHold: a task held longer than takeHold goes back to its
// queue by itself.
func TestTakeClientHold(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	queue := redistest.Queue(t, "take")
	enqueueTasks(t, rdb, queue, 4)
	c := newTakeClient(rdb, testSpace(t), func() int { return 8 }, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go c.holdLoop(ctx)
	askDequeue(t, c, queue)
	testutil.WaitFor(t, 10*takeHold, "the held tasks to go back", func() bool {
		p, a, l := queueCounts(t, rdb, queue)
		return p == 3 && a == 1 && l == 1
	})
}

// TestTakeClientRecentAsks: past the worker's room, a queue's batch is
// as large as its asks in the last quarter of takeHold, and another
// queue's is not.
func TestTakeClientRecentAsks(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	busy, quiet := redistest.Queue(t, "busy"), redistest.Queue(t, "quiet")
	enqueueTasks(t, rdb, busy, 20)
	enqueueTasks(t, rdb, quiet, 20)
	c := newTakeClient(rdb, testSpace(t), func() int { return 1 }, nil)
	for range 6 {
		askDequeue(t, c, busy) // one task a round trip: no room, no asks yet
	}
	if got := c.trips.Load(); got != 6 {
		t.Fatalf("%d round trips for 6 asks with room for one, want 6", got)
	}
	c.putBack(t.Context(), time.Hour, true) // a new quarter: 6 asks in the last
	askDequeue(t, c, busy)
	if p, a, _ := queueCounts(t, rdb, busy); p != 8 || a != 12 {
		t.Fatalf("busy queue after its seventh ask: pending %d, active %d; want 8, 12 (6 taken at once)", p, a)
	}
	askDequeue(t, c, quiet)
	if p, a, _ := queueCounts(t, rdb, quiet); p != 19 || a != 1 {
		t.Fatalf("quiet queue after its first ask: pending %d, active %d; want 19, 1", p, a)
	}
}

// TestTakeClientUnknownDequeue: a dequeue by another script than the one
// takeClient knows (another asynq version) goes to Redis as it is, and is
// reported once.
func TestTakeClientUnknownDequeue(t *testing.T) {
	t.Parallel()
	c, logs, base := loggedTakeClient(t)
	keys := []string{base + "pending", base + "paused", base + "active", base + "lease"}
	for range 2 {
		err := c.EvalSha(t.Context(), strings.Repeat("0", 40), keys, time.Now().Unix(), base+"t:").Err()
		if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
			t.Fatalf("unknown script: %v, want Redis's NOSCRIPT", err)
		}
	}
	if c.asks.Load() != 0 || strings.Count(logs.String(), "dequeue script is not the one") != 1 {
		t.Fatalf("asks %d, log %q; want none taken and one warning", c.asks.Load(), logs.String())
	}
}

// TestTakeClientDone: asynq's done of a task retired with its job's end
// is answered without Redis, once, unless it came too late; of any other
// task it goes to Redis.
func TestTakeClientDone(t *testing.T) {
	t.Parallel()
	rdb := redistest.Shared(t).Client(t)
	queue := redistest.Queue(t, "take")
	c := newTakeClient(rdb, testSpace(t), func() int { return 8 }, nil)
	base := "asynq:{" + queue + "}:"
	keys := func(id string) []string {
		return []string{base + "active", base + "lease", base + "t:" + id, base + "processed:2026-11-22", base + "processed"}
	}
	c.retired(base + "t:a")
	if v, err := c.EvalSha(t.Context(), keyspace.AsynqDoneSHA, keys("a"), "a", 1, 2).Result(); err != nil || v != "OK" {
		t.Fatalf("done of a retired task: %v, %v; want OK", v, err)
	}
	// Redis's answer, the script unknown to it or the task not found in
	// it, shows that the call went there.
	for _, id := range []string{"a", "b"} {
		err := c.EvalSha(t.Context(), keyspace.AsynqDoneSHA, keys(id), id, 1, 2).Err()
		if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") && !strings.Contains(err.Error(), "NOT FOUND") {
			t.Fatalf("done of task %s, not retired (again): %v, want Redis's NOSCRIPT or NOT FOUND", id, err)
		}
	}
	// One whose Done did not come in time is forgotten: its Done, if it
	// comes after all, goes to Redis.
	c.retired(base + "t:c")
	c.forget(0)
	if err := c.EvalSha(t.Context(), keyspace.AsynqDoneSHA, keys("c"), "c", 1, 2).Err(); err == nil {
		t.Fatal("done of a task forgotten was answered without Redis")
	}
	if c.dones.Load() != 1 || !c.retiring() {
		t.Fatalf("%d dones answered, retiring %v; want 1, true", c.dones.Load(), c.retiring())
	}
}

// TestTakeClientUnknownDone: a done by another script than the one
// takeClient knows (another asynq version) goes to Redis as it is, is
// reported once, and makes the worker leave retiring tasks to asynq.
func TestTakeClientUnknownDone(t *testing.T) {
	t.Parallel()
	c, logs, base := loggedTakeClient(t)
	keys := []string{base + "active", base + "lease", base + "t:a", base + "processed:2026-11-22", base + "processed"}
	c.retired(base + "t:a")
	for range 2 {
		err := c.EvalSha(t.Context(), strings.Repeat("0", 40), keys, "a", 1, 2).Err()
		if err == nil || !strings.Contains(err.Error(), "NOSCRIPT") {
			t.Fatalf("unknown script: %v, want Redis's NOSCRIPT", err)
		}
	}
	if c.retiring() || c.dones.Load() != 0 || strings.Count(logs.String(), "done script is not the one") != 1 {
		t.Fatalf("retiring %v, %d dones answered, log %q; want false, none and one warning", c.retiring(), c.dones.Load(), logs.String())
	}
}

// loggedTakeClient is a takeClient on the shared server whose log is kept,
// and the key prefix of a queue of its own.
func loggedTakeClient(t *testing.T) (*takeClient, *bytes.Buffer, string) {
	t.Helper()
	logs := new(bytes.Buffer)
	c := newTakeClient(redistest.Shared(t).Client(t), testSpace(t), func() int { return 8 }, slog.New(slog.NewTextHandler(logs, nil)))
	return c, logs, "asynq:{" + redistest.Queue(t, "take") + "}:"
}

// testSpace is a one-shard layout under the test's own prefix.
func testSpace(t *testing.T) *keyspace.Space {
	t.Helper()
	ks, err := keyspace.New(redistest.Prefix(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
