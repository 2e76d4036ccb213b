package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestWebhookProcesses runs a gateway and a worker process configured as a
// user would, with the tenant's webhook endpoint in the configuration: the
// job's end reaches the endpoint, retried after a 503, and verifies with
// the tenant's secret.
func TestWebhookProcesses(t *testing.T) {
	t.Parallel()
	verifier, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var verified []string // the job IDs of verified deliveries
	calls := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("delivery does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p struct {
			Type string   `json:"type"`
			Data jobs.Job `json:"data"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Type != "job.succeeded" {
			t.Errorf("delivery body %s: %v", body, err)
		}
		verified = append(verified, p.Data.ID)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)

	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	hooks := redistest.Queue(t, "webhooks")
	extra := fmt.Sprintf(`webhooks:
  allow_http: true
  allow_cidrs: [127.0.0.1/32]
  queue: %s
  retry_schedule: [100ms, 100ms]
  secrets: [%s]
auth:
  tenants:
    - name: default
      webhook_url: %s/hooks
`, hooks, testSecret, receiver.URL)
	appendFile(t, s.config, extra)
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	wk := startAsyncgw(t, nil, "worker", "--config", s.config)
	base := gw.baseURL(t)
	wk.waitLog(t, "workers started", 30*time.Second)

	id := postJob(t, base+"/v1/work", `{"sku":"A-1"}`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), verified...)
		mu.Unlock()
		if len(got) == 1 && got[0] == id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verified deliveries %v, want one for job %s; worker log:\n%s", got, id, wk.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if j := getJob(t, base, id); j.CallbackURL != receiver.URL+"/hooks" {
		t.Errorf("job callback_url = %q", j.CallbackURL)
	}
	if strings.Contains(wk.stderr.String(), receiver.URL+"/hooks") {
		t.Errorf("the worker logged the callback URL (it may hold a token)")
	}
}

// appendFile adds content to the file at path.
func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}
