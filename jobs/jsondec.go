package jobs

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeJob decodes into j a job resource as AppendJobJSON writes it, with
// the result json.Unmarshal gives on a zero Job but without reflection.
// Any other document (spaced, with unknown or repeated members, invalid)
// is handed to json.Unmarshal afresh, on a zero Job, so that b always gets
// encoding/json's result and error and nothing the hand-written reader set
// survives. Whatever j held before is discarded.
func DecodeJob(b []byte, j *Job) error {
	*j = Job{}
	if fastJob(b, j) {
		return nil
	}
	*j = Job{}
	return json.Unmarshal(b, j)
}

// DecodeRequest decodes into r a stored request as AppendRequestJSON
// writes it, as DecodeJob decodes a job.
func DecodeRequest(b []byte, r *Request) error {
	*r = Request{}
	if fastRequest(b, r) {
		return nil
	}
	*r = Request{}
	return json.Unmarshal(b, r)
}

// fastJob decodes b into the zero Job j by hand, and reports whether it
// could: b is then valid JSON, and j is what json.Unmarshal makes of it.
// On false, j holds part of b.
func fastJob(b []byte, j *Job) bool {
	d := jsonDecoder{b: b}
	return d.job(j) && d.i == len(b)
}

// fastRequest decodes b into the zero Request r by hand, and reports
// whether it could, as fastJob does for jobs.
func fastRequest(b []byte, r *Request) bool {
	d := jsonDecoder{b: b}
	return d.request(r) && d.i == len(b)
}

// jsonDecoder reads a JSON document laid out as our encoders write it:
// compact, members named exactly as the struct tags say, each at most
// once. Its methods read one value at the read position and report false
// on anything they cannot decode exactly as encoding/json would; the
// document is then left to encoding/json, and the read position and the
// value being filled no longer matter.
type jsonDecoder struct {
	b []byte // the document
	i int    // the read position in b
}

// memberSet records which members of an object have been read. A repeated
// member is left to encoding/json, which decodes the second value into
// the first (merging objects and maps) rather than replacing it.
type memberSet uint32

// first marks member n as read and reports whether it was not already.
func (s *memberSet) first(n uint) bool {
	bit := memberSet(1) << n
	if *s&bit != 0 {
		return false
	}
	*s |= bit
	return true
}

// job reads a job resource into j.
func (d *jsonDecoder) job(j *Job) bool {
	return d.fields(func(name []byte, seen *memberSet) bool {
		switch string(name) {
		case "id":
			return seen.first(0) && d.str(&j.ID)
		case "type":
			return seen.first(1) && d.str(&j.Type)
		case "state":
			return seen.first(2) && d.str((*string)(&j.State))
		case "queue":
			return seen.first(3) && d.str(&j.Queue)
		case "attempt":
			return seen.first(4) && d.int(&j.Attempt)
		case "max_attempts":
			return seen.first(5) && d.int(&j.MaxAttempts)
		case "created_at":
			return seen.first(6) && d.time(&j.CreatedAt)
		case "updated_at":
			return seen.first(7) && d.time(&j.UpdatedAt)
		case "started_at":
			return seen.first(8) && d.timePtr(&j.StartedAt)
		case "finished_at":
			return seen.first(9) && d.timePtr(&j.FinishedAt)
		case "next_attempt_at":
			return seen.first(10) && d.timePtr(&j.NextAttemptAt)
		case "result":
			return seen.first(11) && d.resultPtr(&j.Result)
		case "error":
			return seen.first(12) && d.str(&j.Error)
		case "precheck":
			return seen.first(13) && d.raw(&j.Precheck)
		case "replays":
			return seen.first(14) && d.int(&j.Replays)
		case "replayed_at":
			return seen.first(15) && d.timePtr(&j.ReplayedAt)
		case "callback_url":
			return seen.first(16) && d.str(&j.CallbackURL)
		case "webhook":
			return seen.first(17) && d.webhookPtr(&j.Webhook)
		case "ordering_key":
			return seen.first(18) && d.str(&j.OrderingKey)
		}
		return false
	})
}

// resultPtr reads a Result object, or null, into *p.
func (d *jsonDecoder) resultPtr(p **Result) bool {
	if d.null() {
		*p = nil
		return true
	}
	r := new(Result)
	*p = r
	return d.fields(func(name []byte, seen *memberSet) bool {
		switch string(name) {
		case "status":
			return seen.first(0) && d.int(&r.Status)
		case "headers":
			return seen.first(1) && d.stringMap(&r.Headers)
		case "body":
			return seen.first(2) && d.raw(&r.Body)
		case "body_base64":
			return seen.first(3) && d.str(&r.BodyBase64)
		case "body_too_large":
			return seen.first(4) && d.bool(&r.BodyTooLarge)
		case "body_size":
			return seen.first(5) && d.int64(&r.BodySize)
		}
		return false
	})
}

// webhookPtr reads a WebhookRef object, or null, into *p.
func (d *jsonDecoder) webhookPtr(p **WebhookRef) bool {
	if d.null() {
		*p = nil
		return true
	}
	w := new(WebhookRef)
	*p = w
	return d.fields(func(name []byte, seen *memberSet) bool {
		switch string(name) {
		case "job_id":
			return seen.first(0) && d.str(&w.JobID)
		case "event":
			return seen.first(1) && d.str(&w.Event)
		case "seq":
			return seen.first(2) && d.int64(&w.Seq)
		case "url":
			return seen.first(3) && d.str(&w.URL)
		}
		return false
	})
}

// request reads a stored request into r.
func (d *jsonDecoder) request(r *Request) bool {
	return d.fields(func(name []byte, seen *memberSet) bool {
		switch string(name) {
		case "method":
			return seen.first(0) && d.str(&r.Method)
		case "url":
			return seen.first(1) && d.str(&r.URL)
		case "header":
			return seen.first(2) && d.header(&r.Header)
		case "body":
			return seen.first(3) && d.base64(&r.Body)
		case "timeout":
			return seen.first(4) && d.duration(&r.Timeout)
		case "backoff":
			return seen.first(5) && d.backoff(&r.Backoff)
		case "kind":
			return seen.first(6) && d.str(&r.Kind)
		case "traceparent":
			return seen.first(7) && d.str(&r.TraceParent)
		case "tracestate":
			return seen.first(8) && d.str(&r.TraceState)
		}
		return false
	})
}

// backoff reads a Backoff object into o. A null backoff (which
// encoding/json ignores) is left to encoding/json.
func (d *jsonDecoder) backoff(o *Backoff) bool {
	return d.fields(func(name []byte, seen *memberSet) bool {
		switch string(name) {
		case "base":
			return seen.first(0) && d.duration(&o.Base)
		case "max":
			return seen.first(1) && d.duration(&o.Max)
		case "schedule":
			return seen.first(2) && d.schedule(&o.Schedule)
		}
		return false
	})
}

// schedule reads an array of durations, or null, into *p. An empty array
// gives an empty slice, not nil, as with encoding/json.
func (d *jsonDecoder) schedule(p *[]Duration) bool {
	if d.null() {
		*p = nil
		return true
	}
	s := []Duration{}
	ok := d.array(func() bool {
		var v Duration
		if !d.duration(&v) {
			return false
		}
		s = append(s, v)
		return true
	})
	*p = s
	return ok
}

// header reads an http.Header object, or null, into *h. Each value is an
// array of strings or null (a nil slice under its key), as encoding/json
// reads them; a repeated name replaces the earlier one, as there too.
func (d *jsonDecoder) header(h *http.Header) bool {
	if d.null() {
		*h = nil
		return true
	}
	m := make(http.Header)
	*h = m
	return d.object(func() bool {
		var k string
		var vs []string
		if !d.str(&k) || !d.eat(':') || !d.strings(&vs) {
			return false
		}
		m[k] = vs
		return true
	})
}

// strings reads an array of strings, or null, into *p. An empty array
// gives an empty slice, not nil, as with encoding/json.
func (d *jsonDecoder) strings(p *[]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	s := []string{}
	ok := d.array(func() bool {
		var v string
		if !d.str(&v) {
			return false
		}
		s = append(s, v)
		return true
	})
	*p = s
	return ok
}

// stringMap reads an object of strings, or null, into *m. A null member
// (which encoding/json turns into "") is left to encoding/json.
func (d *jsonDecoder) stringMap(p *map[string]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	m := make(map[string]string)
	*p = m
	return d.object(func() bool {
		var k, v string
		if !d.str(&k) || !d.eat(':') || !d.str(&v) {
			return false
		}
		m[k] = v
		return true
	})
}

// fields reads an object of known members: field reads the value of
// the member called name, and marks it in seen (a repeated member fails);
// it reports false for a name it does not know.
func (d *jsonDecoder) fields(field func(name []byte, seen *memberSet) bool) bool {
	var seen memberSet
	return d.object(func() bool {
		name, ok := d.name()
		return ok && field(name, &seen)
	})
}

// object reads an object, calling member at the start of each member to
// read its name, colon and value.
func (d *jsonDecoder) object(member func() bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		if !member() {
			return false
		}
		if !d.eat(',') {
			return d.eat('}')
		}
	}
}

// array reads an array, calling elem at the start of each element to read
// it.
func (d *jsonDecoder) array(elem func() bool) bool {
	if !d.eat('[') {
		return false
	}
	if d.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !d.eat(',') {
			return d.eat(']')
		}
	}
}

// eat consumes c if it is next.
func (d *jsonDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// null consumes a null if it is next.
func (d *jsonDecoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// bool reads true or false into *v.
func (d *jsonDecoder) bool(v *bool) bool {
	switch rest := d.b[d.i:]; {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*v, d.i = true, d.i+4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*v, d.i = false, d.i+5
	default:
		return false
	}
	return true
}

// name reads a member's name and the colon after it. It takes only names
// of printable ASCII without escapes: all the names our types know are
// such, and any other name, which encoding/json might still match to a
// field regardless of case, is left to encoding/json.
func (d *jsonDecoder) name() ([]byte, bool) {
	b, i := d.b, d.i
	if i >= len(b) || b[i] != '"' {
		return nil, false
	}
	start := i + 1
	for i = start; i < len(b) && jsonPlain[b[i]]; i++ {
	}
	if i+1 >= len(b) || b[i] != '"' || b[i+1] != ':' {
		return nil, false
	}
	d.i = i + 2
	return b[start:i], true
}

// text reads a string and returns its content decoded: a part of the
// document when it needs no decoding, or else appended to buf.
func (d *jsonDecoder) text(buf []byte) ([]byte, bool) {
	start := d.i
	if start >= len(d.b) || d.b[start] != '"' {
		return nil, false
	}
	end, verbatim, ok := scanJSONString(d.b, start)
	if !ok {
		return nil, false
	}
	d.i = end
	s := d.b[start+1 : end-1]
	if verbatim {
		return s, true
	}
	return unescapeJSON(buf, s), true
}

// str reads a string into *s. A null (which encoding/json ignores) is
// left to encoding/json.
func (d *jsonDecoder) str(s *string) bool {
	var buf [64]byte
	t, ok := d.text(buf[:0])
	if !ok {
		return false
	}
	*s = commonString(t)
	return true
}

// commonString returns t as a string, without allocating for the few
// values nearly every record repeats: states, methods, the default queue,
// the JSON content type.
func commonString(t []byte) string {
	switch string(t) {
	case "":
		return ""
	case "queued":
		return "queued"
	case "scheduled":
		return "scheduled"
	case "running":
		return "running"
	case "retrying":
		return "retrying"
	case "succeeded":
		return "succeeded"
	case "failed":
		return "failed"
	case "dead":
		return "dead"
	case "canceled":
		return "canceled"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "GET":
		return "GET"
	case "default":
		return "default"
	case "Content-Type":
		return "Content-Type"
	case "application/json":
		return "application/json"
	}
	return string(t)
}

// int reads an integer that fits an int into *n.
func (d *jsonDecoder) int(n *int) bool {
	var v int64
	if !d.int64(&v) || int64(int(v)) != v {
		return false
	}
	*n = int(v)
	return true
}

// int64 reads an integer (no fraction, no exponent) that fits an int64
// into *n. Other numbers, which encoding/json refuses for integer fields
// or reads differently, are left to encoding/json.
func (d *jsonDecoder) int64(n *int64) bool {
	b, i := d.b, d.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var u uint64
	// 19 digits cannot overflow a uint64; more cannot fit an int64.
	for ; i < len(b) && i-start < 20 && b[i]-'0' <= 9; i++ {
		u = u*10 + uint64(b[i]-'0')
	}
	switch digits := i - start; {
	case digits == 0 || digits > 19 || digits > 1 && b[start] == '0':
		return false
	case neg && u > 1<<63 || !neg && u > 1<<63-1:
		return false
	}
	*n = int64(u)
	if neg {
		*n = -*n // also right for the minimum, -1<<63
	}
	d.i = i
	return true
}

// time reads a time as time.Time.UnmarshalJSON does, which is how
// encoding/json reads it: the string's bytes, escapes not decoded.
func (d *jsonDecoder) time(t *time.Time) bool {
	start := d.i
	if start >= len(d.b) || d.b[start] != '"' {
		return false
	}
	end, _, ok := scanJSONString(d.b, start)
	if !ok || t.UnmarshalJSON(d.b[start:end]) != nil {
		return false
	}
	d.i = end
	return true
}

// timePtr reads a time, or null, into *p.
func (d *jsonDecoder) timePtr(p **time.Time) bool {
	if d.null() {
		*p = nil
		return true
	}
	t := new(time.Time)
	*p = t
	return d.time(t)
}

// duration reads a Duration as Duration.UnmarshalJSON does: a string
// holding a Go duration.
func (d *jsonDecoder) duration(v *Duration) bool {
	var buf [32]byte
	s, ok := d.text(buf[:0])
	if !ok {
		return false
	}
	t, ok := parseDuration(s)
	if !ok {
		return false
	}
	*v = Duration(t)
	return true
}

// parseDuration returns what time.ParseDuration returns for s, and
// whether it succeeds. The forms our encoder writes for the usual
// durations (30s, 1m0s, 250ms) it reads by itself, saving the string
// ParseDuration needs.
func parseDuration(s []byte) (time.Duration, bool) {
	if d, ok := parseWholeDuration(s); ok {
		return d, true
	}
	d, err := time.ParseDuration(string(s))
	return d, err == nil
}

// parseWholeDuration reads a positive duration made of whole numbers of
// hours, minutes, seconds, milliseconds or nanoseconds, such as 1h2m3s, as
// time.ParseDuration does. It reports false for any other form (a sign, a
// fraction, other units, a bare 0) and where the value might overflow;
// time.ParseDuration then decides.
func parseWholeDuration(s []byte) (time.Duration, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var d uint64
	for i := 0; i < len(s); {
		start := i
		var v uint64
		for ; i < len(s) && s[i]-'0' <= 9; i++ {
			v = v*10 + uint64(s[i]-'0')
		}
		if i == start || i-start > 18 {
			return 0, false
		}
		// As in time.ParseDuration, the unit runs to the next digit or
		// point.
		start = i
		for ; i < len(s) && s[i]-'0' > 9 && s[i] != '.'; i++ {
		}
		var unit uint64
		switch string(s[start:i]) {
		case "h":
			unit = uint64(time.Hour)
		case "m":
			unit = uint64(time.Minute)
		case "s":
			unit = uint64(time.Second)
		case "ms":
			unit = uint64(time.Millisecond)
		case "ns":
			unit = 1
		default:
			return 0, false
		}
		if v > (1<<63-1)/unit {
			return 0, false
		}
		if d += v * unit; d > 1<<63-1 {
			return 0, false
		}
	}
	return time.Duration(d), true
}

// base64 reads a []byte as encoding/json does: a string in standard
// base64 (an empty string gives an empty slice, not nil), or null.
func (d *jsonDecoder) base64(p *[]byte) bool {
	if d.null() {
		*p = nil
		return true
	}
	var buf [64]byte
	s, ok := d.text(buf[:0])
	if !ok {
		return false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		return false
	}
	*p = out[:n]
	return true
}

// raw reads any JSON value into *m as a copy of its bytes, as
// json.RawMessage.UnmarshalJSON does (null gives "null", not nil).
func (d *jsonDecoder) raw(m *json.RawMessage) bool {
	end, ok := skipJSONValue(d.b, d.i, 0)
	if !ok {
		return false
	}
	*m = append(json.RawMessage(nil), d.b[d.i:end]...)
	d.i = end
	return true
}

// jsonPlain marks the bytes a JSON string holds as they are, needing no
// look at what follows: printable ASCII but the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanJSONString checks the JSON string starting at b[i] (a quote) and
// returns the index just past its closing quote. verbatim reports that its
// content is its value as it is: no escapes and valid UTF-8 (encoding/json
// replaces each byte of invalid UTF-8 with U+FFFD). ok is false when the
// string is not valid JSON: unterminated, with a control character or a
// bad escape.
func scanJSONString(b []byte, i int) (end int, verbatim, ok bool) {
	verbatim = true
	for i++; i < len(b); {
		c := b[i]
		switch {
		case jsonPlain[c]:
			i++
		case c == '"':
			return i + 1, verbatim, true
		case c == '\\':
			n := jsonEscapeLen(b[i:])
			if n == 0 {
				return 0, false, false
			}
			verbatim = false
			i += n
		case c < 0x20:
			return 0, false, false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				verbatim = false
			}
			i += size
		}
	}
	return 0, false, false
}

// jsonEscapeLen returns the length of the escape at the start of b (a
// backslash), or 0 if it is not one JSON allows.
func jsonEscapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if jsonHexRune(b) >= 0 {
			return 6
		}
	}
	return 0
}

// jsonHexRune returns the code unit of the \uXXXX escape at the start of
// b, or -1 if b does not start with one.
func jsonHexRune(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescapeJSON appends to dst the value of the content s of a valid JSON
// string, decoded as encoding/json decodes it: a \u escape of a surrogate
// pairs with a following one or becomes U+FFFD, and each byte of invalid
// UTF-8 becomes U+FFFD.
func unescapeJSON(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && s[i+1] == 'u':
			r := jsonHexRune(s[i:])
			i += 6
			if utf16.IsSurrogate(r) {
				if pair := utf16.DecodeRune(r, jsonHexRune(s[i:])); pair != utf8.RuneError {
					dst = utf8.AppendRune(dst, pair)
					i += 6
					continue
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		case c == '\\':
			dst = append(dst, jsonEscaped(s[i+1]))
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

// jsonEscaped returns the byte a two-character escape \c stands for.
func jsonEscaped(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return c // '"', '\\' and '/' stand for themselves
}

// maxJSONDepth bounds the nesting skipJSONValue follows. Deeper values are
// left to encoding/json (whose own limit is far deeper).
const maxJSONDepth = 256

// skipJSONValue checks the JSON value starting at b[i], with no space
// before it, and returns the index just past it. It reports false when the
// value is not valid JSON or nests deeper than maxJSONDepth; depth is the
// nesting of the value's container.
func skipJSONValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '{':
		return skipJSONObject(b, i, depth+1)
	case c == '[':
		return skipJSONArray(b, i, depth+1)
	case c == '"':
		end, _, ok := scanJSONString(b, i)
		return end, ok
	case c == 't':
		return skipJSONLiteral(b, i, "true")
	case c == 'f':
		return skipJSONLiteral(b, i, "false")
	case c == 'n':
		return skipJSONLiteral(b, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return skipJSONNumber(b, i)
	}
	return 0, false
}

// skipJSONObject checks the object starting at b[i] ('{') and returns the
// index just past it.
func skipJSONObject(b []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return 0, false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, _, ok := scanJSONString(b, i)
		if !ok {
			return 0, false
		}
		i = skipJSONSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = skipJSONValue(b, skipJSONSpace(b, i+1), depth); !ok {
			return 0, false
		}
		if i = skipJSONSpace(b, i); i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// skipJSONArray checks the array starting at b[i] ('[') and returns the
// index just past it.
func skipJSONArray(b []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return 0, false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = skipJSONValue(b, i, depth); !ok {
			return 0, false
		}
		if i = skipJSONSpace(b, i); i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// skipJSONLiteral checks that lit (true, false or null) starts at b[i] and
// returns the index just past it. What follows it is the caller's to
// check, as for numbers.
func skipJSONLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// skipJSONNumber checks the number starting at b[i] and returns the index
// just past it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. What
// follows is the caller's to check: in "01" the number is "0", and the
// "1" after it makes the document invalid.
func skipJSONNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipJSONDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipJSONDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipJSONDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// skipJSONDigits returns the index of the first byte from b[i] on that is
// not a decimal digit.
func skipJSONDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipJSONSpace returns the index of the first byte from b[i] on that is
// not JSON white space.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
