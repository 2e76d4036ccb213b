package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestPreferWait: with Prefer: wait=N the gateway holds the answer until
// the job ends (200 with the job resource) or N seconds, capped by
// MaxWait, have passed (the usual 202).
func TestPreferWait(t *testing.T) {
	t.Parallel()
	routes := []gateway.Route{
		{Name: "fast", Path: "/v1/fast", Upstream: "/fast"},
		{Name: "slow", Path: "/v1/slow", Upstream: "/slow", Timeout: time.Minute},
	}
	// slowUpstream answers /fast at once and holds /slow until the test
	// ends.
	slowUpstream := func(h *Harness) {
		h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
			if c.Path == "/slow" {
				if !hold(h.Upstream, r, nil) {
					return
				}
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"done":true}`))
		})
	}
	post := func(t *testing.T, h *Harness, path, prefer string) (*Response, time.Duration) {
		t.Helper()
		start := time.Now()
		r := h.Do(t, http.MethodPost, path, []byte(`{}`), http.Header{
			"Content-Type": {"application/json"}, "Prefer": {prefer}})
		return r, time.Since(start)
	}

	t.Run("ends in time", func(t *testing.T) {
		t.Parallel()
		h := Start(t, Options{Routes: routes})
		slowUpstream(h)
		r, took := post(t, h, "/v1/fast", "wait=5")
		if r.Status != http.StatusOK {
			t.Fatalf("status %d after %s, want 200; body %s", r.Status, took, r.Body)
		}
		j := decodeJob(t, r.Body)
		if j.State != jobs.StateSucceeded || j.Result == nil || !jsonEqual(t, j.Result.Body, []byte(`{"done":true}`)) {
			t.Errorf("job resource %s, want succeeded with the upstream's answer", r.Body)
		}
		if got := r.Header.Get("Preference-Applied"); got != "wait=5" {
			t.Errorf("Preference-Applied %q, want wait=5", got)
		}
		if got := r.Header.Get("Location"); got != "/v1/jobs/"+j.ID {
			t.Errorf("Location %q, want /v1/jobs/%s", got, j.ID)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		// The answer is the job as GET shows it.
		if _, g := h.Job(t, j.ID); !jsonEqual(t, g.Body, r.Body) {
			t.Errorf("200 body %s differs from GET %s", r.Body, g.Body)
		}
	})

	t.Run("does not end in time", func(t *testing.T) {
		t.Parallel()
		h := Start(t, Options{Routes: routes})
		slowUpstream(h)
		r, took := post(t, h, "/v1/slow", "wait=1")
		a := requireAccepted(t, "wait=1", r)
		if took < time.Second || took > 5*time.Second {
			t.Errorf("202 after %s, want about 1s", took)
		}
		if r.Header.Get("Preference-Applied") != "" {
			t.Errorf("Preference-Applied %q on a 202", r.Header.Get("Preference-Applied"))
		}
		if a.State != jobs.StateQueued {
			t.Errorf("state %s, want queued as on any 202", a.State)
		}
		// Other preferences are ignored, wait=0 does not wait.
		r, took = post(t, h, "/v1/slow", "respond-async, wait=0")
		requireAccepted(t, "wait=0", r)
		if took > 900*time.Millisecond {
			t.Errorf("wait=0: 202 after %s, want at once", took)
		}
	})

	// The longest wait there is, the default gateway.max_wait (30s, the
	// server's write timeout for ordinary answers), still gets its 202.
	t.Run("exactly the default max_wait", func(t *testing.T) {
		t.Parallel()
		h := Start(t, Options{Routes: routes})
		slowUpstream(h)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.URL+"/v1/slow", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Prefer", "wait=30")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("wait=30 got no answer after %s: %v", time.Since(start), err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("wait=30: answer cut after %s: %v", time.Since(start), err)
		}
		requireAccepted(t, "wait=30", &Response{Status: resp.StatusCode, Header: resp.Header, Body: body})
		if took := time.Since(start); took < 30*time.Second {
			t.Errorf("202 after %s, want after the whole 30s wait", took)
		}
	})

	t.Run("capped by MaxWait", func(t *testing.T) {
		t.Parallel()
		h := Start(t, Options{Routes: routes, MaxWait: time.Second})
		slowUpstream(h)
		r, took := post(t, h, "/v1/slow", "wait=30")
		requireAccepted(t, "wait=30", r)
		if took < time.Second || took > 5*time.Second {
			t.Errorf("202 after %s, want about 1s (the cap), not 30s", took)
		}
		r, _ = post(t, h, "/v1/fast", "wait=30")
		if r.Status != http.StatusOK || r.Header.Get("Preference-Applied") != "wait=1" {
			t.Errorf("fast job: status %d, Preference-Applied %q; want 200 and wait=1 (what was applied)",
				r.Status, r.Header.Get("Preference-Applied"))
		}
	})
}
