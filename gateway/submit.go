package gateway

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/internal/jsonx"
	"github.com/asyncgw/asyncgw/jobs"
)

// Accepted is the body of a 202 answer.
type Accepted struct {
	ID        string     `json:"id"`
	State     jobs.State `json:"state"`
	StatusURL string     `json:"status_url"`
	EventsURL string     `json:"events_url"`
}

// maxDelay bounds the delay of a scheduled job.
const maxDelay = 365 * 24 * time.Hour

// skipHeaders are request headers never forwarded upstream: connection
// headers, the caller's credentials, and the gateway's own controls.
var skipHeaders = map[string]bool{
	"Authorization": true, "Cookie": true, "Host": true, "Content-Length": true,
	"Connection": true, "Keep-Alive": true, "Transfer-Encoding": true, "Te": true,
	"Trailer": true, "Upgrade": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Expect": true, "Accept-Encoding": true, "Idempotency-Key": true, "X-Priority": true, "X-Ordering-Key": true,
	"X-Callback-Url": true, "Prefer": true, "Last-Event-Id": true,
	// The trace context is stored with the job and sent from each
	// attempt's own span instead.
	"Traceparent": true, "Tracestate": true,
}

// submitRoute accepts a write on a configured route.
func (g *Gateway) submitRoute(rt *Route) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if emptyParam(c.PathValues()) {
			return echo.ErrNotFound
		}
		if err := g.limit(c, rt); err != nil {
			return err
		}
		isJSON, err := checkContentType(r.Header.Get("Content-Type"), r.ContentLength, rt.ContentTypes)
		if err != nil {
			return err
		}
		body, err := readBody(c, rt.MaxBody, isJSON)
		if err != nil {
			return err
		}
		if !isJSON && g.schemas[rt.Name] != nil {
			return problem(http.StatusUnsupportedMediaType, "unsupported-media-type",
				"this route checks its body against a JSON Schema: send application/json")
		}
		if p := g.validate(rt.Name, body); p != nil {
			return p
		}
		target, err := upstreamURL(rt.Upstream, c.PathValues(), r.URL.RawPath != "", r.URL.RawQuery)
		if err != nil {
			return problem(http.StatusBadRequest, "bad-path", err.Error())
		}
		queue, err := pickQueue(r.Header.Get("X-Priority"), rt.Queue, rt.Priorities)
		if err != nil {
			return err
		}
		header := http.Header{}
		for k, vs := range r.Header {
			if !skipHeaders[http.CanonicalHeaderKey(k)] {
				header[k] = vs
			}
		}
		req := &jobs.Request{
			Method: r.Method, URL: target, Header: header, Body: body,
			Timeout: jobs.Duration(rt.Timeout), Backoff: rt.Backoff,
		}
		return g.accept(c, submission{
			jobType: rt.Name, queue: queue, maxAttempts: rt.MaxAttempts, req: req,
			raw: body, idempotency: rt.Idempotency, ordering: rt.Ordering, route: rt,
			callback: r.Header.Get("X-Callback-URL"),
		})
	}
}

// genericRequest is the body of POST /v1/jobs.
type genericRequest struct {
	Type        string          `json:"type"`
	Payload     json.RawMessage `json:"payload"`
	Priority    string          `json:"priority"`
	CallbackURL string          `json:"callback_url"`
	Delay       string          `json:"delay"`
	OrderingKey *string         `json:"ordering_key"`
}

// genericFields are the members of a POST /v1/jobs body.
var genericFields = map[string]bool{"type": true, "payload": true, "priority": true, "callback_url": true, "delay": true, "ordering_key": true}

// checkTopKeys refuses members that encoding/json would match in another
// case ("TYPE"). Members given twice are refused before, with every other
// body that means two things (checkJSON).
func checkTopKeys(body []byte, known map[string]bool) *Problem {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil // not an object: decodeStrict has said so
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		if name, _ := t.(string); !known[name] {
			p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
			p.Errors = []FieldError{{Pointer: pointer([]string{name}), Detail: "unknown field (names are case-sensitive)"}}
			return p
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// submitGeneric accepts POST /v1/jobs for a route's or a Go handler's type.
func (g *Gateway) submitGeneric(c *echo.Context) error {
	r := c.Request()
	if _, err := checkContentType(r.Header.Get("Content-Type"), r.ContentLength, nil); err != nil {
		return err
	}
	body, err := readBody(c, g.cfg.MaxBody, true)
	if err != nil {
		return err
	}
	var in genericRequest
	if err := decodeStrict(body, &in); err != nil {
		return err
	}
	if p := checkTopKeys(body, genericFields); p != nil {
		return p
	}
	var fields []FieldError
	var delay time.Duration
	if in.Delay != "" {
		delay, err = time.ParseDuration(in.Delay)
		if err != nil || delay < 0 || delay > maxDelay {
			fields = append(fields, FieldError{Pointer: "/delay", Detail: "must be a duration such as \"30s\" or \"5m\", from 0 to 8760h"})
		}
	}
	if len(in.Payload) == 0 || string(in.Payload) == "null" {
		in.Payload = json.RawMessage("{}")
	}
	rt, typ := g.routes[in.Type], g.types[in.Type]
	switch {
	case in.Type == "":
		fields = append(fields, FieldError{Pointer: "/type", Detail: "is required"})
	case rt == nil && typ == nil:
		fields = append(fields, FieldError{Pointer: "/type", Detail: fmt.Sprintf("unknown job type %q", in.Type)})
	case rt != nil && strings.ContainsAny(rt.Upstream, "{") || rt != nil && strings.Contains(rt.Upstream, "/:"):
		fields = append(fields, FieldError{Pointer: "/type", Detail: "this route needs path parameters: submit it on its own path"})
	case rt != nil && !takesJSON(rt.ContentTypes):
		fields = append(fields, FieldError{Pointer: "/type", Detail: fmt.Sprintf("this route takes %s bodies, not application/json: submit it on its own path", strings.Join(rt.ContentTypes, ", "))})
	}
	if len(fields) > 0 {
		p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
		p.Errors = fields
		return p
	}
	priority := cmp.Or(in.Priority, r.Header.Get("X-Priority"))
	ordKey, ordSet := "", in.OrderingKey != nil
	if ordSet {
		ordKey = *in.OrderingKey
	}
	callback, callbackAt := in.CallbackURL, "/callback_url"
	if callback == "" {
		callback, callbackAt = r.Header.Get("X-Callback-URL"), ""
	}
	if rt != nil {
		if err := g.limit(c, rt); err != nil {
			return err
		}
		if p := g.validate(rt.Name, in.Payload); p != nil {
			for i := range p.Errors {
				p.Errors[i].Pointer = "/payload" + p.Errors[i].Pointer
			}
			return p
		}
		queue, err := pickQueue(priority, rt.Queue, rt.Priorities)
		if err != nil {
			return err
		}
		req := &jobs.Request{
			Method: rt.Method, URL: rt.Upstream,
			Header:  http.Header{"Content-Type": {"application/json"}},
			Body:    in.Payload,
			Timeout: jobs.Duration(rt.Timeout), Backoff: rt.Backoff,
		}
		return g.accept(c, submission{
			jobType: rt.Name, queue: queue, maxAttempts: rt.MaxAttempts, req: req,
			delay: delay, raw: body, idempotency: rt.Idempotency, route: rt,
			callback: callback, callbackAt: callbackAt,
			ordering: rt.Ordering, orderingKey: ordKey, orderingSet: ordSet,
		})
	}
	queue, err := pickQueue(priority, typ.Queue, g.cfg.Queues)
	if err != nil {
		return err
	}
	req := &jobs.Request{Body: in.Payload, Timeout: jobs.Duration(typ.Timeout), Backoff: typ.Backoff}
	return g.accept(c, submission{
		jobType: typ.Name, queue: queue, maxAttempts: typ.MaxAttempts, req: req,
		delay: delay, raw: body, callback: callback, callbackAt: callbackAt,
		ordering: OrderingOptional, orderingKey: ordKey, orderingSet: ordSet,
	})
}

// validate checks a body against the route's schema, if it has one.
func (g *Gateway) validate(route string, body []byte) *Problem {
	s := g.schemas[route]
	if s == nil {
		return nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("null")
	}
	if errs := s.Validate(body); len(errs) > 0 {
		p := problem(http.StatusBadRequest, "validation", "the request body does not match the route's schema")
		p.Errors = errs
		return p
	}
	return nil
}

// readBody reads the whole body within limit and, when isJSON, checks
// that it is JSON that means one thing. A body announced larger than
// limit is refused at once, unread.
func readBody(c *echo.Context, limit int64, isJSON bool) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		// The connection is closed after the answer rather than kept:
		// keeping it, the server would read the body first, and it would
		// still try to after the answer (the read deadline stops that).
		c.Response().Header().Set("Connection", "close")
		_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now())
		return nil, &http.MaxBytesError{Limit: limit}
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, problem(http.StatusBadRequest, "bad-body", "the request body could not be read")
	}
	if !isJSON || len(bytes.TrimSpace(body)) == 0 {
		return body, nil
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	return body, nil
}

// checkJSON checks, in one pass, that body is exactly one JSON value that
// every parser reads the same way: UTF-8 text, no unpaired surrogate
// escapes, no member name given twice in an object (where one parser
// takes the first value and another the last). For malformed JSON the
// decoder runs to say what is wrong.
func checkJSON(body []byte) error {
	err := jsonx.Check(body)
	if err == nil {
		return nil
	}
	je, ok := err.(*jsonx.Error) // not errors.As: its target would cost an allocation on every call
	if !ok {
		return err
	}
	switch je.Kind {
	case jsonx.Duplicate:
		p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
		p.Errors = []FieldError{{Pointer: je.Pointer, Detail: "given more than once"}}
		return p
	case jsonx.InvalidUTF8, jsonx.Surrogate:
		what := "invalid UTF-8"
		if je.Kind == jsonx.Surrogate {
			what = "an unpaired surrogate escape"
		}
		where := "a string"
		if je.InName {
			where = "a member name"
		}
		// Offsets count from 1, as in every malformed-json answer.
		at := int64(je.Offset) + 1
		line, col := position(body, at)
		p := problem(http.StatusBadRequest, "malformed-json",
			fmt.Sprintf("malformed JSON at line %d, column %d (offset %d): %s in %s", line, col, at, what, where))
		p.Errors = []FieldError{{Pointer: je.Pointer, Detail: fmt.Sprintf("%s in %s at offset %d", what, where, at)}}
		return p
	}
	var v any
	if err := decodeStrict(body, &v); err != nil {
		return err
	}
	return problem(http.StatusBadRequest, "malformed-json", "malformed JSON")
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data, and says where it went wrong.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(body, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		// Point at the first byte of the trailing data, in the same terms
		// as a syntax error (1-based line, column and offset).
		rest := body[end:]
		at := end + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n"))) + 1
		line, col := position(body, at)
		return problem(http.StatusBadRequest, "malformed-json",
			fmt.Sprintf("unexpected data after the JSON value at line %d, column %d (offset %d)", line, col, at))
	}
	return nil
}

func jsonProblem(body []byte, err error) *Problem {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := position(body, se.Offset)
		return problem(http.StatusBadRequest, "malformed-json",
			fmt.Sprintf("malformed JSON at line %d, column %d (offset %d): %s", line, col, se.Offset, se.Error()))
	case errors.As(err, &te):
		p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
		p.Errors = []FieldError{{Pointer: "/" + strings.ReplaceAll(te.Field, ".", "/"), Detail: "must be " + te.Type.String()}}
		return p
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "malformed-json", "the JSON body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
		p.Errors = []FieldError{{Pointer: "/" + name, Detail: "unknown field"}}
		return p
	}
	return problem(http.StatusBadRequest, "malformed-json", "malformed JSON: "+err.Error())
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off-1 && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// pickQueue chooses a job's queue from an X-Priority value.
func pickQueue(priority, def string, allowed []string) (string, error) {
	if priority == "" {
		return def, nil
	}
	for _, q := range allowed {
		if q == priority {
			return q, nil
		}
	}
	p := problem(http.StatusBadRequest, "bad-priority",
		fmt.Sprintf("priority %q is not allowed here; allowed: %s", sanitize(priority), strings.Join(allowed, ", ")))
	return "", p
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("not an absolute http(s) URL")
	}
	return u, nil
}

// sanitize makes a client-supplied value safe to echo in a message.
func sanitize(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
