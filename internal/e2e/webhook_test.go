package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/webhook"
)

// This file checks webhooks as a receiver sees them: a real HTTP server
// that verifies every delivery with a verifier written from the Standard
// Webhooks specification alone (not the signer's library).

// newSecret returns a fresh whsec_ secret.
func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// verify checks a delivery as the specification describes: the signed
// content is "<webhook-id>.<webhook-timestamp>.<body>", signed with
// HMAC-SHA256 under the base64-decoded part of the secret after "whsec_";
// webhook-signature holds space-separated "v1,<base64>" entries, any of
// which may match; the timestamp must be within tolerance of now.
func verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %s is %s from now", ts, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// delivery is one request a receiver got.
type delivery struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// receiver is a webhook endpoint whose answers the test scripts.
type receiver struct {
	URL string

	mu     sync.Mutex
	got    []delivery
	answer func(n int) (int, http.Header) // n counts from 1
}

func newReceiver(t *testing.T, answer func(n int) (int, http.Header)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{Header: r.Header.Clone(), Body: body, At: time.Now()})
		n, answer := len(rc.got), rc.answer
		rc.mu.Unlock()
		code, h := http.StatusNoContent, http.Header(nil)
		if answer != nil {
			code, h = answer(n)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL + "/hooks"
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func (rc *receiver) setAnswer(fn func(n int) (int, http.Header)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = fn
}

// waitDeliveries waits until rc got n requests and returns them.
func (rc *receiver) waitDeliveries(t *testing.T, n int) []delivery {
	t.Helper()
	var got []delivery
	Eventually(t, WaitTimeout, func() (bool, string) {
		got = rc.deliveries()
		return len(got) >= n, fmt.Sprintf("receiver got %d requests, want %d", len(got), n)
	})
	return got
}

// payload is a delivery's body.
type payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      jobs.Job  `json:"data"`
}

func decodePayload(t *testing.T, d delivery) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(d.Body, &p); err != nil {
		t.Fatalf("delivery body %s: %v", d.Body, err)
	}
	return p
}

// webhookHarness starts a harness with webhooks on: receivers on loopback
// are allowed, two secrets sign (a rotation), and retries come quickly.
func webhookHarness(t *testing.T, secrets []string, tenant webhook.Tenant) *Harness {
	t.Helper()
	return Start(t, Options{
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 1}},
		Webhooks: &webhook.Config{
			Policy:   webhook.Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			Secrets:  secrets,
			Schedule: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond},
			Tenants:  map[string]webhook.Tenant{gateway.DefaultTenant: tenant},
		},
	})
}

// submitWithCallback submits an order whose webhooks go to callback.
func submitWithCallback(t *testing.T, h *Harness, callback string) string {
	t.Helper()
	r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), http.Header{
		"Content-Type": {"application/json"}, "X-Callback-URL": {callback},
	})
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: status %d, body %s", r.Status, r.Body)
	}
	var a gateway.Accepted
	_ = json.Unmarshal(r.Body, &a)
	return a.ID
}

// jobDeliveries reads GET /v1/jobs/{id}/webhooks.
func jobDeliveries(t *testing.T, s *Server, id string) []*jobs.Job {
	t.Helper()
	var out struct {
		CallbackURL string      `json:"callback_url"`
		Deliveries  []*jobs.Job `json:"deliveries"`
	}
	getJSON(t, s, "/v1/jobs/"+id+"/webhooks", http.StatusOK, &out)
	return out.Deliveries
}

// TestWebhookDelivered: a job that ends is reported once, signed by every
// secret of a rotation, and a receiver that verifies by the specification
// accepts it; changing the body by one byte, or a timestamp older than the
// tolerance, fails verification.
func TestWebhookDelivered(t *testing.T) {
	t.Parallel()
	newer, older := newSecret(t), newSecret(t)
	h := webhookHarness(t, []string{newer, older}, webhook.Tenant{})
	rc := newReceiver(t, nil)

	id := submitWithCallback(t, h, rc.URL)
	h.WaitState(t, id, jobs.StateSucceeded)
	got := rc.waitDeliveries(t, 1)
	d := got[0]
	now := time.Now()
	for _, sec := range []string{newer, older} {
		if err := verify(sec, d.Header, d.Body, now, 5*time.Minute); err != nil {
			t.Errorf("delivery does not verify with one of the rotation's secrets: %v (headers %v)", err, d.Header)
		}
	}
	if err := verify(newSecret(t), d.Header, d.Body, now, 5*time.Minute); err == nil {
		t.Error("a secret the tenant does not have verifies the delivery")
	}
	for i := range d.Body {
		changed := append([]byte(nil), d.Body...)
		changed[i] ^= 1
		if verify(newer, d.Header, changed, now, 5*time.Minute) == nil {
			t.Fatalf("a body changed at byte %d still verifies", i)
		}
	}
	if err := verify(newer, d.Header, d.Body, now.Add(6*time.Minute), 5*time.Minute); err == nil {
		t.Error("a delivery older than the tolerance verifies")
	}

	p := decodePayload(t, d)
	if p.Type != "job.succeeded" || p.Data.ID != id || p.Data.State != jobs.StateSucceeded || p.Data.CallbackURL != rc.URL {
		t.Errorf("payload = %+v, want job.succeeded for %s", p, id)
	}
	if p.Timestamp.IsZero() || d.Header.Get("Content-Type") != "application/json" {
		t.Errorf("payload timestamp %v, content type %q", p.Timestamp, d.Header.Get("Content-Type"))
	}

	// The delivery is a job of its own, shown on the job it reports.
	ds := jobDeliveries(t, h.Server, id)
	if len(ds) != 1 {
		t.Fatalf("GET /v1/jobs/%s/webhooks: %d deliveries, want 1", id, len(ds))
	}
	dj := h.WaitState(t, ds[0].ID, jobs.StateSucceeded)
	if dj.Type != webhook.JobType || dj.Webhook == nil || dj.Webhook.JobID != id || dj.Webhook.Event != "succeeded" ||
		dj.Attempt != 1 || d.Header.Get("webhook-id") != dj.ID {
		t.Errorf("delivery job = %+v (webhook %+v), webhook-id %q", dj, dj.Webhook, d.Header.Get("webhook-id"))
	}
	if dj.Result == nil || dj.Result.Status != http.StatusNoContent {
		t.Errorf("delivery result = %+v, want the receiver's 204", dj.Result)
	}
	// Its attempts are events like any job's.
	st := h.Events(t, "/v1/jobs/"+dj.ID+"/events", "")
	var kinds []string
	for {
		ev := st.Next(t)
		kinds = append(kinds, ev.Event)
		if ev.Event == "succeeded" {
			break
		}
	}
	st.Close()
	if want := "queued running succeeded"; strings.Join(kinds, " ") != want {
		t.Errorf("delivery events = %v, want %s", kinds, want)
	}
	// Delivered once: nothing more comes.
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

// TestWebhookRetried: a receiver that answers 500 is tried again on the
// schedule, with the same webhook-id, until it answers 2xx.
func TestWebhookRetried(t *testing.T) {
	t.Parallel()
	sec := newSecret(t)
	h := webhookHarness(t, []string{sec}, webhook.Tenant{})
	rc := newReceiver(t, func(n int) (int, http.Header) {
		if n <= 2 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	id := submitWithCallback(t, h, rc.URL)
	got := rc.waitDeliveries(t, 3)
	for i, d := range got {
		if err := verify(sec, d.Header, d.Body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("try %d: %v", i+1, err)
		}
		if d.Header.Get("webhook-id") != got[0].Header.Get("webhook-id") {
			t.Errorf("try %d has webhook-id %q, try 1 had %q", i+1, d.Header.Get("webhook-id"), got[0].Header.Get("webhook-id"))
		}
		if i > 0 && d.At.Sub(got[i-1].At) < 40*time.Millisecond {
			t.Errorf("try %d came %s after the one before; the schedule says at least 50ms", i+1, d.At.Sub(got[i-1].At))
		}
	}
	ds := jobDeliveries(t, h.Server, id)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
	dj := h.WaitState(t, ds[0].ID, jobs.StateSucceeded)
	if dj.Attempt != 3 {
		t.Errorf("delivery took %d attempts, want 3", dj.Attempt)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.deliveries()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

// TestWebhookGone: 410 stops the delivery at once and disables the
// endpoint for the tenant; later deliveries to it go to the dead-letter
// queue without being sent; once an operator enables it again they can be
// replayed.
func TestWebhookGone(t *testing.T) {
	t.Parallel()
	sec := newSecret(t)
	h := webhookHarness(t, []string{sec}, webhook.Tenant{})
	rc := newReceiver(t, func(int) (int, http.Header) { return http.StatusGone, nil })

	first := submitWithCallback(t, h, rc.URL)
	rc.waitDeliveries(t, 1)
	Eventually(t, WaitTimeout, func() (bool, string) {
		ds := jobDeliveries(t, h.Server, first)
		return len(ds) == 1 && ds[0].State == jobs.StateFailed, fmt.Sprintf("deliveries %+v", ds)
	})
	var disabled struct {
		Items []status.DisabledEndpoint `json:"items"`
	}
	getJSON(t, h.Server, "/admin/v1/webhooks/disabled", http.StatusOK, &disabled)
	if len(disabled.Items) != 1 || disabled.Items[0].URL != rc.URL || disabled.Items[0].Tenant != gateway.DefaultTenant {
		t.Fatalf("disabled endpoints = %+v, want %s", disabled.Items, rc.URL)
	}

	second := submitWithCallback(t, h, rc.URL)
	var dead *jobs.Job
	Eventually(t, WaitTimeout, func() (bool, string) {
		ds := jobDeliveries(t, h.Server, second)
		if len(ds) == 1 && ds[0].State == jobs.StateDead {
			dead = ds[0]
			return true, ""
		}
		return false, fmt.Sprintf("deliveries %+v", ds)
	})
	if !strings.Contains(dead.Error, "endpoint disabled") {
		t.Errorf("dead delivery error = %q", dead.Error)
	}
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("a disabled endpoint got %d requests, want 1 (the 410)", n)
	}
	ids := deadIDs(t, h.Server, url.Values{"type": {webhook.JobType}}, 100)
	if len(ids) != 1 || ids[0] != dead.ID {
		t.Fatalf("dead-letter queue holds %v, want the delivery %s", ids, dead.ID)
	}

	// Enable it again, and replay what it missed.
	q := url.Values{"tenant": {gateway.DefaultTenant}, "url": {rc.URL}}
	if r := h.Do(t, http.MethodDelete, "/admin/v1/webhooks/disabled?"+q.Encode(), nil, nil); r.Status != http.StatusNoContent {
		t.Fatalf("enable endpoint: %d %s", r.Status, r.Body)
	}
	if r := h.Do(t, http.MethodDelete, "/admin/v1/webhooks/disabled?"+q.Encode(), nil, nil); r.Status != http.StatusNotFound {
		t.Errorf("enable it twice: %d %s, want 404", r.Status, r.Body)
	}
	rc.setAnswer(func(int) (int, http.Header) { return http.StatusOK, nil })
	if r := h.Do(t, http.MethodPost, "/admin/v1/dlq/"+dead.ID+"/replay", nil, nil); r.Status != http.StatusAccepted {
		t.Fatalf("replay delivery: %d %s", r.Status, r.Body)
	}
	h.WaitState(t, dead.ID, jobs.StateSucceeded)
	got := rc.waitDeliveries(t, 2)
	if p := decodePayload(t, got[1]); p.Data.ID != second || got[1].Header.Get("webhook-id") != dead.ID {
		t.Errorf("replayed delivery carries job %s, webhook-id %s; want %s, %s", p.Data.ID, got[1].Header.Get("webhook-id"), second, dead.ID)
	}
	if err := verify(sec, got[1].Header, got[1].Body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("replayed delivery: %v", err)
	}
}

// TestWebhookRedirectNotFollowed: a 302 is a failed try, never followed;
// when the tries run out the delivery is dead, in the dead-letter queue.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t, []string{newSecret(t)}, webhook.Tenant{})
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(int) (int, http.Header) {
		return http.StatusFound, http.Header{"Location": {target.URL}}
	})
	id := submitWithCallback(t, h, rc.URL)
	rc.waitDeliveries(t, 4) // the first try and 3 retries
	var dead *jobs.Job
	Eventually(t, WaitTimeout, func() (bool, string) {
		ds := jobDeliveries(t, h.Server, id)
		if len(ds) == 1 && ds[0].State == jobs.StateDead {
			dead = ds[0]
			return true, ""
		}
		return false, fmt.Sprintf("deliveries %+v", ds)
	})
	if !strings.Contains(dead.Error, "redirects are not followed") || dead.Attempt != 4 {
		t.Errorf("dead delivery: attempt %d, error %q", dead.Attempt, dead.Error)
	}
	if n := len(target.deliveries()); n != 0 {
		t.Errorf("the redirect's target got %d requests", n)
	}
	if ids := deadIDs(t, h.Server, url.Values{"type": {webhook.JobType}}, 100); len(ids) != 1 || ids[0] != dead.ID {
		t.Errorf("dead-letter queue holds %v, want %s", ids, dead.ID)
	}
}

// TestWebhookBreakerPerDestination: an endpoint that keeps failing gets
// its own breaker: once it opens, its deliveries wait without calling it,
// and deliveries to another endpoint go out meanwhile.
func TestWebhookBreakerPerDestination(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{
		Routes:  []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 1}},
		Breaker: breaker.Config{ConsecutiveFailures: 3, MinRequests: 1000, OpenTimeout: time.Minute},
		Webhooks: &webhook.Config{
			Policy:   webhook.Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			Secrets:  []string{newSecret(t)},
			Schedule: []time.Duration{10 * time.Millisecond},
		},
	})
	down := newReceiver(t, func(int) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	up := newReceiver(t, nil)
	const n = 20
	var toDown []string
	for range n {
		toDown = append(toDown, submitWithCallback(t, h, down.URL))
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		held := 0
		for _, id := range toDown {
			for _, d := range jobDeliveries(t, h.Server, id) {
				if strings.Contains(d.Error, "circuit breaker open") {
					held++
				}
			}
		}
		return held > 0, "no delivery waits for the open breaker"
	})
	for range 5 {
		submitWithCallback(t, h, up.URL)
	}
	up.waitDeliveries(t, 5)
	// Without a breaker each of the n deliveries would call twice (two
	// tries, 10ms apart); with it, the calls stop soon after 3 failures.
	time.Sleep(200 * time.Millisecond)
	if calls := len(down.deliveries()); calls >= n {
		t.Errorf("the failing endpoint got %d calls for %d deliveries; its breaker did not stop them", calls, n)
	}
	for _, id := range toDown {
		for _, d := range jobDeliveries(t, h.Server, id) {
			if d.State == jobs.StateDead && d.Attempt < 2 {
				t.Errorf("delivery %s died after %d attempt(s): waiting on the breaker used up attempts", d.ID, d.Attempt)
			}
		}
	}
}

// TestWebhookTenantDefault: a tenant's own endpoint receives its jobs'
// events without a callback URL on the request, for the states it chose.
func TestWebhookTenantDefault(t *testing.T) {
	t.Parallel()
	sec := newSecret(t)
	var rc *receiver
	rc = newReceiver(t, nil)
	h := webhookHarness(t, []string{sec}, webhook.Tenant{
		URL: rc.URL, Events: []jobs.State{jobs.StateQueued, jobs.StateRunning, jobs.StateSucceeded},
	})
	id := h.Submit(t, "/v1/orders", `{"n":2}`)
	h.WaitState(t, id, jobs.StateSucceeded)
	got := rc.waitDeliveries(t, 3)
	seen := map[string]bool{}
	for _, d := range got {
		p := decodePayload(t, d)
		if p.Data.ID != id {
			t.Errorf("delivery for job %s, want %s", p.Data.ID, id)
		}
		seen[p.Type] = true
	}
	for _, want := range []string{"job.queued", "job.running", "job.succeeded"} {
		if !seen[want] {
			t.Errorf("no %s delivery among %v", want, seen)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.deliveries()); n != 3 {
		t.Errorf("receiver got %d requests, want 3 (retrying and the rest are not asked for)", n)
	}
	if ds := jobDeliveries(t, h.Server, id); len(ds) != 3 {
		t.Errorf("%d deliveries listed, want 3", len(ds))
	}
}

// TestCallbackURLRefused: a callback URL that is not an absolute http(s)
// URL to an allowed destination is refused at accept time, and nothing is
// stored.
func TestCallbackURLRefused(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t, []string{newSecret(t)}, webhook.Tenant{})
	for _, cb := range []string{
		"not a url", "/relative", "ftp://example.com/x", "https://user:pw@example.com/",
		"https://evil.example@127.0.0.1/", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
		"http://[::1]/", "http://localhost/", "http://127.0.0.2:1/",
	} {
		r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{}`), http.Header{
			"Content-Type": {"application/json"}, "X-Callback-URL": {cb},
		})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "X-Callback-URL") {
			t.Errorf("X-Callback-URL %q: %d %s, want 400 naming the header", cb, r.Status, r.Body)
		}
		body := fmt.Sprintf(`{"type":"orders","callback_url":%q}`, cb)
		r = h.PostJSON(t, "/v1/jobs", body)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"pointer":"/callback_url"`) {
			t.Errorf("callback_url %q: %d %s, want 400 pointing at /callback_url", cb, r.Status, r.Body)
		}
	}
	r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{}`), http.Header{
		"Content-Type": {"application/json"}, "X-Callback-URL": {"https://a.example/", "https://b.example/"},
	})
	if r.Status != http.StatusBadRequest {
		t.Errorf("two X-Callback-URL headers: %d %s, want 400", r.Status, r.Body)
	}
	if ids := h.JobIDs(t, gateway.DefaultTenant); len(ids) != 0 {
		t.Errorf("refused requests stored jobs %v", ids)
	}
}

// TestCallbackNeedsWebhooks: without webhooks set up (no signing secret),
// a callback URL is refused rather than silently never called.
func TestCallbackNeedsWebhooks(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{}`), http.Header{
		"Content-Type": {"application/json"}, "X-Callback-URL": {"https://example.com/hook"},
	})
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "not enabled") {
		t.Errorf("callback without webhooks: %d %s, want 400", r.Status, r.Body)
	}
	h2 := webhookHarness(t, nil, webhook.Tenant{})
	r = h2.PostJSON(t, "/v1/jobs", `{"type":"orders","callback_url":"https://example.com/hook"}`)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "signing secret") {
		t.Errorf("callback without a secret: %d %s, want 400", r.Status, r.Body)
	}
}
