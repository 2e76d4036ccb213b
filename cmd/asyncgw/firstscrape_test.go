package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/asyncgw/asyncgw/internal/opskit"
	"github.com/asyncgw/asyncgw/internal/redistest"
)

// Paths of the operations kit from this package's directory.
const (
	kitAlerts    = "../../" + opskit.AlertsFile
	kitDashboard = "../../" + opskit.DashboardFile
)

// Metrics the kit reads that only one kind of process exports: a worker
// serves no HTTP API, a gateway runs no jobs. Every other one is exported
// by every process.
var (
	gatewayOnly = []string{
		"asyncgw_http_requests_total", "asyncgw_http_request_duration_seconds_bucket",
		"asyncgw_jobs_accepted_total", "asyncgw_jobs_rejected_total", "asyncgw_jobs_replayed_total",
		"asyncgw_rate_limited_total", "asyncgw_sse_subscribers",
	}
	workerOnly = []string{
		"asyncgw_job_queue_wait_seconds_bucket", "asyncgw_job_run_seconds_bucket",
		"asyncgw_webhook_deliveries_total", "asyncgw_jobs_started_total",
	}
)

// kitMetrics returns every metric name that the shipped alerts and
// dashboard read, with where each is read, except up (which Prometheus
// makes, not asyncgw).
func kitMetrics(t *testing.T) map[string][]string {
	t.Helper()
	queries, err := opskit.AlertQueries(kitAlerts)
	if err != nil {
		t.Fatal(err)
	}
	dash, err := opskit.ReadDashboard(kitDashboard)
	if err != nil {
		t.Fatal(err)
	}
	queries = append(queries, dash.Queries()...)
	used := map[string][]string{}
	for _, q := range queries {
		names, err := opskit.Metrics(q.Expr)
		if err != nil {
			t.Fatalf("%s: %v", q.Where, err)
		}
		for _, n := range names {
			if n != "up" {
				used[n] = append(used[n], q.Where)
			}
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d metrics read by the kit: %v", len(used), used)
	}
	return used
}

// scrapedSetup is newSetup plus a rate-limited route, so that every kind
// of series has a label value known from the configuration.
func scrapedSetup(t *testing.T, srv *redistest.Server, up *upstream) *setup {
	t.Helper()
	s := newSetup(t, srv, up.URL+"/orders")
	s.config = writeFile(t, "asyncgw.yaml", readFile(t, s.config)+`  - name: limited
    path: /v1/limited
    upstream: `+up.URL+`/limited
    queue: `+s.queue+`
    rate_limit: {rate: 100, burst: 100}
upstreams:
  "`+strings.TrimPrefix(up.URL, "http://")+`": {concurrency: 4}
`)
	return s
}

var metricsListening = regexp.MustCompile(`msg="metrics listening" addr=(http://\S+)`)

// startScraped starts asyncgw running role ("all", "gateway" or "worker")
// on s, and returns it with the URL of its /metrics and of its gateway (""
// for a worker). A worker serves its metrics on metrics.listen.
func startScraped(t *testing.T, s *setup, role string) (p *proc, metrics, base string) {
	t.Helper()
	if role == "worker" {
		cfg := writeFile(t, "worker.yaml", readFile(t, s.config)+"metrics:\n  listen: 127.0.0.1:0\n")
		p = startAsyncgw(t, nil, "worker", "--config", cfg)
		m := metricsListening.FindStringSubmatch(p.waitLog(t, `msg="metrics listening"`, 30*time.Second))
		if m == nil {
			t.Fatalf("no metrics address in the worker's log:\n%s", p.stderr.String())
		}
		return p, m[1], ""
	}
	args := []string{"--config", s.config}
	if role != "all" {
		args = append([]string{role}, args...)
	}
	p = startAsyncgw(t, nil, args...)
	base = p.baseURL(t)
	return p, base + "/metrics", base
}

// seriesNames returns the names of the series of a scrape.
func seriesNames(t *testing.T, samples map[string]float64) map[string]bool {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	out := map[string]bool{}
	for key := range samples {
		ls, err := p.ParseMetric(key)
		if err != nil {
			t.Fatalf("sample %s: %v", key, err)
		}
		out[ls.Get("__name__")] = true
	}
	return out
}

// TestFirstScrape: the first scrape of a fresh process already has every
// metric the shipped alerts and dashboard read (those that make sense for
// the process), at zero: nothing has to happen first for a rate() to see
// the first event, for a panel to show 0 rather than "no data", or for an
// alert to be able to fire. asyncgw_ready is 1 without anyone having
// asked /readyz.
func TestFirstScrape(t *testing.T) {
	t.Parallel()
	used := kitMetrics(t)
	up := newUpstream(t, nil)
	upHost := strings.TrimPrefix(up.URL, "http://")
	for _, role := range []string{"all", "gateway", "worker"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			s := scrapedSetup(t, redistest.Shared(t), up)
			_, metricsURL, _ := startScraped(t, s, role)
			first := scrape(t, metricsURL)
			names := seriesNames(t, first)

			absent := map[string][]string{"gateway": workerOnly, "worker": gatewayOnly}[role]
			for name, where := range used {
				switch {
				case slices.Contains(absent, name) && names[name]:
					t.Errorf("%s exports %s, which only the other kind of process should", role, name)
				case !slices.Contains(absent, name) && !names[name]:
					t.Errorf("%s: the first scrape has no %s (read by %s)", role, name, strings.Join(where, "; "))
				}
			}
			want := map[string]float64{`asyncgw_ready`: 1}
			if role != "worker" {
				want[`asyncgw_breaker_state{kind="redis",name="redis"}`] = 0
				want[`asyncgw_rate_limited_total{route="limited",tenant="default"}`] = 0
				want[`asyncgw_jobs_accepted_total{queue="`+s.queue+`",type="work"}`] = 0
				want[`asyncgw_http_requests_total{code="202",method="POST",route="/v1/work"}`] = 0
				want[`asyncgw_jobs_rejected_total{reason="rate_limit"}`] = 0
			}
			if role != "gateway" {
				want[`asyncgw_breaker_state{kind="upstream",name="`+upHost+`"}`] = 0
				want[`asyncgw_breaker_transitions_total{kind="upstream",to="open"}`] = 0
				want[`asyncgw_jobs_completed_total{queue="`+s.queue+`",state="dead",type="work"}`] = 0
				want[`asyncgw_webhook_deliveries_total{outcome="retry"}`] = 0
			}
			// Read from Redis before the process serves its metrics.
			want[`asyncgw_dlq_size{queue="`+s.queue+`"}`] = 0
			want[`asyncgw_queue_paused{queue="`+s.queue+`"}`] = 0
			for k, v := range want {
				if got, ok := first[k]; !ok || got != v {
					t.Errorf("%s: first scrape has %s = %v (present: %v), want %v", role, k, got, ok, v)
				}
			}
		})
	}
}
