package gateway

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestCORSConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		origins []string
		want    string // "" for valid, else a part of the error
	}{
		{nil, ""},
		{[]string{"*"}, ""},
		{[]string{"https://app.example.com", "http://127.0.0.1:3000", "http://[::1]:8080"}, ""},
		{[]string{"*", "https://app.example.com"}, `allowed_origins[0]: "*" allows every origin`},
		{[]string{"https://app.example.com/"}, "allowed_origins[0]"},
		{[]string{"https://app.example.com/path"}, "without a path"},
		{[]string{"https://App.example.com"}, `use "https://app.example.com"`},
		{[]string{"https://app.example.com:443"}, `use "https://app.example.com"`},
		{[]string{"ftp://app.example.com"}, "must be an origin"},
		{[]string{"app.example.com"}, "must be an origin"},
		{[]string{"https://ok.example.com", ""}, "allowed_origins[1]"},
		{[]string{"https://user@app.example.com"}, "allowed_origins[0]"},
	} {
		err := CORSConfig{AllowedOrigins: tc.origins}.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v; want %q", tc.origins, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "gateway.cors.allowed_origins[") {
			t.Errorf("%q: %v does not name the key", tc.origins, err)
		}
	}
}

// corsCall sends one request through the gateway's handler.
func corsCall(g *Gateway, method, path, origin string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec
}

func headerList(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for p := range strings.SplitSeq(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(p)))
		}
	}
	return out
}

// TestCORS: preflights of an allowed origin are answered 204 with what a
// browser needs, before authentication and whatever methods the path
// has; real answers, problems included, let the page read them and the
// headers it needs; a disallowed origin gets no CORS header at all.
func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "http://app.test:3000"
	bg := newTestGateway(t, func(c *Config, _ *Deps) {
		c.CORS = CORSConfig{AllowedOrigins: []string{"https://other.test", app}}
	})
	g := bg.g
	preflight := func(path, method, origin string) *httptest.ResponseRecorder {
		return corsCall(g, http.MethodOptions, path, origin, http.Header{
			"Access-Control-Request-Method":  {method},
			"Access-Control-Request-Headers": {"authorization,content-type,idempotency-key"},
		})
	}
	for _, tc := range []struct{ path, method string }{
		{"/v1/orders", http.MethodPost},
		{"/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/events", http.MethodGet}, // a path without POST or OPTIONS
		{"/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", http.MethodDelete},
		{"/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/stream-token", http.MethodPost},
	} {
		rec := preflight(tc.path, tc.method, app)
		h := rec.Header()
		if rec.Code != http.StatusNoContent {
			t.Errorf("preflight %s %s: %d %s; want 204", tc.method, tc.path, rec.Code, rec.Body)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != app {
			t.Errorf("preflight %s: Access-Control-Allow-Origin %q, want %q", tc.path, got, app)
		}
		if !slices.Contains(headerList(h, "Vary"), "origin") {
			t.Errorf("preflight %s: Vary %q lacks Origin", tc.path, h.Values("Vary"))
		}
		if !slices.Contains(headerList(h, "Access-Control-Allow-Methods"), strings.ToLower(tc.method)) {
			t.Errorf("preflight %s: Access-Control-Allow-Methods %q lacks %s", tc.path, h.Get("Access-Control-Allow-Methods"), tc.method)
		}
		for _, want := range []string{"authorization", "content-type", "idempotency-key", "last-event-id", "cache-control"} {
			if !slices.Contains(headerList(h, "Access-Control-Allow-Headers"), want) {
				t.Errorf("preflight %s: Access-Control-Allow-Headers %q lacks %s", tc.path, h.Get("Access-Control-Allow-Headers"), want)
			}
		}
		if h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight %s: no Access-Control-Max-Age", tc.path)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s: credentials allowed; nothing needs them", tc.path)
		}
	}

	// A disallowed origin's preflight gets no CORS header.
	rec := preflight("/v1/orders", http.MethodPost, "http://evil.test")
	for name := range rec.Header() {
		if strings.HasPrefix(name, "Access-Control-") {
			t.Errorf("disallowed preflight: %s: %q", name, rec.Header().Get(name))
		}
	}

	// Real answers: a problem (no key), and a job read with a key.
	rec = corsCall(g, http.MethodGet, "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa", app, nil)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Access-Control-Allow-Origin") != app {
		t.Errorf("401 for an allowed origin: %d, Access-Control-Allow-Origin %q; want the page to read the problem",
			rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(benchOrder))
	req.Header.Set("Authorization", "Bearer "+benchAPIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", app)
	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", rec.Code, rec.Body)
	}
	h := rec.Header()
	if h.Get("Access-Control-Allow-Origin") != app || !slices.Contains(headerList(h, "Vary"), "origin") {
		t.Errorf("202: Access-Control-Allow-Origin %q, Vary %q", h.Get("Access-Control-Allow-Origin"), h.Values("Vary"))
	}
	for _, want := range []string{"location", "retry-after", "x-request-id", "idempotent-replayed"} {
		if !slices.Contains(headerList(h, "Access-Control-Expose-Headers"), want) {
			t.Errorf("202: Access-Control-Expose-Headers %q lacks %s", h.Get("Access-Control-Expose-Headers"), want)
		}
	}

	// A disallowed origin's real request is answered, without CORS
	// headers: its page cannot read it.
	rec = corsCall(g, http.MethodGet, "/healthz", "http://evil.test", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "" ||
		!slices.Contains(headerList(rec.Header(), "Vary"), "origin") {
		t.Errorf("disallowed origin: %d, %v", rec.Code, rec.Header())
	}

	// A known path called with another method, without a preflight, is
	// still 405 with Allow.
	rec = corsCall(g, http.MethodPut, "/v1/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa/events", app, nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" {
		t.Errorf("PUT on a stream: %d, Allow %q; want 405 with Allow", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestCORSOff: without allowed origins, no answer carries a CORS header,
// and any origin is answered alike with "*".
func TestCORSOff(t *testing.T) {
	t.Parallel()
	off := newTestGateway(t, nil).g
	rec := corsCall(off, http.MethodOptions, "/v1/orders", "http://app.test", http.Header{"Access-Control-Request-Method": {"POST"}})
	for name := range rec.Header() {
		if strings.HasPrefix(name, "Access-Control-") || name == "Vary" {
			t.Errorf("CORS off: %s: %q", name, rec.Header().Get(name))
		}
	}
	anyOrigin := newTestGateway(t, func(c *Config, _ *Deps) { c.CORS.AllowedOrigins = []string{"*"} }).g
	for _, o := range []string{"http://a.test", "https://b.test:8443"} {
		rec := corsCall(anyOrigin, http.MethodGet, "/healthz", o, nil)
		if got := rec.Header().Get("Access-Control-Allow-Origin"); got != o {
			t.Errorf("*: origin %s: Access-Control-Allow-Origin %q", o, got)
		}
	}
}
