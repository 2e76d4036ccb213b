package gateway

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/asyncgw/asyncgw/jobs"
)

// openAPIPath turns a route path into an OpenAPI path template and lists
// its parameters in order. Both syntaxes a route path may use name a
// parameter: echo's ":name" (up to the next '/'; "\:" is a literal ':')
// and "{name}". A '*' (echo's match of the rest of the path) ends the path
// as it does for echo, and becomes a parameter named "rest" (or "rest2",
// … if the path has one so named), returned as wildcard too.
func openAPIPath(p string) (tmpl string, params []string, wildcard string) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p) && p[i+1] == ':':
			b.WriteByte(':')
			i++
		case c == ':':
			j := i + 1
			for j < len(p) && p[j] != '/' {
				j++
			}
			params = append(params, p[i+1:j])
			b.WriteString("{" + p[i+1:j] + "}")
			i = j - 1
		case c == '{':
			j := strings.IndexByte(p[i:], '}')
			if j < 0 {
				b.WriteString(p[i:])
				return b.String(), params, ""
			}
			params = append(params, p[i+1:i+j])
			b.WriteString(p[i : i+j+1])
			i += j
		case c == '*':
			wildcard = "rest"
			for n := 2; slices.Contains(params, wildcard); n++ {
				wildcard = "rest" + strconv.Itoa(n)
			}
			params = append(params, wildcard)
			b.WriteString("{" + wildcard + "}")
			return b.String(), params, wildcard
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), params, ""
}

// pathShape is a path template with its parameter names left out, so that
// "/v1/orders/{id}" and "/v1/orders/{order}" compare equal: OpenAPI holds
// them to be the same path.
func pathShape(tmpl string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		j := strings.IndexByte(tmpl[max(i, 0):], '}')
		if i < 0 || j < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		b.WriteString(tmpl[:i] + "{}")
		tmpl = tmpl[i+j+1:]
	}
}

// openAPIMethods are the methods an OpenAPI 3.1 path item can describe.
var openAPIMethods = []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}

// routeSpec is what the document says about one configured route.
type routeSpec struct {
	route *Route
	// params are the path parameters, named as in the document's path;
	// wildcard is the one that stands for echo's '*', if any.
	params   []string
	wildcard string
	// schema is the $ref of the body's schema; "" without one.
	schema string
	// bodyRequired: the schema refuses an empty body.
	bodyRequired bool
	// auth: authentication is on.
	auth bool
	// generic: the route can also be submitted as POST /v1/jobs.
	generic bool
}

// operation is the OpenAPI operation of a configured route.
func (s routeSpec) operation() *object {
	r := s.route
	op := newObject().
		set("operationId", "submit_"+r.Name).
		set("tags", []any{"routes"}).
		set("summary", "Submit a write as a job of type "+r.Name).
		set("description", s.description())

	var params []any
	for _, p := range s.params {
		desc := "Filled into the route's upstream URL where that names it."
		if p == s.wildcard {
			desc = "The rest of the path (the route's `*`), which may span segments."
		}
		params = append(params, newObject().
			set("name", p).set("in", "path").set("required", true).
			set("description", desc).
			set("schema", newObject().set("type", "string")))
	}
	idem := "Idempotency-Key"
	if r.Idempotency == "required" {
		idem = "Idempotency-Key-Required"
	}
	params = append(params, ref("parameters", idem))
	switch r.Ordering {
	case OrderingRequired:
		params = append(params, ref("parameters", "X-Ordering-Key-Required"))
	case OrderingOff:
	default:
		params = append(params, ref("parameters", "X-Ordering-Key"))
	}
	var queues []any
	for _, q := range r.Priorities {
		if !slices.Contains(queues, any(q)) {
			queues = append(queues, q)
		}
	}
	priority := newObject().
		set("name", "X-Priority").set("in", "header").set("required", false).
		set("description", "The queue to put the job on instead of `"+r.Queue+"`: one of those listed. Anything else is `400`.").
		set("schema", newObject().set("type", "string").set("enum", queues))
	if len(queues) > 0 {
		priority.set("example", queues[0])
	}
	params = append(params, priority)
	for _, p := range []string{"X-Callback-URL", "Prefer", "X-Request-ID", "traceparent", "tracestate"} {
		params = append(params, ref("parameters", p))
	}
	op.set("parameters", params)

	body := newObject().set("required", s.bodyRequired)
	media := newObject()
	content := newObject()
	switch {
	case s.schema != "":
		body.set("description", "The route's JSON Schema checks it; each violation is named in the `400` answer's `errors`. "+
			"Sent as `application/json` or any `type/subtype+json` type, in UTF-8, up to "+formatSize(r.MaxBody)+".")
		media.set("schema", newObject().set("$ref", s.schema))
	case r.ContentTypes != nil:
		body.set("description", "A body of one of the route's content types ("+strings.Join(r.ContentTypes, ", ")+"), up to "+formatSize(r.MaxBody)+
			", stored and sent upstream as it came, with its `Content-Type`; JSON is checked as JSON. Any other type is `415`.")
		media.set("schema", newObject())
	default:
		body.set("description", "Any JSON value, as `application/json` or any `type/subtype+json` type, in UTF-8, up to "+
			formatSize(r.MaxBody)+". A request without a body needs no `Content-Type`.")
		media.set("schema", newObject())
	}
	if r.ContentTypes == nil || takesJSON(r.ContentTypes) {
		content.set("application/json", media)
	}
	for _, ct := range r.ContentTypes {
		switch {
		case ct == "application/json":
		case jobs.IsJSONType(ct):
			content.set(ct, media) // JSON, checked as such (and by the schema)
		default:
			content.set(ct, newObject().set("schema", newObject().set("type", "string").set("format", "binary")))
		}
	}
	op.set("requestBody", body.set("content", content))

	resp := newObject().
		set("200", ref("responses", "JobEnded")).
		set("202", ref("responses", "Accepted")).
		set("400", ref("responses", "SubmitBadRequest"))
	if s.auth {
		resp.set("401", ref("responses", "Unauthorized"))
	}
	if len(s.params) > 0 {
		resp.set("404", ref("responses", "EmptyPathParameter"))
	}
	resp.set("409", ref("responses", "SubmitConflict")).
		set("413", ref("responses", "PayloadTooLarge")).
		set("415", ref("responses", "UnsupportedMediaType")).
		set("422", ref("responses", "SubmitUnprocessable"))
	if r.RateLimit != nil {
		resp.set("429", ref("responses", "TooManyRequests"))
	}
	if r.Precheck != nil {
		resp.set("4XX", ref("responses", "PrecheckRefused"))
	}
	resp.set("500", ref("responses", "InternalError")).
		set("503", ref("responses", "SubmitUnavailable"))
	return op.set("responses", resp)
}

// description tells what the configuration makes of the route, without
// its upstream (an internal address) or the headers sent there.
func (s routeSpec) description() string {
	r := s.route
	var d []string
	d = append(d, fmt.Sprintf("The configured route `%s`: the write is checked, stored as a job of type `%s` on queue `%s` and answered `202`. "+
		"A worker then sends it to the route's upstream with the same method, query string, body and headers "+
		"(except credentials and asyncgw's own controls), trying up to %d times, each try bounded by %s, with backoff in between.",
		r.Name, r.Name, r.Queue, r.MaxAttempts, r.Timeout))
	if len(s.params) > 0 {
		d = append(d, "The path parameters are filled into the upstream URL where it names them.")
	}
	if r.Idempotency == "required" {
		d = append(d, "This route requires an `Idempotency-Key`: a write without one is `400`.")
	}
	switch r.Ordering {
	case OrderingRequired:
		d = append(d, "This route requires an `X-Ordering-Key`: a write without one is `400`.")
	case OrderingOff:
		d = append(d, "This route takes no `X-Ordering-Key`: a write with one is `400`.")
	}
	if l := r.RateLimit; l != nil {
		d = append(d, fmt.Sprintf("Each tenant may send %s requests per second to this route, in bursts of up to %d; beyond that `429`.",
			strconv.FormatFloat(l.Rate, 'g', -1, 64), l.Burst))
	}
	if r.Precheck != nil {
		d = append(d, "Before accepting, asyncgw calls the route's pre-check, which may refuse the write with a `4xx` of its own; "+
			"a pre-check that fails or times out makes the write `503`.")
	}
	if s.generic {
		d = append(d, "The same write can be submitted as `POST /v1/jobs` with `{\"type\": \""+r.Name+"\", \"payload\": …}`.")
	}
	return strings.Join(d, " ")
}

// ref is a Reference Object to a component.
func ref(kind, name string) *object {
	return newObject().set("$ref", "#/components/"+kind+"/"+escapePointerToken(name))
}

// formatSize writes a byte count as people configure it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
