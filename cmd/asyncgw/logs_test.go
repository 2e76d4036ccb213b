package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// TestNoSecretsInLogs runs asyncgw at debug level with authentication and
// webhooks, sends requests with a good key, a wrong key and a callback URL
// that carries a token, lets the webhook fail, and checks that none of the
// secrets appears in the logs while the work itself does.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(receiver.Close)
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	key, digest := gateway.NewKey()
	const token = "cb-token-7f3a9e"
	// A route whose upstream credentials come from the environment.
	const upstreamToken = "up-token-3c9d21"
	appendFile(t, s.config, fmt.Sprintf(`  - name: secret
    path: /v1/secret
    upstream: %s/secret
    queue: %s
    headers: {Authorization: "Bearer ${ORDERS_TOKEN}"}
`, up.URL, s.queue))
	appendFile(t, s.config, fmt.Sprintf(`auth:
  enabled: true
  tenants:
    - name: acme
      keys: [{sha256: %q}]
      webhook_secret: %s
webhooks:
  allow_http: true
  allow_cidrs: [127.0.0.1/32]
  queue: %s
  retry_schedule: [50ms]
`, digest, testSecret, redistest.Queue(t, "webhooks")))
	p := startAsyncgw(t, map[string]string{"ORDERS_TOKEN": upstreamToken}, "--config", s.config)
	base := p.baseURL(t)

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/work", strings.NewReader(`{"sku":"A-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Callback-URL", receiver.URL+"/hook?token="+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/v1/secret", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	secretJob := acceptedID(t, req)
	p.waitLog(t, "job_id="+secretJob, 30*time.Second)
	testutil.WaitForWhy(t, 30*time.Second, "the upstream call with credentials", func() (bool, string) {
		for i := range len(up.attempts()) {
			if c := up.call(i); c.URL.Path == "/secret" {
				return c.Header.Get("Authorization") == "Bearer "+upstreamToken, "Authorization " + c.Header.Get("Authorization")
			}
		}
		return false, "not called"
	})
	wrong := "agw_wrongkey0123456789abcdef"
	req, _ = http.NewRequest(http.MethodGet, base+"/v1/jobs/abc", nil)
	req.Header.Set("Authorization", "Bearer "+wrong)
	if resp, err = httpClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %s", resp.Status)
	}
	// Both webhook tries fail, and the delivery dies.
	p.waitLog(t, `type=webhook`, 30*time.Second)
	testutil.WaitForWhy(t, 30*time.Second, "two webhook tries", func() (bool, string) {
		return hooks.Load() >= 2, fmt.Sprintf("%d tries", hooks.Load())
	})
	time.Sleep(200 * time.Millisecond)

	resp, err = httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "asyncgw_jobs_accepted_total") || strings.Contains(string(metrics), upstreamToken) {
		t.Errorf("the metrics are missing or show the route's upstream header")
	}

	logs := p.stderr.String()
	if !strings.Contains(logs, `msg="job ended"`) || !strings.Contains(logs, "tenant=acme") {
		t.Fatalf("the logs do not show the work:\n%s", logs)
	}
	secret := strings.TrimPrefix(testSecret, "whsec_")
	for name, v := range map[string]string{
		"the API key": key, "the wrong API key": wrong, "the key's digest": digest,
		"the webhook secret": secret, "the callback URL's token": token,
		"a route's upstream header": upstreamToken,
	} {
		if strings.Contains(logs, v) {
			t.Errorf("%s appears in the logs", name)
		}
	}
}
