package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// ledger is an upstream that records, per ordering key (named in each
// call's body as {"key": …}), the order in which its jobs' calls started
// and whether two calls of one key were ever in flight at once.
type ledger struct {
	mu       sync.Mutex
	started  map[string][]string // job IDs by key, in call order (each call)
	inFlight map[string]int
	overlaps []string
	// hold, when a write's call arrives, keeps it until the channel
	// closes; fail answers 503 to its calls while its count is positive.
	// Both are by the write's "key#n" (see submitKeyed), set before it is
	// submitted.
	hold map[string]chan struct{}
	fail map[string]int
	// arrived is told of every call, by job ID.
	arrived chan string
}

func newLedger() *ledger {
	return &ledger{
		started: map[string][]string{}, inFlight: map[string]int{},
		hold: map[string]chan struct{}{}, fail: map[string]int{},
		arrived: make(chan string, 1024),
	}
}

// serve is the ledger's Upstream handler.
func (l *ledger) serve(u *Upstream) func(w http.ResponseWriter, r *http.Request, c Call) {
	return func(w http.ResponseWriter, r *http.Request, c Call) {
		var body struct {
			Key string `json:"key"`
			N   int    `json:"n"`
		}
		_ = json.Unmarshal(c.Body, &body)
		token := body.Key + "#" + strconv.Itoa(body.N)
		l.mu.Lock()
		if body.Key != "" {
			l.started[body.Key] = append(l.started[body.Key], c.JobID)
			l.inFlight[body.Key]++
			if l.inFlight[body.Key] > 1 {
				l.overlaps = append(l.overlaps, fmt.Sprintf("key %s: job %s started with %d in flight", body.Key, c.JobID, l.inFlight[body.Key]-1))
			}
		}
		hold := l.hold[token]
		fail := l.fail[token] > 0
		if fail {
			l.fail[token]--
		}
		l.mu.Unlock()
		l.arrived <- c.JobID
		if hold != nil {
			select {
			case <-hold:
			case <-u.Released():
			case <-r.Context().Done():
			}
		} else {
			// Long enough for a second call of the key to overlap if the
			// line let it.
			time.Sleep(5 * time.Millisecond)
		}
		l.mu.Lock()
		if body.Key != "" {
			l.inFlight[body.Key]--
		}
		l.mu.Unlock()
		if fail {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		okJSON(w, r, c)
	}
}

// holdJob makes the calls of write token ("key#n") wait until release is
// called.
func (l *ledger) holdJob(token string) (release func()) {
	ch := make(chan struct{})
	l.mu.Lock()
	l.hold[token] = ch
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// order is the job IDs of key's calls in the order they started, each
// job once (its first call).
func (l *ledger) order(key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range l.started[key] {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (l *ledger) checkNoOverlap(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.overlaps {
		t.Error(o)
	}
}

// failJob makes the first n calls of write token ("key#n") answer 503.
func (l *ledger) failJob(token string, n int) {
	l.mu.Lock()
	l.fail[token] = n
	l.mu.Unlock()
}

// awaitCall waits for the upstream to be called for job id.
func (l *ledger) awaitCall(t *testing.T, id string) {
	t.Helper()
	deadline := time.After(WaitTimeout)
	for {
		select {
		case got := <-l.arrived:
			if got == id {
				return
			}
		case <-deadline:
			t.Fatalf("job %s was never called", id)
		}
	}
}

// called reports whether job id's calls reached the upstream.
func (l *ledger) called(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ids := range l.started {
		if slices.Contains(ids, id) {
			return true
		}
	}
	return false
}

// submitKeyed posts a write on path with ordering key key ("" for none);
// the body names the key for the ledger.
func submitKeyed(t *testing.T, s *Server, path, key string, n int) string {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set("X-Ordering-Key", key)
	}
	r := s.Do(t, http.MethodPost, path, []byte(`{"key":"`+key+`","n":`+strconv.Itoa(n)+`}`), h)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST %s (key %q): status %d, body %s", path, key, r.Status, r.Body)
	}
	var a gateway.Accepted
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func orderingHarness(t *testing.T, routes ...gateway.Route) (*Harness, *ledger) {
	t.Helper()
	if len(routes) == 0 {
		routes = []gateway.Route{{Name: "ledger", Path: "/v1/ledger", Upstream: "/ledger", MaxAttempts: 3}}
	}
	h := Start(t, Options{Routes: routes, Concurrency: 10})
	l := newLedger()
	h.Upstream.Handle(l.serve(h.Upstream))
	return h, l
}

// TestOrderingKeyRunsInAcceptOrder: the jobs of one key run one at a time
// in the order they were accepted, while a held head of one key holds
// neither another key nor jobs without a key; the job resource carries the
// key, and a job that waits is queued.
func TestOrderingKeyRunsInAcceptOrder(t *testing.T) {
	t.Parallel()
	h, l := orderingHarness(t)
	const n = 8
	var a, b, free []string
	// The first job of key a is held: a's line waits behind it, the rest
	// flows.
	release := l.holdJob("acct-a#0")
	defer release()
	a = append(a, submitKeyed(t, h.Server, "/v1/ledger", "acct-a", 0))
	for i := 1; i < n; i++ {
		a = append(a, submitKeyed(t, h.Server, "/v1/ledger", "acct-a", i))
		b = append(b, submitKeyed(t, h.Server, "/v1/ledger", "acct-b", i))
		free = append(free, submitKeyed(t, h.Server, "/v1/ledger", "", i))
	}
	for _, id := range append(slices.Clone(b), free...) {
		h.WaitState(t, id, jobs.StateSucceeded)
	}
	l.awaitCall(t, a[0])
	for _, id := range a[1:] {
		j, _ := h.Job(t, id)
		if j.State != jobs.StateQueued || j.OrderingKey != "acct-a" || l.called(id) {
			t.Fatalf("job %s behind a held head: state %s, ordering_key %q, called %v; want queued, acct-a, not called",
				id, j.State, j.OrderingKey, l.called(id))
		}
	}
	// The admin view shows the line, its held head first.
	var view struct {
		Tenant      string     `json:"tenant"`
		OrderingKey string     `json:"ordering_key"`
		Length      int        `json:"length"`
		Jobs        []jobs.Job `json:"jobs"`
	}
	getJSON(t, h.Server, "/admin/v1/ordering?tenant=default&key=acct-a", http.StatusOK, &view)
	if view.Length != n || len(view.Jobs) != n || view.Jobs[0].ID != a[0] || view.Jobs[0].State != jobs.StateRunning ||
		view.Jobs[1].ID != a[1] || view.Jobs[1].State != jobs.StateQueued || view.OrderingKey != "acct-a" {
		t.Errorf("GET /admin/v1/ordering: %+v; want the %d jobs of acct-a, the held head running first", view, n)
	}
	r := h.Do(t, http.MethodGet, "/admin/v1/ordering?tenant=default&key=", nil, nil)
	requireProblem(t, "admin view without a key", r, http.StatusBadRequest)
	release()
	for _, id := range a {
		h.WaitState(t, id, jobs.StateSucceeded)
	}
	getJSON(t, h.Server, "/admin/v1/ordering?tenant=default&key=acct-a", http.StatusOK, &view)
	if view.Length != 0 || len(view.Jobs) != 0 {
		t.Errorf("GET /admin/v1/ordering after the line ran: %+v, want it empty", view)
	}
	if got := l.order("acct-a"); !slices.Equal(got, a) {
		t.Errorf("key acct-a ran in order %v, want the accept order %v", got, a)
	}
	if got := l.order("acct-b"); !slices.Equal(got, b) {
		t.Errorf("key acct-b ran in order %v, want the accept order %v", got, b)
	}
	l.checkNoOverlap(t)
	if j, _ := h.Job(t, free[0]); j.OrderingKey != "" {
		t.Errorf("a job without a key has ordering_key %q", j.OrderingKey)
	}
	r = h.Do(t, http.MethodGet, "/v1/jobs/"+free[0], nil, nil)
	if strings.Contains(string(r.Body), "ordering_key") {
		t.Errorf("a job without a key shows ordering_key: %s", r.Body)
	}
}

// TestOrderingKeyRetriesKeepTheKey: a head that retries keeps its key
// until it succeeds; the next job starts only then.
func TestOrderingKeyRetriesKeepTheKey(t *testing.T) {
	t.Parallel()
	h, l := orderingHarness(t)
	l.failJob("acct#0", 2)
	first := submitKeyed(t, h.Server, "/v1/ledger", "acct", 0)
	second := submitKeyed(t, h.Server, "/v1/ledger", "acct", 1)
	j := h.WaitState(t, second, jobs.StateSucceeded)
	if f := h.WaitState(t, first, jobs.StateSucceeded); f.Attempt != 3 {
		t.Errorf("first job succeeded on attempt %d, want 3", f.Attempt)
	}
	calls := h.Upstream.Calls(first)
	if len(calls) != 3 {
		t.Fatalf("first job called %d times, want 3", len(calls))
	}
	if sc := h.Upstream.Calls(second); len(sc) != 1 || !sc[0].At.After(calls[2].At) {
		t.Errorf("second job's calls %v: want one, after the first job's last try at %v", sc, calls[2].At)
	}
	if got := l.order("acct"); !slices.Equal(got, []string{first, second}) {
		t.Errorf("order %v, want %v", got, []string{first, second})
	}
	if j.StartedAt == nil {
		t.Error("second job has no started_at")
	}
	l.checkNoOverlap(t)
}

// TestOrderingKeyDeadReleasesAndReplayJoinsTheEnd: a dead head releases
// the key; its replay runs after the jobs accepted before the replay.
func TestOrderingKeyDeadReleasesAndReplayJoinsTheEnd(t *testing.T) {
	t.Parallel()
	h, l := orderingHarness(t, gateway.Route{Name: "ledger", Path: "/v1/ledger", Upstream: "/ledger", MaxAttempts: 1})
	l.failJob("acct#0", 1)
	dead := submitKeyed(t, h.Server, "/v1/ledger", "acct", 0)
	next := submitKeyed(t, h.Server, "/v1/ledger", "acct", 1)
	h.WaitState(t, dead, jobs.StateDead)
	h.WaitState(t, next, jobs.StateSucceeded)

	// A held head, one behind it; then the replay, which goes last.
	release := l.holdJob("acct#2")
	defer release()
	head := submitKeyed(t, h.Server, "/v1/ledger", "acct", 2)
	behind := submitKeyed(t, h.Server, "/v1/ledger", "acct", 3)
	l.awaitCall(t, head)
	r := h.Do(t, http.MethodPost, "/admin/v1/dlq/"+dead+"/replay", nil, nil)
	if r.Status != http.StatusOK && r.Status != http.StatusAccepted {
		t.Fatalf("replay: status %d, body %s", r.Status, r.Body)
	}
	if j, _ := h.Job(t, dead); j.State != jobs.StateQueued || j.Replays != 1 {
		t.Fatalf("replayed job is %s (replays %d), want queued behind the line", j.State, j.Replays)
	}
	after := submitKeyed(t, h.Server, "/v1/ledger", "acct", 4)
	release()
	for _, id := range []string{head, behind, dead, after} {
		h.WaitState(t, id, jobs.StateSucceeded)
	}
	// The replay's run is the dead job's second call: after behind,
	// before after.
	l.mu.Lock()
	calls := slices.Clone(l.started["acct"])
	l.mu.Unlock()
	want := []string{dead, next, head, behind, dead, after}
	if !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v: the line, then the replay, then the job accepted after it", calls, want)
	}
	l.checkNoOverlap(t)
}

// TestOrderingKeyCancel: a waiting job canceled leaves the line and is
// never called; the head canceled releases the key at once.
func TestOrderingKeyCancel(t *testing.T) {
	t.Parallel()
	h, l := orderingHarness(t, gateway.Route{Name: "ledger", Path: "/v1/ledger", Upstream: "/ledger", Timeout: time.Minute})
	release := l.holdJob("acct#0")
	defer release()
	head := submitKeyed(t, h.Server, "/v1/ledger", "acct", 0)
	waiter := submitKeyed(t, h.Server, "/v1/ledger", "acct", 1)
	last := submitKeyed(t, h.Server, "/v1/ledger", "acct", 2)
	l.awaitCall(t, head)

	if r := h.Do(t, http.MethodDelete, "/v1/jobs/"+waiter, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("DELETE waiting job: status %d, body %s", r.Status, r.Body)
	}
	if j, _ := h.Job(t, last); j.State != jobs.StateQueued {
		t.Fatalf("after the waiting job's cancel the last job is %s, want queued behind the head", j.State)
	}
	if r := h.Do(t, http.MethodDelete, "/v1/jobs/"+head, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("DELETE head: status %d, body %s", r.Status, r.Body)
	}
	h.WaitState(t, last, jobs.StateSucceeded)
	if l.called(waiter) {
		t.Error("the canceled waiting job was called")
	}
	if j, _ := h.Job(t, waiter); j.State != jobs.StateCanceled {
		t.Errorf("waiting job is %s, want canceled", j.State)
	}
	if got := l.order("acct"); !slices.Equal(got, []string{head, last}) {
		t.Errorf("order %v, want %v", got, []string{head, last})
	}
}

// TestOrderingKeyRefused: a route's ordering policy and bad keys are
// answered 400, nothing stored; POST /v1/jobs takes the key in its body.
func TestOrderingKeyRefused(t *testing.T) {
	t.Parallel()
	h, l := orderingHarness(t,
		gateway.Route{Name: "ledger", Path: "/v1/ledger", Upstream: "/ledger", Ordering: gateway.OrderingRequired},
		gateway.Route{Name: "plain", Path: "/v1/plain", Upstream: "/plain", Ordering: gateway.OrderingOff},
		gateway.Route{Name: "any", Path: "/v1/any", Upstream: "/any"},
	)
	post := func(path, body string, hdr map[string][]string) *Response {
		header := http.Header{"Content-Type": {"application/json"}}
		for k, v := range hdr {
			header[k] = v
		}
		return h.Do(t, http.MethodPost, path, []byte(body), header)
	}
	before := h.JobIDs(t, "default")
	requireExactProblem(t, "required without a key", post("/v1/ledger", `{}`, nil), wantProblem{400, "ordering-key-required",
		"this route requires an ordering key: send an X-Ordering-Key header (or ordering_key in POST /v1/jobs)", nil})
	requireExactProblem(t, "off with a key", post("/v1/plain", `{}`, map[string][]string{"X-Ordering-Key": {"k"}}), wantProblem{400, "ordering-key-not-allowed",
		"this route does not take an ordering key (ordering: off): send the write without X-Ordering-Key", nil})
	requireExactProblem(t, "too long", post("/v1/any", `{}`, map[string][]string{"X-Ordering-Key": {strings.Repeat("k", 201)}}),
		wantProblem{400, "bad-ordering-key", "the X-Ordering-Key header is longer than 200 characters", nil})
	requireExactProblem(t, "control character", post("/v1/any", `{}`, map[string][]string{"X-Ordering-Key": {"a\tb"}}),
		wantProblem{400, "bad-ordering-key", "the X-Ordering-Key header must be printable ASCII (no control characters)", nil})
	requireExactProblem(t, "two headers", post("/v1/any", `{}`, map[string][]string{"X-Ordering-Key": {"a", "b"}}),
		wantProblem{400, "bad-ordering-key", "send one X-Ordering-Key header, not several", nil})
	requireExactProblem(t, "empty in the body", post("/v1/jobs", `{"type":"any","ordering_key":""}`, nil),
		wantProblem{400, "validation", "the request body is invalid", []gateway.FieldError{{Pointer: "/ordering_key", Detail: "is empty"}}})
	requireExactProblem(t, "control character in the body", post("/v1/jobs", `{"type":"any","ordering_key":"a\u0001"}`, nil),
		wantProblem{400, "validation", "the request body is invalid", []gateway.FieldError{{Pointer: "/ordering_key", Detail: "must be printable ASCII (no control characters)"}}})
	requireExactProblem(t, "header and body differ", post("/v1/jobs", `{"type":"any","ordering_key":"a"}`, map[string][]string{"X-Ordering-Key": {"b"}}),
		wantProblem{400, "bad-ordering-key", "the X-Ordering-Key header and the body's ordering_key differ: send one, or the same key in both", nil})
	requireExactProblem(t, "required, through POST /v1/jobs", post("/v1/jobs", `{"type":"ledger"}`, nil), wantProblem{400, "ordering-key-required",
		"this route requires an ordering key: send an X-Ordering-Key header (or ordering_key in POST /v1/jobs)", nil})
	if after := h.JobIDs(t, "default"); len(after) != len(before) {
		t.Fatalf("refused writes stored jobs: %v", after)
	}

	// The body's key orders jobs as the header does.
	var ids []string
	for i := range 3 {
		r := post("/v1/jobs", `{"type":"ledger","payload":{"key":"acct","n":`+strconv.Itoa(i)+`},"ordering_key":"acct"}`, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST /v1/jobs with ordering_key: %d %s", r.Status, r.Body)
		}
		var a gateway.Accepted
		_ = json.Unmarshal(r.Body, &a)
		ids = append(ids, a.ID)
	}
	for _, id := range ids {
		if j := h.WaitState(t, id, jobs.StateSucceeded); j.OrderingKey != "acct" {
			t.Errorf("job %s: ordering_key %q, want acct", id, j.OrderingKey)
		}
	}
	if got := l.order("acct"); !slices.Equal(got, ids) {
		t.Errorf("order %v, want %v", got, ids)
	}
}
