package gateway

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/ratelimit"
)

// TestRejectReason: each problem a write can end in is counted under the
// reason operators alert on.
func TestRejectReason(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status int
		slug   string
		want   string
	}{
		{http.StatusUnauthorized, "unauthorized", "auth"},
		{http.StatusForbidden, "forbidden", "auth"},
		{http.StatusBadRequest, "bad-idempotency-key", "idempotency"},
		{http.StatusBadRequest, "idempotency-key-required", "idempotency"},
		{http.StatusConflict, "idempotency-key-in-use", "idempotency"},
		{http.StatusUnprocessableEntity, "idempotency-key-reused", "idempotency"},
		{http.StatusTooManyRequests, "rate-limited", "rate_limit"},
		{http.StatusServiceUnavailable, "overloaded", "backpressure"},
		{http.StatusServiceUnavailable, "unavailable", "redis_unavailable"},
		{http.StatusServiceUnavailable, "precheck-unavailable", "precheck"},
		{http.StatusConflict, "precheck-refused", "precheck"},
		{http.StatusBadRequest, "validation", "validation"},
		{http.StatusBadRequest, "malformed-json", "validation"},
		{http.StatusBadRequest, "bad-callback-url", "validation"},
		{http.StatusRequestEntityTooLarge, "body-too-large", "validation"},
		{http.StatusUnsupportedMediaType, "unsupported-media-type", "validation"},
		{http.StatusInternalServerError, "internal", "other"},
	} {
		if got := rejectReason(problem(tt.status, tt.slug, "")); got != tt.want {
			t.Errorf("rejectReason(%d %s) = %q, want %q", tt.status, tt.slug, got, tt.want)
		}
	}
}

// labelRecorder is a Metrics that keeps the labels it was given.
type labelRecorder struct {
	nopMetrics
	mu          sync.Mutex
	http        []Endpoint
	accepted    [][2]string // queue, type
	rateLimited [][2]string // tenant, route
}

func (r *labelRecorder) ObserveHTTP(route, method string, _ int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.http = append(r.http, Endpoint{Method: method, Path: route})
}

func (r *labelRecorder) Accepted(queue, jobType string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted = append(r.accepted, [2]string{queue, jobType})
}

func (r *labelRecorder) RateLimited(tenant, route string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rateLimited = append(r.rateLimited, [2]string{tenant, route})
}

// TestSeries: the label values Series announces are the ones the gateway
// then reports, so that the series made at start-up are the ones that
// count, not twins of them.
func TestSeries(t *testing.T) {
	t.Parallel()
	rec := &labelRecorder{}
	g, err := New(Config{
		Queues: []string{"critical", "default", "low"},
		Routes: []Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "http://127.0.0.1:9/orders", Priorities: []string{"critical"}},
			{Name: "items", Method: "put", Path: "/v1/orders/:id/items", Upstream: "http://127.0.0.1:9/orders/:id/items", Queue: "low"},
			{Name: "limited", Path: "/v1/limited", Upstream: "http://127.0.0.1:9/limited", RateLimit: &ratelimit.Limit{Rate: 0.001, Burst: 1}},
			{Name: "checked", Path: "/v1/checked", Upstream: "http://127.0.0.1:9/checked", Precheck: &Precheck{URL: "http://127.0.0.1:9/check"}},
		},
		Types: []Type{{Name: "resize", Queue: "low"}},
	}, Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}, Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	s := g.Series()

	wantWrites := []Endpoint{
		{"POST", "/v1/checked"}, {"POST", "/v1/jobs"}, {"POST", "/v1/limited"},
		{"POST", "/v1/orders"}, {"PUT", "/v1/orders/:id/items"},
	}
	if !slices.Equal(s.Writes, wantWrites) {
		t.Errorf("Writes %v, want %v", s.Writes, wantWrites)
	}
	wantJobs := map[string][]string{
		"orders":  {"critical", "default"},
		"items":   {"critical", "default", "low"},
		"limited": {"critical", "default", "low"},
		"checked": {"critical", "default", "low"},
		"resize":  {"critical", "default", "low"},
	}
	if !maps.EqualFunc(s.Jobs, wantJobs, slices.Equal) {
		t.Errorf("Jobs %v, want %v", s.Jobs, wantJobs)
	}
	if want := map[string][]string{"limited": {DefaultTenant}}; !maps.EqualFunc(s.RateLimited, want, slices.Equal) {
		t.Errorf("RateLimited %v, want %v", s.RateLimited, want)
	}
	if want := map[string][]string{"redis": {"redis"}, "precheck": {"precheck:checked"}}; !maps.EqualFunc(s.Breakers, want, slices.Equal) {
		t.Errorf("Breakers %v, want %v", s.Breakers, want)
	}

	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/orders", `{}`},
		{"PUT", "/v1/orders/7/items", `{}`},
		{"POST", "/v1/jobs", `{"type":"resize","payload":{},"priority":"critical"}`},
		{"POST", "/v1/limited", `{}`},
		{"POST", "/v1/limited", `{}`}, // over the limit
	} {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted && w.Code != http.StatusTooManyRequests {
			t.Fatalf("%s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.http {
		if !slices.Contains(s.Writes, e) {
			t.Errorf("a request was counted as %v, which Writes does not list", e)
		}
	}
	for _, a := range rec.accepted {
		if !slices.Contains(s.Jobs[a[1]], a[0]) {
			t.Errorf("a job was counted as type %s in queue %s, which Jobs does not list", a[1], a[0])
		}
	}
	if len(rec.accepted) != 4 {
		t.Errorf("%d accepted, want 4", len(rec.accepted))
	}
	if want := [][2]string{{DefaultTenant, "limited"}}; !slices.Equal(rec.rateLimited, want) {
		t.Errorf("rate limited counted as %v, want %v", rec.rateLimited, want)
	}
}

// TestReadiness: each reason /readyz gives comes from Readiness, which the
// process also calls on its own.
func TestReadiness(t *testing.T) {
	t.Parallel()
	down := errors.New("dial tcp: connection refused")
	var ping atomic.Pointer[error]
	g, err := New(Config{}, Deps{
		Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{},
		Ping: func(context.Context) error {
			if e := ping.Load(); e != nil {
				return *e
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := g.Readiness(t.Context()); len(r) != 0 {
		t.Errorf("Readiness %q, want none", r)
	}
	ping.Store(&down)
	if r := g.Readiness(t.Context()); !slices.Equal(r, []string{"redis unreachable: " + down.Error()}) {
		t.Errorf("Readiness with Redis down: %q", r)
	}
	ping.Store(nil)
	g.Stop()
	if r := g.Readiness(t.Context()); !slices.Equal(r, []string{"shutting down"}) {
		t.Errorf("Readiness after Stop: %q", r)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "shutting down") {
		t.Errorf("/readyz after Stop: %d %s", w.Code, w.Body)
	}
}
