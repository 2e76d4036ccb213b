package e2e

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// requireAccepted checks a 202 answer and returns its body.
func requireAccepted(t *testing.T, what string, r *Response) gateway.Accepted {
	t.Helper()
	if r.Status != http.StatusAccepted {
		t.Fatalf("%s: status %d, want 202; body %s", what, r.Status, r.Body)
	}
	var a gateway.Accepted
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("%s: decode %q: %v", what, r.Body, err)
	}
	if !idPattern.MatchString(a.ID) || r.Header.Get("Location") != "/v1/jobs/"+a.ID {
		t.Fatalf("%s: id %q, Location %q", what, a.ID, r.Header.Get("Location"))
	}
	return a
}

// TestExactlyOnceAccept sends one request 50 times at once with the same
// Idempotency-Key: exactly one job is stored, every answer is that job's
// 202 (replays marked Idempotent-Replayed), and the key keeps replaying
// the original 202 after the job ended.
func TestExactlyOnceAccept(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(okJSON)
	const n = 50
	body := []byte(`{"sku":"once"}`)
	header := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {`"order-7f3a"`}}

	type answer struct {
		r   *Response
		err error
	}
	answers := make([]answer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := h.Send(http.MethodPost, "/v1/orders", body, header)
			answers[i] = answer{r, err}
		})
	}
	close(start)
	wg.Wait()

	var id string
	accepted, replayed := 0, 0
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("request %d: %v", i, a.err)
		}
		switch a.r.Status {
		case http.StatusAccepted:
			acc := requireAccepted(t, "request", a.r)
			if id == "" {
				id = acc.ID
			}
			if acc.ID != id || acc.State != jobs.StateQueued {
				t.Errorf("request %d: 202 for job %s (%s), want job %s queued", i, acc.ID, acc.State, id)
			}
			if a.r.Header.Get("Idempotent-Replayed") == "true" {
				replayed++
			} else {
				accepted++
			}
		default:
			// The key is stored with the job in one step: a racing
			// duplicate finds it there, never half-claimed (409).
			t.Errorf("request %d: status %d, want 202; body %s", i, a.r.Status, a.r.Body)
		}
	}
	t.Logf("%d accepted, %d replayed", accepted, replayed)
	if accepted != 1 {
		t.Errorf("%d answers accepted a new job (without Idempotent-Replayed), want exactly 1", accepted)
	}
	if ids := h.JobIDs(t, gateway.DefaultTenant); len(ids) != 1 || ids[0] != id {
		t.Fatalf("job records %v, want exactly [%s]", ids, id)
	}

	// After the job ended the key still stands for it.
	h.WaitState(t, id, jobs.StateSucceeded)
	r := h.Do(t, http.MethodPost, "/v1/orders", body, header)
	if a := requireAccepted(t, "replay after the end", r); a.ID != id || a.State != jobs.StateQueued {
		t.Errorf("replay after the end: job %s (%s), want %s queued as first answered", a.ID, a.State, id)
	}
	if r.Header.Get("Idempotent-Replayed") != "true" || r.Header.Get("Retry-After") == "" {
		t.Errorf("replay after the end: Idempotent-Replayed %q, Retry-After %q", r.Header.Get("Idempotent-Replayed"), r.Header.Get("Retry-After"))
	}
	if ids := h.JobIDs(t, gateway.DefaultTenant); len(ids) != 1 {
		t.Errorf("job records %v after the replay, want 1", ids)
	}
	if calls := h.Upstream.AllCalls(); len(calls) != 1 {
		t.Errorf("upstream called %d times, want 1", len(calls))
	}
	// The bare-token form of the same key is the same key.
	r = h.Do(t, http.MethodPost, "/v1/orders", body, http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"order-7f3a"}})
	if a := requireAccepted(t, "bare token", r); a.ID != id {
		t.Errorf("bare token: job %s, want %s", a.ID, id)
	}
}

// TestIdempotencyKeyPerTenant: tenants use the same Idempotency-Key
// independently; each gets its own job, and replays stay within the
// tenant.
func TestIdempotencyKeyPerTenant(t *testing.T) {
	t.Parallel()
	keyA, digestA := gateway.NewKey()
	keyB, digestB := gateway.NewKey()
	h := Start(t, Options{
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digestA}},
			{Name: "globex", KeySHA256: []string{digestB}},
		}},
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
	})
	pauseQueues(t, h, h.Queues.Default)
	a, b := h.As(keyA), h.As(keyB)
	header := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {"shared"}}

	ra := a.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), header)
	ja := requireAccepted(t, "acme", ra)
	// The same request from another tenant is a new job...
	rb := b.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), header)
	jb := requireAccepted(t, "globex, same body", rb)
	if jb.ID == ja.ID || rb.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("globex got acme's job %s (replayed %q)", jb.ID, rb.Header.Get("Idempotent-Replayed"))
	}
	// ... and each tenant's replay is its own.
	if r := a.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), header); requireAccepted(t, "acme replay", r).ID != ja.ID {
		t.Errorf("acme replay: %s, want %s", r.Body, ja.ID)
	}
	if r := b.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), header); requireAccepted(t, "globex replay", r).ID != jb.ID {
		t.Errorf("globex replay: %s, want %s", r.Body, jb.ID)
	}
	// A different body under the same key is refused within a tenant.
	requireExactProblem(t, "globex, other body", b.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":2}`), header),
		wantProblem{422, "idempotency-key-reused", "this Idempotency-Key was used for a different request (method, path or body)", nil})
	if ids := h.JobIDs(t, "acme"); len(ids) != 1 || ids[0] != ja.ID {
		t.Errorf("acme jobs %v, want [%s]", ids, ja.ID)
	}
	if ids := h.JobIDs(t, "globex"); len(ids) != 1 || ids[0] != jb.ID {
		t.Errorf("globex jobs %v, want [%s]", ids, jb.ID)
	}
}
