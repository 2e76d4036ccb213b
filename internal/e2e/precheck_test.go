package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestPrecheck: a route's pre-check is called before the job is accepted;
// its 2xx JSON answer is attached to the job, a 4xx goes back to the
// client as the problem's status with nothing queued.
func TestPrecheck(t *testing.T) {
	t.Parallel()
	type seen struct {
		body, ctype, tenant string
	}
	var mu sync.Mutex
	var got []seen
	pre := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{string(b), r.Header.Get("Content-Type"), r.Header.Get("X-Asyncgw-Tenant")})
		mu.Unlock()
		switch string(b) {
		case `{"sku":"sold-out"}`:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"reason":"sold out"}`))
		case `{"sku":"gone"}`:
			w.WriteHeader(http.StatusGone)
		case `{"sku":"moved"}`:
			w.Header().Set("Location", "http://example.invalid/")
			w.WriteHeader(http.StatusFound)
		case `{"sku":"plain"}`:
			_, _ = w.Write([]byte("fine"))
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"quote":42,"currency":"EUR"}`))
		}
	}))
	t.Cleanup(pre.Close)
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "orders", Path: "/v1/orders", Upstream: "/orders", Precheck: &gateway.Precheck{URL: pre.URL + "/check"}},
	}})
	h.Upstream.Handle(okJSON)

	// Accepted: the pre-check saw the body, and its answer is on the job.
	id := h.Submit(t, "/v1/orders", `{"sku":"ok"}`)
	j := h.WaitState(t, id, jobs.StateSucceeded)
	if !jsonEqual(t, j.Precheck, []byte(`{"quote":42,"currency":"EUR"}`)) {
		t.Errorf("job precheck %s, want the pre-check's answer", j.Precheck)
	}
	mu.Lock()
	first := got[0]
	mu.Unlock()
	if first != (seen{`{"sku":"ok"}`, "application/json", gateway.DefaultTenant}) {
		t.Errorf("pre-check got %+v", first)
	}
	// A 2xx without JSON lets the job in, with nothing attached.
	id = h.Submit(t, "/v1/orders", `{"sku":"plain"}`)
	if j, r := h.Job(t, id); j.Precheck != nil {
		t.Errorf("non-JSON pre-check answer attached: %s", r.Body)
	}
	// Let the worker finish, so that Redis stands still.
	h.WaitState(t, id, jobs.StateSucceeded)
	Eventually(t, WaitTimeout, func() (bool, string) {
		tasks := h.TaskIDs(t)
		return len(tasks) == 0, fmt.Sprintf("tasks %v left", tasks)
	})

	before := h.Keys(t)
	calls := len(h.Upstream.AllCalls())
	requireExactProblem(t, "409 with a body", h.PostJSON(t, "/v1/orders", `{"sku":"sold-out"}`),
		wantProblem{409, "precheck-refused", `the pre-check refused the request: {"reason":"sold out"}`, nil})
	requireExactProblem(t, "410 without a body", h.PostJSON(t, "/v1/orders", `{"sku":"gone"}`),
		wantProblem{410, "precheck-refused", "the pre-check refused the request", nil})
	requireExactProblem(t, "a redirect", h.PostJSON(t, "/v1/orders", `{"sku":"moved"}`),
		wantProblem{422, "precheck-refused", "the pre-check refused the request", nil})
	requireUnchanged(t, h, "a refused pre-check", before)
	if n := len(h.Upstream.AllCalls()); n != calls {
		t.Errorf("the upstream was called %d times for refused requests", n-calls)
	}
}

// TestPrecheckBreaker: a pre-check that cannot answer makes the gateway
// answer 503; after a few failures its breaker answers 503 without calling
// it, and lets a probe through a moment later.
func TestPrecheckBreaker(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var healthy atomic.Bool
	pre := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(pre.Close)
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "orders", Path: "/v1/orders", Upstream: "/orders", Precheck: &gateway.Precheck{URL: pre.URL}},
		// A long timeout, so that waiting for it cannot pass for "at once".
		{Name: "closed", Path: "/v1/closed", Upstream: "/closed", Precheck: &gateway.Precheck{URL: closedURL(t), Timeout: time.Minute}},
	}})
	unavailable := wantProblem{503, "precheck-unavailable", "the pre-check of this route is unavailable; nothing was stored, retry later", nil}

	// Nothing listens: 503 at once, not after the pre-check's timeout.
	before := h.Keys(t)
	start := time.Now()
	r := h.PostJSON(t, "/v1/closed", `{}`)
	requireExactProblem(t, "closed port", r, unavailable)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("closed port: answered after %s, as if waiting for the timeout", took)
	}

	// A failing pre-check: the breaker opens after 5 consecutive failures.
	const trip = 5
	for i := range trip {
		r := h.PostJSON(t, "/v1/orders", `{}`)
		requireExactProblem(t, "failing pre-check", r, unavailable)
		if got := r.Header.Get("Retry-After"); got != "1" {
			t.Errorf("failure %d: Retry-After %q, want 1", i+1, got)
		}
	}
	if n := calls.Load(); n != trip {
		t.Fatalf("pre-check called %d times, want %d", n, trip)
	}
	r = h.PostJSON(t, "/v1/orders", `{}`)
	requireExactProblem(t, "open breaker", r, unavailable)
	if n := calls.Load(); n != trip {
		t.Errorf("the open breaker let a call through: %d calls, want %d", n, trip)
	}
	// The breaker stays open 1s; the client is told to come back after it.
	if got := r.Header.Get("Retry-After"); got != "2" {
		t.Errorf("open breaker: Retry-After %q, want 2", got)
	}
	requireUnchanged(t, h, "an unavailable pre-check", before)

	// Once the pre-check is back, the breaker lets a probe through by itself.
	healthy.Store(true)
	var id string
	Eventually(t, 5*time.Second, func() (bool, string) {
		r := h.PostJSON(t, "/v1/orders", `{}`)
		if r.Status == http.StatusAccepted {
			id = requireAccepted(t, "after recovery", r).ID
			return true, ""
		}
		return false, "still " + string(r.Body)
	})
	if n := calls.Load(); n != trip+1 {
		t.Errorf("pre-check called %d times, want %d: one probe", n, trip+1)
	}
	if ids := h.JobIDs(t, gateway.DefaultTenant); len(ids) != 1 || ids[0] != id {
		t.Errorf("jobs %v, want only %s", ids, id)
	}
}
