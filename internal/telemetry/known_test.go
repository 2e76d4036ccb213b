package telemetry

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/jobs"
)

// series lists the series of a metric in m as name{label="value",...}
// with their values (histograms by their count).
func series(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			var ls []string
			for _, lp := range s.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			v := s.GetCounter().GetValue() + s.GetGauge().GetValue() + float64(s.GetHistogram().GetSampleCount())
			out["{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

// seriesCount counts every series of m.
func seriesCount(t *testing.T, m *Metrics) int {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

func primed() Known {
	return Known{
		Gateway: &KnownGateway{
			Writes:      []Endpoint{{Method: "POST", Route: "/v1/orders"}, {Method: "POST", Route: "/v1/jobs"}},
			Jobs:        map[string][]string{"orders": {"critical", "default"}},
			RateLimited: map[string][]string{"orders": {"acme", "globex"}},
			Breakers:    map[string][]string{"redis": {"redis"}, "precheck": {"precheck:orders"}},
			Queues:      []string{"critical", "default", "webhooks"},
		},
		Worker: &KnownWorker{
			Jobs:      map[string][]string{"orders": {"critical", "default"}, "webhook": {"webhooks"}},
			Queues:    []string{"critical", "default", "webhooks"},
			Upstreams: []string{"orders.internal:8443"},
			Senders:   []string{"webhook"},
		},
		Tenants: []string{"acme", "globex"},
	}
}

// TestPrime: the series the configuration tells of exist at zero (a
// breaker closed) before anything happens.
func TestPrime(t *testing.T) {
	t.Parallel()
	m := NewMetrics("test")
	m.Prime(primed())
	for name, want := range map[string][]string{
		"asyncgw_http_requests_total": {"{code=202,method=POST,route=/v1/jobs}", "{code=202,method=POST,route=/v1/orders}"},
		"asyncgw_jobs_accepted_total": {"{queue=critical,type=orders}", "{queue=default,type=orders}"},
		"asyncgw_jobs_rejected_total": {
			"{reason=auth}", "{reason=backpressure}", "{reason=idempotency}", "{reason=other}",
			"{reason=precheck}", "{reason=rate_limit}", "{reason=redis_unavailable}", "{reason=validation}",
		},
		"asyncgw_rate_limited_total": {"{route=orders,tenant=acme}", "{route=orders,tenant=globex}"},
		"asyncgw_breaker_state": {
			"{kind=precheck,name=precheck:orders}", "{kind=redis,name=redis}", "{kind=upstream,name=orders.internal:8443}",
		},
		"asyncgw_jobs_replayed_total":      {"{queue=critical}", "{queue=default}", "{queue=webhooks}"},
		"asyncgw_sse_subscribers":          {"{scope=job}", "{scope=tenant}"},
		"asyncgw_webhook_deliveries_total": {"{outcome=delivered}", "{outcome=disabled}", "{outcome=gone}", "{outcome=refused}", "{outcome=retry}"},
		"asyncgw_job_queue_wait_seconds":   {"{queue=critical}", "{queue=default}", "{queue=webhooks}"},
	} {
		got := series(t, m, name)
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, want) {
			t.Errorf("%s: series %q, want %q", name, keys, want)
		}
		for k, v := range got {
			if v != 0 {
				t.Errorf("%s%s = %v, want 0", name, k, v)
			}
		}
	}
	completed := series(t, m, "asyncgw_jobs_completed_total")
	for _, k := range []string{
		"{queue=default,state=canceled,type=orders}", "{queue=default,state=dead,type=orders}",
		"{queue=webhooks,state=succeeded,type=webhook}",
	} {
		if _, ok := completed[k]; !ok {
			t.Errorf("asyncgw_jobs_completed_total%s not primed; have %v", k, slices.Sorted(maps.Keys(completed)))
		}
	}
	if _, ok := completed["{queue=webhooks,state=canceled,type=webhook}"]; ok {
		t.Errorf("webhook deliveries primed as canceled by the gateway, which never cancels them")
	}
	transitions := series(t, m, "asyncgw_breaker_transitions_total")
	if len(transitions) != 4*3 {
		t.Errorf("asyncgw_breaker_transitions_total: %d series, want 3 states of 4 kinds: %v", len(transitions), slices.Sorted(maps.Keys(transitions)))
	}
}

// TestPrimeThenEvents: events count into the primed series, not into
// twins of them.
func TestPrimeThenEvents(t *testing.T) {
	t.Parallel()
	m := NewMetrics("test")
	m.Prime(primed())
	before := seriesCount(t, m)
	h := m.WorkerHooks()
	j := &jobs.Job{Queue: "default", Type: "orders", State: jobs.StateDead, Tenant: "acme"}
	h.Ended(j)
	h.Started(j, time.Second)
	h.Attempted(j, jobs.StateDead, time.Second)
	h.BreakerChanged("orders.internal:8443", breaker.Closed, breaker.Open)
	m.Accepted("critical", "orders")
	m.Rejected(ReasonRateLimit)
	m.RateLimited("acme", "orders")
	m.ObserveHTTP("/v1/orders", "POST", 202, time.Millisecond)
	m.BreakerChanged("redis", "redis", breaker.Open)
	m.Replayed("default")
	m.WebhookAttempt("gone")
	if after := seriesCount(t, m); after != before {
		t.Errorf("%d series after the events, %d before: an event made a series Prime did not", after, before)
	}
	if v := series(t, m, "asyncgw_jobs_started_total")["{queue=default,tenant=acme}"]; v != 1 {
		t.Errorf("jobs started by acme on default: %v, want 1", v)
	}
	if v := series(t, m, "asyncgw_breaker_state")["{kind=upstream,name=orders.internal:8443}"]; v != 2 {
		t.Errorf("upstream breaker state %v, want 2 (open)", v)
	}
}

// TestPrimeRoles: a gateway-only process has no worker series and the
// other way round.
func TestPrimeRoles(t *testing.T) {
	t.Parallel()
	k := primed()
	gw := NewMetrics("test")
	gw.Prime(Known{Gateway: k.Gateway})
	wk := NewMetrics("test")
	wk.Prime(Known{Worker: k.Worker})
	for _, name := range []string{"asyncgw_job_run_seconds", "asyncgw_job_queue_wait_seconds", "asyncgw_webhook_deliveries_total"} {
		if got := series(t, gw, name); len(got) > 0 {
			t.Errorf("gateway: %s has %d series", name, len(got))
		}
	}
	for _, name := range []string{"asyncgw_http_requests_total", "asyncgw_jobs_accepted_total", "asyncgw_jobs_rejected_total", "asyncgw_rate_limited_total", "asyncgw_sse_subscribers"} {
		if got := series(t, wk, name); len(got) > 0 {
			t.Errorf("worker: %s has %d series", name, len(got))
		}
	}
}
