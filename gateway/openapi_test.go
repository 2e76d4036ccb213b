package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/asyncgw/asyncgw/ratelimit"
)

// openAPIRoutes is a configuration with several kinds of routes: schemas
// that refer to other files, to $defs, to $ids and to anchors; both path
// parameter syntaxes; a required Idempotency-Key; a required ordering key
// and one refused; a rate limit and a pre-check.
func openAPIRoutes() []Route {
	schema := func(name string) string { return filepath.Join("testdata", "openapi", name) }
	return []Route{
		{Name: "orders", Path: "/v1/orders", Upstream: "http://orders.internal/orders", Schema: schema("order.json"),
			Idempotency: "required", RateLimit: &ratelimit.Limit{Rate: 2.5, Burst: 10}},
		{Name: "order-lines", Method: "PUT", Path: "/v1/orders/:order/lines/:line", Upstream: "http://orders.internal/orders/:order/lines/:line",
			Schema: schema("order.json")},
		{Name: "notes", Path: "/v1/customers/{customer}/notes", Upstream: "http://notes.internal/{customer}/notes",
			Schema: schema("note.json"), Priorities: []string{"low", "default"}, Queue: "low", Ordering: OrderingRequired},
		{Name: "addresses", Method: "PATCH", Path: "/v1/addresses", Upstream: "http://addresses.internal/",
			Schema: schema("address.json"), Precheck: &Precheck{URL: "http://addresses.internal/check"}},
		{Name: "ping", Path: "/v1/ping", Upstream: "http://ping.internal/", Ordering: OrderingOff},
		{Name: "legacy", Path: "/v1/legacy", Upstream: "http://legacy.internal/", Schema: schema("legacy.json")},
		{Name: "files", Method: "PUT", Path: "/v1/files/*", Upstream: "http://files.internal/"},
		{Name: "imports", Path: "/v1/imports", Upstream: "http://imports.internal/", ContentTypes: []string{"text/csv", "application/json", "application/vnd.imports+json"}},
		{Name: "uploads", Path: "/v1/uploads", Upstream: "http://uploads.internal/", ContentTypes: []string{"image/*"}},
	}
}

// TestOpenAPIContentTypes: a route's body is documented under each media
// type it takes: JSON as any JSON value, others as bytes; a route that
// takes no JSON has no application/json body.
func TestOpenAPIContentTypes(t *testing.T) {
	t.Parallel()
	paths, _ := docOf(t, newDocGateway(t, Config{Routes: openAPIRoutes()}))
	for path, want := range map[string][]string{
		"/v1/imports": {"application/json", "application/vnd.imports+json", "text/csv"},
		"/v1/uploads": {"image/*"},
		"/v1/ping":    {"application/json"},
	} {
		content := paths[path]["post"].RequestBody.Content
		if got := slices.Sorted(maps.Keys(content)); !slices.Equal(got, want) {
			t.Errorf("%s: body media types %v, want %v", path, got, want)
		}
		for ct, m := range content {
			if isJSON := strings.HasSuffix(ct, "json"); isJSON == (m.Schema["type"] == "string") || !isJSON && m.Schema["format"] != "binary" {
				t.Errorf("%s: %s body schema %v, want any JSON value for JSON, a binary string otherwise", path, ct, m.Schema)
			}
		}
	}
}

// newDocGateway builds a gateway for cfg on stand-ins for Redis: only its
// document is looked at.
func newDocGateway(t testing.TB, cfg Config) *Gateway {
	t.Helper()
	g, err := New(cfg, Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

// authModes are the two authentication modes a document is made for.
var authModes = map[string]AuthConfig{
	"auth off": {},
	"auth on":  {Enabled: true, Tenants: []Tenant{{Name: "acme", KeySHA256: []string{strings.Repeat("ab", 32)}}}},
}

// loadDoc reads a document with kin-openapi and validates it.
func loadDoc(t *testing.T, b []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load the document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	return doc
}

// TestOpenAPIValid: the documents made for several configurations, in
// both authentication modes, are valid OpenAPI 3.1 to kin-openapi, and
// GET /openapi.json serves exactly the gateway's document.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	for name, auth := range authModes {
		for _, routes := range [][]Route{nil, openAPIRoutes()} {
			g := newDocGateway(t, Config{Routes: routes, Auth: auth, Types: []Type{{Name: "resize"}}})
			doc := loadDoc(t, g.OpenAPI())
			if !doc.IsOpenAPI31OrLater() {
				t.Errorf("%s: openapi %q, want 3.1", name, doc.OpenAPI)
			}
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
			if rec.Code != http.StatusOK || rec.Body.String() != string(g.OpenAPI()) {
				t.Errorf("%s: GET /openapi.json: status %d, and the body is not the gateway's document", name, rec.Code)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s: GET /openapi.json is not JSON", name)
			}
		}
	}
}

func TestOpenAPIPath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path, want string
		params     []string
	}{
		{"/v1/orders", "/v1/orders", nil},
		{"/v1/orders/:id", "/v1/orders/{id}", []string{"id"}},
		{"/v1/orders/{id}", "/v1/orders/{id}", []string{"id"}},
		{"/v1/orders/:order/lines/{line}", "/v1/orders/{order}/lines/{line}", []string{"order", "line"}},
		{"/v1/files/{name}.json", "/v1/files/{name}.json", []string{"name"}},
		{"/v1/files/*", "/v1/files/{rest}", []string{"rest"}},
		{"/v1/:rest/files/*", "/v1/{rest}/files/{rest2}", []string{"rest", "rest2"}},
		{"/v1/files/*/ignored", "/v1/files/{rest}", []string{"rest"}},
		{`/v1/orders\:batch`, "/v1/orders:batch", nil},
		{"/v1/orders/:id/", "/v1/orders/{id}/", []string{"id"}},
	} {
		got, params, _ := openAPIPath(tt.path)
		if got != tt.want || !slices.Equal(params, tt.params) {
			t.Errorf("openAPIPath(%q) = %q, %q; want %q, %q", tt.path, got, params, tt.want, tt.params)
		}
	}
	if pathShape("/v1/orders/{id}/lines/{line}") != pathShape("/v1/orders/{order}/lines/{n}") {
		t.Errorf("paths that differ only in their parameters' names have different shapes")
	}
	if pathShape("/v1/orders/{id}") == pathShape("/v1/orders/{id}/lines") {
		t.Errorf("different paths have one shape")
	}
}

// docOp is an operation of a served document, read loosely.
type docOp struct {
	OperationID string `json:"operationId"`
	Tags        []string
	Parameters  []struct {
		Ref      string `json:"$ref"`
		Name     string
		In       string
		Required bool
		Schema   struct {
			Enum []string
		}
	}
	RequestBody struct {
		Required bool
		Content  map[string]struct {
			Schema map[string]any
		}
	} `json:"requestBody"`
	Responses map[string]struct {
		Ref string `json:"$ref"`
	}
}

// docOf decodes the parts of a document the tests look at.
func docOf(t *testing.T, g *Gateway) (paths map[string]map[string]docOp, doc map[string]any) {
	t.Helper()
	var d struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(g.OpenAPI(), &d); err != nil {
		t.Fatal(err)
	}
	paths = map[string]map[string]docOp{}
	for path, item := range d.Paths {
		paths[path] = map[string]docOp{}
		for m, raw := range item {
			var op docOp
			if json.Unmarshal(raw, &op) == nil {
				paths[path][m] = op
			}
		}
	}
	if err := json.Unmarshal(g.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	return paths, doc
}

// TestOpenAPIRoutes: every configured route is in the document with its
// method and path, its path parameters whichever syntax the path used, its
// schema as the body's, the headers it honours (a required or optional
// Idempotency-Key, the queues X-Priority may pick), its 202 and the errors
// it can answer: 401 only with authentication, 429 only with a rate limit,
// any 4xx only with a pre-check.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	for name, auth := range authModes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := newDocGateway(t, Config{Routes: openAPIRoutes(), Auth: auth})
			paths, doc := docOf(t, g)
			for _, tt := range []struct {
				route, path, method string
				params              []string
				schema              string
				bodyRequired        bool
				requiredKey         bool
				priorities          []string
				extra               []string // error answers beyond the common ones
			}{
				{"orders", "/v1/orders", "post", nil, "route.orders", true, true, []string{"critical", "default", "low"}, []string{"429"}},
				{"order-lines", "/v1/orders/{order}/lines/{line}", "put", []string{"order", "line"}, "route.orders", true, false, []string{"critical", "default", "low"}, nil},
				{"notes", "/v1/customers/{customer}/notes", "post", []string{"customer"}, "route.notes", false, false, []string{"low", "default"}, nil},
				{"addresses", "/v1/addresses", "patch", nil, "route.addresses", true, false, []string{"critical", "default", "low"}, []string{"4XX"}},
				{"ping", "/v1/ping", "post", nil, "", false, false, []string{"critical", "default", "low"}, nil},
			} {
				op, ok := paths[tt.path][tt.method]
				if !ok {
					t.Errorf("%s: %s %s is not in the document", tt.route, strings.ToUpper(tt.method), tt.path)
					continue
				}
				if op.OperationID != "submit_"+tt.route || !slices.Equal(op.Tags, []string{"routes"}) {
					t.Errorf("%s: operationId %q, tags %q", tt.route, op.OperationID, op.Tags)
				}
				var pathParams []string
				var key, priority string
				var priorities []string
				for _, p := range op.Parameters {
					switch {
					case p.In == "path":
						if !p.Required {
							t.Errorf("%s: path parameter %s is not required", tt.route, p.Name)
						}
						pathParams = append(pathParams, p.Name)
					case strings.HasPrefix(p.Ref, "#/components/parameters/Idempotency-Key"):
						key = p.Ref
					case p.Name == "X-Priority":
						priority, priorities = p.In, p.Schema.Enum
					}
				}
				if !slices.Equal(pathParams, tt.params) {
					t.Errorf("%s: path parameters %q, want %q", tt.route, pathParams, tt.params)
				}
				wantKey := "#/components/parameters/Idempotency-Key"
				if tt.requiredKey {
					wantKey += "-Required"
				}
				if key != wantKey {
					t.Errorf("%s: Idempotency-Key %q, want %q", tt.route, key, wantKey)
				}
				if priority != "header" || !slices.Equal(priorities, tt.priorities) {
					t.Errorf("%s: X-Priority in %q with %q, want a header with %q", tt.route, priority, priorities, tt.priorities)
				}
				schema := op.RequestBody.Content["application/json"].Schema
				wantSchema := map[string]any{}
				if tt.schema != "" {
					wantSchema = map[string]any{"$ref": "#/components/schemas/" + tt.schema}
				}
				if schema == nil || !reflect.DeepEqual(schema, wantSchema) {
					t.Errorf("%s: body schema %v, want %v", tt.route, schema, wantSchema)
				}
				if op.RequestBody.Required != tt.bodyRequired {
					t.Errorf("%s: body required %v, want %v", tt.route, op.RequestBody.Required, tt.bodyRequired)
				}
				want := []string{"200", "202", "400", "409", "413", "415", "422", "500", "503"}
				if auth.Enabled {
					want = append(want, "401")
				}
				if len(tt.params) > 0 {
					want = append(want, "404") // a parameter left empty
				}
				want = append(want, tt.extra...)
				var got []string
				for code, r := range op.Responses {
					got = append(got, code)
					if r.Ref == "" {
						t.Errorf("%s: answer %s is not one of the components", tt.route, code)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: answers %q, want %q", tt.route, got, want)
				}
				if op.Responses["202"].Ref != "#/components/responses/Accepted" {
					t.Errorf("%s: 202 is %q", tt.route, op.Responses["202"].Ref)
				}
			}
			if _, ok := paths["/v1/demo"]; ok {
				t.Errorf("/v1/demo is in the document of a gateway without that route")
			}
			schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
			for _, name := range []string{"route.orders", "route.notes", "route.addresses", "route.legacy"} {
				if schemas[name] == nil {
					t.Errorf("components/schemas has no %s", name)
				}
			}
			if schemas["route.order-lines"] != nil {
				t.Errorf("a schema file named by two routes is in the document twice")
			}
			_, hasSchemes := doc["components"].(map[string]any)["securitySchemes"]
			if hasSchemes != auth.Enabled {
				t.Errorf("security schemes in the document: %v, want %v", hasSchemes, auth.Enabled)
			}
		})
	}
}

// TestOpenAPIDocumentOnly: a gateway without routes describes none (and
// no demo route); an unusual method is named in the description instead
// of the paths; two routes whose paths differ only in their parameters'
// names share one path; a route cannot take an operation of asyncgw's own.
func TestOpenAPIDocumentOnly(t *testing.T) {
	t.Parallel()
	paths, _ := docOf(t, newDocGateway(t, Config{}))
	for path, item := range paths {
		for _, op := range item {
			if slices.Contains(op.Tags, "routes") || path == "/v1/demo" {
				t.Errorf("%s is in the document of a gateway without routes", path)
			}
		}
	}

	g := newDocGateway(t, Config{Routes: []Route{
		{Name: "a", Path: "/v1/things/:id", Upstream: "http://things.internal/:id"},
		{Name: "b", Method: "PUT", Path: "/v1/things/{thing}", Upstream: "http://things.internal/{thing}"},
		{Name: "c", Method: "PURGE", Path: "/v1/things", Upstream: "http://things.internal/"},
	}})
	loadDoc(t, g.OpenAPI())
	paths, doc := docOf(t, g)
	item := paths["/v1/things/{id}"]
	if item["post"].OperationID != "submit_a" || item["put"].OperationID != "submit_b" || len(paths["/v1/things/{thing}"]) != 0 {
		t.Errorf("/v1/things/{id}: %+v; /v1/things/{thing}: %+v", item, paths["/v1/things/{thing}"])
	}
	if item["put"].Parameters[0].Name != "id" {
		t.Errorf("PUT /v1/things/{id} names its parameter %q", item["put"].Parameters[0].Name)
	}
	if len(paths["/v1/things"]) != 0 {
		t.Errorf("PURGE /v1/things is in the paths: %+v", paths["/v1/things"])
	}
	if !strings.Contains(doc["info"].(map[string]any)["description"].(string), "`PURGE /v1/things`") {
		t.Errorf("the description does not name PURGE /v1/things")
	}

	for _, tt := range []struct {
		name   string
		routes []Route
		want   string
	}{
		{"a route on GET /readyz", []Route{{Name: "x", Method: "GET", Path: "/readyz", Upstream: "http://things.internal/"}},
			`routes[0].path: "/readyz" is reserved by asyncgw`},
		{"two routes on one path", []Route{
			{Name: "x", Path: "/v1/things/:id", Upstream: "http://things.internal/"},
			{Name: "y", Path: "/v1/things/{thing}", Upstream: "http://things.internal/"},
		}, "routes[1].path: "},
	} {
		_, err := New(Config{Routes: tt.routes}, Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: New returned %v, want an error starting %q", tt.name, err, tt.want)
		}
	}
}

// TestOpenAPISchemaBundle: a route's schema in the document means what
// the gateway checks. Each schema is compiled from the document (draft
// 2020-12, its $refs now pointing into components/schemas) and from its
// file (as the gateway does), and both must take and refuse the same
// bodies: references to other files, $defs, $ids and anchors resolve to
// the same schemas, and a draft-04 schema says in 2020-12 what it said.
func TestOpenAPISchemaBundle(t *testing.T) {
	t.Parallel()
	g := newDocGateway(t, Config{Routes: openAPIRoutes()})
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(g.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	const docURL = "mem:///openapi.json"
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, comp string
		bodies     []string
	}{
		{"order.json", "route.orders", []string{
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}}`,
			`{"sku": "a-1", "quantity": 1, "ship_to": {"country": "DE"}}`,
			`{"sku": "A-1", "quantity": 1001, "ship_to": {"country": "DE"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DEU"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE", "postal": "12345678901234567"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "bill_to": "12345678901234567"}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "bill_to": "1234"}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "price": {"amount": "1.50", "currency": "EUR"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "price": {"amount": "1.50", "currency": "GBP"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "lines": [{"sku": "B-2"}]}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "lines": [{"sku": "b"}]}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "$ref": {"$ref": "#/not/a/ref"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "$ref": {"$ref": "#/components/schemas/route.orders"}}`,
			`{"sku": "A-1", "quantity": 1, "ship_to": {"country": "DE"}, "extra": 1}`,
			`null`,
		}},
		{"note.json", "route.notes", []string{
			`null`, `{}`, `{"text": "hi", "tags": ["a"]}`, `{"tags": [1]}`, `{"text": "` + strings.Repeat("x", 501) + `"}`, `[]`,
		}},
		{"legacy.json", "route.legacy", []string{
			`{}`, `{"point": [1, 2]}`, `{"point": [1, 2, 3]}`, `{"point": ["a"]}`,
			`{"ratio": 0}`, `{"ratio": 0.5}`, `{"ratio": 1}`, `{"ratio": 1.5}`,
			`{"kind": "a"}`, `{"kind": "c"}`, `{"other_kind": "b"}`, `{"other_kind": "c"}`,
			`{"card": "x"}`, `{"card": "x", "billing": "y"}`, `{"card": "x", "billing": "y", "kind": "a"}`,
		}},
	} {
		fromFile, err := CompileSchema(filepath.Join("testdata", "openapi", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		fromDoc, err := c.Compile(docURL + "#/components/schemas/" + tt.comp)
		if err != nil {
			t.Fatalf("%s: compile from the document: %v", tt.comp, err)
		}
		var valid, invalid int
		for _, body := range tt.bodies {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			fileOK := len(fromFile.Validate([]byte(body))) == 0
			docErr := fromDoc.Validate(v)
			if fileOK != (docErr == nil) {
				t.Errorf("%s: %s: the file's schema says valid=%v, the document's says %v", tt.comp, body, fileOK, docErr)
			}
			if fileOK {
				valid++
			} else {
				invalid++
			}
		}
		if valid == 0 || invalid == 0 {
			t.Errorf("%s: %d valid and %d invalid bodies: the cases test nothing", tt.comp, valid, invalid)
		}
	}
	// Nothing of the files' own addressing is left.
	for _, word := range []string{`"$id"`, `"$anchor"`, `"$schema"`, `"definitions"`, `"dependencies"`, `"additionalItems"`, "file:", "schemas.example.com"} {
		if bytes.Contains(g.OpenAPI(), []byte(word)) {
			t.Errorf("the document still has %s", word)
		}
	}
}

// TestOpenAPIFromLoadedSchemas: the document is made from the
// configuration and the schemas as the gateway compiled them, not from
// whatever the files hold later, so that a document and the validation it
// describes never disagree.
func TestOpenAPIFromLoadedSchemas(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "thing.json")
	part := filepath.Join(dir, "part.json")
	write := func(name, text string) {
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(file, `{"type": "object", "properties": {"part": {"$ref": "part.json"}}}`)
	write(part, `{"type": "string", "maxLength": 7}`)
	cfg := Config{Routes: []Route{{Name: "things", Path: "/v1/things", Upstream: "http://things.internal/", Schema: file}}}.withDefaults()
	schemas, err := loadSchemas(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	write(file, `{"type": "object", "description": "changed"}`)
	write(part, `{"type": "string", "maxLength": 8}`)
	doc, err := buildOpenAPI(cfg, schemas)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"route.things":{"type":"object","properties":{"part":{"$ref":"#/components/schemas/schema.part"}}}`, `"schema.part":{"type":"string","maxLength":7}`} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the document has no %s", want)
		}
	}
	again, err := buildOpenAPI(cfg, schemas)
	if err != nil || !bytes.Equal(doc, again) {
		t.Errorf("a second document for the same configuration differs (%v)", err)
	}
}
