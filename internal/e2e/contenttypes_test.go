package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/asyncgw/asyncgw/gateway"
)

// TestContentTypes: a route with content_types takes the bodies it lists,
// stores them and sends them upstream byte for byte with their
// Content-Type (JSON ones still checked as JSON), and refuses any other
// type with an exact 415, storing nothing; POST /v1/jobs, whose payload is
// JSON, refuses a route that takes no JSON; a route without content_types
// still takes JSON only.
func TestContentTypes(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "texts", Path: "/v1/texts", Upstream: "/texts", ContentTypes: []string{"text/plain", "application/x-www-form-urlencoded"}},
		{Name: "mixed", Path: "/v1/mixed", Upstream: "/mixed", ContentTypes: []string{"application/json", "text/*"}},
		{Name: "blobs", Path: "/v1/blobs", Upstream: "/blobs", ContentTypes: []string{"*/*"}},
		{Name: "notes", Path: "/v1/notes", Upstream: "/notes"},
	}})

	// Taken: each arrives upstream as it was sent.
	for _, w := range []struct{ path, contentType, body string }{
		{"/v1/texts", "text/plain; charset=utf-8", "héllo\nworld"},
		{"/v1/texts", "application/x-www-form-urlencoded", "a=1&b=%C3%A9&a=2"},
		{"/v1/texts", "text/plain", "caf\xe9 \x00 not UTF-8"},
		{"/v1/mixed", "text/csv", "sku,quantity\nA-1,2\n"},
		{"/v1/mixed", "application/problem+json", `{"type":"about:blank"}`},
		{"/v1/blobs", "application/octet-stream", "\x89PNG\r\n\x1a\n\x00\x00"},
		{"/v1/notes", "application/json", `{"note":"json as ever"}`},
	} {
		what := fmt.Sprintf("POST %s (%s)", w.path, w.contentType)
		a := requireAccepted(t, what, h.Do(t, http.MethodPost, w.path, []byte(w.body), http.Header{"Content-Type": {w.contentType}}))
		Eventually(t, WaitTimeout, func() (bool, string) {
			calls := h.Upstream.Calls(a.ID)
			if len(calls) == 0 {
				return false, what + ": not called upstream yet"
			}
			c := calls[0]
			if got := c.Header.Get("Content-Type"); got != w.contentType || !bytes.Equal(c.Body, []byte(w.body)) {
				t.Fatalf("%s: upstream got %q with body %q, want %q with %q", what, got, c.Body, w.contentType, w.body)
			}
			return true, ""
		})
	}

	// Refused, nothing stored or sent.
	unsupported := func(ct, want string) wantProblem {
		return wantProblem{415, "unsupported-media-type", fmt.Sprintf("content type %q is not accepted: send %s", ct, want), nil}
	}
	texts := "text/plain, application/x-www-form-urlencoded"
	for _, tt := range []struct {
		name, path, body string
		header           http.Header
		want             wantProblem
	}{
		{"JSON on a text route", "/v1/texts", `{}`, http.Header{"Content-Type": {"application/json"}}, unsupported("application/json", texts)},
		{"no content type with a body", "/v1/texts", "hello", http.Header{}, wantProblem{415, "unsupported-media-type", "a Content-Type header is required: " + texts, nil}},
		{"unreadable content type", "/v1/texts", "hello", http.Header{"Content-Type": {"text/"}},
			wantProblem{415, "unsupported-media-type", `content type "text/" cannot be read: send ` + texts, nil}},
		{"xml on a text/* route", "/v1/mixed", "<a/>", http.Header{"Content-Type": {"application/xml"}}, unsupported("application/xml", "application/json, text/*")},
		{"malformed JSON on a route that takes JSON among others", "/v1/mixed", `{"a":`, http.Header{"Content-Type": {"application/json"}},
			wantProblem{400, "malformed-json", "the JSON body ends too early", nil}},
		{"text on a JSON route", "/v1/notes", "hello", http.Header{"Content-Type": {"text/plain"}}, unsupported("text/plain", "application/json")},
		{"a text route through /v1/jobs", "/v1/jobs", `{"type":"texts","payload":{}}`, http.Header{"Content-Type": {"application/json"}},
			wantProblem{400, "validation", "the request body is invalid", []gateway.FieldError{{Pointer: "/type", Detail: "this route takes " + texts + " bodies, not application/json: submit it on its own path"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requireRefused(t, h, tt.name, tt.path, tt.body, tt.header, tt.want)
		})
	}
}
