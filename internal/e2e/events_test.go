package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/sse"
	"github.com/asyncgw/asyncgw/status"
)

// requireEOF checks that the stream ends after what was read.
func requireEOF(t *testing.T, st *Stream, what string) {
	t.Helper()
	if ev, err := st.Reader.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: after the terminal event got %+v, %v; want the stream to end (io.EOF)", what, ev, err)
	}
}

// checkJobEvent checks that ev is event seq of job id, of kind state, and
// that its data is the job resource in that state.
func checkJobEvent(t *testing.T, ev sse.Event, id string, seq int, state jobs.State) {
	t.Helper()
	if ev.ID != strconv.Itoa(seq) || ev.Event != string(state) {
		t.Fatalf("event id %q type %q, want id %d type %s", ev.ID, ev.Event, seq, state)
	}
	j := decodeJob(t, ev.Data)
	if j.ID != id || j.State != state {
		t.Errorf("event %d data is job %s in state %s, want job %s in %s", seq, j.ID, j.State, id, state)
	}
}

func TestJobEvents(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	proceed := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if hold(h.Upstream, r, proceed) {
			okJSON(w, r, c)
		}
	})
	id := h.Submit(t, "/v1/orders", `{"n":1}`)

	// Connected while the job is live: the backlog, then live events, then
	// the end of the stream.
	st := h.Events(t, "/v1/jobs/"+id+"/events", "")
	if cc := st.Resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	var first []sse.Event
	first = append(first, st.Next(t))
	close(proceed)
	first = append(first, st.Next(t), st.Next(t))
	for i, state := range []jobs.State{jobs.StateQueued, jobs.StateRunning, jobs.StateSucceeded} {
		checkJobEvent(t, first[i], id, i+1, state)
	}
	requireEOF(t, st, "live stream")
	if j := decodeJob(t, first[2].Data); j.Result == nil || j.Result.Status != http.StatusOK {
		t.Errorf("succeeded event carries result %+v, want the upstream's 200", j.Result)
	}

	// Reconnecting after event 1 gets exactly 2 and 3.
	st = h.Events(t, "/v1/jobs/"+id+"/events", "1")
	for _, want := range first[1:] {
		if got := st.Next(t); got.ID != want.ID || got.Event != want.Event || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("resumed: got %s %s %s, want %s %s %s", got.ID, got.Event, got.Data, want.ID, want.Event, want.Data)
		}
	}
	requireEOF(t, st, "resumed stream")

	// Connecting after the end replays everything and closes.
	st = h.Events(t, "/v1/jobs/"+id+"/events", "")
	raw, err := io.ReadAll(st.Resp.Body)
	if err != nil {
		t.Fatalf("read replayed stream: %v", err)
	}
	rd := sse.NewReader(bytes.NewReader(raw))
	for _, want := range first {
		got, err := rd.Next()
		if err != nil || got.ID != want.ID || got.Event != want.Event || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("replayed: got %+v (%v), want %s %s", got, err, want.ID, want.Event)
		}
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("replayed stream has more after the terminal event: %v", err)
	}
	golden(t, "job-succeeded.golden.sse", normalize(raw, map[string]string{
		id: "<job-id>", h.Queues.Default: "<queue>",
	}))

	// Resuming past the end, or with a malformed ID.
	st = h.Events(t, "/v1/jobs/"+id+"/events", "3")
	requireEOF(t, st, "stream resumed after the terminal event")
	requireProblem(t, "bad Last-Event-ID", h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/events", nil,
		http.Header{"Last-Event-ID": {"x"}}), http.StatusBadRequest)
}

func TestJobEventsHeartbeat(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{
		Heartbeat: 50 * time.Millisecond,
		Routes:    []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
	})
	h.Upstream.Handle(func(_ http.ResponseWriter, r *http.Request, _ Call) {
		hold(h.Upstream, r, nil) // never answers
	})
	id := h.Submit(t, "/v1/orders", `{}`)
	st := h.Events(t, "/v1/jobs/"+id+"/events", "")
	br := bufio.NewReader(st.Resp.Body)
	for beats := 0; beats < 3; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v (after %d heartbeats)", err, beats)
		}
		if line == ": keep-alive\n" {
			beats++
		}
	}
}

func TestEventsAcrossGateways(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	b := h.StartGateway(t)
	proceed := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if hold(h.Upstream, r, proceed) {
			okJSON(w, r, c)
		}
	})
	id := h.Submit(t, "/v1/orders", `{}`)
	st := b.Events(t, "/v1/jobs/"+id+"/events", "")
	checkJobEvent(t, st.Next(t), id, 1, jobs.StateQueued)
	close(proceed)
	checkJobEvent(t, st.Next(t), id, 2, jobs.StateRunning)
	checkJobEvent(t, st.Next(t), id, 3, jobs.StateSucceeded)
	requireEOF(t, st, "stream on the other gateway")
	if j, _ := b.Job(t, id); j.State != jobs.StateSucceeded {
		t.Errorf("GET on the other gateway: state %s, want succeeded", j.State)
	}
}

// tenantEvent is one event of GET /v1/events.
type tenantEvent struct {
	ID, Kind string
	Data     []byte
	job      *jobs.Job
}

func nextTenantEvent(t *testing.T, st *Stream) tenantEvent {
	t.Helper()
	ev := nextTenantEventOf(t, st)
	if !strings.Contains(ev.ID, ".") && !status.ValidStreamID(ev.ID) {
		t.Fatalf("tenant event id %q is neither a stream id nor a cursor over shards", ev.ID)
	}
	return ev
}

// eventAfter reports whether the tenant event id a comes after b: a later
// stream ID with one shard, a cursor past b with several.
func eventAfter(t *testing.T, h *Harness, a, b string) bool {
	t.Helper()
	ca, err := h.Store.ParseCursor(a)
	if err != nil {
		t.Fatalf("event id %q: %v", a, err)
	}
	cb, err := h.Store.ParseCursor(b)
	if err != nil {
		t.Fatalf("event id %q: %v", b, err)
	}
	return ca.After(cb)
}

// nextTenantEventOf is nextTenantEvent of a stream whose ids may be
// cursors over several shards.
func nextTenantEventOf(t *testing.T, st *Stream) tenantEvent {
	t.Helper()
	ev := st.Next(t)
	j := decodeJob(t, ev.Data)
	if string(j.State) != ev.Event {
		t.Fatalf("tenant event %s is %q but its job is %s", ev.ID, ev.Event, j.State)
	}
	return tenantEvent{ID: ev.ID, Kind: ev.Event, Data: ev.Data, job: j}
}

func TestTenantEvents(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(okJSON)
	early := h.Submit(t, "/v1/orders", `{}`)
	h.WaitState(t, early, jobs.StateSucceeded)

	st := h.Events(t, "/v1/events", "")
	ids := []string{h.Submit(t, "/v1/orders", `{}`), h.Submit(t, "/v1/orders", `{}`), h.Submit(t, "/v1/orders", `{}`)}
	var got []tenantEvent
	done := map[string]bool{}
	kinds := map[string][]string{}
	for len(done) < len(ids) {
		if len(got) == 3*len(ids) {
			t.Fatalf("read %d events and still not all jobs succeeded: %v", len(got), kinds)
		}
		ev := nextTenantEvent(t, st)
		if len(got) > 0 && !eventAfter(t, h, ev.ID, got[len(got)-1].ID) {
			t.Errorf("event id %s does not come after %s", ev.ID, got[len(got)-1].ID)
		}
		got = append(got, ev)
		kinds[ev.job.ID] = append(kinds[ev.job.ID], ev.Kind)
		if ev.Kind == string(jobs.StateSucceeded) {
			done[ev.job.ID] = true
		}
	}
	if _, ok := kinds[early]; ok {
		t.Errorf("events of a job that ended before connecting were sent: %v", kinds[early])
	}
	for _, id := range ids {
		if want := []string{"queued", "running", "succeeded"}; !slices.Equal(kinds[id], want) {
			t.Errorf("job %s: events %v, want %v", id, kinds[id], want)
		}
	}

	// Resuming after the fourth event gives exactly what followed it: the
	// same events, each once, every job's in its order. (With several
	// shards, events of different shards have no order between them: a
	// resume may read them in another order than they arrived live, and
	// an event's ID, which says where every shard stands, differs then.)
	const k = 3
	resumed := h.Events(t, "/v1/events", got[k].ID)
	want := map[string]tenantEvent{} // by job and kind
	wantKinds := map[string][]string{}
	for _, ev := range got[k+1:] {
		want[ev.job.ID+" "+ev.Kind] = ev
		wantKinds[ev.job.ID] = append(wantKinds[ev.job.ID], ev.Kind)
	}
	resumedKinds := map[string][]string{}
	for range got[k+1:] {
		ev := nextTenantEvent(t, resumed)
		w, ok := want[ev.job.ID+" "+ev.Kind]
		if !ok || !bytes.Equal(ev.Data, w.Data) {
			t.Fatalf("resumed: got %s of job %s, which is not one of the events after %s, or not as it was sent live", ev.Kind, ev.job.ID, got[k].ID)
		}
		if h.Store.Space().Shards() == 1 && ev.ID != w.ID {
			t.Errorf("resumed: %s of job %s has ID %s, live %s", ev.Kind, ev.job.ID, ev.ID, w.ID)
		}
		delete(want, ev.job.ID+" "+ev.Kind)
		resumedKinds[ev.job.ID] = append(resumedKinds[ev.job.ID], ev.Kind)
	}
	for id, kinds := range wantKinds {
		if !slices.Equal(resumedKinds[id], kinds) {
			t.Errorf("resumed: job %s's events %v, want %v", id, resumedKinds[id], kinds)
		}
	}
	// ... and then live events, on both streams.
	last := h.Submit(t, "/v1/orders", `{}`)
	for _, s := range []*Stream{resumed, st} {
		if ev := nextTenantEvent(t, s); ev.job.ID != last || ev.Kind != string(jobs.StateQueued) {
			t.Errorf("after the backlog: got %s of job %s, want queued of job %s", ev.Kind, ev.job.ID, last)
		}
	}
	requireProblem(t, "bad Last-Event-ID", h.Do(t, http.MethodGet, "/v1/events", nil,
		http.Header{"Last-Event-ID": {"7"}}), http.StatusBadRequest)
}

func TestShutdownClosesStreams(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(func(_ http.ResponseWriter, r *http.Request, _ Call) {
		hold(h.Upstream, r, nil) // never answers
	})
	s := h.StartGateway(t)
	id := s.Submit(t, "/v1/orders", `{}`)
	jobStream := s.Events(t, "/v1/jobs/"+id+"/events", "")
	checkJobEvent(t, jobStream.Next(t), id, 1, jobs.StateQueued)
	tenantStream := s.Events(t, "/v1/events", "")

	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- s.Shutdown() }()

	for name, st := range map[string]*Stream{"job stream": jobStream, "tenant stream": tenantStream} {
		var retry time.Duration
		for retry == 0 {
			ev, err := st.Reader.Next()
			if err != nil {
				t.Fatalf("%s: %v before a retry: field", name, err)
			}
			if ev.Data == nil {
				retry = ev.Retry
			}
		}
		if retry <= 0 {
			t.Errorf("%s: retry %s, want a positive reconnection delay", name, retry)
		}
		if _, err := st.Reader.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: after retry: got %v, want the stream to end", name, err)
		}
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	case <-time.After(shutdownTimeout):
		t.Fatal("Serve did not return after its context was canceled")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s with only event streams open", d)
	}
	// The other gateway serves on.
	if j, _ := h.Job(t, id); j.State.Terminal() {
		t.Errorf("job is %s", j.State)
	}
}

func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	const n = 200
	h := Start(t, Options{
		Concurrency: 20,
		Routes:      []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
	})
	// Large answers make the events large, so that the silent subscriber's
	// connection fills up.
	answer := `{"pad":"` + strings.Repeat("x", 16<<10) + `"}`
	h.Upstream.Handle(func(w http.ResponseWriter, _ *http.Request, _ Call) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	})

	slow := openSilentStream(t, h.Server, "/v1/events")
	fast := h.Events(t, "/v1/events", "")

	type result struct {
		events []tenantEvent
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		var r result
		done := 0
		for done < n {
			ev, err := fast.Reader.Next()
			if err != nil {
				r.err = err
				break
			}
			var j jobs.Job
			if r.err = json.Unmarshal(ev.Data, &j); r.err != nil {
				break
			}
			r.events = append(r.events, tenantEvent{ID: ev.ID, Kind: ev.Event, Data: ev.Data, job: &j})
			if j.State == jobs.StateSucceeded {
				done++
			}
		}
		resc <- r
	}()
	for range n {
		h.Submit(t, "/v1/orders", `{}`)
	}
	var r result
	select {
	case r = <-resc:
	case <-time.After(StreamTimeout):
		t.Fatal("the reading subscriber did not get every job's end in time")
	}
	if r.err != nil {
		t.Fatalf("reading subscriber: %v after %d events", r.err, len(r.events))
	}
	kinds := map[string][]string{}
	for i, ev := range r.events {
		kinds[ev.job.ID] = append(kinds[ev.job.ID], ev.Kind)
		if i > 0 && !eventAfter(t, h, ev.ID, r.events[i-1].ID) {
			t.Fatalf("event %d id %s does not come after %s", i, ev.ID, r.events[i-1].ID)
		}
	}
	if len(kinds) != n || len(r.events) != 3*n {
		t.Fatalf("reading subscriber got %d events of %d jobs, want %d of %d", len(r.events), len(kinds), 3*n, n)
	}
	for id, k := range kinds {
		if !slices.Equal(k, []string{"queued", "running", "succeeded"}) {
			t.Fatalf("job %s: events %v", id, k)
		}
	}

	// The silent subscriber, read at last, has missed nothing in between:
	// what it got is a prefix of what the other one got (its stream may
	// have been cut for being stuck too long, never thinned out).
	// Across shards the two may interleave differently (one heard them
	// live, the other read them back), so the prefix is per shard.
	got := slow.readAll(t, len(r.events))
	ks := h.Store.Space()
	want := map[int][]tenantEvent{}
	for _, ev := range r.events {
		shard := ks.ShardOf(ev.job.ID)
		want[shard] = append(want[shard], ev)
	}
	seen := map[int]int{}
	for i, ev := range got {
		var j jobs.Job
		if err := json.Unmarshal(ev.Data, &j); err != nil {
			t.Fatalf("silent subscriber's event %d: %v", i, err)
		}
		shard := ks.ShardOf(j.ID)
		k := seen[shard]
		seen[shard]++
		if k >= len(want[shard]) {
			t.Fatalf("silent subscriber's event %d (%s of %s) is more than the other heard on its shard", i, ev.Event, j.ID)
		}
		w := want[shard][k]
		if ev.Event != w.Kind || !bytes.Equal(ev.Data, w.Data) || ks.Shards() == 1 && ev.ID != w.ID {
			t.Fatalf("silent subscriber's event %d is %s %s, want %s %s", i, ev.ID, ev.Event, w.ID, w.Kind)
		}
	}
	// Both subscribers were handed every event unless one fell behind: the
	// silent one must have, or this test did not test a stuck client.
	if d := h.Hub.Delivered(); d >= int64(2*len(r.events)) {
		t.Errorf("hub delivered %d events to 2 subscribers of %d: the silent subscriber never fell behind", d, len(r.events))
	}
	t.Logf("silent subscriber got %d of %d events when read late; hub delivered %d", len(got), len(r.events), h.Hub.Delivered())
}

// TestTenantEventsShardsResume: with 4 shards, GET /v1/events carries the
// events of jobs on every shard, and a client that drops its connection
// after every few events and comes back with Last-Event-ID gets every
// event exactly once, each job's in order.
func TestTenantEventsShardsResume(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Shards: 4, Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(okJSON)
	st := h.Events(t, "/v1/events", "")
	const n = 12
	ids := map[string]bool{}
	shards := map[int]bool{}
	for range n {
		id := h.Submit(t, "/v1/orders", `{}`)
		ids[id] = true
		shards[h.Store.Space().ShardOf(id)] = true
	}
	if len(shards) < 2 {
		t.Fatalf("%d jobs on %d shards; want them spread", n, len(shards))
	}
	seen := map[string]int{}
	kinds := map[string][]string{}
	done, last := 0, ""
	for read := 0; done < n; read++ {
		if read > 0 && read%5 == 0 {
			st.Close() // dropped: come back after the last event seen
			st = h.Events(t, "/v1/events", last)
		}
		ev := nextTenantEventOf(t, st)
		if !ids[ev.job.ID] {
			t.Fatalf("event of job %s, not one of this test's", ev.job.ID)
		}
		key := ev.job.ID + " " + ev.Kind
		if seen[key]++; seen[key] > 1 {
			t.Fatalf("event %s sent twice (resumed after %q)", key, last)
		}
		kinds[ev.job.ID] = append(kinds[ev.job.ID], ev.Kind)
		if ev.Kind == string(jobs.StateSucceeded) {
			done++
		}
		last = ev.ID
		if read > 4*n {
			t.Fatalf("read %d events and %d of %d jobs succeeded", read, done, n)
		}
	}
	st.Close()
	for id := range ids {
		if want := []string{"queued", "running", "succeeded"}; !slices.Equal(kinds[id], want) {
			t.Errorf("job %s: events %v, want %v", id, kinds[id], want)
		}
	}
	requireProblem(t, "a one-shard Last-Event-ID", h.Do(t, http.MethodGet, "/v1/events", nil,
		http.Header{"Last-Event-ID": {"1700000000000-0"}}), http.StatusBadRequest)
}
