package e2e

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// readUntilEnd reads tenant events until job id's terminal event and
// returns every event read, failing if more than limit come first.
func readUntilEnd(t *testing.T, st *Stream, id string, limit int) []tenantEvent {
	t.Helper()
	var got []tenantEvent
	for {
		if len(got) == limit {
			t.Fatalf("read %d events without the end of job %s", limit, id)
		}
		ev := nextTenantEvent(t, st)
		got = append(got, ev)
		if ev.job.ID == id && ev.job.State.Terminal() {
			return got
		}
	}
}

// TestTenantIsolation: a tenant cannot see, follow or cancel another
// tenant's job, and gets exactly the answer it would get for a job that
// does not exist; its event stream carries only its own jobs.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	keyA, digestA := gateway.NewKey()
	keyB, digestB := gateway.NewKey()
	h := Start(t, Options{
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digestA}},
			{Name: "globex", KeySHA256: []string{digestB}},
		}},
		Routes: []gateway.Route{
			{Name: "slow", Path: "/v1/slow", Upstream: "/slow", Timeout: time.Minute},
			{Name: "fine", Path: "/v1/fine", Upstream: "/fine"},
		},
	})
	arrived := make(chan struct{}, 1)
	proceed := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if c.Path == "/slow" {
			arrived <- struct{}{}
			if !hold(h.Upstream, r, proceed) {
				return
			}
		}
		okJSON(w, r, c)
	})
	a, b := h.As(keyA), h.As(keyB)

	// Tenant B opens its stream before anything happens.
	streamB := b.Events(t, "/v1/events", "")

	live := a.Submit(t, "/v1/slow", `{}`)
	recv(t, arrived, "the upstream call of the live job")
	a.WaitState(t, live, jobs.StateRunning)
	done := a.Submit(t, "/v1/fine", `{}`)
	a.WaitState(t, done, jobs.StateSucceeded)
	missing := jobs.NewID()

	endpoints := []struct{ method, suffix string }{
		{http.MethodGet, ""},
		{http.MethodGet, "/result"},
		{http.MethodGet, "/events"},
		{http.MethodDelete, ""},
	}
	for _, ep := range endpoints {
		want := b.Do(t, ep.method, "/v1/jobs/"+missing+ep.suffix, nil, nil)
		requireExactProblem(t, ep.method+" missing"+ep.suffix, want, wantProblem{404, "not-found", "no such job", nil})
		for _, id := range []string{live, done} {
			what := ep.method + " " + ep.suffix + " of acme's job by globex"
			got := b.Do(t, ep.method, "/v1/jobs/"+id+ep.suffix, nil, nil)
			if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) ||
				got.Header.Get("Content-Type") != want.Header.Get("Content-Type") ||
				got.Header.Get("Retry-After") != want.Header.Get("Retry-After") {
				t.Errorf("%s: %d %s %q, want exactly the answer for a missing job: %d %s %q", what,
					got.Status, got.Header.Get("Content-Type"), got.Body, want.Status, want.Header.Get("Content-Type"), want.Body)
			}
		}
	}
	// The owner still sees both, and globex's DELETE canceled nothing.
	if j, _ := a.Job(t, live); j.State != jobs.StateRunning {
		t.Errorf("acme's live job is %s after globex's DELETE, want running", j.State)
	}
	if r := a.Do(t, http.MethodGet, "/v1/jobs/"+done+"/result", nil, nil); r.Status != http.StatusOK {
		t.Errorf("acme's result: status %d; body %s", r.Status, r.Body)
	}

	// Streams: acme's next job shows on acme's stream only, globex's on
	// globex's only.
	streamA := a.Events(t, "/v1/events", "")
	nextA := a.Submit(t, "/v1/fine", `{}`)
	evsA := readUntilEnd(t, streamA, nextA, 10)
	ownB := b.Submit(t, "/v1/fine", `{}`)
	for _, ev := range readUntilEnd(t, streamB, ownB, 10) {
		if ev.job.ID != ownB {
			t.Errorf("globex's stream carried %s of job %s", ev.Kind, ev.job.ID)
		}
	}
	lastA := a.Submit(t, "/v1/fine", `{}`)
	for _, ev := range readUntilEnd(t, streamA, lastA, 10) {
		if ev.job.ID != lastA {
			t.Errorf("acme's stream carried %s of job %s, want only %s", ev.Kind, ev.job.ID, lastA)
		}
	}
	// Resuming globex's stream from an ID of acme's gives globex's events.
	resumed := b.Events(t, "/v1/events", evsA[0].ID)
	for _, ev := range readUntilEnd(t, resumed, ownB, 10) {
		if ev.job.ID != ownB {
			t.Errorf("globex's resumed stream carried %s of job %s", ev.Kind, ev.job.ID)
		}
	}
	// And without a key, nothing at all.
	requireExactProblem(t, "stream without a key", h.Do(t, http.MethodGet, "/v1/events", nil, nil),
		wantProblem{401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>", nil})
	close(proceed)
	a.WaitState(t, live, jobs.StateSucceeded)
}
