package status

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// testSwitches is a Switches whose signals the test sends.
type testSwitches chan struct{}

func (s testSwitches) Switched() <-chan struct{} { return s }

var _ Switches = testSwitches(nil)

// promptly bounds how long a hub told of a switch may take to carry the new
// master's events: far less than the HealthInterval of the tests that use
// it, so that only the signal can have moved the hub.
const promptly = 3 * time.Second

// switchBundle is a hub on a client whose connections go to whichever of
// two real Redis servers, old and new, the test says is the master, as a
// failover client's do.
type switchBundle struct {
	old, new *redistest.Server
	// oldStore and newStore write the same key prefix straight to each
	// server.
	oldStore, newStore *Store
	client             *redis.Client // the hub's
	master             atomic.Pointer[string]
	hub                *Hub
	log                testutil.SyncBuffer // the hub's
}

// setupSwitch starts the two servers and a hub whose client dials old.
func setupSwitch(t *testing.T, health time.Duration, sw Switches) *switchBundle {
	t.Helper()
	b := &switchBundle{old: redistest.Start(t), new: redistest.Start(t)}
	addr := b.old.Addr()
	b.master.Store(&addr)
	b.client = redis.NewClient(&redis.Options{
		Addr: "master", Protocol: 2,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *b.master.Load())
		},
	})
	t.Cleanup(func() { _ = b.client.Close() })
	cfg := Config{Prefix: redistest.Prefix(t)}
	var err error
	if b.oldStore, err = New(cfg, b.old.Client(t)); err != nil {
		t.Fatal(err)
	}
	if b.newStore, err = New(cfg, b.new.Client(t)); err != nil {
		t.Fatal(err)
	}
	hubStore, err := New(cfg, b.client)
	if err != nil {
		t.Fatal(err)
	}
	b.hub = NewHub(b.client, hubStore, slog.New(slog.NewTextHandler(&b.log, nil)))
	b.hub.HealthInterval = health
	b.hub.Switches = sw
	if err := b.hub.Start(testContext(t)); err != nil {
		t.Fatalf("Hub.Start: %v", err)
	}
	t.Cleanup(func() { stopHub(t, b.hub) })
	return b
}

// switchOver makes new the master for the hub's client: its next dials go
// there, and its command connections to old are closed, as go-redis'
// failover client closes them on a switch. Its pub/sub connection stays on
// old, as the failover client's does.
func (b *switchBundle) switchOver(t *testing.T) {
	t.Helper()
	addr := b.new.Addr()
	b.master.Store(&addr)
	// The hub's client is the only one on old with command connections
	// that matter; the test's own client to old reconnects when it needs to.
	if err := b.old.Client(t).Do(testContext(t), "CLIENT", "KILL", "TYPE", "normal").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE normal: %v", err)
	}
}

// create stores a new queued job of tenant through st.
func create(t *testing.T, st *Store, tenant string) *jobs.Job {
	t.Helper()
	j := newJob(tenant)
	if err := st.Create(testContext(t), j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return j
}

// numSubOn returns how many subscriptions srv holds on the shard channel
// ch.
func numSubOn(t *testing.T, srv *redistest.Server, ch string) int64 {
	t.Helper()
	return shardSubs(t, srv.Client(t), ch)
}

// probeSubsOn returns how many subscriptions srv holds on the hub's probe
// channel.
func (b *switchBundle) probeSubsOn(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	m, err := srv.Client(t).PubSubNumSub(testContext(t), b.hub.probe).Result()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB: %v", err)
	}
	return m[b.hub.probe]
}

// nextWithin returns the next event of sub, failing t if none comes within d.
func nextWithin(t *testing.T, sub *Subscription, d time.Duration) jobs.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed while waiting for an event")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %s", d)
	}
	return jobs.Event{}
}

// catchUp does what a subscriber told to resync does: it reads the
// tenant's events from the store (the master's) and reports whether job
// id's are there.
func catchUp(t *testing.T, st *Store, tenant, id string) bool {
	t.Helper()
	evs, err := st.TenantEvents(testContext(t), tenant, "", 100)
	if err != nil {
		t.Fatalf("TenantEvents: %v", err)
	}
	for _, ev := range evs {
		if ev.JobID == id {
			return true
		}
	}
	return false
}

// checkMoved checks that, within the given time, the hub's subscribers hear
// what is published on the new master, and that the old one holds no
// subscription of the hub.
func (b *switchBundle) checkMoved(t *testing.T, sub *Subscription, within time.Duration) {
	t.Helper()
	start := time.Now()
	// Ready once the new subscription is confirmed, with every channel.
	testutil.WaitFor(t, within, "the hub to be ready on the new master", b.hub.Ready)
	after := create(t, b.newStore, "acme")
	if ev := nextWithin(t, sub, within-time.Since(start)); ev.JobID != after.ID {
		t.Fatalf("after the switch got job %s, want %s", ev.JobID, after.ID)
	}
	ch := b.newStore.EventChannel(0)
	if n := numSubOn(t, b.new, ch); n != 1 {
		t.Errorf("the new master has %d subscriptions to the event channel, want 1", n)
	}
	testutil.WaitFor(t, waitTimeout, "the old master to lose the hub's subscription", func() bool {
		return numSubOn(t, b.old, ch) == 0 && b.probeSubsOn(t, b.old) == 0
	})
}

// TestHubFollowsSwitchSignal: told of a master switch, the hub moves its
// subscription to the new master at once (well within its HealthInterval),
// tells its subscribers to catch up on what was published there before it
// moved, and they then hear the new master's events, without subscribing
// again.
func TestHubFollowsSwitchSignal(t *testing.T) {
	t.Parallel()
	sw := make(testSwitches, 1)
	b := setupSwitch(t, time.Minute, sw)
	sub := b.hub.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)
	before := create(t, b.oldStore, "acme")
	if ev := next(t, sub); ev.JobID != before.ID {
		t.Fatalf("before the switch got job %s, want %s", ev.JobID, before.ID)
	}

	b.switchOver(t)
	// Published on the new master before the hub has moved: it does not
	// hear it, and must tell the subscriber to catch up.
	missed := create(t, b.newStore, "acme")
	switched := time.Now()
	sw <- struct{}{}
	select {
	case <-sub.Resync:
	case <-time.After(promptly):
		t.Fatalf("no resync signal within %s of the switch", promptly)
	}
	if !catchUp(t, b.newStore, "acme", missed.ID) {
		t.Fatalf("the event missed before the move is not in the store")
	}
	b.checkMoved(t, sub, promptly-time.Since(switched))
	t.Logf("the hub carried the new master's events %v after the switch signal", time.Since(switched).Round(time.Millisecond))
	// Moved by the signal, not by its periodic check.
	if log := b.log.String(); strings.Count(log, "moves to the Redis master") != 1 || !strings.Contains(log, `reason="the Redis master switched"`) {
		t.Errorf("the hub's log does not say it moved once, on the signal:\n%s", log)
	}
	if !b.hub.Ready() {
		t.Error("Ready() = false after the move")
	}
}

// TestHubNoticesDemotedNode: without any signal, the hub's periodic check
// finds that its subscription is not on the node its client writes to and
// moves it there, telling subscribers to catch up.
func TestHubNoticesDemotedNode(t *testing.T) {
	t.Parallel()
	b := setupSwitch(t, 200*time.Millisecond, nil)
	sub := b.hub.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)

	b.switchOver(t)
	missed := create(t, b.newStore, "acme")
	awaitResync(t, sub)
	if !catchUp(t, b.newStore, "acme", missed.ID) {
		t.Fatalf("the event missed before the move is not in the store")
	}
	testutil.WaitFor(t, waitTimeout, "the hub to be ready again", b.hub.Ready)
	b.checkMoved(t, sub, waitTimeout)
}

// TestHubStaysWhileOnMaster: the periodic check does not move a
// subscription that is on the master, however often it runs.
func TestHubStaysWhileOnMaster(t *testing.T) {
	t.Parallel()
	// The interval also bounds the check's own round trip: 200ms, that a
	// loaded machine still meets.
	b := setupSwitch(t, 200*time.Millisecond, nil)
	sub := b.hub.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)
	ids := b.old.Client(t)
	first, err := ids.Do(testContext(t), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	// Enough for a dozen checks: a job created after them is heard, and
	// the subscription is the same connection, never told to resync.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		j := create(t, b.oldStore, "acme")
		if ev := next(t, sub); ev.JobID != j.ID {
			t.Fatalf("got job %s, want %s", ev.JobID, j.ID)
		}
	}
	select {
	case <-sub.Resync:
		t.Fatal("told to resync while the subscription stayed on the master")
	default:
	}
	last, err := ids.Do(testContext(t), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	if clientID(first) != clientID(last) || clientID(last) == "" {
		t.Errorf("the hub's pub/sub connection changed:\n%s\n%s", first, last)
	}
}

// clientID is the id= field of a one-line CLIENT LIST answer.
func clientID(list string) string {
	for _, f := range strings.Fields(list) {
		if id, ok := strings.CutPrefix(f, "id="); ok {
			return id
		}
	}
	return ""
}

// TestHubNotReadyWhileMoving: from a switch signal until the subscription
// on the new master is confirmed, the hub is not ready; here the new
// master is down for a while, and the hub is ready again once it is up.
func TestHubNotReadyWhileMoving(t *testing.T) {
	t.Parallel()
	sw := make(testSwitches, 1)
	b := setupSwitch(t, time.Minute, sw)
	sub := b.hub.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)

	b.new.Stop()
	b.switchOver(t)
	sw <- struct{}{}
	testutil.WaitFor(t, waitTimeout, "the hub to be not ready", func() bool { return !b.hub.Ready() })
	awaitResync(t, sub)
	// While the new master cannot be reached, the hub stays not ready.
	for range 3 {
		if b.hub.Ready() {
			t.Fatal("Ready() = true while the new master is down")
		}
		if n := numSubOn(t, b.old, b.oldStore.EventChannel(0)); n != 0 {
			t.Fatalf("the old master still holds %d subscriptions of the hub", n)
		}
	}

	b.new.Restart(t)
	testutil.WaitFor(t, waitTimeout, "the hub to be ready again", b.hub.Ready)
	awaitResync(t, sub)
	b.checkMoved(t, sub, waitTimeout)
}
