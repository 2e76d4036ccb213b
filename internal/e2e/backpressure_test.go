package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs/submit"
)

// TestBackpressure fills a queue that a slow worker drains: once the
// queue is over its depth limit the gateway answers 503 with a Retry-After
// computed from the live drain rate, its 202s carry a Retry-After
// estimated from the backlog, and jobs are accepted again once it drained.
func TestBackpressure(t *testing.T) {
	t.Parallel()
	const limit = 3
	h := Start(t, Options{
		Routes:      []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
		Concurrency: 1,
		Monitor:     50 * time.Millisecond,
		QueueLimits: map[string]int{"default": limit},
	})
	// A slow upstream: about 10 jobs a second with one worker.
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-h.Upstream.Released():
			return
		case <-r.Context().Done():
			return
		}
		okJSON(w, r, c)
	})
	q := h.Queues.Default

	var accepted, estimated int
	var refused *Response
	var reading submit.QueueStats
	Eventually(t, WaitTimeout, func() (bool, string) {
		// A reading that did not change during the request is the one the
		// gateway decided on.
		s1 := h.Monitor.Stats(q)
		est := h.Monitor.EstimateWait(q, "default")
		r := h.PostJSON(t, "/v1/orders", `{}`)
		s2 := h.Monitor.Stats(q)
		same := s1.At.Equal(s2.At) && !s1.At.IsZero()
		switch r.Status {
		case http.StatusAccepted:
			accepted++
			if same {
				estimated++
				if got, want := r.Header.Get("Retry-After"), strconv.Itoa(submit.RetryAfterSeconds(est, 3600)); got != want {
					t.Errorf("202 with %+v: Retry-After %s, want %s", s1, got, want)
				}
			}
		case http.StatusServiceUnavailable:
			if same && s1.DrainRate > 0 {
				refused, reading = r, s1
				return true, ""
			}
		default:
			t.Fatalf("status %d, want 202 or 503; body %s", r.Status, r.Body)
		}
		return false, fmt.Sprintf("no 503 from a reading with a drain rate yet (last %d, %+v)", r.Status, s2)
	})
	if reading.Depth < limit {
		t.Errorf("503 with depth %d under the limit %d", reading.Depth, limit)
	}
	requireExactProblem(t, "over the limit", refused, wantProblem{503, "overloaded",
		fmt.Sprintf("queue %q is over its depth limit (%d waiting); nothing was stored, retry later", q, reading.Depth), nil})
	wait := time.Duration(float64(reading.Depth-limit+1) / reading.DrainRate * float64(time.Second))
	if got, want := refused.Header.Get("Retry-After"), strconv.Itoa(submit.RetryAfterSeconds(wait, 300)); got != want {
		t.Errorf("Retry-After %s, want %s from depth %d and drain rate %.2f/s", got, want, reading.Depth, reading.DrainRate)
	}

	// As the queue drains, jobs are accepted again.
	Eventually(t, WaitTimeout, func() (bool, string) {
		n := accepted
		s1 := h.Monitor.Stats(q)
		est := h.Monitor.EstimateWait(q, "default")
		r := h.PostJSON(t, "/v1/orders", `{}`)
		s2 := h.Monitor.Stats(q)
		switch r.Status {
		case http.StatusAccepted:
			accepted++
			if s1.At.Equal(s2.At) {
				estimated++
				if got, want := r.Header.Get("Retry-After"), strconv.Itoa(submit.RetryAfterSeconds(est, 3600)); got != want {
					t.Errorf("202 with %+v: Retry-After %s, want %s", s1, got, want)
				}
			}
		case http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d, want 202 or 503; body %s", r.Status, r.Body)
		}
		return accepted > n && estimated > 0, fmt.Sprintf("still refused at depth %d", s2.Depth)
	})
	t.Logf("accepted %d (%d Retry-After checked), refused at depth %d draining %.2f/s: Retry-After %s",
		accepted, estimated, reading.Depth, reading.DrainRate, refused.Header.Get("Retry-After"))
	if ids := h.JobIDs(t, gateway.DefaultTenant); len(ids) != accepted {
		t.Errorf("%d job records, want the %d accepted", len(ids), accepted)
	}
}
