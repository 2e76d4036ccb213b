package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
)

// keptJobs is a Submitter that keeps the requests of the jobs it is
// given and stores nothing.
type keptJobs struct {
	mu   sync.Mutex
	reqs []*jobs.Request
}

func (k *keptJobs) Submit(_ context.Context, _ *jobs.Job, req *jobs.Request, _ time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reqs = append(k.reqs, req)
	return nil
}

func (k *keptJobs) NewID(string, string) string { return jobs.NewID() }

func (k *keptJobs) Cancel(context.Context, string, string) (*jobs.Job, error) {
	return nil, jobs.ErrNotFound
}

func (k *keptJobs) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.reqs)
}

func (k *keptJobs) last() *jobs.Request {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.reqs) == 0 {
		return nil
	}
	return k.reqs[len(k.reqs)-1]
}

// newKeptGateway makes a gateway with routes over a keptJobs, without
// Redis.
func newKeptGateway(t *testing.T, cfg Config) (*Gateway, *keptJobs) {
	t.Helper()
	kept := &keptJobs{}
	g, err := New(cfg, Deps{Jobs: kept, Store: emptyStore{}, Hub: quietFeed{}})
	if err != nil {
		t.Fatal(err)
	}
	return g, kept
}

// post sends body to path with a Content-Type and returns the answer.
func post(g *Gateway, path, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec
}

// decodeProblem reads a problem+json answer.
func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q; body %s", rec.Code, ct, rec.Body)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("decode problem %s: %v", rec.Body, err)
	}
	return p
}

// TestBodiesThatMeanTwoThings: a JSON body with invalid UTF-8, an unpaired
// surrogate escape or a member named twice, at any depth, is refused with
// a 400 naming where, on a route and in a POST /v1/jobs payload, and no job
// is submitted. The case: a duplicate "quantity" whose last value
// passes the schema (maximum 1000) and whose first does not.
func TestBodiesThatMeanTwoThings(t *testing.T) {
	t.Parallel()
	g, kept := newKeptGateway(t, Config{Routes: []Route{
		{Name: "orders", Path: "/v1/orders", Upstream: "http://127.0.0.1:9/orders", Schema: "../configs/schemas/order.json"},
		{Name: "notes", Path: "/v1/notes", Upstream: "http://127.0.0.1:9/notes"},
	}})
	tests := []struct {
		name, path, body string
		slug, detail     string
		errors           []FieldError
	}{
		{"duplicate against the schema", "/v1/orders", `{"sku":"A-1","quantity":5000,"quantity":1}`,
			"validation", "the request body is invalid", []FieldError{{Pointer: "/quantity", Detail: "given more than once"}}},
		{"duplicate in a payload", "/v1/jobs", `{"type":"orders","payload":{"sku":"A-1","quantity":5000,"quantity":1}}`,
			"validation", "the request body is invalid", []FieldError{{Pointer: "/payload/quantity", Detail: "given more than once"}}},
		{"duplicate at depth", "/v1/notes", `{"items":[{"sku":"a"},{"sku":"b","qty":1,"sku":"c"}]}`,
			"validation", "the request body is invalid", []FieldError{{Pointer: "/items/1/sku", Detail: "given more than once"}}},
		{"duplicate by escape at depth in a payload", "/v1/jobs", `{"type":"notes","payload":{"a":{"b":{"\u0063":1,"c":2}}}}`,
			"validation", "the request body is invalid", []FieldError{{Pointer: "/payload/a/b/c", Detail: "given more than once"}}},
		{"duplicate at the top of /v1/jobs", "/v1/jobs", `{"type":"notes","type":"orders"}`,
			"validation", "the request body is invalid", []FieldError{{Pointer: "/type", Detail: "given more than once"}}},
		{"invalid UTF-8 in a string", "/v1/notes", "{\"note\":\"caf\xe9\"}",
			"malformed-json", "malformed JSON at line 1, column 13 (offset 13): invalid UTF-8 in a string",
			[]FieldError{{Pointer: "/note", Detail: "invalid UTF-8 in a string at offset 13"}}},
		{"invalid UTF-8 in a member name", "/v1/notes", "{\"ok\":1,\n \"n\xffte\":1}",
			"malformed-json", "malformed JSON at line 2, column 4 (offset 13): invalid UTF-8 in a member name",
			[]FieldError{{Pointer: "", Detail: "invalid UTF-8 in a member name at offset 13"}}},
		{"invalid UTF-8 in a payload", "/v1/jobs", "{\"type\":\"notes\",\"payload\":{\"list\":[\"ok\",\"\xc3\"]}}",
			"malformed-json", "malformed JSON at line 1, column 42 (offset 42): invalid UTF-8 in a string",
			[]FieldError{{Pointer: "/payload/list/1", Detail: "invalid UTF-8 in a string at offset 42"}}},
		{"invalid UTF-8 in a payload's member name", "/v1/jobs", "{\"type\":\"notes\",\"payload\":{\"\xe9\":1}}",
			"malformed-json", "malformed JSON at line 1, column 29 (offset 29): invalid UTF-8 in a member name",
			[]FieldError{{Pointer: "/payload", Detail: "invalid UTF-8 in a member name at offset 29"}}},
		{"unpaired surrogate", "/v1/notes", `{"note":"\ud800"}`,
			"malformed-json", "malformed JSON at line 1, column 10 (offset 10): an unpaired surrogate escape in a string",
			[]FieldError{{Pointer: "/note", Detail: "an unpaired surrogate escape in a string at offset 10"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := kept.count()
			rec := post(g, tt.path, "application/json", tt.body)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", rec.Code, rec.Body)
			}
			p := decodeProblem(t, rec)
			if p.Type != problemTypeBase+tt.slug || p.Detail != tt.detail {
				t.Errorf("problem %s %q, want %s %q", p.Type, p.Detail, tt.slug, tt.detail)
			}
			if len(p.Errors) != len(tt.errors) || len(p.Errors) == 1 && p.Errors[0] != tt.errors[0] {
				t.Errorf("errors %+v, want %+v", p.Errors, tt.errors)
			}
			if kept.count() != before {
				t.Errorf("a job was submitted for %q", tt.body)
			}
		})
	}

	// The same bodies made unambiguous are taken.
	for path, body := range map[string]string{
		"/v1/orders": `{"sku":"A-1","quantity":1,"note":"caf\u00e9 \ud83d\ude00"}`,
		"/v1/jobs":   `{"type":"notes","payload":{"items":[{"sku":"a"},{"sku":"a"}],"note":"café"}}`,
	} {
		if rec := post(g, path, "application/json", body); rec.Code != http.StatusAccepted {
			t.Errorf("POST %s %s: status %d, want 202; body %s", path, body, rec.Code, rec.Body)
		}
	}
}

// TestJSONContentTypes: only application/json and type/subtype+json
// bodies are taken; "+json" and "application/+json", which
// mime.ParseMediaType lets through, are 415.
func TestJSONContentTypes(t *testing.T) {
	t.Parallel()
	g, kept := newKeptGateway(t, Config{Routes: []Route{{Name: "notes", Path: "/v1/notes", Upstream: "http://127.0.0.1:9/notes"}}})
	for _, tt := range []struct {
		contentType string
		want        int
	}{
		{"+json", http.StatusUnsupportedMediaType},
		{"application/+json", http.StatusUnsupportedMediaType},
		{"application/+json; charset=utf-8", http.StatusUnsupportedMediaType},
		{"/+json", http.StatusUnsupportedMediaType},
		{"application/json", http.StatusAccepted},
		{"application/vnd.api+json", http.StatusAccepted},
		{"application/merge-patch+json; charset=UTF-8", http.StatusAccepted},
	} {
		for path, body := range map[string]string{"/v1/notes": `{"a":1}`, "/v1/jobs": `{"type":"notes"}`} {
			before := kept.count()
			rec := post(g, path, tt.contentType, body)
			if rec.Code != tt.want {
				t.Errorf("POST %s with Content-Type %q: status %d, want %d; body %s", path, tt.contentType, rec.Code, tt.want, rec.Body)
				continue
			}
			if tt.want == http.StatusUnsupportedMediaType {
				if p := decodeProblem(t, rec); p.Type != problemTypeBase+"unsupported-media-type" {
					t.Errorf("POST %s with Content-Type %q: problem %s", path, tt.contentType, p.Type)
				}
				if kept.count() != before {
					t.Errorf("POST %s with Content-Type %q: a job was submitted", path, tt.contentType)
				}
			}
		}
	}
}

// unreadBody fails the test when the handler reads it.
type unreadBody struct{ t *testing.T }

func (b unreadBody) Read([]byte) (int, error) {
	b.t.Error("the body was read")
	return 0, io.ErrUnexpectedEOF
}

func (unreadBody) Close() error { return nil }

// TestBodyTooLargeUnread: a Content-Length over the limit is 413 before
// anything of the body is read, and the connection is closed rather than
// drained.
func TestBodyTooLargeUnread(t *testing.T) {
	t.Parallel()
	g, kept := newKeptGateway(t, Config{MaxBody: 1 << 20, Routes: []Route{
		{Name: "small", Path: "/v1/small", Upstream: "http://127.0.0.1:9/small", MaxBody: 64},
	}})
	for _, tt := range []struct {
		path   string
		length int64
		limit  string
	}{
		{"/v1/small", 65, "64"},
		{"/v1/jobs", 1<<20 + 1, "1048576"},
	} {
		req := httptest.NewRequest(http.MethodPost, tt.path, nil)
		req.Body, req.ContentLength = unreadBody{t}, tt.length
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("POST %s of %d bytes: status %d, want 413; body %s", tt.path, tt.length, rec.Code, rec.Body)
		}
		if p := decodeProblem(t, rec); p.Detail != "the request body exceeds the limit of "+tt.limit+" bytes" {
			t.Errorf("POST %s: detail %q", tt.path, p.Detail)
		}
		if got := rec.Header().Get("Connection"); got != "close" {
			t.Errorf("POST %s: Connection %q, want close", tt.path, got)
		}
	}
	if kept.count() != 0 {
		t.Errorf("%d jobs submitted", kept.count())
	}
}
