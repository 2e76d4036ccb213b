package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
)

// TestBodiesThatMeanTwoThings sends bodies that parsers read in different
// ways (text that is not UTF-8, a member named twice) and bodies whose
// content type only looks like JSON, on a route and through POST
// /v1/jobs, and checks the exact refusal and that nothing was stored or
// sent upstream. The case: a schema with maximum 1000 saw the last
// "quantity" (1) while an upstream keeping the first would take 5000.
func TestBodiesThatMeanTwoThings(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "orders", Path: "/v1/orders", Upstream: "/orders", Schema: "../../configs/schemas/order.json"},
		{Name: "notes", Path: "/v1/notes", Upstream: "/notes"},
	}})
	pauseQueues(t, h, h.Queues.Critical, h.Queues.Default, h.Queues.Low)
	jsonType := http.Header{"Content-Type": {"application/json"}}
	invalid := func(pointer string) wantProblem {
		return wantProblem{400, "validation", "the request body is invalid", []gateway.FieldError{{Pointer: pointer, Detail: "given more than once"}}}
	}
	notUTF8 := func(line, col, off int, in, pointer string) wantProblem {
		at := strconv.Itoa(off)
		return wantProblem{400, "malformed-json",
			"malformed JSON at line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col) + " (offset " + at + "): invalid UTF-8 in " + in,
			[]gateway.FieldError{{Pointer: pointer, Detail: "invalid UTF-8 in " + in + " at offset " + at}}}
	}
	unsupported := func(ct string) wantProblem {
		return wantProblem{415, "unsupported-media-type", `content type "` + ct + `" is not accepted: send application/json`, nil}
	}
	tests := []struct {
		name, path, body string
		header           http.Header
		want             wantProblem
	}{
		{"duplicate on a route with a schema", "/v1/orders", `{"sku":"A-1","quantity":5000,"quantity":1}`, jsonType, invalid("/quantity")},
		{"duplicate in a /v1/jobs payload with a schema", "/v1/jobs", `{"type":"orders","payload":{"sku":"A-1","quantity":5000,"quantity":1}}`,
			jsonType, invalid("/payload/quantity")},
		{"duplicate deep in a route body", "/v1/notes", `{"order":{"lines":[{"sku":"a"},{"sku":"b","sku":"c"}]}}`, jsonType, invalid("/order/lines/1/sku")},
		{"duplicate deep in a payload", "/v1/jobs", `{"type":"notes","payload":{"a":[{"b":{"c":1,"\u0063":2}}]}}`, jsonType, invalid("/payload/a/0/b/c")},
		{"invalid UTF-8 in a string", "/v1/notes", "{\"note\":\"caf\xe9\"}", jsonType, notUTF8(1, 13, 13, "a string", "/note")},
		{"invalid UTF-8 in a member name", "/v1/notes", "{\n  \"n\xffte\": 1\n}", jsonType, notUTF8(2, 5, 7, "a member name", "")},
		{"invalid UTF-8 in a payload string", "/v1/jobs", "{\"type\":\"notes\",\"payload\":{\"a\":[\"\xc3\"]}}", jsonType, notUTF8(1, 34, 34, "a string", "/payload/a/0")},
		{"invalid UTF-8 in a payload member name", "/v1/jobs", "{\"type\":\"notes\",\"payload\":{\"x\":{\"\xe9\":1}}}", jsonType, notUTF8(1, 34, 34, "a member name", "/payload/x")},
		{"+json on a route", "/v1/notes", `{}`, http.Header{"Content-Type": {"+json"}}, unsupported("+json")},
		{"application/+json on a route", "/v1/notes", `{}`, http.Header{"Content-Type": {"application/+json"}}, unsupported("application/+json")},
		{"+json on /v1/jobs", "/v1/jobs", `{"type":"notes"}`, http.Header{"Content-Type": {"+json"}}, unsupported("+json")},
		{"application/+json on /v1/jobs", "/v1/jobs", `{"type":"notes"}`, http.Header{"Content-Type": {"application/+json"}}, unsupported("application/+json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireRefused(t, h, tt.name, tt.path, tt.body, tt.header, tt.want)
		})
	}

	// The same writes, meaning one thing, are taken.
	for _, w := range []struct{ path, body, contentType string }{
		{"/v1/orders", `{"sku":"A-1","quantity":1000,"note":"caf\u00e9 ☕"}`, "application/json"},
		{"/v1/jobs", `{"type":"notes","payload":{"order":{"lines":[{"sku":"a"},{"sku":"a"}]}}}`, "application/json"},
		{"/v1/notes", `{"note":"vnd"}`, "application/vnd.notes+json"},
	} {
		r := h.Do(t, http.MethodPost, w.path, []byte(w.body), http.Header{"Content-Type": {w.contentType}})
		if r.Status != http.StatusAccepted {
			t.Errorf("POST %s %s (%s): status %d, want 202; body %s", w.path, w.body, w.contentType, r.Status, r.Body)
		}
	}
}

// requireRefused POSTs body to path and requires the exact problem want,
// with nothing stored in Redis and no upstream call.
func requireRefused(t *testing.T, h *Harness, name, path, body string, header http.Header, want wantProblem) {
	t.Helper()
	before := h.Keys(t)
	calls := len(h.Upstream.AllCalls())
	r := h.Do(t, http.MethodPost, path, []byte(body), header)
	requireExactProblem(t, name, r, want)
	requireUnchanged(t, h, name, before)
	if n := len(h.Upstream.AllCalls()); n != calls {
		t.Errorf("%s: the upstream was called %d times", name, n-calls)
	}
}

// TestBodyTooLargeAnsweredAtOnce sends only the headers of a request whose
// Content-Length is over the limit, on a raw connection, and reads the
// answer: a 413 that comes without the body ever being sent, and the
// connection closed after it. (Before, the gateway waited for the body
// until its read timeout.)
func TestBodyTooLargeAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "small", Path: "/v1/small", Upstream: "/small", MaxBody: 64},
	}})
	addr := strings.TrimPrefix(h.URL, "http://")
	tests := []struct {
		name, path string
		length     int
		extra      string
		limit      int
	}{
		// Small enough that the server would drain it to keep the
		// connection, were it not closed.
		{"route max_body", "/v1/small", 1000, "", 64},
		{"default limit", "/v1/jobs", 10 << 20, "", 1 << 20},
		{"waiting for 100 Continue", "/v1/small", 100 << 10, "Expect: 100-continue\r\n", 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Keys(t)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Well under the server's read timeout (30s): an answer that
			// waits for the body misses it.
			if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			head := "POST " + tt.path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" +
				"Content-Length: " + strconv.Itoa(tt.length) + "\r\n" + tt.extra + "\r\n"
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read the answer's body: %v", err)
			}
			requireExactProblem(t, tt.name, &Response{Status: resp.StatusCode, Header: resp.Header, Body: body},
				wantProblem{413, "body-too-large", "the request body exceeds the limit of " + strconv.Itoa(tt.limit) + " bytes", nil})
			if !resp.Close {
				t.Errorf("the answer does not close the connection (Connection %q)", resp.Header.Get("Connection"))
			}
			// The server closes its end instead of reading the body.
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("after the answer: %v, want EOF", err)
			}
			requireUnchanged(t, h, tt.name, before)
		})
	}
}

// TestRouteParameterInBraces: a route whose path names its parameter in
// braces ("{customer}") takes requests on the real path, and the value
// reaches the upstream in the placeholder of either syntax, escaped once.
func TestRouteParameterInBraces(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "orders", Path: "/v1/customers/{customer}/orders", Upstream: "/crm/{customer}/orders"},
		{Name: "items", Path: "/v1/carts/:cart/items/{item}", Upstream: "/carts/{cart}/items/:item"},
	}})
	paths := make(chan string, 8)
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		paths <- r.URL.EscapedPath() + "?" + r.URL.RawQuery
		okJSON(w, r, c)
	})
	tests := []struct{ path, upstream string }{
		{"/v1/customers/c-42/orders?src=web", "/crm/c-42/orders?src=web"},
		{"/v1/customers/c%2042%2Fb/orders", "/crm/c%2042%2Fb/orders?"},
		{"/v1/carts/k1/items/%C3%A9t%C3%A9", "/carts/k1/items/%C3%A9t%C3%A9?"},
	}
	for _, tt := range tests {
		id := h.Submit(t, tt.path, `{"qty":1}`)
		h.WaitState(t, id, "succeeded")
		if got := recv(t, paths, "the upstream call of "+tt.path); got != tt.upstream {
			t.Errorf("POST %s: upstream called on %s, want %s", tt.path, got, tt.upstream)
		}
	}
	// No parameter value, no route.
	r := h.PostJSON(t, "/v1/customers//orders", `{}`)
	requireExactProblem(t, "empty parameter", r, wantProblem{404, "not-found", "no route for this path", nil})
}

// TestRoutePlaceholderWithoutParameter: an upstream placeholder that names
// no parameter of the route's path stops the gateway from starting, with
// one line naming the route's key, and so does one route given in both
// path syntaxes (before, the first was a 400 blaming each request, the
// second two routes of which one could never match).
func TestRoutePlaceholderWithoutParameter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		routes []gateway.Route
		want   string
	}{
		{[]gateway.Route{{Name: "orders", Path: "/v1/orders/{id}", Upstream: "http://127.0.0.1:9/customers/{customer}/orders/:id"}},
			`routes[0].upstream: "http://127.0.0.1:9/customers/{customer}/orders/:id": placeholder "customer" matches no parameter of the route's path /v1/orders/:id`},
		{[]gateway.Route{
			{Name: "a", Path: "/v1/orders/{customer}", Upstream: "http://127.0.0.1:9/a/{customer}"},
			{Name: "b", Path: "/v1/orders/:customer", Upstream: "http://127.0.0.1:9/b/:customer"},
		}, "routes[1].path: POST /v1/orders/:customer is used twice (also routes[0].path)"},
	}
	for _, tt := range tests {
		_, err := gateway.New(gateway.Config{Routes: tt.routes}, gateway.Deps{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("gateway.New: %v\nwant %s", err, tt.want)
		}
	}
}
