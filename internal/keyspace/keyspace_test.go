package keyspace

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestSlot: the slots Redis Cluster's specification gives as examples.
func TestSlot(t *testing.T) {
	for key, want := range map[string]uint16{
		"foo":                   12182,
		"123456789":             12739, // CRC16/XMODEM check value 0x31C3
		"{user1000}.following":  3443,
		"{user1000}.followers":  3443,
		"foo{}{bar}":            8363, // an empty tag: the whole key
		"foo{{bar}}zap":         4015, // the tag is "{bar"
		"asynq:{s0}default}:t:": 11097,
		"asyncgw:{s0}:j:x":      11097,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// TestShardTags: shard i's tag lies in the i-th of n equal slot ranges, so
// shards spread evenly over masters that own equal ranges; and the tags
// never change, since keys in Redis carry them (a change would orphan
// every job of a live deployment).
func TestShardTags(t *testing.T) {
	golden := map[int][]string{
		1:  {"s0"},
		3:  {"s0.4", "s1.1", "s2.1"},
		16: {"s0.10", "s1.13", "s2", "s3.20", "s4.4", "s5.3", "s6.40", "s7.43", "s8.23", "s9.20", "s10.22", "s11.21", "s12.2", "s13.1", "s14.41", "s15.42"},
	}
	for _, n := range []int{1, 2, 3, 5, 16, 64, 1024} {
		ks, err := New("asyncgw", n)
		if err != nil {
			t.Fatal(err)
		}
		var tags []string
		for i := range n {
			tag := ks.Tag(i)
			if lo, hi := i*Slots/n, (i+1)*Slots/n; int(Slot(tag)) < lo || int(Slot(tag)) >= hi {
				t.Errorf("%d shards: shard %d's tag %q is in slot %d, outside [%d, %d)", n, i, tag, Slot(tag), lo, hi)
			}
			tags = append(tags, tag)
		}
		if want, ok := golden[n]; ok && !slices.Equal(tags, want) {
			t.Errorf("%d shards: tags %q, want %q: a deployment's keys would be lost", n, tags, want)
		}
	}
}

// TestShardsOverMasters: with 16 shards over 3 masters owning equal slot
// ranges (as redis-cli --cluster create splits them), each master holds
// its share of shards within ±15%.
func TestShardsOverMasters(t *testing.T) {
	ks, _ := New("asyncgw", 16)
	per := make([]int, 3)
	for i := range 16 {
		per[int(Slot(ks.Tag(i)))*3/Slots]++
	}
	for m, n := range per {
		if share := float64(n) / (16.0 / 3); share < 0.85 || share > 1.15 {
			t.Errorf("master %d holds %d of 16 shards (%.0f%% of its share)", m, n, share*100)
		}
	}
}

// TestPlaceID: an ID placed on a shard is on it, keeps its shape and all
// but its first two characters; a random ID's shard is spread evenly.
func TestPlaceID(t *testing.T) {
	idShape := regexp.MustCompile(`^[a-z2-7]{26}$`)
	for _, n := range []int{1, 3, 16, 1000, 1024} {
		ks, _ := New("asyncgw", n)
		for shard := range min(n, 40) {
			for range 50 {
				id := randomID()
				placed := ks.PlaceID(id, shard)
				if got := ks.ShardOf(placed); got != shard {
					t.Fatalf("%d shards: PlaceID(%s, %d) = %s, on shard %d", n, id, shard, placed, got)
				}
				if !idShape.MatchString(placed) || placed[2:] != id[2:] {
					t.Fatalf("PlaceID(%s) = %s: want the shape and tail kept", id, placed)
				}
			}
		}
	}
	ks, _ := New("asyncgw", 4)
	counts := make([]int, 4)
	for range 4000 {
		counts[ks.ShardOf(randomID())]++
	}
	for s, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("random IDs: %d of 4000 on shard %d, want about 1000", c, s)
		}
	}
}

// TestShardFor: a tenant's key always lands on one shard; keys spread.
func TestShardFor(t *testing.T) {
	ks, _ := New("asyncgw", 8)
	seen := map[int]bool{}
	for i := range 200 {
		key := "order-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		s := ks.ShardFor("acme", key)
		if ks.ShardFor("acme", key) != s {
			t.Fatalf("ShardFor(%q) is not stable", key)
		}
		seen[s] = true
	}
	if len(seen) != 8 {
		t.Errorf("200 keys reached %d of 8 shards", len(seen))
	}
}

// TestQueueNames: a queue's asynq name carries its shard's tag, so its
// keys share the shard's slot, and reads back as shard and priority.
func TestQueueNames(t *testing.T) {
	ks, _ := New("p", 16)
	for shard := range 16 {
		q := ks.Queue(shard, "critical")
		keys := AsynqQueue(q)
		for _, k := range []string{keys.Pending, keys.Active, keys.Lease, keys.Scheduled, keys.Paused, keys.TaskPrefix + "x"} {
			if Slot(k) != Slot(ks.shardPrefix(shard)) {
				t.Errorf("%s is in slot %d, not the shard's %d", k, Slot(k), Slot(ks.shardPrefix(shard)))
			}
		}
		if s, p, ok := ks.ParseQueue(q); !ok || s != shard || p != "critical" {
			t.Errorf("ParseQueue(%q) = %d, %q, %v", q, s, p, ok)
		}
	}
	for _, q := range []string{"default", "}default", "s99}default", "s2}"} {
		if _, _, ok := ks.ParseQueue(q); ok {
			t.Errorf("ParseQueue(%q) ok, want not one of the layout's queues", q)
		}
	}
}

// TestJobKeysShareASlot: every key of one job, its tenant's keys on its
// shard and its asynq task's keys are in one slot.
func TestJobKeysShareASlot(t *testing.T) {
	ks, _ := New("asyncgw", 16)
	for range 100 {
		id := randomID()
		shard := ks.ShardOf(id)
		rec := ks.Record(id)
		q := AsynqQueue(ks.JobQueue(id, "default"))
		keys := []string{rec, EventList(rec), Deliveries(rec), ks.Stream(shard, "acme"), ks.Outbox(shard, "acme"),
			ks.DeadLetters(shard, "acme", "default"), ks.ReplicaAck(shard), q.Pending, q.TaskPrefix + id,
			NewTaskDone(ks.JobQueue(id, "default"), id, fixedNow).Processed}
		for _, k := range keys {
			if Slot(k) != Slot(rec) {
				t.Fatalf("job %s: %s in slot %d, its record in %d", id, k, Slot(k), Slot(rec))
			}
		}
	}
	key := "order-1"
	id := ks.PlaceID(randomID(), ks.ShardFor("acme", key))
	if Slot(ks.Idempotency("acme", key)) != Slot(ks.Record(id)) {
		t.Error("an Idempotency-Key is not in the slot of the job placed by it")
	}
}

// TestNew refuses what cannot be a layout.
func TestNew(t *testing.T) {
	for _, c := range []struct {
		prefix string
		shards int
	}{{"", 1}, {"a{b", 1}, {"a b", 1}, {"asyncgw", 0}, {"asyncgw", 1025}} {
		if _, err := New(c.prefix, c.shards); err == nil {
			t.Errorf("New(%q, %d) accepted", c.prefix, c.shards)
		}
	}
}

// TestAsynqVersionMatchesGoMod fails when go.mod moves asynq away from the
// version asynq.go describes: read asynq's keys and scripts again (and
// the SHA-1s the worker serves), then move AsynqVersion. (That a binary
// linking asynq finds it is jobs' TestAsynqLinked.)
func TestAsynqVersionMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/hibiken/asynq (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no github.com/hibiken/asynq")
	}
	if got := string(m[1]); got != AsynqVersion {
		t.Fatalf("go.mod requires asynq %s; internal/keyspace/asynq.go describes %s", got, AsynqVersion)
	}
}

// TestParseAsynqKey reads back the keys AsynqQueue names.
func TestParseAsynqKey(t *testing.T) {
	ks, _ := New("p", 16)
	for _, q := range []string{ks.Queue(3, "critical"), "plain"} {
		k := AsynqQueue(q)
		for kind, key := range map[string]string{"pending": k.Pending, "active": k.Active, "lease": k.Lease, "paused": k.Paused, "t:abc": k.TaskPrefix + "abc"} {
			if gq, gk, ok := ParseAsynqKey(key); !ok || gq != q || gk != kind {
				t.Errorf("ParseAsynqKey(%q) = %q, %q, %v; want %q, %q", key, gq, gk, ok, q, kind)
			}
		}
	}
	for _, key := range []string{"asynq:queues", "p:{s0}:j:x", "asynq:{x", "asynq:{a}:b}"} {
		if _, _, ok := ParseAsynqKey(key); ok {
			t.Errorf("ParseAsynqKey(%q) ok", key)
		}
	}
}
