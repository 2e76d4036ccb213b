package status

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// hookURL is the callback URL of the jobs these tests create.
const hookURL = "https://hooks.example.com/asyncgw"

// createWithCallback stores a new queued job of tenant whose callback hears
// of events in the given states.
func (b *testBundle) createWithCallback(t *testing.T, tenant string, events ...jobs.State) *jobs.Job {
	t.Helper()
	j := newJob(tenant)
	j.CallbackURL, j.CallbackEvents = hookURL, events
	if err := b.store.Create(testContext(t), j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return j
}

// outbox returns the members of tenant's outbox, sorted.
func (b *testBundle) outbox(t *testing.T, tenant string) []string {
	t.Helper()
	ms, err := b.rdb.ZRange(testContext(t), b.store.outboxKey(tenant), 0, -1).Result()
	if err != nil {
		t.Fatalf("read outbox of %s: %v", tenant, err)
	}
	slices.Sort(ms)
	return ms
}

// outboxSize is OutboxSize, failing t on error.
func (b *testBundle) outboxSize(t *testing.T, tenant string) int64 {
	t.Helper()
	n, err := b.store.OutboxSize(testContext(t), tenant)
	if err != nil {
		t.Fatalf("OutboxSize: %v", err)
	}
	return n
}

// claim is ClaimOutbox, failing t on error.
func (b *testBundle) claim(t *testing.T, tenant string, n int, lease time.Duration) []OutboxEntry {
	t.Helper()
	es, err := b.store.ClaimOutbox(testContext(t), tenant, n, lease)
	if err != nil {
		t.Fatalf("ClaimOutbox: %v", err)
	}
	return es
}

// expire deletes the record and event log of a job, as their expiry would.
func (b *testBundle) expire(t *testing.T, tenant, id string) {
	t.Helper()
	if err := b.rdb.Del(testContext(t), b.store.jobKey(tenant, id), b.store.eventsKey(tenant, id)).Err(); err != nil {
		t.Fatalf("DEL job %s: %v", id, err)
	}
}

// member is how an outbox names event seq of job id.
func member(id string, seq int64) string { return id + "\n" + strconv.FormatInt(seq, 10) }

// members returns the outbox members of entries, sorted.
func members(es []OutboxEntry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, member(e.JobID, e.Seq))
	}
	slices.Sort(out)
	return out
}

func TestOutboxWrittenWithEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	if ts, err := b.store.OutboxTenants(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("OutboxTenants before any callback = %v, %v; want none", ts, err)
	}

	j := b.createWithCallback(t, "acme", jobs.StateQueued, jobs.StateSucceeded)
	if got, want := b.outbox(t, "acme"), []string{member(j.ID, 1)}; !slices.Equal(got, want) {
		t.Fatalf("outbox after Create = %q, want %q", got, want)
	}
	b.setState(t, j, jobs.StateRunning)
	if got, want := b.outbox(t, "acme"), []string{member(j.ID, 1)}; !slices.Equal(got, want) {
		t.Fatalf("outbox after an unheard state = %q, want %q", got, want)
	}
	b.setState(t, j, jobs.StateSucceeded)
	want := []string{member(j.ID, 1), member(j.ID, 3)}
	slices.Sort(want)
	if got := b.outbox(t, "acme"); !slices.Equal(got, want) {
		t.Fatalf("outbox after succeeded = %q, want %q", got, want)
	}

	// Events are only sent where there is a callback, and only those it
	// asked for.
	quiet := newJob("acme")
	quiet.CallbackEvents = []jobs.State{jobs.StateQueued, jobs.StateRunning}
	if err := b.store.Create(ctx, quiet, &jobs.Request{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	b.setState(t, quiet, jobs.StateRunning)
	deaf := b.createWithCallback(t, "acme", jobs.StateFailed)
	b.setState(t, deaf, jobs.StateSucceeded)
	none := b.createWithCallback(t, "acme")
	b.setState(t, none, jobs.StateRunning)
	if got := b.outbox(t, "acme"); !slices.Equal(got, want) {
		t.Fatalf("outbox after jobs that send nothing = %q, want %q", got, want)
	}
	if n := b.outboxSize(t, "acme"); n != 2 {
		t.Fatalf("OutboxSize = %d, want 2", n)
	}

	// A tenant without callbacks has neither an outbox nor a place in the
	// list.
	other := b.create(t, "other")
	b.setState(t, other, jobs.StateSucceeded)
	if n := b.outboxSize(t, "other"); n != 0 {
		t.Fatalf("OutboxSize of a tenant without callbacks = %d, want 0", n)
	}
	ts, err := b.store.OutboxTenants(ctx)
	if err != nil || !slices.Equal(ts, []string{"acme"}) {
		t.Fatalf("OutboxTenants = %v, %v; want [acme]", ts, err)
	}
	// It is kept in Redis, not only by the Store that wrote it.
	fresh, err := New(b.store.cfg, b.rdb)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := fresh.OutboxTenants(ctx); err != nil || !slices.Equal(ts, []string{"acme"}) {
		t.Fatalf("OutboxTenants of another Store = %v, %v; want [acme]", ts, err)
	}
}

func TestOutboxCallback(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	j := b.createWithCallback(t, "acme", jobs.StateQueued, jobs.StateSucceeded)
	queuedDoc := PublicJSON(j)
	b.setState(t, j, jobs.StateRunning)
	done, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State, j.Attempt = jobs.StateSucceeded, 1
		j.Result = &jobs.Result{Status: 200}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}

	es := b.claim(t, "acme", 10, time.Minute)
	if got, want := members(es), []string{member(j.ID, 1), member(j.ID, 3)}; !slices.Equal(got, want) {
		t.Fatalf("claimed %q, want %q", got, want)
	}
	wantData := map[int64][]byte{1: queuedDoc, 3: PublicJSON(done)}
	wantKind := map[int64]jobs.State{1: jobs.StateQueued, 3: jobs.StateSucceeded}
	for _, e := range es {
		if e.Tenant != "acme" || e.JobID != j.ID {
			t.Fatalf("entry %+v, want one of job %s of acme", e, j.ID)
		}
		cb, err := b.store.OutboxCallback(ctx, e)
		if err != nil {
			t.Fatalf("OutboxCallback(seq %d): %v", e.Seq, err)
		}
		want := &Callback{URL: hookURL, Event: jobs.Event{
			Seq: e.Seq, Tenant: "acme", JobID: j.ID, Kind: string(wantKind[e.Seq]), Data: wantData[e.Seq],
		}}
		if !reflect.DeepEqual(cb, want) {
			t.Errorf("OutboxCallback(seq %d) =\n%+v\nwant\n%+v", e.Seq, cb, want)
		}
	}

	// An entry past the event log names nothing.
	if _, err := b.store.OutboxCallback(ctx, OutboxEntry{Tenant: "acme", JobID: j.ID, Seq: 4}); !errors.Is(err, ErrNotFound) {
		t.Errorf("OutboxCallback of a seq never written = %v, want ErrNotFound", err)
	}
	// Nor one of another tenant.
	if _, err := b.store.OutboxCallback(ctx, OutboxEntry{Tenant: "other", JobID: j.ID, Seq: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("OutboxCallback from another tenant = %v, want ErrNotFound", err)
	}

	b.expire(t, "acme", j.ID)
	for _, e := range es {
		if cb, err := b.store.OutboxCallback(ctx, e); !errors.Is(err, ErrNotFound) {
			t.Errorf("OutboxCallback(seq %d) of an expired job = %+v, %v; want ErrNotFound", e.Seq, cb, err)
		}
	}
}

func TestOutboxCallbackPartlyExpired(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	// The record and its list expire together. Without the record no
	// event is sendable; without the list, those it held are not, and the
	// latest, which the record holds, still is.
	for _, key := range []func(tenant, id string) string{b.store.jobKey, b.store.eventsKey} {
		j := b.createWithCallback(t, "acme", jobs.StateQueued)
		b.setState(t, j, jobs.StateRunning) // event 1 in the list, 2 in the record
		if err := b.rdb.Del(ctx, key("acme", j.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		for seq := int64(1); seq <= 2; seq++ {
			cb, err := b.store.OutboxCallback(ctx, OutboxEntry{Tenant: "acme", JobID: j.ID, Seq: seq})
			if seq == 2 && key("acme", j.ID) == b.store.eventsKey("acme", j.ID) {
				if err != nil || cb.Event.Kind != "running" || cb.Event.Seq != 2 {
					t.Errorf("OutboxCallback(seq 2) without the list = %+v, %v; want the running event", cb, err)
				}
				continue
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("OutboxCallback(seq %d) without %s = %+v, %v; want ErrNotFound", seq, key("acme", j.ID), cb, err)
			}
		}
	}
}

func TestClaimOutboxLeases(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	var all []string
	for range 5 {
		j := b.createWithCallback(t, "acme", jobs.StateQueued)
		all = append(all, member(j.ID, 1))
	}
	slices.Sort(all)

	first := b.claim(t, "acme", 3, time.Minute)
	if len(first) != 3 {
		t.Fatalf("claimed %d entries with n = 3, want 3", len(first))
	}
	rest := b.claim(t, "acme", 10, time.Minute)
	got := append(members(first), members(rest)...)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Fatalf("two claims took %q, want each of %q once", got, all)
	}
	if again := b.claim(t, "acme", 10, time.Minute); len(again) != 0 {
		t.Fatalf("claim while every entry is leased took %q", members(again))
	}
	// Leased entries are still in the outbox: a claimer may die.
	if n := b.outboxSize(t, "acme"); n != 5 {
		t.Fatalf("OutboxSize after claims = %d, want 5", n)
	}

	for _, e := range first {
		if err := b.store.AckOutbox(testContext(t), e); err != nil {
			t.Fatalf("AckOutbox: %v", err)
		}
	}
	if n := b.outboxSize(t, "acme"); n != 2 {
		t.Fatalf("OutboxSize after 3 acks = %d, want 2", n)
	}
	if got, want := b.outbox(t, "acme"), members(rest); !slices.Equal(got, want) {
		t.Fatalf("outbox after acks = %q, want the unacknowledged %q", got, want)
	}
	// Acknowledging twice is harmless.
	if err := b.store.AckOutbox(testContext(t), first[0]); err != nil {
		t.Fatalf("second AckOutbox: %v", err)
	}
}

func TestClaimOutboxLeaseEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	const lease = 200 * time.Millisecond

	var all []string
	for range 3 {
		j := b.createWithCallback(t, "acme", jobs.StateQueued)
		all = append(all, member(j.ID, 1))
	}
	slices.Sort(all)

	start := time.Now()
	first := b.claim(t, "acme", 10, lease)
	if got := members(first); !slices.Equal(got, all) {
		t.Fatalf("claimed %q, want %q", got, all)
	}
	// Poll until the lease ends: the entries come back, and not before.
	var back []OutboxEntry
	testutil.WaitFor(t, waitTimeout, "leased entries to come back", func() bool {
		back = b.claim(t, "acme", 10, lease)
		return len(back) > 0
	})
	// Scores are whole milliseconds, hence the slack.
	if waited := time.Since(start); waited < lease-5*time.Millisecond {
		t.Fatalf("entries came back after %s, within their %s lease", waited, lease)
	}
	if got := members(back); !slices.Equal(got, all) {
		t.Fatalf("after the lease, claimed %q, want %q", got, all)
	}

	// An acknowledged entry does not come back.
	acked := back[0]
	if err := b.store.AckOutbox(testContext(t), acked); err != nil {
		t.Fatalf("AckOutbox: %v", err)
	}
	var third []OutboxEntry
	testutil.WaitFor(t, waitTimeout, "the second lease to end", func() bool {
		third = b.claim(t, "acme", 10, time.Minute)
		return len(third) > 0
	})
	want := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == member(acked.JobID, acked.Seq) })
	if got := members(third); !slices.Equal(got, want) {
		t.Fatalf("after an ack and the lease, claimed %q, want %q", got, want)
	}
	if n := b.outboxSize(t, "acme"); n != 2 {
		t.Fatalf("OutboxSize = %d, want 2", n)
	}
}

func TestClaimOutboxDropsUnreadable(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.createWithCallback(t, "acme", jobs.StateQueued)
	if err := b.rdb.ZAdd(ctx, b.store.outboxKey("acme"),
		redis.Z{Member: "no-seq"}, redis.Z{Member: "id\nnot-a-number"}).Err(); err != nil {
		t.Fatal(err)
	}
	es := b.claim(t, "acme", 10, time.Minute)
	if got, want := members(es), []string{member(j.ID, 1)}; !slices.Equal(got, want) {
		t.Fatalf("claimed %q, want %q", got, want)
	}
	if got, want := b.outbox(t, "acme"), []string{member(j.ID, 1)}; !slices.Equal(got, want) {
		t.Fatalf("outbox = %q, want the unreadable entries gone", got)
	}
}

func TestClaimOutboxConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	const entries = 50
	for range entries {
		b.createWithCallback(t, "acme", jobs.StateQueued)
	}

	const claimers = 2
	got := make([][]OutboxEntry, claimers)
	errs := make([]error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Go(func() {
			<-start
			for {
				es, err := b.store.ClaimOutbox(ctx, "acme", 3, time.Minute)
				if err != nil {
					errs[i] = err
					return
				}
				if len(es) == 0 {
					return
				}
				got[i] = append(got[i], es...)
			}
		})
	}
	close(start)
	wg.Wait()

	seen := map[string]int{}
	for i := range claimers {
		if errs[i] != nil {
			t.Fatalf("claimer %d: %v", i, errs[i])
		}
		for _, e := range got[i] {
			m := member(e.JobID, e.Seq)
			if prev, ok := seen[m]; ok {
				t.Errorf("entry %q claimed by claimer %d and claimer %d", m, prev, i)
			}
			seen[m] = i
		}
	}
	if len(seen) != entries {
		t.Fatalf("claimers took %d distinct entries, want %d", len(seen), entries)
	}
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	const retention, deadRetention = time.Hour, 3 * time.Hour
	b := setup(t, Config{Retention: retention, DeadRetention: deadRetention})
	ctx := testContext(t)

	j := b.createWithCallback(t, "acme", jobs.StateQueued, jobs.StateRunning, jobs.StateSucceeded)
	if ds, err := b.store.Deliveries(ctx, "acme", j.ID); err != nil || len(ds) != 0 {
		t.Fatalf("Deliveries before any = %d, %v; want none", len(ds), err)
	}

	// Deliveries are noted as they are made, not necessarily in order.
	d := map[int64]*jobs.Job{}
	for _, seq := range []int64{3, 1, 2} {
		dj := newJob("acme")
		dj.Type = "webhook"
		dj.Webhook = &jobs.WebhookRef{JobID: j.ID, Seq: seq, URL: hookURL}
		if err := b.store.Create(ctx, dj, &jobs.Request{URL: hookURL}); err != nil {
			t.Fatalf("Create delivery: %v", err)
		}
		dj.Version = "" // Deliveries reads the documents, not their versions
		d[seq] = dj
		if err := b.store.AddDelivery(ctx, "acme", j.ID, seq, dj.ID); err != nil {
			t.Fatalf("AddDelivery: %v", err)
		}
	}
	// Noting one again changes nothing.
	if err := b.store.AddDelivery(ctx, "acme", j.ID, 2, d[2].ID); err != nil {
		t.Fatalf("AddDelivery: %v", err)
	}

	ds, err := b.store.Deliveries(ctx, "acme", j.ID)
	if err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	if want := []*jobs.Job{d[1], d[2], d[3]}; !reflect.DeepEqual(ds, want) {
		t.Fatalf("Deliveries =\n%+v\nwant in seq order\n%+v", ds, want)
	}
	if ds, err := b.store.Deliveries(ctx, "other", j.ID); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries from another tenant = %d, %v; want none", len(ds), err)
	}

	// The index lives as long as the job's record: no TTL while the job
	// is live, the retention once it ended.
	key := b.store.deliveriesKey("acme", j.ID)
	if got := b.ttl(t, key); got != -1 {
		t.Errorf("TTL of the delivery index of a live job = %ds, want none", got)
	}
	b.setState(t, j, jobs.StateSucceeded)
	if got := b.ttl(t, key); got < int64((retention-time.Minute)/time.Second) || got > int64(retention/time.Second) {
		t.Errorf("TTL of the delivery index of an ended job = %ds, want about %s", got, retention)
	}

	b.expire(t, "acme", d[2].ID)
	ds, err = b.store.Deliveries(ctx, "acme", j.ID)
	if err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	if want := []*jobs.Job{d[1], d[3]}; !reflect.DeepEqual(ds, want) {
		t.Fatalf("Deliveries with one expired =\n%+v\nwant\n%+v", ds, want)
	}
}

// TestDeliveriesExpireWithRecord: the delivery index of a job follows its
// record's lifetime: copied when a delivery is noted after the job ended,
// kept while a dead job stays in the dead-letter queue (no dead-letter
// retention), and given the retention when it is deleted from there.
func TestDeliveriesExpireWithRecord(t *testing.T) {
	t.Parallel()
	const retention = time.Hour
	b := setup(t, Config{Retention: retention})
	ctx := testContext(t)
	about := func(key string, want time.Duration) {
		t.Helper()
		if got := b.ttl(t, key); got < int64((want-time.Minute)/time.Second) || got > int64(want/time.Second) {
			t.Errorf("TTL of %s = %ds, want about %s", key, got, want)
		}
	}

	ended := b.setState(t, b.createWithCallback(t, "acme", jobs.StateSucceeded), jobs.StateSucceeded)
	if err := b.store.AddDelivery(ctx, "acme", ended.ID, 2, jobs.NewID()); err != nil {
		t.Fatalf("AddDelivery: %v", err)
	}
	about(b.store.deliveriesKey("acme", ended.ID), retention)

	dead := b.kill(t, "acme", "default", "orders", "boom", time.Now())
	if err := b.store.AddDelivery(ctx, "acme", dead.ID, 2, jobs.NewID()); err != nil {
		t.Fatalf("AddDelivery: %v", err)
	}
	if got := b.ttl(t, b.store.deliveriesKey("acme", dead.ID)); got != -1 {
		t.Errorf("TTL of a dead job's delivery index = %ds, want none while it is in the dead-letter queue", got)
	}
	if err := b.store.DeleteDeadLetter(ctx, "acme", "default", dead.ID); err != nil {
		t.Fatalf("DeleteDeadLetter: %v", err)
	}
	about(b.store.deliveriesKey("acme", dead.ID), retention)

	// A delivery noted for a job whose record is gone leaves nothing.
	gone := jobs.NewID()
	if err := b.store.AddDelivery(ctx, "acme", gone, 1, jobs.NewID()); err != nil {
		t.Fatalf("AddDelivery: %v", err)
	}
	if n := b.rdb.Exists(ctx, b.store.deliveriesKey("acme", gone)).Val(); n != 0 {
		t.Errorf("a delivery index was left for a job without record")
	}
}

func TestDisabledEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	if d, err := b.store.EndpointDisabled(ctx, "acme", hookURL); err != nil || d != nil {
		t.Fatalf("EndpointDisabled before any = %+v, %v; want nil", d, err)
	}
	if ds, err := b.store.DisabledEndpoints(ctx, ""); err != nil || len(ds) != 0 {
		t.Fatalf("DisabledEndpoints before any = %+v, %v; want none", ds, err)
	}

	at := testTime
	betaB := DisabledEndpoint{Tenant: "beta", URL: "https://b.example/hook", DisabledAt: at, Delivery: "d1"}
	acmeZ := DisabledEndpoint{Tenant: "acme", URL: "https://z.example/hook", DisabledAt: at.Add(time.Second), Delivery: "d2"}
	acmeA := DisabledEndpoint{Tenant: "acme", URL: "https://a.example/hook", DisabledAt: at.Add(2 * time.Second), Delivery: "d3"}
	for _, d := range []DisabledEndpoint{betaB, acmeZ, acmeA} {
		if err := b.store.DisableEndpoint(ctx, d); err != nil {
			t.Fatalf("DisableEndpoint: %v", err)
		}
	}

	got, err := b.store.EndpointDisabled(ctx, "acme", acmeZ.URL)
	if err != nil || got == nil || !reflect.DeepEqual(*got, acmeZ) {
		t.Fatalf("EndpointDisabled = %+v, %v; want %+v", got, err, acmeZ)
	}
	// Disabled for its tenant only.
	if got, err := b.store.EndpointDisabled(ctx, "beta", acmeZ.URL); err != nil || got != nil {
		t.Fatalf("EndpointDisabled for another tenant = %+v, %v; want nil", got, err)
	}

	list := func(tenant string, want ...DisabledEndpoint) {
		t.Helper()
		got, err := b.store.DisabledEndpoints(ctx, tenant)
		if err != nil {
			t.Fatalf("DisabledEndpoints(%q): %v", tenant, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("DisabledEndpoints(%q) =\n%+v\nwant\n%+v", tenant, got, want)
		}
	}
	list("", acmeA, acmeZ, betaB)
	list("acme", acmeA, acmeZ)
	list("beta", betaB)
	list("nobody")

	// Disabled again, the newer record replaces the older.
	acmeZ2 := acmeZ
	acmeZ2.DisabledAt, acmeZ2.Delivery = at.Add(time.Hour), "d4"
	if err := b.store.DisableEndpoint(ctx, acmeZ2); err != nil {
		t.Fatalf("DisableEndpoint: %v", err)
	}
	list("acme", acmeA, acmeZ2)

	ok, err := b.store.EnableEndpoint(ctx, "acme", acmeZ.URL)
	if err != nil || !ok {
		t.Fatalf("EnableEndpoint of a disabled endpoint = %v, %v; want true", ok, err)
	}
	if got, err := b.store.EndpointDisabled(ctx, "acme", acmeZ.URL); err != nil || got != nil {
		t.Fatalf("EndpointDisabled after EnableEndpoint = %+v, %v; want nil", got, err)
	}
	if ok, err := b.store.EnableEndpoint(ctx, "acme", acmeZ.URL); err != nil || ok {
		t.Fatalf("second EnableEndpoint = %v, %v; want false", ok, err)
	}
	if ok, err := b.store.EnableEndpoint(ctx, "beta", acmeA.URL); err != nil || ok {
		t.Fatalf("EnableEndpoint of another tenant's endpoint = %v, %v; want false", ok, err)
	}
	list("", acmeA, betaB)
	list("acme", acmeA)

	if ok, err := b.store.EnableEndpoint(ctx, "acme", acmeA.URL); err != nil || !ok {
		t.Fatalf("EnableEndpoint = %v, %v; want true", ok, err)
	}
	list("", betaB)
	list("acme")
}

func TestReplayWritesOutbox(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	j := b.createWithCallback(t, "acme", jobs.StateQueued, jobs.StateDead)
	b.setState(t, j, jobs.StateRunning)
	b.setState(t, j, jobs.StateDead)
	want := []string{member(j.ID, 1), member(j.ID, 3)}
	slices.Sort(want)
	if got := b.outbox(t, "acme"); !slices.Equal(got, want) {
		t.Fatalf("outbox of a dead job = %q, want %q", got, want)
	}
	// Sent, as a dispatcher would.
	for _, e := range b.claim(t, "acme", 10, time.Minute) {
		if err := b.store.AckOutbox(ctx, e); err != nil {
			t.Fatalf("AckOutbox: %v", err)
		}
	}

	replayed, err := b.store.Reopen(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State, j.Replays = jobs.StateQueued, 1
		return nil
	})
	if err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if got, want := b.outbox(t, "acme"), []string{member(j.ID, 4)}; !slices.Equal(got, want) {
		t.Fatalf("outbox after the replay = %q, want %q", got, want)
	}
	// Due at once, and naming the new cycle's event.
	es := b.claim(t, "acme", 10, time.Minute)
	if len(es) != 1 || es[0].Seq != 4 {
		t.Fatalf("claimed %q after the replay, want the queued event of seq 4", members(es))
	}
	cb, err := b.store.OutboxCallback(ctx, es[0])
	if err != nil {
		t.Fatalf("OutboxCallback: %v", err)
	}
	if cb.Event.Kind != string(jobs.StateQueued) || string(cb.Event.Data) != string(PublicJSON(replayed)) {
		t.Fatalf("replay event = %q %s, want queued %s", cb.Event.Kind, cb.Event.Data, PublicJSON(replayed))
	}
}
