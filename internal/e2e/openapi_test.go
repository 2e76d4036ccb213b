package e2e

import (
	"bytes"
	"context"
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
// Send is checked against it, so a test whose answer the document does not
// describe fails.

// openAPIFile is the document the gateway embeds and serves.
var openAPIFile = filepath.Join("..", "..", "gateway", "openapi.json")

// configuredOp is the operation that stands for every configured route.
const configuredOp = "POST /v1/demo"

func init() { checkResponse = checkOpenAPI }

// contract is the document, loaded for checking answers.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	// configured is the route of configuredOp: answers of paths the
	// document does not list are configured routes' answers.
	configured *routers.Route
	problem    *openapi3.Schema
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	doc, err := loadOpenAPI()
	if err != nil {
		return nil, err
	}
	// The document leaves objects open, as clients must ignore members
	// they do not know; the check closes them, so that a member the
	// gateway sends and the document does not describe is a mismatch.
	closeObjects(doc)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", openAPIFile, err)
	}
	method, path, _ := strings.Cut(configuredOp, " ")
	item := doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		return nil, fmt.Errorf("%s does not describe %s", openAPIFile, configuredOp)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil {
		return nil, fmt.Errorf("%s has no Problem schema", openAPIFile)
	}
	return &contract{
		doc:    doc,
		router: router,
		configured: &routers.Route{
			Spec: doc, Path: path, PathItem: item, Method: method, Operation: item.GetOperation(method),
		},
		problem: problem.Value,
	}, nil
})

// loadOpenAPI reads and validates the document.
func loadOpenAPI() (*openapi3.T, error) {
	b, err := os.ReadFile(openAPIFile)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", openAPIFile, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate %s: %w", openAPIFile, err)
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

// checkOpenAPI is checkResponse: it reports an answer the document does not
// describe.
func checkOpenAPI(req *http.Request, r *Response) error {
	c, err := loadContract()
	if err != nil {
		return fmt.Errorf("openapi: %w", err)
	}
	if err := c.check(req, r); err != nil {
		return fmt.Errorf("%s %s answered %d, which %s does not describe: %w\nbody: %s",
			req.Method, req.URL.RequestURI(), r.Status, openAPIFile, err, clip(r.Body, 2000))
	}
	return nil
}

func (c *contract) check(req *http.Request, r *Response) error {
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
		// Any other path is a configured route.
		route, params = c.configured, nil
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
		return fmt.Errorf("%s does not describe the jobEvent webhook", openAPIFile)
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

// TestOpenAPIDocument: GET /openapi.json serves gateway/openapi.json, a
// valid OpenAPI 3.1 document that describes exactly the routes the gateway
// registers, with an ETag to revalidate it.
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
	file, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, file) {
		t.Errorf("GET /openapi.json does not serve %s", openAPIFile)
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
			t.Errorf("%s is registered in gateway/ but %s does not describe it", key, openAPIFile)
		}
	}
	for key := range described {
		if key != configuredOp && !slices.Contains(registered, key) {
			t.Errorf("%s describes %s, which gateway/ does not register", openAPIFile, key)
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
		// The route of the demo, which the document stands for every
		// configured route with.
		Routes: []gateway.Route{{Name: "demo", Path: "/v1/demo", Upstream: "/demo"}},
	})
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	const id = "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	fill := strings.NewReplacer("{id}", id, "{queue}", h.Queues.Default)
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
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	h := webhookHarness(t, []string{newSecret(t)}, webhook.Tenant{})
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
