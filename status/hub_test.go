package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// startHub starts a Hub on b's store, stopped when t ends.
func (b *testBundle) startHub(t *testing.T) *Hub {
	t.Helper()
	h := NewHub(b.rdb, b.store, nil)
	if err := h.Start(testContext(t)); err != nil {
		t.Fatalf("Hub.Start: %v", err)
	}
	t.Cleanup(func() { stopHub(t, h) })
	if !h.Ready() {
		t.Fatal("Ready() = false right after Start")
	}
	return h
}

// stopHub stops h, failing t if Stop fails or does not return in time: a
// delivery that blocked would hold the hub's lock, and the test must fail
// rather than hang.
func stopHub(t *testing.T, h *Hub) {
	t.Helper()
	testutil.Within(t, waitTimeout, "Hub.Stop", func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("Hub.Stop: %v", err)
		}
	})
}

// closeLater closes sub when t ends.
func closeLater(t *testing.T, sub *Subscription) {
	t.Helper()
	t.Cleanup(func() { testutil.Within(t, waitTimeout, "Subscription.Close", sub.Close) })
}

// numSub returns how many subscriptions the server holds on the event
// channel of b's first shard.
func (b *testBundle) numSub(t *testing.T) int64 {
	t.Helper()
	return b.numSubOf(t, b.store.EventChannel(0))
}

// numSubOf returns how many subscriptions the server holds on the shard
// channel ch.
func (b *testBundle) numSubOf(t *testing.T, ch string) int64 {
	t.Helper()
	return shardSubs(t, b.rdb, ch)
}

// shardSubs returns how many subscriptions rdb's node holds on the shard
// channel ch.
func shardSubs(t *testing.T, rdb redis.UniversalClient, ch string) int64 {
	t.Helper()
	m, err := rdb.PubSubShardNumSub(testContext(t), ch).Result()
	if err != nil {
		t.Fatalf("PUBSUB SHARDNUMSUB: %v", err)
	}
	return m[ch]
}

// waitLive waits until the subscriptions are live, failing t if they do
// not go live in time.
func waitLive(t *testing.T, subs ...*Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testContext(t), waitTimeout)
	defer cancel()
	for _, sub := range subs {
		if err := sub.Wait(ctx); err != nil {
			t.Fatalf("Subscription.Wait: %v", err)
		}
	}
}

// next returns the next event of sub, failing t if none comes in time or
// the subscription is closed.
func next(t *testing.T, sub *Subscription) jobs.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed while waiting for an event")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %s", waitTimeout)
	}
	return jobs.Event{}
}

// noEvent fails t if sub has an event queued.
func noEvent(t *testing.T, sub *Subscription) {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		if ok {
			t.Fatalf("unexpected event: job %s seq %d %s", ev.JobID, ev.Seq, ev.Kind)
		}
		t.Fatal("subscription closed unexpectedly")
	default:
	}
}

// awaitResync fails t unless sub is told to resync in time.
func awaitResync(t *testing.T, sub *Subscription) {
	t.Helper()
	select {
	case <-sub.Resync:
	case <-time.After(waitTimeout):
		t.Fatalf("no resync signal within %s", waitTimeout)
	}
}

// awaitClosed fails t unless sub.C is closed (after any queued events).
func awaitClosed(t *testing.T, sub *Subscription) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-sub.C:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("subscription not closed within %s", waitTimeout)
		}
	}
}

func TestHubJobSubscriberInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := b.startHub(t)

	j := newJob("acme")
	sub := h.SubscribeJob("acme", j.ID)
	closeLater(t, sub)
	waitLive(t, sub)
	other := b.create(t, "acme") // another job of the tenant: not for sub
	if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	states := []jobs.State{jobs.StateRunning, jobs.StateRetrying, jobs.StateRunning, jobs.StateSucceeded}
	for _, s := range states {
		b.setState(t, other, jobs.StateRunning)
		b.setState(t, j, s)
	}

	want := append([]jobs.State{jobs.StateQueued}, states...)
	var got []jobs.Event
	for i, s := range want {
		ev := next(t, sub)
		got = append(got, ev)
		if ev.Seq != int64(i+1) || ev.Kind != string(s) || ev.JobID != j.ID || ev.Tenant != "acme" {
			t.Fatalf("event %d = job %s seq %d kind %q tenant %q; want job %s seq %d kind %q",
				i, ev.JobID, ev.Seq, ev.Kind, ev.Tenant, j.ID, i+1, s)
		}
		var doc jobs.Job
		if err := json.Unmarshal(ev.Data, &doc); err != nil || doc.ID != j.ID || doc.State != s {
			t.Errorf("event %d data %s does not hold state %s (%v)", i, ev.Data, s, err)
		}
		if ev.Terminal() != s.Terminal() {
			t.Errorf("event %d Terminal() = %v", i, ev.Terminal())
		}
	}
	// What was published is what was stored, stream IDs included.
	stored, err := b.store.TenantEvents(testContext(t), "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var mine []jobs.Event
	for _, ev := range stored {
		if ev.JobID == j.ID {
			ev.Cursor = "" // a stored event's own; a live one has none
			mine = append(mine, ev)
		}
	}
	if !reflect.DeepEqual(got, mine) {
		t.Errorf("published events\n%+v\ndiffer from the stored ones\n%+v", got, mine)
	}
	noEvent(t, sub)
	// The hub counts an event once it is in the subscriber's buffer, which
	// may be after the subscriber has taken it.
	testutil.WaitFor(t, waitTimeout, fmt.Sprintf("Delivered() to count the %d events", len(want)), func() bool {
		return h.Delivered() >= int64(len(want))
	})
}

func TestHubTenantSubscriber(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := b.startHub(t)
	sub := h.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)

	a1 := b.create(t, "acme")
	b.create(t, "other")
	a2 := b.create(t, "acme")
	b.setState(t, a1, jobs.StateRunning)

	for i, w := range []struct {
		job string
		seq int64
	}{{a1.ID, 1}, {a2.ID, 1}, {a1.ID, 2}} {
		ev := next(t, sub)
		if ev.Tenant != "acme" || ev.JobID != w.job || ev.Seq != w.seq {
			t.Fatalf("event %d = tenant %s job %s seq %d; want acme job %s seq %d", i, ev.Tenant, ev.JobID, ev.Seq, w.job, w.seq)
		}
	}
	// The other tenant's event was published before the last one received,
	// so it would have arrived by now.
	noEvent(t, sub)
}

func TestHubSlowSubscriber(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := b.startHub(t)

	slow := h.SubscribeTenant("acme") // never read until the end
	closeLater(t, slow)
	a := newJob("acme")
	fast := h.SubscribeJob("acme", a.ID)
	closeLater(t, fast)
	waitLive(t, slow, fast)

	// Twice the buffer's worth of events for one job. The fast subscriber
	// reads as they come; the slow one falls behind.
	const n = 2 * tenantBuffer
	done := make(chan struct{})
	read := make(chan int, n) // how far the fast subscriber has got
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		ctx := testContext(t)
		if err := b.store.Create(ctx, a, &jobs.Request{}); err != nil {
			t.Errorf("Create: %v", err)
			return
		}
		seen := 0
		for i := range n - 1 {
			// Stay within half a buffer of the fast subscriber, so that
			// only the slow one falls behind, however loaded the machine.
			for seen < i+1-jobBuffer/2 {
				select {
				case seen = <-read:
				case <-ctx.Done():
					return
				}
			}
			if _, err := b.store.Update(ctx, "acme", a.ID, func(j *jobs.Job) error {
				j.State = jobs.StateRunning
				j.Attempt++
				return nil
			}); err != nil {
				t.Errorf("Update: %v", err)
				return
			}
		}
	}()
	for i := range n {
		if ev := next(t, fast); ev.Seq != int64(i+1) {
			t.Fatalf("fast subscriber got seq %d, want %d", ev.Seq, i+1)
		}
		read <- i + 1
	}
	<-done

	// Another job: a subscriber that joins now gets its event at once.
	c := newJob("acme")
	late := h.SubscribeJob("acme", c.ID)
	closeLater(t, late)
	waitLive(t, late)
	if err := b.store.Create(testContext(t), c, &jobs.Request{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, late); ev.JobID != c.ID {
		t.Fatalf("late subscriber got job %s", ev.JobID)
	}

	awaitResync(t, slow)
	if got := len(slow.C); got != tenantBuffer {
		t.Fatalf("slow subscriber holds %d events, want a full buffer of %d", got, tenantBuffer)
	}
	for i := range tenantBuffer {
		if ev := <-slow.C; ev.JobID != a.ID || ev.Seq != int64(i+1) {
			t.Fatalf("slow subscriber event %d = job %s seq %d, want the first events in order", i, ev.JobID, ev.Seq)
		}
	}
	noEvent(t, slow)
}

func TestHubOneSubscriptionPerHub(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	if got := b.numSub(t); got != 0 {
		t.Fatalf("NUMSUB before any hub = %d", got)
	}
	hubs := []*Hub{b.startHub(t), b.startHub(t)}
	if got := b.numSub(t); got != int64(len(hubs)) {
		t.Fatalf("NUMSUB with %d hubs = %d", len(hubs), got)
	}

	j := newJob("acme")
	var subs []*Subscription
	for i := range 100 {
		h := hubs[i%len(hubs)]
		if i%4 == 0 {
			subs = append(subs, h.SubscribeTenant("acme"))
		} else {
			subs = append(subs, h.SubscribeJob("acme", j.ID))
		}
	}
	waitLive(t, subs...)
	if got := b.numSub(t); got != int64(len(hubs)) {
		t.Fatalf("NUMSUB with %d hubs and %d subscriptions = %d, want %d", len(hubs), len(subs), got, len(hubs))
	}

	// One write reaches every subscriber of both hubs.
	if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
		t.Fatal(err)
	}
	for i, sub := range subs {
		if ev := next(t, sub); ev.JobID != j.ID || ev.Seq != 1 {
			t.Fatalf("subscriber %d got job %s seq %d", i, ev.JobID, ev.Seq)
		}
	}
	for _, sub := range subs {
		noEvent(t, sub)
		sub.Close()
	}

	stopHub(t, hubs[0])
	testutil.WaitFor(t, waitTimeout, "NUMSUB to drop to 1 after a hub stopped", func() bool { return b.numSub(t) == 1 })
}

func TestSubscriptionClose(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := b.startHub(t)
	j := newJob("acme")
	gone := h.SubscribeJob("acme", j.ID)
	stays := h.SubscribeJob("acme", j.ID)
	closeLater(t, stays)
	waitLive(t, gone, stays)

	gone.Close()
	gone.Close() // twice is fine
	awaitClosed(t, gone)

	if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, stays); ev.JobID != j.ID {
		t.Fatalf("got job %s", ev.JobID)
	}
}

func TestHubStop(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := NewHub(b.rdb, b.store, nil)
	if err := h.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	subs := []*Subscription{h.SubscribeJob("acme", jobs.NewID()), h.SubscribeTenant("acme"), h.SubscribeTenant("other")}

	stopHub(t, h)
	for i, sub := range subs {
		select {
		case _, ok := <-sub.C:
			if ok {
				t.Errorf("subscription %d got an event after Stop", i)
			}
		default:
			t.Errorf("subscription %d not closed by Stop", i)
		}
		sub.Close() // after Stop: no panic
	}
	stopHub(t, h) // a second time
	late := h.SubscribeTenant("acme")
	if _, ok := <-late.C; ok {
		t.Error("subscription made after Stop is open")
	}
	// It never goes live, and says why rather than pretend it did.
	if err := late.Wait(testContext(t)); !errors.Is(err, ErrHubStopped) {
		t.Errorf("Wait of a subscription made after Stop: %v, want ErrHubStopped", err)
	}
	late.Close()
	testutil.WaitFor(t, waitTimeout, "the stopped hub's subscription to end", func() bool { return b.numSub(t) == 0 })
}

func TestHubStopWithoutStart(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := NewHub(b.rdb, b.store, nil)
	sub := h.SubscribeTenant("acme")
	stopHub(t, h)
	awaitClosed(t, sub)
}

func TestHubResubscribes(t *testing.T) {
	t.Parallel()
	// A server of its own: the test kills every pub/sub connection on it.
	srv := redistest.Start(t)
	b := setupOn(t, srv.Client(t), Config{})
	h := b.startHub(t)
	sub := h.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)

	killed, err := b.rdb.Do(testContext(t), "CLIENT", "KILL", "TYPE", "pubsub").Int()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub = %d, %v; want 1 connection killed", killed, err)
	}
	awaitResync(t, sub)
	// Events published until the hub is subscribed again are missed too,
	// so it signals once more when it is back. That signal is certain to be
	// separate from the first when the hub is not back yet.
	lost := !h.Ready()
	testutil.WaitFor(t, waitTimeout, "the hub to be ready again", h.Ready)
	if lost {
		awaitResync(t, sub)
	}
	testutil.WaitFor(t, waitTimeout, "the hub to resubscribe", func() bool { return b.numSub(t) == 1 })

	j := b.create(t, "acme")
	if ev := next(t, sub); ev.JobID != j.ID || ev.Seq != 1 {
		t.Fatalf("after resubscribing got job %s seq %d, want %s seq 1", ev.JobID, ev.Seq, j.ID)
	}
}

// TestHubNoticesSilentConnection checks that a subscription that goes quiet
// without any error (here: Redis stops answering for a while) is noticed by
// the health check and replaced, with subscribers told to catch up.
func TestHubNoticesSilentConnection(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := setupOn(t, srv.Client(t), Config{})
	h := NewHub(b.rdb, b.store, nil)
	h.HealthInterval = 100 * time.Millisecond
	if err := h.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopHub(t, h) })
	sub := h.SubscribeTenant("acme")
	closeLater(t, sub)
	waitLive(t, sub)

	// Every client of this server is paused for 2s: the hub's ping goes
	// unanswered, with no error on its connection.
	if err := b.rdb.Do(testContext(t), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, waitTimeout, "the hub to notice the silent subscription", func() bool { return !h.Ready() })
	awaitResync(t, sub)
	testutil.WaitFor(t, waitTimeout, "the hub to be subscribed again", h.Ready)
	testutil.WaitFor(t, waitTimeout, "one subscription on the server", func() bool {
		return b.numSub(t) == 1
	})
	j := b.create(t, "acme")
	for {
		ev := next(t, sub)
		if ev.JobID == j.ID {
			break
		}
	}
}

// TestHubShardChannels checks that a hub listens on every shard's event
// channel once, from Start, whatever its subscribers (subscribing sends
// Redis nothing), and that a tenant's subscriber gets the events of its
// jobs on every shard and none of another tenant's.
func TestHubShardChannels(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Shards: 4})
	count := func() []int64 {
		var n []int64
		for i := range 4 {
			n = append(n, b.numSubOf(t, b.store.EventChannel(i)))
		}
		return n
	}
	if got := count(); !slices.Equal(got, []int64{0, 0, 0, 0}) {
		t.Fatalf("subscribers of the event channels before any hub: %v", got)
	}
	h := b.startHub(t)
	if got := count(); !slices.Equal(got, []int64{1, 1, 1, 1}) {
		t.Fatalf("subscribers of the event channels with a hub: %v, want one each", got)
	}
	onTenant, onOther := h.SubscribeTenant("acme"), h.SubscribeTenant("other")
	closeLater(t, onTenant)
	closeLater(t, onOther)
	waitLive(t, onTenant, onOther)
	if got := count(); !slices.Equal(got, []int64{1, 1, 1, 1}) {
		t.Fatalf("with subscribers: %v, want one each", got)
	}
	want := map[string]bool{}
	for shard := range 4 {
		j := newJob("acme")
		j.ID = b.store.Space().PlaceID(j.ID, shard)
		if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
			t.Fatal(err)
		}
		want[j.ID] = true
	}
	for range 4 {
		ev := next(t, onTenant)
		if !want[ev.JobID] {
			t.Fatalf("got job %s, not one of acme's new jobs or twice", ev.JobID)
		}
		delete(want, ev.JobID)
	}
	noEvent(t, onOther)
}

// TestHubSubscriptionChurn subscribes to and leaves one tenant's channel
// from many goroutines at once: however the SUBSCRIBE and UNSUBSCRIBE
// commands interleave, a subscription that Wait says is live gets the
// events published after, or is told to catch up.
func TestHubSubscriptionChurn(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	h := b.startHub(t)
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				j := newJob("acme")
				sub := h.SubscribeJob("acme", j.ID)
				ctx, cancel := context.WithTimeout(testContext(t), waitTimeout)
				err := sub.Wait(ctx)
				cancel()
				if err != nil {
					t.Errorf("Wait: %v", err)
					sub.Close()
					return
				}
				if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
					t.Error(err)
					sub.Close()
					return
				}
				select {
				case ev := <-sub.C:
					if ev.JobID != j.ID {
						t.Errorf("got job %s, want %s", ev.JobID, j.ID)
					}
				case <-sub.Resync:
				case <-time.After(waitTimeout):
					t.Errorf("job %s: neither its event nor a resync within %s", j.ID, waitTimeout)
				}
				sub.Close()
			}
		})
	}
	wg.Wait()
	if n := b.numSub(t); n != 1 {
		t.Errorf("after the churn the event channel has %d subscriptions, want the hub's one", n)
	}
}
