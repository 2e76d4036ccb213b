package status

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// replicaBundle is a Store on a master of its own with one replica.
type replicaBundle struct {
	*testBundle
	master, replica *redistest.Server
	replicaRDB      *redis.Client
}

func setupReplicated(t *testing.T, cfg Config) *replicaBundle {
	t.Helper()
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	return &replicaBundle{
		testBundle: setupOn(t, master.Client(t), cfg),
		master:     master, replica: replica, replicaRDB: replica.Client(t),
	}
}

// onReplica reads field of the job's record on the replica, at once.
func (b *replicaBundle) onReplica(t *testing.T, j *jobs.Job, field string) string {
	t.Helper()
	v, err := b.replicaRDB.HGet(testContext(t), b.store.jobKey(j.Tenant, j.ID), field).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("read replica: %v", err)
	}
	return v
}

// TestReplicaAckAccept: with MinReplicasAck 1, what Accept and a state
// change wrote is on the replica the moment they return.
func TestReplicaAckAccept(t *testing.T) {
	t.Parallel()
	var acked atomic.Int64
	b := setupReplicated(t, Config{MinReplicasAck: 1, ReplicaAckObserver: func(outcome string, _ time.Duration) {
		if outcome == AckConfirmed {
			acked.Add(1)
		}
	}})
	ctx := testContext(t)
	for range 20 {
		j := newJob("acme")
		j.IdempotencyKey, j.IdempotencyFingerprint = jobs.NewID(), "fp"
		if err := b.store.Accept(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}, nil); err != nil {
			t.Fatalf("Accept: %v", err)
		}
		if got := b.onReplica(t, j, "state"); got != string(jobs.StateQueued) {
			t.Fatalf("replica has state %q right after Accept, want queued", got)
		}
		next, err := b.store.Advance(ctx, j, func(j *jobs.Job) error {
			j.State = jobs.StateRunning
			return nil
		})
		if err != nil {
			t.Fatalf("Advance: %v", err)
		}
		if got := b.onReplica(t, next, "state"); got != string(jobs.StateRunning) {
			t.Fatalf("replica has state %q right after Advance, want running", got)
		}
	}
	if acked.Load() != 40 {
		t.Fatalf("observer saw %d confirmed waits, want 40", acked.Load())
	}
}

// TestReplicaAckTimeout: with the replica gone, Accept and Update return
// ErrNotReplicated within about the timeout, having written on the master;
// once the replica is back, the same Idempotency-Key answers with the job.
func TestReplicaAckTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	var timeouts atomic.Int64
	b := setupReplicated(t, Config{MinReplicasAck: 1, ReplicaAckTimeout: timeout, ReplicaAckObserver: func(outcome string, _ time.Duration) {
		if outcome == AckTimeout {
			timeouts.Add(1)
		}
	}})
	ctx := testContext(t)
	confirmed := b.create(t, "acme")

	b.replica.Stop()
	j := newJob("acme")
	j.IdempotencyKey, j.IdempotencyFingerprint = "order-1", "fp"
	start := time.Now()
	err := b.store.Accept(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}, nil)
	took := time.Since(start)
	if !errors.Is(err, jobs.ErrNotReplicated) {
		t.Fatalf("Accept without a replica = %v, want ErrNotReplicated", err)
	}
	if took < timeout || took > timeout+time.Second {
		t.Errorf("Accept failed after %s, want about %s", took, timeout)
	}
	if _, err := b.store.Get(ctx, j.Tenant, j.ID); err != nil {
		t.Fatalf("the master should have the job all the same: %v", err)
	}
	next, err := b.store.Update(ctx, confirmed.Tenant, confirmed.ID, func(j *jobs.Job) error {
		j.State = jobs.StateCanceled
		return nil
	})
	if !errors.Is(err, jobs.ErrNotReplicated) || next == nil || next.State != jobs.StateCanceled || next.Version != "2" {
		t.Fatalf("Update without a replica = %+v, %v; want the written job and ErrNotReplicated", next, err)
	}
	if timeouts.Load() != 2 {
		t.Errorf("observer saw %d timeouts, want 2", timeouts.Load())
	}

	b.replica.Restart(t)
	b.replica.WaitLinkUp(t)
	again := newJob("acme")
	again.IdempotencyKey, again.IdempotencyFingerprint = "order-1", "fp"
	var taken *jobs.KeyTaken
	if err := b.store.Accept(ctx, again, &jobs.Request{URL: "http://127.0.0.1/x"}, nil); !errors.As(err, &taken) || taken.JobID != j.ID {
		t.Fatalf("Accept with the same key after the replica came back = %v, want KeyTaken of %s", err, j.ID)
	}
	if got := b.onReplica(t, j, "state"); got != string(jobs.StateQueued) {
		t.Fatalf("replica has state %q for the job its key stands for, want queued", got)
	}
}

// TestReplicaAckBatched: concurrent writes share WAITs, counted by the
// master itself.
func TestReplicaAckBatched(t *testing.T) {
	t.Parallel()
	b := setupReplicated(t, Config{MinReplicasAck: 1})
	ctx := testContext(t)
	before := b.master.CommandCalls(t, "wait") // StartReplica's own
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range each {
				j := newJob("acme")
				if err := b.store.Accept(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Accept: %v", err)
	}
	waits := b.master.CommandCalls(t, "wait") - before
	if waits != b.store.acks.sent() {
		t.Errorf("master ran %d WAITs, the store sent %d", waits, b.store.acks.sent())
	}
	if accepts := int64(writers * each); waits*2 > accepts {
		t.Fatalf("%d accepts took %d WAITs: not batched", accepts, waits)
	}
	t.Logf("%d accepts, %d WAITs", writers*each, waits)
}

// TestReplicaAckOff: with MinReplicasAck 0 no WAIT is ever sent.
func TestReplicaAckOff(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	b := setupOn(t, master.Client(t), Config{})
	if b.store.acks != nil {
		t.Fatal("a Store without MinReplicasAck has a replica waiter")
	}
	j := b.create(t, "acme")
	b.setState(t, j, jobs.StateRunning)
	if err := b.store.AwaitReplicas(testContext(t)); err != nil {
		t.Fatalf("AwaitReplicas: %v", err)
	}
	if n := master.CommandCalls(t, "wait"); n != 0 {
		t.Fatalf("master ran %d WAITs, want none", n)
	}
}

// TestReplicaAckCallerDeadline: a caller whose deadline ends before the
// replicas answer gets ErrNotReplicated then, not after the WAIT.
func TestReplicaAckCallerDeadline(t *testing.T) {
	t.Parallel()
	b := setupReplicated(t, Config{MinReplicasAck: 1, ReplicaAckTimeout: 2 * time.Second})
	b.replica.Stop()
	ctx, cancel := context.WithTimeout(testContext(t), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.store.Accept(ctx, newJob("acme"), &jobs.Request{URL: "http://127.0.0.1/x"}, nil)
	if !errors.Is(err, jobs.ErrNotReplicated) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept = %v, want ErrNotReplicated from the deadline", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Accept returned after %s, want at its deadline", took)
	}
}

func TestReplicaAckConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"negative", Config{MinReplicasAck: -1}, false},
		{"default timeout", Config{MinReplicasAck: 1}, true},
		{"timeout too long", Config{MinReplicasAck: 1, ReplicaAckTimeout: time.Minute}, false},
		{"timeout without replicas", Config{ReplicaAckTimeout: time.Minute}, true},
	} {
		s, err := New(tt.cfg, nil)
		if (err == nil) != tt.ok {
			t.Errorf("%s: New(%+v) error = %v, want ok = %v", tt.name, tt.cfg, err, tt.ok)
		}
		if err == nil && tt.cfg.MinReplicasAck > 0 && s.cfg.ReplicaAckTimeout != DefaultReplicaAckTimeout {
			t.Errorf("%s: timeout %s, want the default", tt.name, s.cfg.ReplicaAckTimeout)
		}
	}
}

// fence is a FailoverFence a test sets.
type fence struct {
	mu       sync.Mutex
	begun    uint64
	underWay bool
}

func (f *fence) Failover() (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.begun, f.underWay
}

func (f *fence) set(begun uint64, underWay bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun, f.underWay = begun, underWay
}

// TestReplicaAckFailoverFence: while a failover is under way, and for a
// round of WAIT that one began during, the replicas' confirmation counts
// for nothing: the write answers as not replicated (it stands on the
// master), and once the failover is over writes are confirmed again.
func TestReplicaAckFailoverFence(t *testing.T) {
	t.Parallel()
	f := &fence{}
	var timeouts atomic.Int64
	b := setupReplicated(t, Config{MinReplicasAck: 1, Failovers: f, ReplicaAckObserver: func(outcome string, _ time.Duration) {
		if outcome == AckTimeout {
			timeouts.Add(1)
		}
	}})
	ctx := testContext(t)
	accept := func() error {
		return b.store.Accept(ctx, newJob("acme"), &jobs.Request{URL: "http://127.0.0.1/x"}, nil)
	}
	if err := accept(); err != nil {
		t.Fatalf("before a failover: %v", err)
	}
	f.set(1, true)
	if err := accept(); !errors.Is(err, jobs.ErrNotReplicated) {
		t.Errorf("during a failover: %v, want ErrNotReplicated", err)
	}
	// A failover that began and ended while a round was out: the count
	// moved on.
	b.store.acks.cfg.fence = fenceFunc(func() (uint64, bool) {
		n, _ := f.Failover()
		f.set(n+1, false) // each look sees one more failover begun
		return n, false
	})
	if err := accept(); !errors.Is(err, jobs.ErrNotReplicated) {
		t.Errorf("across a failover: %v, want ErrNotReplicated", err)
	}
	b.store.acks.cfg.fence = f
	f.set(2, false)
	if err := accept(); err != nil {
		t.Errorf("after the failover: %v", err)
	}
	if timeouts.Load() != 2 {
		t.Errorf("%d waits counted as not confirmed, want 2", timeouts.Load())
	}
}

type fenceFunc func() (uint64, bool)

func (f fenceFunc) Failover() (uint64, bool) { return f() }
