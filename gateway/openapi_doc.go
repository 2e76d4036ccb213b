package gateway

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// openAPIServer is the document's one server: the origin the document was
// fetched from. A relative URL stays right behind any proxy or host name,
// and the document is the same for every request.
const openAPIServer = "/"

// fixedOpenAPI is the fixed part, parsed once; each document starts from a
// copy.
var fixedOpenAPI = sync.OnceValues(func() (any, error) { return parseJSON(openAPIFixed) })

// buildOpenAPI makes the OpenAPI 3.1 document that GET /openapi.json serves
// for cfg: the fixed part (openapi.json: asyncgw's own API) with this
// deployment's configured routes, its authentication mode and its server.
// schemas are the routes' compiled schemas (loadSchemas). It depends on
// nothing else, so a new configuration gets its document by calling it
// again.
func buildOpenAPI(cfg Config, schemas map[string]*Schema) ([]byte, error) {
	v, err := fixedOpenAPI()
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	doc, ok := clone(v).(*object)
	if !ok || doc.obj("paths") == nil || doc.obj("components") == nil || doc.obj("info") == nil {
		return nil, fmt.Errorf("openapi.json: not an OpenAPI document")
	}
	doc.setBefore("tags", "servers", []any{newObject().
		set("url", openAPIServer).
		set("description", "The origin this document was fetched from.")})

	var notes []string
	if cfg.Auth.Enabled {
		notes = append(notes, "Authentication is on: every operation but health, readiness, metrics and this document needs an API key (`Authorization: Bearer <key>`); the event streams also open with a stream token (`?token=`).")
	} else {
		withoutAuth(doc)
		notes = append(notes, "Authentication is off: no API key is needed, and every caller is tenant `default`, with the admin role.")
	}
	if cfg.Demo {
		notes = append(notes, "This is the built-in demo: its route `demo` forwards to a small upstream inside the gateway "+
			"(at `/_demo/upstream`, not part of the API) that takes a moment and answers `201` with what it received.")
	}
	skipped, err := addRoutes(doc, cfg, schemas)
	if err != nil {
		return nil, err
	}
	switch n := len(cfg.Routes) - len(skipped); n {
	case 0:
		notes = append(notes, "No route is configured.")
	case 1:
		notes = append(notes, "One route is configured; it is listed under the tag `routes`.")
	default:
		notes = append(notes, fmt.Sprintf("%d routes are configured; they are listed under the tag `routes`.", n))
	}
	if len(skipped) > 0 {
		notes = append(notes, "OpenAPI 3.1 cannot describe the methods of these routes, which the gateway serves all the same: "+
			strings.Join(skipped, ", ")+".")
	}
	info := doc.obj("info")
	info.set("description", info.str("description")+"\n\n## This deployment\n\n"+strings.Join(notes, " "))
	return appendJSON(nil, doc)
}

// addRoutes adds the configured routes to the document's paths, with their
// schemas as components, and lists the routes it cannot describe.
func addRoutes(doc *object, cfg Config, schemas map[string]*Schema) ([]string, error) {
	paths := doc.obj("paths")
	comps := doc.obj("components")
	// The routes go after the fixed /v1 paths, before the admin API.
	var before string
	for _, k := range paths.keys {
		if strings.HasPrefix(k, "/admin/") {
			before = k
			break
		}
	}
	// Paths that differ only in their parameters' names are one path to
	// OpenAPI: the first route's names are used.
	shapes := map[string]string{}
	for _, k := range paths.keys {
		shapes[pathShape(k)] = k
	}
	files := map[string][]byte{}
	for _, s := range schemas {
		maps.Copy(files, s.files)
	}
	bundle := newSchemaBundle(files)
	var generic []string
	var skipped []string
	needRequiredKey, needRequiredOrdering, needEmptyParam := false, false, false
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		tmpl, params, wildcard := openAPIPath(r.Path)
		spec := routeSpec{route: r, auth: cfg.Auth.Enabled, generic: !strings.ContainsAny(r.Upstream, "{") && !strings.Contains(r.Upstream, "/:")}
		if spec.generic {
			generic = append(generic, r.Name)
		}
		if !slices.Contains(openAPIMethods, r.Method) {
			skipped = append(skipped, "`"+r.Method+" "+tmpl+"`")
			continue
		}
		if key, ok := shapes[pathShape(tmpl)]; ok && key != tmpl {
			i := slices.Index(params, wildcard)
			tmpl = key
			_, params, _ = openAPIPath(key)
			if i >= 0 {
				wildcard = params[i]
			}
		}
		spec.params, spec.wildcard = params, wildcard
		if r.Schema != "" {
			name, err := bundle.addRoute(r.Name, r.Schema)
			if err != nil {
				return nil, fmt.Errorf("%s.schema: %w", at, err)
			}
			spec.schema = "#/components/schemas/" + escapePointerToken(name)
			if s := schemas[r.Name]; s != nil {
				spec.bodyRequired = len(s.Validate([]byte("null"))) > 0
			}
		}
		needRequiredKey = needRequiredKey || r.Idempotency == "required"
		needRequiredOrdering = needRequiredOrdering || r.Ordering == OrderingRequired
		needEmptyParam = needEmptyParam || len(params) > 0
		item := paths.obj(tmpl)
		if item == nil {
			item = newObject()
			paths.setBefore(before, tmpl, item)
			shapes[pathShape(tmpl)] = tmpl
		}
		method := strings.ToLower(r.Method)
		if item.has(method) {
			return nil, fmt.Errorf("%s.path: %s %s is one of asyncgw's own operations", at, r.Method, r.Path)
		}
		item.set(method, spec.operation())
	}
	if err := bundle.resolve(); err != nil {
		return nil, fmt.Errorf("routes: schema: %w", err)
	}
	if len(bundle.comps.keys) > 0 {
		schemaComps := comps.obj("schemas")
		for _, name := range bundle.comps.keys {
			schemaComps.set(name, bundle.comps.get(name))
		}
	}
	if len(cfg.Routes) > len(skipped) {
		tags, _ := doc.get("tags").([]any)
		doc.set("tags", append(tags, newObject().
			set("name", "routes").
			set("description", "This deployment's configured routes. Each takes a write, stores it as a job and answers `202`; "+
				"the job is then followed with the `jobs` and `events` operations.")))
	}
	if needRequiredKey {
		p := clone(comps.obj("parameters").get("Idempotency-Key")).(*object)
		p.set("required", true)
		p.set("description", "Required on this route (`400` without it). "+p.str("description"))
		comps.obj("parameters").set("Idempotency-Key-Required", p)
	}
	if needRequiredOrdering {
		p := clone(comps.obj("parameters").get("X-Ordering-Key")).(*object)
		p.set("required", true)
		p.set("description", "Required on this route (`400` without it). "+p.str("description"))
		comps.obj("parameters").set("X-Ordering-Key-Required", p)
	}
	if needEmptyParam {
		r := clone(comps.obj("responses").get("JobNotFound")).(*object)
		r.set("description", "A path parameter of the route was left empty, as in `/v1/customers//orders` (`not-found`: no route for this path).")
		comps.obj("responses").set("EmptyPathParameter", r)
	}
	for _, t := range cfg.Types {
		generic = append(generic, t.Name)
	}
	typ := comps.obj("schemas").obj("SubmitRequest").obj("properties").obj("type")
	if len(generic) == 0 {
		typ.set("description", typ.str("description")+" This gateway has none: every `POST /v1/jobs` is `400`.")
	} else {
		typ.set("description", typ.str("description")+" On this gateway: `"+strings.Join(generic, "`, `")+"`.")
	}
	return skipped, nil
}

// withoutAuth makes the document say what a gateway without
// authentication does: no security scheme, no 401 or 403 of its own but
// those of stream tokens, which are checked all the same.
func withoutAuth(doc *object) {
	doc.set("security", []any{})
	comps := doc.obj("components")
	gone := map[string]bool{"#/components/responses/Unauthorized": true, "#/components/responses/Forbidden": true}
	// A stream token is checked even without authentication: the event
	// streams keep a 401 of their own.
	invalidToken := false
	for _, path := range doc.obj("paths").keys {
		item := doc.obj("paths").obj(path)
		for _, m := range item.keys {
			op := item.obj(m)
			if op == nil || !slices.Contains(openAPIMethods, strings.ToUpper(m)) {
				continue
			}
			tokens := takesStreamToken(op)
			op.del("security")
			if resp := op.obj("responses"); resp != nil {
				for _, code := range slices.Clone(resp.keys) {
					r := resp.obj(code)
					switch {
					case r == nil || !gone[r.str("$ref")]:
					case tokens && code == "401":
						resp.set(code, newObject().set("$ref", "#/components/responses/InvalidStreamToken"))
						invalidToken = true
					default:
						resp.del(code)
					}
				}
			}
		}
	}
	if invalidToken {
		r := clone(comps.obj("responses").get("Unauthorized")).(*object)
		r.set("description", "A stream token that is malformed, signed with another key or expired (`invalid-stream-token`).")
		comps.obj("responses").setBefore("Unauthorized", "InvalidStreamToken", r)
	}
	comps.del("securitySchemes")
	comps.obj("responses").del("Unauthorized")
	comps.obj("responses").del("Forbidden")
}

// takesStreamToken reports whether an operation may be called with a
// stream token (its security names streamToken).
func takesStreamToken(op *object) bool {
	sec, _ := op.get("security").([]any)
	for _, req := range sec {
		if r, ok := req.(*object); ok && r.has("streamToken") {
			return true
		}
	}
	return false
}
