package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestRedisDown kills the gateway's Redis: submits are refused at once
// with 503 (never hang), /readyz says not ready, and when Redis is back
// the gateway accepts again by itself. Nothing is half-stored.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithAOF())
	h := Start(t, Options{
		Redis:  srv,
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
	})
	h.Upstream.Handle(okJSON)
	before := h.Submit(t, "/v1/orders", `{"n":0}`)
	h.WaitState(t, before, jobs.StateSucceeded)
	accepted := []string{before}
	// A live stream of the tenant's events, open across the outage.
	stream := h.Events(t, "/v1/events", "")

	srv.Kill()
	unavailable := wantProblem{503, "unavailable", "the queue is unavailable; nothing was stored, try again later", nil}
	for i := range 12 {
		header := http.Header{"Content-Type": {"application/json"}}
		if i%2 == 1 {
			header.Set("Idempotency-Key", "during-outage-"+strconv.Itoa(i))
		}
		start := time.Now()
		r := h.Do(t, http.MethodPost, "/v1/orders", []byte(fmt.Sprintf(`{"n":%d}`, i+1)), header)
		took := time.Since(start)
		requireExactProblem(t, fmt.Sprintf("submit %d while Redis is down", i), r, unavailable)
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("submit %d: Retry-After %q", i, r.Header.Get("Retry-After"))
		}
		if took > time.Second {
			t.Errorf("submit %d: answered after %s, want well under 1s", i, took)
		}
	}
	// Reads are unavailable too, not broken.
	var r *Response
	for _, call := range []struct{ method, path string }{
		{http.MethodGet, "/v1/jobs/" + before},
		{http.MethodGet, "/v1/jobs/" + before + "/result"},
		{http.MethodGet, "/v1/jobs/" + before + "/events"},
		{http.MethodGet, "/v1/events"},
		{http.MethodDelete, "/v1/jobs/" + before},
	} {
		r = h.Do(t, call.method, call.path, nil, nil)
		requireExactProblem(t, call.method+" "+call.path+" while Redis is down", r,
			wantProblem{503, "unavailable", "the job store is unreachable; try again later", nil})
	}
	start := time.Now()
	if r := h.Do(t, http.MethodGet, "/readyz", nil, nil); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz while Redis is down: status %d; body %s", r.Status, r.Body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("/readyz answered after %s", took)
	}

	srv.Restart(t)
	Eventually(t, 10*time.Second, func() (bool, string) {
		r := h.PostJSON(t, "/v1/orders", `{"n":"after"}`)
		if r.Status == http.StatusAccepted {
			accepted = append(accepted, requireAccepted(t, "after restart", r).ID)
			return true, ""
		}
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("after restart: status %d, want 503 until Redis is usable, then 202; body %s", r.Status, r.Body)
		}
		return false, "still " + string(r.Body)
	})
	// A key used during the outage was never taken.
	r = h.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":2}`), http.Header{
		"Content-Type": {"application/json"}, "Idempotency-Key": {"during-outage-1"}})
	a := requireAccepted(t, "key used during the outage", r)
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("a key used during the outage replays job %s", a.ID)
	}
	accepted = append(accepted, a.ID)
	for _, id := range accepted[1:] {
		h.WaitState(t, id, jobs.StateSucceeded)
	}
	// The stream opened before the outage carries the jobs accepted after
	// it to their ends, without the client reconnecting.
	ended := map[string]bool{}
	for len(ended) < len(accepted)-1 {
		ev := stream.Next(t)
		var j jobs.Job
		if err := json.Unmarshal(ev.Data, &j); err == nil && j.State == jobs.StateSucceeded && slices.Contains(accepted[1:], j.ID) {
			ended[j.ID] = true
		}
	}
	Eventually(t, 10*time.Second, func() (bool, string) {
		r := h.Do(t, http.MethodGet, "/readyz", nil, nil)
		return r.Status == http.StatusOK, "/readyz: " + string(r.Body)
	})

	// Redis holds exactly the accepted jobs: the one from before the
	// outage survived (AOF), nothing of the refused ones exists.
	ids := h.JobIDs(t, gateway.DefaultTenant)
	slices.Sort(ids)
	slices.Sort(accepted)
	if !slices.Equal(ids, accepted) {
		t.Errorf("job records %v, want exactly the accepted %v", ids, accepted)
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		tasks := h.TaskIDs(t)
		return len(tasks) == 0, fmt.Sprintf("tasks %v left after every job ended (accepted %v)", tasks, accepted)
	})
	if n := len(h.Upstream.AllCalls()); n != len(accepted) {
		t.Errorf("upstream called %d times, want %d", n, len(accepted))
	}
}
