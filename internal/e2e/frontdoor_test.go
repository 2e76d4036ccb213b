package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/ratelimit"
)

// problemBase prefixes the type URI of every problem.
const problemBase = "https://asyncgw.dev/problems/"

// wantProblem is the exact problem+json answer a rejection must get.
type wantProblem struct {
	status int
	slug   string // the last part of the type URI
	detail string
	errors []gateway.FieldError
}

// requireExactProblem checks that r is exactly the problem want: status,
// Content-Type, and a body with type, title, status, detail and errors and
// nothing else.
func requireExactProblem(t *testing.T, what string, r *Response, want wantProblem) {
	t.Helper()
	if r.Status != want.status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want.status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	exp := map[string]any{
		"type":   problemBase + want.slug,
		"title":  http.StatusText(want.status),
		"status": float64(want.status),
		"detail": want.detail,
	}
	if len(want.errors) > 0 {
		var errs []any
		for _, e := range want.errors {
			errs = append(errs, map[string]any{"pointer": e.Pointer, "detail": e.Detail})
		}
		exp["errors"] = errs
	}
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("%s: decode problem %q: %v", what, r.Body, err)
	}
	if !reflect.DeepEqual(got, exp) {
		b, _ := json.Marshal(exp)
		t.Errorf("%s: problem\n got %s\nwant %s", what, r.Body, b)
	}
}

// pauseQueues pauses the harness's queues, so that the worker leaves what
// is on them alone.
func pauseQueues(t *testing.T, h *Harness, queues ...string) {
	t.Helper()
	client := submit.New(h.Redis, h.Store, nil)
	for _, q := range queues {
		if err := client.SetPaused(t.Context(), q, true); err != nil {
			t.Fatalf("pause queue %s: %v", q, err)
		}
	}
}

// requireUnchanged fails when Redis holds anything else than it did in
// before (a snapshot from h.Keys).
func requireUnchanged(t *testing.T, h *Harness, what string, before map[string]string) {
	t.Helper()
	after := h.Keys(t)
	if maps.Equal(before, after) {
		return
	}
	var added, changed, removed []string
	for k, v := range after {
		if old, ok := before[k]; !ok {
			added = append(added, k)
		} else if old != v {
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	t.Errorf("%s stored something: added %v, changed %v, removed %v", what, added, changed, removed)
}

// closedURL returns an http URL of 127.0.0.1 on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr + "/check"
}

// headerInRange checks that a header is a whole number within [lo, hi].
func headerInRange(t *testing.T, what string, h http.Header, name string, lo, hi int) {
	t.Helper()
	n, err := strconv.Atoi(h.Get(name))
	if err != nil || n < lo || n > hi {
		t.Errorf("%s: %s %q, want a whole number in [%d, %d]", what, name, h.Get(name), lo, hi)
	}
}

// TestFrontDoorRejections sends every kind of request the gateway refuses
// and checks the exact answer, and that nothing at all was stored for it.
func TestFrontDoorRejections(t *testing.T) {
	t.Parallel()
	keyA, digestA := gateway.NewKey()
	_, digestB := gateway.NewKey()
	const maxBody = 1024
	h := Start(t, Options{
		MaxBody: maxBody,
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digestA}},
			{Name: "globex", KeySHA256: []string{digestB}},
		}},
		Monitor:     20 * time.Millisecond,
		QueueLimits: map[string]int{"low": 1},
		Routes: []gateway.Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "/orders", Schema: "testdata/order.schema.json"},
			{Name: "strict", Path: "/v1/strict", Upstream: "/strict", Idempotency: "required"},
			{Name: "small", Path: "/v1/small", Upstream: "/small", MaxBody: 64},
			{Name: "limited", Path: "/v1/limited", Upstream: "/limited", RateLimit: &ratelimit.Limit{Rate: 0.01, Burst: 1}},
			{Name: "busy", Path: "/v1/busy", Upstream: "/busy"},
			{Name: "checked", Path: "/v1/checked", Upstream: "/checked", Precheck: &gateway.Precheck{URL: "/precheck"}},
			{Name: "down", Path: "/v1/down", Upstream: "/down", Precheck: &gateway.Precheck{URL: closedURL(t)}},
		},
	})
	// The worker must touch nothing while the table runs.
	pauseQueues(t, h, h.Queues.Critical, h.Queues.Default, h.Queues.Low)
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if c.Path == "/precheck" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"reason":"sold out"}`))
			return
		}
		okJSON(w, r, c)
	})
	api := h.As(keyA)

	// The low queue is at its limit of 1: fill it through the priority
	// header, and wait until the monitor has seen it.
	r := api.Do(t, http.MethodPost, "/v1/busy", []byte(`{}`), http.Header{
		"Content-Type": {"application/json"}, "X-Priority": {h.Queues.Low}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("fill the low queue: status %d; body %s", r.Status, r.Body)
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		st := h.Monitor.Stats(h.Queues.Low)
		return st.Depth >= 1, "the monitor sees depth " + strconv.Itoa(st.Depth) + " on the low queue"
	})

	hdr := func(kv ...string) http.Header {
		out := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
				continue
			}
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	unauthorized := wantProblem{401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>", nil}
	noJob := wantProblem{404, "not-found", "no such job", nil}
	missing := jobs.NewID()
	invalid := func(errs ...gateway.FieldError) wantProblem {
		return wantProblem{400, "validation", "the request body is invalid", errs}
	}
	schema := func(errs ...gateway.FieldError) wantProblem {
		return wantProblem{400, "validation", "the request body does not match the route's schema", errs}
	}
	malformed := "{\n  \"type\": \"orders\",\n  \"payload\": {\"sku\": }\n}"
	reusedBody := `{"sku":"a","qty":2}`
	inFlightBody := `{"sku":"b","qty":3}`

	tests := []struct {
		name   string
		key    string // API key; "-" sends none
		method string
		path   string
		body   string
		header http.Header
		// setup runs before the snapshot that the rejection is checked
		// against.
		setup func(t *testing.T)
		want  wantProblem
		check func(t *testing.T, r *Response)
	}{
		{name: "no API key", key: "-", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr(),
			want: unauthorized, check: func(t *testing.T, r *Response) {
				if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="asyncgw"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}},
		{name: "wrong API key", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`,
			header: hdr("Authorization", "Bearer agw_not_a_key"), want: unauthorized},
		{name: "wrong scheme", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`,
			header: hdr("Authorization", "Basic "+keyA), want: unauthorized},
		{name: "key without scheme", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`,
			header: hdr("Authorization", keyA), want: unauthorized},
		{name: "no API key on /v1/jobs", key: "-", method: "POST", path: "/v1/jobs", body: `{"type":"orders"}`, header: hdr(), want: unauthorized},
		{name: "no API key on a job", key: "-", method: "GET", path: "/v1/jobs/" + missing, want: unauthorized},
		{name: "no API key on the tenant stream", key: "-", method: "GET", path: "/v1/events", want: unauthorized},
		{name: "no API key on cancel", key: "-", method: "DELETE", path: "/v1/jobs/" + missing, want: unauthorized},

		{name: "unknown route", method: "POST", path: "/v1/nope", body: `{}`, header: hdr(),
			want: wantProblem{404, "not-found", "no route for this path", nil}},
		{name: "unknown job", method: "GET", path: "/v1/jobs/" + missing, want: noJob},
		{name: "malformed job id", method: "GET", path: "/v1/jobs/not-an-id", want: noJob},
		{name: "result of an unknown job", method: "GET", path: "/v1/jobs/" + missing + "/result", want: noJob},
		{name: "events of an unknown job", method: "GET", path: "/v1/jobs/" + missing + "/events", want: noJob},
		{name: "cancel of an unknown job", method: "DELETE", path: "/v1/jobs/" + missing, want: noJob},
		{name: "method not allowed", method: "PUT", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr(),
			want: wantProblem{405, "method-not-allowed", "this path does not take this method", nil},
			check: func(t *testing.T, r *Response) {
				if got := r.Header.Get("Allow"); !strings.Contains(got, "POST") {
					t.Errorf("Allow %q, want POST in it", got)
				}
			}},
		{name: "method not allowed on a job", method: "POST", path: "/v1/jobs/" + missing, body: `{}`, header: hdr(),
			want: wantProblem{405, "method-not-allowed", "this path does not take this method", nil}},

		{name: "malformed JSON", method: "POST", path: "/v1/jobs", body: malformed, header: hdr(),
			want: wantProblem{400, "malformed-json",
				"malformed JSON at line 3, column 22 (offset 44): invalid character '}' looking for beginning of value", nil}},
		{name: "malformed JSON on a route", method: "POST", path: "/v1/orders", body: `{"sku": "a",, }`, header: hdr(),
			want: wantProblem{400, "malformed-json",
				"malformed JSON at line 1, column 13 (offset 13): invalid character ',' looking for beginning of object key string", nil}},
		{name: "JSON cut short", method: "POST", path: "/v1/jobs", body: `{"type":"orders"`, header: hdr(),
			want: wantProblem{400, "malformed-json", "the JSON body ends too early", nil}},
		{name: "trailing data", method: "POST", path: "/v1/jobs", body: `{"type":"orders"} {}`, header: hdr(),
			want: wantProblem{400, "malformed-json", "unexpected data after the JSON value at line 1, column 19 (offset 19)", nil}},
		{name: "trailing data on a route", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}x`, header: hdr(),
			want: wantProblem{400, "malformed-json",
				"unexpected data after the JSON value at line 1, column 20 (offset 20)", nil}},
		{name: "trailing data on a later line", method: "POST", path: "/v1/orders", body: "{\"sku\":\"a\",\n\"qty\":1}\n\n  []", header: hdr(),
			want: wantProblem{400, "malformed-json", "unexpected data after the JSON value at line 4, column 3 (offset 25)", nil}},
		{name: "unknown field", method: "POST", path: "/v1/jobs", body: `{"type":"orders","bogus":1}`, header: hdr(),
			want: invalid(gateway.FieldError{Pointer: "/bogus", Detail: "unknown field"})},
		{name: "wrong field type", method: "POST", path: "/v1/jobs", body: `{"type":7}`, header: hdr(),
			want: invalid(gateway.FieldError{Pointer: "/type", Detail: "must be string"})},
		{name: "unknown job type", method: "POST", path: "/v1/jobs", body: `{"type":"nope"}`, header: hdr(),
			want: invalid(gateway.FieldError{Pointer: "/type", Detail: `unknown job type "nope"`})},
		{name: "unknown type and bad delay", method: "POST", path: "/v1/jobs", body: `{"type":"","delay":"soon"}`, header: hdr(),
			want: invalid(
				gateway.FieldError{Pointer: "/delay", Detail: `must be a duration such as "30s" or "5m", from 0 to 8760h`},
				gateway.FieldError{Pointer: "/type", Detail: "is required"})},
		{name: "schema violations", method: "POST", path: "/v1/orders", body: `{"sku":5,"qty":0,"note":"x"}`, header: hdr(),
			want: schema(
				gateway.FieldError{Pointer: "", Detail: "additional properties 'note' not allowed"},
				gateway.FieldError{Pointer: "/qty", Detail: "minimum: got 0, want 1"},
				gateway.FieldError{Pointer: "/sku", Detail: "got number, want string"})},
		{name: "schema violations through /v1/jobs", method: "POST", path: "/v1/jobs", body: `{"type":"orders","payload":{"qty":0}}`, header: hdr(),
			want: schema(
				gateway.FieldError{Pointer: "/payload", Detail: "missing property 'sku'"},
				gateway.FieldError{Pointer: "/payload/qty", Detail: "minimum: got 0, want 1"})},
		{name: "empty body against a schema", method: "POST", path: "/v1/orders", header: hdr("Content-Type", ""),
			want: schema(gateway.FieldError{Pointer: "", Detail: "got null, want object"})},

		{name: "bad X-Priority", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr("X-Priority", "urgent"),
			want: wantProblem{400, "bad-priority", `priority "urgent" is not allowed here; allowed: ` +
				h.Queues.Critical + ", " + h.Queues.Default + ", " + h.Queues.Low, nil}},
		{name: "bad priority field", method: "POST", path: "/v1/jobs", body: `{"type":"strict","priority":"top"}`, header: hdr(),
			want: wantProblem{400, "bad-priority", `priority "top" is not allowed here; allowed: ` +
				h.Queues.Critical + ", " + h.Queues.Default + ", " + h.Queues.Low, nil}},
		{name: "bad Idempotency-Key", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr("Idempotency-Key", "a b"),
			want: wantProblem{400, "bad-idempotency-key", "the Idempotency-Key must be a quoted string or a token; character 2 is not allowed", nil}},
		{name: "two Idempotency-Keys", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`,
			header: hdr("Idempotency-Key", "a", "Idempotency-Key", "b"),
			want:   wantProblem{400, "bad-idempotency-key", "send one Idempotency-Key header, not several", nil}},
		{name: "Idempotency-Key too long", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`,
			header: hdr("Idempotency-Key", strings.Repeat("k", 256)),
			want:   wantProblem{400, "bad-idempotency-key", "the Idempotency-Key is longer than 255 characters", nil}},
		{name: "missing Idempotency-Key", method: "POST", path: "/v1/strict", body: `{}`, header: hdr(),
			want: wantProblem{400, "idempotency-key-required", "this route requires an Idempotency-Key header", nil}},
		{name: "missing Idempotency-Key through /v1/jobs", method: "POST", path: "/v1/jobs", body: `{"type":"strict"}`, header: hdr(),
			want: wantProblem{400, "idempotency-key-required", "this route requires an Idempotency-Key header", nil}},
		{name: "bad Prefer wait", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr("Prefer", "respond-async, wait=soon"),
			want: wantProblem{400, "bad-prefer", "Prefer: wait must be a whole number of seconds", nil}},
		{name: "Prefer wait without a value", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr("Prefer", "wait"),
			want: wantProblem{400, "bad-prefer", "Prefer: wait must be a whole number of seconds", nil}},

		{name: "body over the route's max_body", method: "POST", path: "/v1/small", body: `{"pad":"` + strings.Repeat("x", 64) + `"}`, header: hdr(),
			want: wantProblem{413, "body-too-large", "the request body exceeds the limit of 64 bytes", nil}},
		{name: "body over the default limit", method: "POST", path: "/v1/jobs", body: `{"type":"orders","payload":{"pad":"` + strings.Repeat("x", maxBody) + `"}}`, header: hdr(),
			want: wantProblem{413, "body-too-large", "the request body exceeds the limit of 1024 bytes", nil}},
		{name: "wrong content type", method: "POST", path: "/v1/orders", body: `<order/>`, header: hdr("Content-Type", "", "Content-Type", "application/xml"),
			want: wantProblem{415, "unsupported-media-type", `content type "application/xml" is not accepted: send application/json`, nil}},
		{name: "no content type", method: "POST", path: "/v1/jobs", body: `{"type":"orders"}`, header: hdr("Content-Type", ""),
			want: wantProblem{415, "unsupported-media-type", "a Content-Type header is required: application/json", nil}},
		{name: "not UTF-8", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":1}`, header: hdr("Content-Type", "", "Content-Type", "application/json; charset=latin1"),
			want: wantProblem{415, "unsupported-media-type", "JSON must be UTF-8", nil}},

		{name: "Idempotency-Key reused with another body", method: "POST", path: "/v1/orders", body: `{"sku":"a","qty":20}`,
			header: hdr("Idempotency-Key", "reused"),
			setup: func(t *testing.T) {
				r := api.Do(t, http.MethodPost, "/v1/orders", []byte(reusedBody), hdr("Idempotency-Key", "reused"))
				if r.Status != http.StatusAccepted {
					t.Fatalf("first use of the key: status %d; body %s", r.Status, r.Body)
				}
			},
			want: wantProblem{422, "idempotency-key-reused", "this Idempotency-Key was used for a different request (method, path or body)", nil}},
		{name: "Idempotency-Key reused on another path", method: "POST", path: "/v1/jobs", body: `{"type":"orders","payload":` + reusedBody + `}`,
			header: hdr("Idempotency-Key", "reused"),
			want:   wantProblem{422, "idempotency-key-reused", "this Idempotency-Key was used for a different request (method, path or body)", nil}},
		{name: "Idempotency-Key in flight", method: "POST", path: "/v1/orders", body: inFlightBody,
			header: hdr("Idempotency-Key", `"in flight"`),
			setup: func(t *testing.T) {
				// A claim as an earlier version made it before storing
				// its job, during a rolling upgrade.
				fp := gateway.Fingerprint(http.MethodPost, "/v1/orders", []byte(inFlightBody))
				key := h.Store.Space().Idempotency("acme", "in flight")
				if err := h.Redis.HSet(context.Background(), key, "s", "p", "fp", fp, "id", jobs.NewID()).Err(); err != nil {
					t.Fatal(err)
				}
				h.Redis.Expire(context.Background(), key, 30*time.Second)
			},
			want: wantProblem{409, "idempotency-key-in-use", "a request with this Idempotency-Key is still being accepted; retry shortly", nil},
			check: func(t *testing.T, r *Response) {
				if got := r.Header.Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After %q, want 1", got)
				}
			}},

		{name: "rate limited", method: "POST", path: "/v1/limited", body: `{}`, header: hdr(),
			setup: func(t *testing.T) {
				// A refused request still takes the route's one token.
				r := api.Do(t, http.MethodPost, "/v1/limited", []byte(`x`), hdr("Content-Type", "", "Content-Type", "text/plain"))
				if r.Status != http.StatusUnsupportedMediaType {
					t.Fatalf("setup: status %d; body %s", r.Status, r.Body)
				}
				if r.Header.Get("RateLimit-Limit") != "1" || r.Header.Get("RateLimit-Remaining") != "0" {
					t.Errorf("setup: a limited route's answer lacks RateLimit headers: %v", r.Header)
				}
			},
			want: wantProblem{429, "rate-limited", "tenant acme is over the rate limit of route limited (0.01/s, burst 1)", nil},
			check: func(t *testing.T, r *Response) {
				headerInRange(t, "429", r.Header, "Retry-After", 97, 100)
				headerInRange(t, "429", r.Header, "RateLimit-Reset", 97, 100)
				if r.Header.Get("RateLimit-Limit") != "1" || r.Header.Get("RateLimit-Remaining") != "0" {
					t.Errorf("429: RateLimit-Limit %q, RateLimit-Remaining %q, want 1 and 0",
						r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Remaining"))
				}
			}},
		{name: "overloaded", method: "POST", path: "/v1/busy", body: `{}`, header: hdr("X-Priority", h.Queues.Low),
			want: wantProblem{503, "overloaded", `queue "` + h.Queues.Low + `" is over its depth limit (1 waiting); nothing was stored, retry later`, nil},
			check: func(t *testing.T, r *Response) {
				// Nothing drains a paused queue: the estimate falls back to 10s.
				if got := r.Header.Get("Retry-After"); got != "10" {
					t.Errorf("Retry-After %q, want 10", got)
				}
			}},
		{name: "pre-check unavailable", method: "POST", path: "/v1/down", body: `{}`, header: hdr(),
			want: wantProblem{503, "precheck-unavailable", "the pre-check of this route is unavailable; nothing was stored, retry later", nil},
			check: func(t *testing.T, r *Response) {
				if got := r.Header.Get("Retry-After"); got != "1" {
					t.Errorf("Retry-After %q, want 1", got)
				}
			}},
		{name: "pre-check refuses", method: "POST", path: "/v1/checked", body: `{"sku":"c"}`, header: hdr(),
			want: wantProblem{409, "precheck-refused", `the pre-check refused the request: {"reason":"sold out"}`, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			before := h.Keys(t)
			calls := len(h.Upstream.AllCalls())
			s := api
			if tt.key == "-" {
				s = h.Server
			}
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			r := s.Do(t, tt.method, tt.path, body, tt.header)
			requireExactProblem(t, tt.name, r, tt.want)
			if tt.check != nil {
				tt.check(t, r)
			}
			requireUnchanged(t, h, tt.name, before)
			for _, c := range h.Upstream.AllCalls()[calls:] {
				if c.Path != "/precheck" {
					t.Errorf("the upstream was called on %s", c.Path)
				}
			}
		})
	}

	// Every job in Redis is one the table made on purpose.
	if ids := h.JobIDs(t, "acme"); len(ids) != 2 {
		t.Errorf("tenant acme has %d jobs %v, want the 2 the table made", len(ids), ids)
	}
	if ids := h.JobIDs(t, "globex"); len(ids) != 0 {
		t.Errorf("tenant globex has jobs %v", ids)
	}
	tasks := h.TaskIDs(t)
	slices.Sort(tasks)
	ids := h.JobIDs(t, "acme")
	slices.Sort(ids)
	if !slices.Equal(tasks, ids) {
		t.Errorf("tasks %v, want one per job %v", tasks, ids)
	}
}
