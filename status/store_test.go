package status

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"prefix with brace", Config{Prefix: "a{b"}, false},
		{"prefix with space", Config{Prefix: "a b"}, false},
		{"retention under a minute", Config{Retention: 30 * time.Second}, false},
		{"retention of a minute", Config{Retention: time.Minute}, true},
		{"negative stream length", Config{StreamMaxLen: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("New(%+v) error = %v, want ok = %v", tt.cfg, err, tt.ok)
			}
		})
	}
}

func TestChannel(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Prefix: "gw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Channel(); got != "gw:events" {
		t.Fatalf("Channel() = %q, want gw:events", got)
	}
}

func TestValidTenant(t *testing.T) {
	t.Parallel()
	// Tenants follow the model's one name rule (tested in jobs); what
	// matters here is that a name cannot break out of its hash tag.
	for _, name := range []string{"brace{", "brace}", "new\nline", ""} {
		if ValidTenant(name) {
			t.Errorf("ValidTenant(%q) = true", name)
		}
	}
	if !ValidTenant("Acme-Corp_2.eu") {
		t.Error(`ValidTenant("Acme-Corp_2.eu") = false`)
	}
}

func TestCreateGet(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	started, next := testTime.Add(time.Second), testTime.Add(time.Minute)
	j := &jobs.Job{
		ID: jobs.NewID(), Type: "orders", State: jobs.StateRetrying, Queue: "critical",
		Attempt: 2, MaxAttempts: 5, CreatedAt: testTime, UpdatedAt: started,
		StartedAt: &started, NextAttemptAt: &next,
		Result: &jobs.Result{
			Status:  503,
			Headers: map[string]string{"Content-Type": "application/json", "X-Trace": "abc"},
			Body:    json.RawMessage(`{"error":"busy","n":[1,2]}`),
		},
		Error:  "upstream answered 503 Service Unavailable",
		Tenant: "acme",
	}
	if err := b.store.Create(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := b.store.Get(ctx, "acme", j.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("Get returned\n%+v\nwant\n%+v", got, j)
	}

	evs, err := b.store.Events(ctx, "acme", j.ID, 0)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(evs) != 1 || evs[0].Seq != 1 || evs[0].Kind != string(jobs.StateRetrying) {
		t.Fatalf("events after Create = %+v, want one %q event with seq 1", evs, jobs.StateRetrying)
	}
	if string(evs[0].Data) != string(PublicJSON(j)) {
		t.Fatalf("event data = %s, want %s", evs[0].Data, PublicJSON(j))
	}
}

func TestCreateTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")

	dup := *j
	dup.Type = "other"
	if err := b.store.Create(ctx, &dup, &jobs.Request{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create = %v, want ErrExists", err)
	}
	got, err := b.store.Get(ctx, "acme", j.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Type != "orders" {
		t.Fatalf("record type = %q after refused Create, want the original", got.Type)
	}
	if evs, _ := b.store.Events(ctx, "acme", j.ID, 0); len(evs) != 1 {
		t.Fatalf("refused Create appended an event: %d events", len(evs))
	}
}

// TestAcceptAfterScriptFlush: accepts share pipelines of EVALSHA; on a
// Redis that does not know the script (restarted, or SCRIPT FLUSH), each
// one is sent whole instead and stored once.
func TestAcceptAfterScriptFlush(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t) // of its own: the flush would reach other tests
	b := setupOn(t, srv.Client(t), Config{})
	ctx := testContext(t)
	if err := b.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			j := newJob("acme")
			ids[i] = j.ID
			if err := b.store.Create(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
				t.Errorf("Create after SCRIPT FLUSH: %v", err)
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if evs, err := b.store.Events(ctx, "acme", id, 0); err != nil || len(evs) != 1 {
			t.Errorf("job %s: %d events, %v; want 1", id, len(evs), err)
		}
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")

	if _, err := b.store.Get(ctx, "other", j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get from another tenant = %v, want ErrNotFound", err)
	}
	if _, err := b.store.Request(ctx, "other", j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Request from another tenant = %v, want ErrNotFound", err)
	}
	called := false
	_, err := b.store.Update(ctx, "other", j.ID, func(*jobs.Job) error { called = true; return nil })
	if !errors.Is(err, ErrNotFound) || called {
		t.Errorf("Update from another tenant = %v (fn called: %v), want ErrNotFound", err, called)
	}
	if evs, err := b.store.Events(ctx, "other", j.ID, 0); err != nil || len(evs) != 0 {
		t.Errorf("Events from another tenant = %d events, %v; want none", len(evs), err)
	}
	if evs, err := b.store.TenantEvents(ctx, "other", "", 100); err != nil || len(evs) != 0 {
		t.Errorf("TenantEvents of another tenant = %d events, %v; want none", len(evs), err)
	}
}

func TestGetUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	if _, err := b.store.Get(ctx, "acme", jobs.NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if _, err := b.store.Request(ctx, "acme", jobs.NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Request = %v, want ErrNotFound", err)
	}
	if _, err := b.store.Update(ctx, "acme", jobs.NewID(), func(*jobs.Job) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update = %v, want ErrNotFound", err)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := newJob("acme")
	req := &jobs.Request{
		Method: http.MethodPut,
		URL:    "http://127.0.0.1:8080/orders/7?x=1",
		Header: http.Header{
			"Content-Type": {"application/json"},
			"X-Multi":      {"one", "two"},
		},
		Body:    []byte{0, 1, 2, 0xff, '{', '"'},
		Timeout: jobs.Duration(1500 * time.Millisecond),
		Backoff: jobs.Backoff{Base: jobs.Duration(time.Second), Max: jobs.Duration(time.Hour)},
	}
	if err := b.store.Create(ctx, j, req); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := b.store.Request(ctx, "acme", j.ID)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Fatalf("Request returned\n%+v\nwant\n%+v", got, req)
	}
}

func TestUpdateAppendsEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")

	got, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State, j.Attempt = jobs.StateRunning, 1
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got.State != jobs.StateRunning || got.Attempt != 1 || got.Tenant != "acme" {
		t.Fatalf("Update returned %+v, want running attempt 1 of acme", got)
	}
	b.setState(t, j, jobs.StateRetrying)

	all, err := b.store.Events(ctx, "acme", j.ID, 0)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	wantKinds := []jobs.State{jobs.StateQueued, jobs.StateRunning, jobs.StateRetrying}
	if len(all) != len(wantKinds) {
		t.Fatalf("got %d events, want %d", len(all), len(wantKinds))
	}
	for i, ev := range all {
		if ev.Seq != int64(i+1) || ev.Kind != string(wantKinds[i]) || ev.Tenant != "acme" || ev.JobID != j.ID {
			t.Errorf("event %d = seq %d kind %q tenant %q job %q; want seq %d kind %q", i, ev.Seq, ev.Kind, ev.Tenant, ev.JobID, i+1, wantKinds[i])
		}
		var doc jobs.Job
		if err := json.Unmarshal(ev.Data, &doc); err != nil || string(doc.State) != ev.Kind {
			t.Errorf("event %d data %s does not hold state %q (%v)", i, ev.Data, ev.Kind, err)
		}
	}

	for _, tt := range []struct {
		after    int64
		wantSeqs []int64
	}{
		{-1, []int64{1, 2, 3}},
		{0, []int64{1, 2, 3}},
		{1, []int64{2, 3}},
		{2, []int64{3}},
		{3, nil},
		{10, nil},
	} {
		evs, err := b.store.Events(ctx, "acme", j.ID, tt.after)
		if err != nil {
			t.Fatalf("Events(after %d): %v", tt.after, err)
		}
		var seqs []int64
		for i, ev := range evs {
			seqs = append(seqs, ev.Seq)
			if want := all[ev.Seq-1]; ev.Kind != want.Kind || string(ev.Data) != string(want.Data) {
				t.Errorf("Events(after %d)[%d] = %q, want %q", tt.after, i, ev.Kind, want.Kind)
			}
		}
		if !reflect.DeepEqual(seqs, tt.wantSeqs) {
			t.Errorf("Events(after %d) seqs = %v, want %v", tt.after, seqs, tt.wantSeqs)
		}
	}
}

// TestEventListLagsRecord: a job's latest event is in its record and only
// the ones before it are in its event list, so a new job has no list; a
// record written by an earlier version, whose list has every event, goes
// on without an event twice.
func TestEventListLagsRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	kinds := func(id string) []string {
		t.Helper()
		evs, err := b.store.Events(ctx, "acme", id, 0)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		var out []string
		for i, ev := range evs {
			var doc jobs.Job
			if err := json.Unmarshal(ev.Data, &doc); err != nil || string(doc.State) != ev.Kind || ev.Seq != int64(i+1) {
				t.Errorf("event %d: seq %d, %q with %s (%v)", i, ev.Seq, ev.Kind, ev.Data, err)
			}
			out = append(out, ev.Kind)
		}
		return out
	}
	listLen := func(id string) int64 { return b.rdb.LLen(ctx, b.store.eventsKey("acme", id)).Val() }

	fresh := b.create(t, "acme")
	if n := listLen(fresh.ID); n != 0 || !reflect.DeepEqual(kinds(fresh.ID), []string{"queued"}) {
		t.Errorf("new job: list of %d, events %q; want no list and queued", n, kinds(fresh.ID))
	}
	b.setState(t, fresh, jobs.StateRunning)
	b.setState(t, fresh, jobs.StateSucceeded)
	if n, got := listLen(fresh.ID), kinds(fresh.ID); n != 2 || !reflect.DeepEqual(got, []string{"queued", "running", "succeeded"}) {
		t.Errorf("ended job: list of %d, events %q; want 2 and queued, running, succeeded", n, got)
	}

	old := b.create(t, "acme")
	doc := b.rdb.HGet(ctx, b.store.jobKey("acme", old.ID), "doc").Val()
	if err := b.rdb.RPush(ctx, b.store.eventsKey("acme", old.ID), "queued\n"+doc).Err(); err != nil {
		t.Fatal(err)
	}
	b.setState(t, old, jobs.StateRunning)
	b.setState(t, old, jobs.StateRetrying)
	if n, got := listLen(old.ID), kinds(old.ID); n != 2 || !reflect.DeepEqual(got, []string{"queued", "running", "retrying"}) {
		t.Errorf("earlier version's job: list of %d, events %q; want 2 and queued, running, retrying", n, got)
	}
}

func TestUpdateFnError(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")

	boom := errors.New("boom")
	got, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State = jobs.StateFailed
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	if got == nil || got.State != jobs.StateQueued {
		t.Fatalf("Update returned %+v, want the job as read", got)
	}
	if cur, _ := b.store.Get(ctx, "acme", j.ID); cur.State != jobs.StateQueued {
		t.Fatalf("record state = %q after aborted Update, want queued", cur.State)
	}
	if evs, _ := b.store.Events(ctx, "acme", j.ID, 0); len(evs) != 1 {
		t.Fatalf("aborted Update appended an event: %d events", len(evs))
	}
}

func TestUpdateTerminal(t *testing.T) {
	t.Parallel()
	for _, s := range []jobs.State{jobs.StateSucceeded, jobs.StateFailed, jobs.StateDead, jobs.StateCanceled} {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			ctx := testContext(t)
			j := b.create(t, "acme")
			b.setState(t, j, s)

			called := false
			got, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
				called = true
				j.State = jobs.StateRunning
				return nil
			})
			if !errors.Is(err, ErrFinished) {
				t.Fatalf("Update of a %s job = %v, want ErrFinished", s, err)
			}
			if called {
				t.Error("Update called fn for a terminal job")
			}
			if got == nil || got.State != s {
				t.Errorf("Update returned %+v, want the %s job", got, s)
			}
			if evs, _ := b.store.Events(ctx, "acme", j.ID, 0); len(evs) != 2 {
				t.Fatalf("refused Update left %d events, want 2", len(evs))
			}

			got, err = b.store.Reopen(ctx, "acme", j.ID, func(j *jobs.Job) error {
				j.State, j.Attempt = jobs.StateQueued, 0
				return nil
			})
			if err != nil {
				t.Fatalf("Reopen: %v", err)
			}
			if got.State != jobs.StateQueued {
				t.Fatalf("Reopen returned state %q, want queued", got.State)
			}
			evs, _ := b.store.Events(ctx, "acme", j.ID, 0)
			if len(evs) != 3 || evs[2].Seq != 3 || evs[2].Kind != string(jobs.StateQueued) {
				t.Fatalf("events after Reopen = %+v, want a third, queued event", evs)
			}
			// Reopened, the job takes ordinary updates again.
			b.setState(t, j, jobs.StateRunning)
		})
	}
}

// ttl returns the TTL of key in seconds (-1: none, -2: no key).
func (b *testBundle) ttl(t *testing.T, key string) int64 {
	t.Helper()
	n, err := b.rdb.Do(testContext(t), "TTL", key).Int64()
	if err != nil {
		t.Fatalf("TTL %s: %v", key, err)
	}
	return n
}

func TestRetention(t *testing.T) {
	t.Parallel()
	const retention = time.Hour
	tests := []struct {
		state   jobs.State
		expires bool
	}{
		{jobs.StateRunning, false},
		{jobs.StateRetrying, false},
		{jobs.StateSucceeded, true},
		{jobs.StateFailed, true},
		{jobs.StateCanceled, true},
		{jobs.StateDead, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Retention: retention})
			j := b.create(t, "acme")
			for _, k := range []string{b.store.jobKey("acme", j.ID), b.store.streamKey("acme")} {
				if got := b.ttl(t, k); got != -1 {
					t.Fatalf("TTL of %s after Create = %d, want none", k, got)
				}
			}
			// A new job's only event is in its record: it has no list yet.
			if got := b.ttl(t, b.store.eventsKey("acme", j.ID)); got != -2 {
				t.Fatalf("TTL of the event list after Create = %d, want no list", got)
			}
			b.setState(t, j, tt.state)
			for _, k := range []string{b.store.jobKey("acme", j.ID), b.store.eventsKey("acme", j.ID)} {
				got := b.ttl(t, k)
				switch {
				case !tt.expires && got != -1:
					t.Errorf("TTL of %s in state %s = %ds, want none", k, tt.state, got)
				case tt.expires && (got < int64((retention-time.Minute)/time.Second) || got > int64(retention/time.Second)):
					t.Errorf("TTL of %s in state %s = %ds, want about %s", k, tt.state, got, retention)
				}
			}
			if got := b.ttl(t, b.store.streamKey("acme")); got != -1 {
				t.Errorf("TTL of the tenant stream = %d, want none", got)
			}
			if !tt.state.Terminal() {
				return
			}
			// A reopened job is live again and kept.
			if _, err := b.store.Reopen(testContext(t), "acme", j.ID, func(j *jobs.Job) error {
				j.State = jobs.StateQueued
				return nil
			}); err != nil {
				t.Fatalf("Reopen: %v", err)
			}
			for _, k := range []string{b.store.jobKey("acme", j.ID), b.store.eventsKey("acme", j.ID)} {
				if got := b.ttl(t, k); got != -1 {
					t.Errorf("TTL of %s after Reopen = %d, want none", k, got)
				}
			}
		})
	}
}

func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")

	const writers = 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := make(chan struct{})
	for range writers {
		wg.Go(func() {
			<-start
			_, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
				j.State = jobs.StateRunning
				j.Attempt++
				return nil
			})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}

	got, err := b.store.Get(ctx, "acme", j.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Attempt != writers {
		t.Fatalf("Attempt = %d after %d concurrent increments: updates were lost", got.Attempt, writers)
	}
	evs, err := b.store.Events(ctx, "acme", j.ID, 0)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(evs) != writers+1 {
		t.Fatalf("got %d events, want %d", len(evs), writers+1)
	}
	// Each event holds the record as that write left it: attempts 0..20 in
	// order, each exactly once.
	for i, ev := range evs {
		var doc jobs.Job
		if err := json.Unmarshal(ev.Data, &doc); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Seq != int64(i+1) || doc.Attempt != i {
			t.Errorf("event %d: seq %d attempt %d, want seq %d attempt %d", i, ev.Seq, doc.Attempt, i+1, i)
		}
	}
}

func TestTenantEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)

	if tail, err := b.store.TenantTail(ctx, "acme"); err != nil || tail != "0-0" {
		t.Fatalf("TenantTail of an empty stream = %q, %v; want 0-0", tail, err)
	}

	j1 := b.create(t, "acme")
	b.create(t, "other")
	b.setState(t, j1, jobs.StateRunning)
	j2 := b.create(t, "acme")
	b.setState(t, j1, jobs.StateSucceeded)

	type want struct {
		job  string
		seq  int64
		kind jobs.State
	}
	wants := []want{
		{j1.ID, 1, jobs.StateQueued},
		{j1.ID, 2, jobs.StateRunning},
		{j2.ID, 1, jobs.StateQueued},
		{j1.ID, 3, jobs.StateSucceeded},
	}
	all, err := b.store.TenantEvents(ctx, "acme", "", 100)
	if err != nil {
		t.Fatalf("TenantEvents: %v", err)
	}
	if len(all) != len(wants) {
		t.Fatalf("got %d tenant events, want %d: %+v", len(all), len(wants), all)
	}
	for i, ev := range all {
		w := wants[i]
		if ev.JobID != w.job || ev.Seq != w.seq || ev.Kind != string(w.kind) || ev.Tenant != "acme" {
			t.Errorf("tenant event %d = job %s seq %d kind %q tenant %q; want job %s seq %d kind %q",
				i, ev.JobID, ev.Seq, ev.Kind, ev.Tenant, w.job, w.seq, w.kind)
		}
		if !ValidStreamID(ev.StreamID) {
			t.Errorf("tenant event %d has stream ID %q", i, ev.StreamID)
		}
		if i > 0 && CompareStreamIDs(all[i-1].StreamID, ev.StreamID) >= 0 {
			t.Errorf("stream IDs out of order: %s then %s", all[i-1].StreamID, ev.StreamID)
		}
		var doc jobs.Job
		if err := json.Unmarshal(ev.Data, &doc); err != nil || doc.ID != ev.JobID || string(doc.State) != ev.Kind {
			t.Errorf("tenant event %d data %s does not match (%v)", i, ev.Data, err)
		}
	}
	// The per-job log holds the same events.
	jobEvs, _ := b.store.Events(ctx, "acme", j1.ID, 0)
	if len(jobEvs) != 3 || string(jobEvs[2].Data) != string(all[3].Data) {
		t.Errorf("job log and tenant stream disagree")
	}

	for _, tt := range []struct {
		name  string
		after string
		count int64
		from  int // index into all of the first event
		n     int
	}{
		{"from the start", "", 100, 0, 4},
		{"zero is the start", "0", 100, 0, 4},
		{"count bounds", "", 2, 0, 2},
		{"after the first", all[0].StreamID, 100, 1, 3},
		{"after the third, bounded", all[2].StreamID, 1, 3, 1},
		{"after the last", all[3].StreamID, 100, 4, 0},
	} {
		got, err := b.store.TenantEvents(ctx, "acme", tt.after, tt.count)
		if err != nil {
			t.Fatalf("%s: TenantEvents: %v", tt.name, err)
		}
		if len(got) != tt.n {
			t.Errorf("%s: got %d events, want %d", tt.name, len(got), tt.n)
			continue
		}
		for i, ev := range got {
			if ev.StreamID != all[tt.from+i].StreamID {
				t.Errorf("%s: event %d is %s, want %s", tt.name, i, ev.StreamID, all[tt.from+i].StreamID)
			}
		}
	}

	tail, err := b.store.TenantTail(ctx, "acme")
	if err != nil || tail != all[3].StreamID {
		t.Errorf("TenantTail = %q, %v; want %s", tail, err, all[3].StreamID)
	}
	other, err := b.store.TenantEvents(ctx, "other", "", 100)
	if err != nil || len(other) != 1 {
		t.Errorf("other tenant's stream has %d events, %v; want 1", len(other), err)
	}
}

func TestCompareStreamIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"0-0", "0-0", 0},
		{"5-1", "5-1", 0},
		{"5-1", "5-2", -1},
		{"5-2", "5-1", 1},
		{"4-9", "5-0", -1},
		{"10-0", "9-0", 1},  // numeric, not lexical
		{"9-10", "9-9", 1},  // numeric, not lexical
		{"junk", "0-1", -1}, // malformed sorts first
		{"0-1", "junk", 1},
		{"", "1-0", -1},
		{"1526919030474-55", "1526919030474-56", -1},
		{"18446744073709551615-0", "1-0", 1},
	}
	for _, tt := range tests {
		if got := CompareStreamIDs(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareStreamIDs(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestValidStreamID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"0-0", true},
		{"1526919030474-55", true},
		{"18446744073709551615-18446744073709551615", true},
		{"", false},
		{"1", false},
		{"-", false},
		{"-1", false},
		{"1-", false},
		{"a-1", false},
		{"1-b", false},
		{"1-1-1", false},
		{"+1-1", false},
		{" 1-1", false},
		{"1-1\n", false},
		{"18446744073709551616-0", false},
		{"*", false},
		{"$", false},
	}
	for _, tt := range tests {
		if got := ValidStreamID(tt.in); got != tt.want {
			t.Errorf("ValidStreamID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want jobs.Event
		ok   bool
	}{
		{
			"acme\nj1\n3\n1-2\nrunning\n{\"id\":\"j1\"}",
			jobs.Event{Tenant: "acme", JobID: "j1", Seq: 3, StreamID: "1-2", Kind: "running", Data: []byte(`{"id":"j1"}`)},
			true,
		},
		{
			"acme\nj1\n1\n1-0\nqueued\nline one\nline two",
			jobs.Event{Tenant: "acme", JobID: "j1", Seq: 1, StreamID: "1-0", Kind: "queued", Data: []byte("line one\nline two")},
			true,
		},
		{"acme\nj1\n1\n1-0\nqueued", jobs.Event{}, false},
		{"acme\nj1\nx\n1-0\nqueued\n{}", jobs.Event{}, false},
		{"", jobs.Event{}, false},
	}
	for _, tt := range tests {
		got, ok := parseMessage(tt.in)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseMessage(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResultBody(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := testContext(t)
	j := b.create(t, "acme")

	if _, err := b.store.ResultBody(ctx, "acme", j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ResultBody before any result = %v, want ErrNotFound", err)
	}
	// Whitespace and "<" that a JSON encoder would change.
	raw := []byte("{ \"a\": \"<b>\" }\n")
	h := http.Header{"Content-Type": {"application/json"}}
	if _, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State, j.Result = jobs.StateRetrying, jobs.NewResult(http.StatusServiceUnavailable, h, raw)
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := b.store.ResultBody(ctx, "acme", j.ID)
	if err != nil || string(got) != string(raw) {
		t.Fatalf("ResultBody = %q, %v; want %q", got, err, raw)
	}
	if _, err := b.store.ResultBody(ctx, "other", j.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("ResultBody from another tenant = %v, want ErrNotFound", err)
	}

	// An update that does not carry a new answer keeps the body.
	b.setState(t, j, jobs.StateRunning)
	if got, _ := b.store.ResultBody(ctx, "acme", j.ID); string(got) != string(raw) {
		t.Fatalf("ResultBody after an update without a result = %q, want %q", got, raw)
	}

	// A new answer replaces it, an empty one too.
	if _, err := b.store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
		j.State, j.Result = jobs.StateSucceeded, jobs.NewResult(http.StatusNoContent, nil, []byte{})
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got, err := b.store.ResultBody(ctx, "acme", j.ID); err != nil || len(got) != 0 {
		t.Fatalf("ResultBody after an empty answer = %q, %v; want empty", got, err)
	}
	cur, err := b.store.Get(ctx, "acme", j.ID)
	if err != nil || cur.Result == nil || cur.Result.Status != http.StatusNoContent {
		t.Fatalf("Get = %+v, %v; want the 204 result", cur, err)
	}
}
