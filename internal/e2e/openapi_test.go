package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/sse"
	"github.com/asyncgw/asyncgw/webhook"
)

// The OpenAPI document is the contract: every answer a test reads through
// Send is checked against the document that the gateway which gave it
// serves, its configured routes included, so a test whose answer the
// document does not describe fails.

func init() { checkResponse = checkOpenAPI }

// contract is a gateway's document, loaded for checking answers.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

// contracts holds the contract of every document seen, by its digest:
// gateways configured alike share one.
var contracts sync.Map // [sha256.Size]byte → *loadedContract

type loadedContract struct {
	once sync.Once
	c    *contract
	err  error
}

// contractOf loads the document g serves, once.
func contractOf(g *gateway.Gateway) (*contract, error) {
	doc := g.OpenAPI()
	v, _ := contracts.LoadOrStore(sha256.Sum256(doc), &loadedContract{})
	lc := v.(*loadedContract)
	lc.once.Do(func() { lc.c, lc.err = newContract(doc) })
	return lc.c, lc.err
}

func newContract(b []byte) (*contract, error) {
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load the served document: %w", err)
	}
	// The document leaves objects open, as clients must ignore members
	// they do not know; the check closes them, so that a member the
	// gateway sends and the document does not describe is a mismatch.
	closeObjects(doc)
	// The server is "/", the origin the document came from, which the
	// router cannot match a request URL against; the paths are all that
	// the check needs.
	doc.Servers = nil
	// The router validates the document. Checking its examples takes most
	// of that time, and they are the same for every gateway: the tests of
	// the document itself (TestOpenAPIDocument, gateway's TestOpenAPIValid)
	// check them.
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return nil, fmt.Errorf("route the served document: %w", err)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil {
		return nil, errors.New("the served document has no Problem schema")
	}
	return &contract{doc: doc, router: router, problem: problem.Value}, nil
}

// loadOpenAPI reads and validates a document.
func loadOpenAPI(b []byte) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load the served document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate the served document: %w", err)
	}
	return doc, nil
}

// closeObjects forbids undescribed members in every object schema of doc
// that lists its members and says nothing about others.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range group {
				walk(sub)
			}
		}
	}
	for _, s := range doc.Components.Schemas {
		walk(s)
	}
	for _, r := range doc.Components.Responses {
		for _, mt := range r.Value.Content {
			walk(mt.Schema)
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// checkOpenAPI is checkResponse: it reports an answer that the document
// of the gateway that gave it does not describe.
func checkOpenAPI(s *Server, req *http.Request, r *Response) error {
	c, err := contractOf(s.Gateway)
	if err != nil {
		return fmt.Errorf("openapi: %w", err)
	}
	if err := c.check(req, r); err != nil {
		return fmt.Errorf("%s %s answered %d, which the served document does not describe: %w\nbody: %s",
			req.Method, req.URL.RequestURI(), r.Status, err, clip(r.Body, 2000))
	}
	return nil
}

func (c *contract) check(req *http.Request, r *Response) error {
	// Routes match the path as sent: a parameter may hold an escaped "/".
	if req.URL.RawPath != "" {
		req = req.Clone(req.Context())
		req.URL.Path = req.URL.RawPath
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		var re *routers.RouteError
		if !errors.As(err, &re) {
			return err
		}
		switch {
		case r.Status == http.StatusMethodNotAllowed:
			// A known path called with another method: the router's
			// answer, the same for every path.
			if r.Header.Get("Allow") == "" {
				return errors.New("405 without Allow")
			}
			return c.checkProblem(r)
		case re.Reason == routers.ErrMethodNotAllowed.Error():
			return fmt.Errorf("the path is described, but not with method %s", req.Method)
		case r.Status == http.StatusNotFound && problemType(r) == "not-found":
			// A path the API does not have, called on purpose.
			return c.checkProblem(r)
		}
		return fmt.Errorf("the path is not described: %w", err)
	}
	ct := r.Header.Get("Content-Type")
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			// Event streams and metrics are text for people and parsers
			// of their own; their status and headers are still checked.
			ExcludeResponseBody: strings.HasPrefix(ct, "text/event-stream") || route.Path == "/metrics",
		},
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	if r.Status == http.StatusOK && strings.HasPrefix(ct, "text/event-stream") {
		return c.checkEvents(r.Body)
	}
	return nil
}

// checkEvents checks an event stream read to its end: every event names
// a job state (or progress), has an ID, and carries a job resource.
func (c *contract) checkEvents(body []byte) error {
	job := c.doc.Components.Schemas["Job"].Value
	kinds := append(slices.Clone(c.doc.Components.Schemas["JobState"].Value.Enum), any("progress"))
	rd := sse.NewReader(bytes.NewReader(body))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read event stream: %w", err)
		}
		if ev.Data == nil {
			continue // a bare retry: advice to reconnect
		}
		if ev.ID == "" || !slices.Contains(kinds, any(ev.Event)) {
			return fmt.Errorf("event %q (id %q): want an id and a job state or progress", ev.Event, ev.ID)
		}
		var v any
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			return fmt.Errorf("event %s: data: %w", ev.ID, err)
		}
		if err := job.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
			return fmt.Errorf("event %s: data does not match #/components/schemas/Job: %w", ev.ID, err)
		}
	}
}

// checkDelivery checks a webhook delivery a receiver got against the
// document's jobEvent webhook: its headers and its body.
func (c *contract) checkDelivery(d delivery) error {
	item := c.doc.Webhooks["jobEvent"]
	if item == nil || item.Post == nil {
		return errors.New("the served document does not describe the jobEvent webhook")
	}
	req := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(d.Body))
	req.Header = d.Header.Clone()
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: c.doc, Path: "/hooks", PathItem: item, Method: http.MethodPost, Operation: item.Post},
		Options: &openapi3filter.Options{MultiError: true},
	})
}

// checkProblem checks an answer made by the router rather than by an
// operation: a problem, with a request ID.
func (c *contract) checkProblem(r *Response) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if r.Header.Get("X-Request-ID") == "" {
		return errors.New("no X-Request-ID")
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return fmt.Errorf("decode problem: %w", err)
	}
	return c.problem.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse())
}

// problemType is the slug of a problem answer's type, or "".
func problemType(r *Response) string {
	var p struct{ Type string }
	if json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	slug, ok := strings.CutPrefix(p.Type, "https://asyncgw.dev/problems/")
	if !ok {
		return ""
	}
	return slug
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// TestOpenAPIDocument: GET /openapi.json serves the gateway's document, a
// valid OpenAPI 3.1 document with a server that describes exactly the
// routes the gateway registers (no configured route here), with an ETag
// to revalidate it.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{})
	r := h.Do(t, http.MethodGet, "/openapi.json", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: status %d, want 200; body %s", r.Status, clip(r.Body, 500))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(r.Body, h.Gateway.OpenAPI()) {
		t.Errorf("GET /openapi.json does not serve the gateway's document")
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Errorf("no ETag")
	}
	for _, tt := range []struct {
		ifNoneMatch string
		status      int
	}{
		{etag, http.StatusNotModified},
		{`"old", W/` + etag, http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"old"`, http.StatusOK},
	} {
		r := h.Do(t, http.MethodGet, "/openapi.json", nil, http.Header{"If-None-Match": {tt.ifNoneMatch}})
		if r.Status != tt.status || (r.Status == http.StatusNotModified && len(r.Body) != 0) {
			t.Errorf("GET with If-None-Match: %s: status %d with %d bytes, want %d", tt.ifNoneMatch, r.Status, len(r.Body), tt.status)
		}
	}

	doc, err := openapi3.NewLoader().LoadFromData(r.Body)
	if err != nil {
		t.Fatalf("load the served document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Errorf("the served document is not valid OpenAPI: %v", err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers %+v, want the one server /", doc.Servers)
	}

	described := map[string]bool{}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			described[key] = true
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", key)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", key, other, op.OperationID)
			}
			ids[op.OperationID] = key
			if op.Responses.Value("500") == nil && !slices.Contains([]string{"/healthz", "/readyz", "/metrics", "/openapi.json"}, path) {
				t.Errorf("%s does not describe its 500", key)
			}
		}
	}
	registered := registeredRoutes(t)
	for _, key := range registered {
		if !described[key] {
			t.Errorf("%s is registered in gateway/ but the served document does not describe it", key)
		}
	}
	for key := range described {
		if !slices.Contains(registered, key) {
			t.Errorf("the served document describes %s, which gateway/ does not register", key)
		}
	}
}

// registeredRoutes lists the routes gateway/ registers with a literal path
// (e.GET("/healthz", ...)), as "METHOD /path/{param}". Configured routes
// (added from the configuration) and the demo's own upstream are not API.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join("..", "..", "gateway")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "Any"}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !slices.Contains(methods, sel.Sel.Name) {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			path, err := strconv.Unquote(lit.Value)
			if err != nil || !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "/_demo/") {
				return true
			}
			segs := strings.Split(path, "/")
			for i, s := range segs {
				if p, ok := strings.CutPrefix(s, ":"); ok {
					segs[i] = "{" + p + "}"
				}
			}
			out = append(out, strings.ToUpper(sel.Sel.Name)+" "+strings.Join(segs, "/"))
			return true
		})
	}
	if len(out) < 10 {
		t.Fatalf("found only %d routes in %s: %v", len(out), dir, out)
	}
	return out
}

// TestOpenAPIGuards: every described operation is routed, and answers a
// caller without a key (401), or a tenant without the admin role on admin
// endpoints (403), as the document says. The checks are those of Send.
func TestOpenAPIGuards(t *testing.T) {
	t.Parallel()
	key, digest := gateway.NewKey()
	h := Start(t, Options{
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{{Name: "acme", KeySHA256: []string{digest}}}},
		Routes: []gateway.Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "/orders"},
			{Name: "lines", Method: http.MethodPut, Path: "/v1/orders/:order/lines", Upstream: "/orders/:order/lines"},
		},
	})
	doc, err := loadOpenAPI(h.Gateway.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	const id = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	fill := strings.NewReplacer("{id}", id, "{queue}", h.Queues.Default, "{order}", "o-1")
	for path, item := range doc.Paths.Map() {
		if path == "/metrics" {
			continue // mounted only when the gateway is given a metrics handler
		}
		for method, op := range item.Operations() {
			var admin bool
			if op.Security != nil && len(*op.Security) == 1 {
				_, admin = (*op.Security)[0]["adminKey"]
			}
			open := op.Security != nil && len(*op.Security) == 0
			t.Run(method+" "+path, func(t *testing.T) {
				r := h.As("").Do(t, method, fill.Replace(path), nil, nil)
				switch {
				case open && r.Status != http.StatusOK:
					t.Errorf("without a key: status %d, want 200", r.Status)
				case !open && r.Status != http.StatusUnauthorized:
					t.Errorf("without a key: status %d, want 401", r.Status)
				}
				if admin {
					if r := h.As(key).Do(t, method, fill.Replace(path), nil, nil); r.Status != http.StatusForbidden {
						t.Errorf("with a key without the admin role: status %d, want 403", r.Status)
					}
				}
			})
		}
	}
}

// TestOpenAPIConfiguredRoutes: a route added in the configuration is in
// the document the gateway serves, with its method, path parameters
// (declared with ":param" or "{param}"), its JSON Schema as the request
// body and its headers; answers on it are checked against its own
// operation; and /v1/demo, the demo's route, is there only when configured.
func TestOpenAPIConfiguredRoutes(t *testing.T) {
	t.Parallel()
	schema := filepath.Join(t.TempDir(), "order.json")
	const schemaText = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["sku", "quantity"],
  "properties": {"sku": {"type": "string", "minLength": 1}, "quantity": {"$ref": "#/$defs/quantity"}},
  "additionalProperties": false,
  "$defs": {"quantity": {"type": "integer", "minimum": 1, "maximum": 1000}}
}`
	if err := os.WriteFile(schema, []byte(schemaText), 0o600); err != nil {
		t.Fatal(err)
	}
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "orders", Path: "/v1/customers/:customer/orders", Upstream: "/customers/:customer/orders",
			Schema: schema, Idempotency: "required"},
		{Name: "items", Method: http.MethodPut, Path: "/v1/items/{item}", Upstream: "/items/{item}"},
	}})
	r := h.Do(t, http.MethodGet, "/openapi.json", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: status %d", r.Status)
	}
	doc, err := loadOpenAPI(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Paths.Value("/v1/demo") != nil {
		t.Errorf("/v1/demo is described, but no demo route is configured")
	}
	for _, tt := range []struct {
		path, method, param string
	}{
		{"/v1/customers/{customer}/orders", http.MethodPost, "customer"},
		{"/v1/items/{item}", http.MethodPut, "item"},
	} {
		item := doc.Paths.Value(tt.path)
		if item == nil || item.GetOperation(tt.method) == nil {
			t.Errorf("%s %s is not described", tt.method, tt.path)
			continue
		}
		op := item.GetOperation(tt.method)
		if p := op.Parameters.GetByInAndName("path", tt.param); p == nil || !p.Required {
			t.Errorf("%s %s: no required path parameter %q", tt.method, tt.path, tt.param)
		}
		if p := op.Parameters.GetByInAndName("header", "X-Priority"); p == nil {
			t.Errorf("%s %s: no X-Priority header", tt.method, tt.path)
		}
		if op.Responses.Value("202") == nil || op.RequestBody == nil {
			t.Errorf("%s %s: no 202 or no request body", tt.method, tt.path)
		}
	}
	op := doc.Paths.Value("/v1/customers/{customer}/orders").Post
	if p := op.Parameters.GetByInAndName("header", "Idempotency-Key"); p == nil || !p.Required {
		t.Errorf("POST /v1/customers/{customer}/orders: the Idempotency-Key it requires is not required: %+v", p)
	}
	body := op.RequestBody.Value.Content.Get("application/json")
	if body == nil || body.Schema == nil || body.Schema.Ref != "#/components/schemas/route.orders" {
		t.Fatalf("POST /v1/customers/{customer}/orders: body schema %+v, want the route's component", body)
	}
	// The component is the file's schema, its $ref now into the document.
	var got, want map[string]any
	var served struct {
		Components struct{ Schemas map[string]json.RawMessage }
	}
	if err := json.Unmarshal(r.Body, &served); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(served.Components.Schemas["route.orders"], &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(strings.Replace(schemaText, `"#/$defs/quantity"`, `"#/components/schemas/route.orders/$defs/quantity"`, 1)), &want)
	delete(want, "$schema")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("components/schemas/route.orders is\n%s\nwant the file's schema\n%s", served.Components.Schemas["route.orders"], schemaText)
	}

	// Answers on the route are checked (by Send) against its operation.
	h.Upstream.Handle(okJSON)
	ok := h.Do(t, http.MethodPost, "/v1/customers/acme/orders", []byte(`{"sku":"A-1","quantity":2}`),
		http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {`"k-1"`}})
	noKey := h.Do(t, http.MethodPost, "/v1/customers/acme/orders", []byte(`{"sku":"A-1","quantity":2}`),
		http.Header{"Content-Type": {"application/json"}})
	bad := h.Do(t, http.MethodPost, "/v1/customers/acme/orders", []byte(`{"sku":"A-1","quantity":2000}`),
		http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {`"k-2"`}})
	if ok.Status != http.StatusAccepted || noKey.Status != http.StatusBadRequest || bad.Status != http.StatusBadRequest {
		t.Errorf("statuses %d, %d, %d; want 202, 400, 400", ok.Status, noKey.Status, bad.Status)
	}

	demo := Start(t, Options{Routes: []gateway.Route{{Name: "demo", Path: "/v1/demo", Upstream: "/demo"}}})
	doc, err = loadOpenAPI(demo.Gateway.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if item := doc.Paths.Value("/v1/demo"); item == nil || item.Post == nil || item.Post.OperationID != "submit_demo" {
		t.Errorf("/v1/demo is not described where it is configured")
	}
}

// TestOpenAPIFinishedJob reads what a client reads of a finished job
// through Send, so that the document's account of the job, its result,
// its whole event stream and its webhooks is checked.
func TestOpenAPIFinishedJob(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(func(w http.ResponseWriter, _ *http.Request, _ Call) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"order":"o-1"}`))
	})
	id := h.Submit(t, "/v1/orders", `{"sku":"A-1"}`)
	h.WaitState(t, id, jobs.StateSucceeded)
	for _, path := range []string{"/v1/jobs/" + id + "/events", "/v1/jobs/" + id + "/result", "/v1/jobs/" + id + "/webhooks"} {
		r := h.Do(t, http.MethodGet, path, nil, nil)
		if r.Status/100 != 2 {
			t.Errorf("GET %s: status %d, want 2xx; body %s", path, r.Status, clip(r.Body, 500))
		}
	}
	// With Prefer: wait the write is answered 200 with the ended job.
	r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{"sku":"A-2"}`), http.Header{
		"Content-Type": {"application/json"}, "Prefer": {"wait=10"},
	})
	if r.Status != http.StatusOK {
		t.Errorf("POST with Prefer: wait=10: status %d, want 200", r.Status)
	}
}

// TestOpenAPIWebhook: what a receiver gets is what the document's
// jobEvent webhook describes, and so are the deliveries as jobs.
func TestOpenAPIWebhook(t *testing.T) {
	t.Parallel()
	h := webhookHarness(t, []string{newSecret(t)}, webhook.Tenant{})
	c, err := contractOf(h.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	h.Upstream.Handle(okJSON)
	rc := newReceiver(t, nil)
	id := submitWithCallback(t, h, rc.URL)
	h.WaitState(t, id, jobs.StateSucceeded)
	for _, d := range rc.waitDeliveries(t, 1) {
		if err := c.checkDelivery(d); err != nil {
			t.Errorf("delivery %s: %v", d.Body, err)
		}
	}
	for _, dj := range jobDeliveries(t, h.Server, id) {
		h.WaitState(t, dj.ID, jobs.StateSucceeded) // GET /v1/jobs/{delivery id}
		h.Do(t, http.MethodGet, "/v1/jobs/"+dj.ID+"/events", nil, nil)
	}
}
