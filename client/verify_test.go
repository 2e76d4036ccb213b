package client_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/client"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/e2e"
	"github.com/asyncgw/asyncgw/webhook"
)

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func signed(t *testing.T, s *webhook.Signer, id string, at time.Time, body []byte) http.Header {
	t.Helper()
	h := http.Header{}
	for k, v := range s.Headers(id, at, body) {
		h.Set(k, v)
	}
	return h
}

// TestVerifySigner: Verify accepts what asyncgw's webhook signer signs,
// with either secret of a rotation, and refuses another secret, a changed
// body or id, a missing header and a timestamp outside the tolerance.
func TestVerifySigner(t *testing.T) {
	t.Parallel()
	old, cur, other := newSecret(t), newSecret(t), newSecret(t)
	s, err := webhook.NewSigner(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"j","state":"succeeded"}`)
	h := signed(t, s, "msg_1", time.Now(), body)
	for _, sec := range []string{cur, old} {
		if err := client.Verify(sec, h, body, 0); err != nil {
			t.Errorf("Verify with a signing secret: %v", err)
		}
	}
	if err := client.Verify(other, h, body, 0); !errors.Is(err, client.ErrSignature) {
		t.Errorf("another secret: %v, want ErrSignature", err)
	}
	if err := client.Verify(cur, h, []byte(`{"id":"j","state":"failed"}`), 0); !errors.Is(err, client.ErrSignature) {
		t.Errorf("a changed body: %v, want ErrSignature", err)
	}
	moved := h.Clone()
	moved.Set("webhook-id", "msg_2")
	if err := client.Verify(cur, moved, body, 0); !errors.Is(err, client.ErrSignature) {
		t.Errorf("another id: %v, want ErrSignature", err)
	}
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		m := h.Clone()
		m.Del(name)
		if err := client.Verify(cur, m, body, 0); !errors.Is(err, client.ErrSignature) {
			t.Errorf("without %s: %v, want ErrSignature", name, err)
		}
	}
	stale := signed(t, s, "msg_1", time.Now().Add(-10*time.Minute), body)
	if err := client.Verify(cur, stale, body, 0); !errors.Is(err, client.ErrTimestamp) {
		t.Errorf("10 minutes old, default tolerance: %v, want ErrTimestamp", err)
	}
	if err := client.Verify(cur, stale, body, time.Hour); err != nil {
		t.Errorf("10 minutes old, tolerance 1h: %v", err)
	}
	future := signed(t, s, "msg_1", time.Now().Add(10*time.Minute), body)
	if err := client.Verify(cur, future, body, 0); !errors.Is(err, client.ErrTimestamp) {
		t.Errorf("10 minutes ahead: %v, want ErrTimestamp", err)
	}
	if err := client.Verify("whsec_%%%", h, body, 0); err == nil || errors.Is(err, client.ErrSignature) {
		t.Errorf("a malformed secret: %v, want an error of its own", err)
	}
}

// TestVerifyDeliveries: real deliveries of a job's webhooks, made by the
// worker and received over HTTP, verify with the secret.
func TestVerifyDeliveries(t *testing.T) {
	t.Parallel()
	secret := newSecret(t)
	h := e2e.Start(t, e2e.Options{
		Routes: []gateway.Route{ordersRoute},
		Webhooks: &webhook.Config{
			Policy:   webhook.Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			Secrets:  []string{secret},
			Schedule: []time.Duration{50 * time.Millisecond},
		},
	})
	h.Upstream.Handle(okOrder)
	type delivery struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var got []delivery
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{r.Header.Clone(), b})
		mu.Unlock()
		// A receiver answers according to Verify.
		if err := client.Verify(secret, r.Header, b, 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	ctx := testContext(t)
	c := newClient(t, h.URL, "")
	acc, err := c.Submit(ctx, "/v1/orders", `{}`, client.CallbackURL(recv.URL+"/hooks"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, acc.ID); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, e2e.WaitTimeout, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0, "no delivery"
	})
	mu.Lock()
	defer mu.Unlock()
	for _, d := range got {
		if err := client.Verify(secret, d.header, d.body, 0); err != nil {
			t.Errorf("a real delivery does not verify: %v (%s)", err, d.body)
		}
		if err := client.Verify(newSecret(t), d.header, d.body, 0); !errors.Is(err, client.ErrSignature) {
			t.Errorf("a real delivery verifies with another secret: %v", err)
		}
	}
}

// TestErrorProblem: an error answer's problem members, extensions,
// Retry-After and request ID reach the *Error, and an answer that is not
// a problem still gives one.
func TestErrorProblem(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/jobs/proxy" {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "<h1>blocked</h1>")
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("X-Request-ID", "rid-1")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"type":"https://asyncgw.dev/problems/validation","title":"Bad Request","status":400,"detail":"the request body is invalid","errors":[{"pointer":"/sku","detail":"required"}],"limit":5}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "", client.WithRetry(client.Retry{Attempts: 1}))
	_, err := c.Get(testContext(t), "x")
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *Error", err)
	}
	if e.Status != 400 || e.Slug() != "validation" || e.Title != "Bad Request" || e.Detail == "" || e.RequestID != "rid-1" ||
		e.RetryAfter != 7*time.Second || len(e.Errors) != 1 || e.Errors[0].Pointer != "/sku" || string(e.Extensions["limit"]) != "5" {
		t.Errorf("error %+v", e)
	}
	if !errors.Is(err, client.ErrInvalid) || errors.Is(err, client.ErrNotFound) {
		t.Errorf("errors.Is: %v", err)
	}
	_, err = c.Get(testContext(t), "proxy")
	if !errors.As(err, &e) || e.Status != 403 || e.Slug() != "" || e.Detail != "<h1>blocked</h1>" || !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a proxy's answer: %+v", e)
	}
}
