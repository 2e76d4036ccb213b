package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// scrape reads url (a /metrics endpoint) and returns its series by name
// and labels as written, e.g. `asyncgw_jobs_accepted_total{queue="q",type="work"}`.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %s %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics runs a gateway and a worker process, makes a few requests
// and jobs, and reads both processes' metrics as Prometheus would.
func TestMetrics(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	workerConfig := writeFile(t, "worker.yaml", readFile(t, s.config)+"metrics:\n  listen: 127.0.0.1:0\n")
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	wk := startAsyncgw(t, nil, "worker", "--config", workerConfig)
	base := gw.baseURL(t)
	m := regexp.MustCompile(`msg="metrics listening" addr=(http://\S+)`).FindStringSubmatch(wk.waitLog(t, `msg="metrics listening"`, 30*time.Second))
	if m == nil {
		t.Fatalf("no metrics address in the worker's log:\n%s", wk.stderr.String())
	}
	workerMetrics := m[1]

	var ids []string
	for range 3 {
		ids = append(ids, postJob(t, base+"/v1/work", `{"sku":"A-1"}`))
	}
	resp, err := httpClient.Post(base+"/v1/work", "application/json", strings.NewReader(`{"sku":`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, id := range ids {
		waitEnded(t, base, s, []string{id}, 30*time.Second)
	}

	g := scrape(t, base+"/metrics")
	want := map[string]float64{
		`asyncgw_http_requests_total{code="202",method="POST",route="/v1/work"}`:      3,
		`asyncgw_http_requests_total{code="400",method="POST",route="/v1/work"}`:      1,
		`asyncgw_jobs_accepted_total{queue="` + s.queue + `",type="work"}`:            3,
		`asyncgw_jobs_rejected_total{reason="validation"}`:                            1,
		`asyncgw_http_request_duration_seconds_count{method="POST",route="/v1/work"}`: 4,
	}
	for k, v := range want {
		if g[k] != v {
			t.Errorf("gateway: %s = %v, want %v", k, g[k], v)
		}
	}
	builds := 0
	for k, v := range g {
		if strings.HasPrefix(k, "asyncgw_build_info{version=") && v == 1 {
			builds++
		}
	}
	if builds != 1 {
		t.Errorf("gateway: %d asyncgw_build_info series at 1, want 1", builds)
	}
	timed := 0.0
	for k, v := range g {
		if strings.HasPrefix(k, `asyncgw_redis_command_duration_seconds_count{`) {
			timed += v
		}
	}
	if timed == 0 {
		t.Errorf("gateway: no Redis round trips timed")
	}
	// Queue figures are read in the background, every few seconds.
	testutil.WaitForWhy(t, 15*time.Second, "queue figures in the gateway's metrics", func() (bool, string) {
		g = scrape(t, base+"/metrics")
		_, ok := g[`asyncgw_queue_depth{queue="`+s.queue+`",state="pending"}`]
		return ok, "no asyncgw_queue_depth for the queue"
	})
	if _, ok := g[`asyncgw_dlq_size{queue="`+s.queue+`"}`]; !ok {
		t.Errorf("gateway: no asyncgw_dlq_size for the queue")
	}

	// A job's end is counted just after it is recorded: the scrape may
	// come between the two.
	var w map[string]float64
	testutil.WaitForWhy(t, 15*time.Second, "the worker's counts of the three jobs", func() (bool, string) {
		w = scrape(t, workerMetrics)
		for k, v := range map[string]float64{
			`asyncgw_jobs_completed_total{queue="` + s.queue + `",state="succeeded",type="work"}`: 3,
			`asyncgw_job_queue_wait_seconds_count{queue="` + s.queue + `"}`:                       3,
			`asyncgw_job_run_seconds_count{outcome="succeeded",queue="` + s.queue + `"}`:          3,
		} {
			if w[k] != v {
				return false, fmt.Sprintf("worker: %s = %v, want %v", k, w[k], v)
			}
		}
		return true, ""
	})
	if _, ok := w[`asyncgw_http_requests_total{code="202",method="POST",route="/v1/work"}`]; ok {
		t.Errorf("the worker process counts gateway requests")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
