package jobs

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/asyncgw/asyncgw/internal/jsonx"
)

// AppendJobJSON appends to b the JSON encoding of j, byte for byte what
// json.Marshal(j) returns, without reflection. Values it cannot encode
// exactly by hand are handed to json.Marshal: a time RFC 3339 cannot carry
// (a year outside [0,9999], a zone offset of 24 hours or more), a Precheck
// or Result.Body that is not valid JSON. json.Marshal fails on all of these,
// and then nothing is appended, as json.Marshal returns nothing.
func AppendJobJSON(b []byte, j *Job) []byte {
	if j == nil {
		return append(b, "null"...)
	}
	n := len(b)
	// Room for the usual job, so that a nil or short b grows once.
	b = slices.Grow(b, 288+len(j.ID)+len(j.Type)+len(j.Queue)+len(j.Error)+len(j.CallbackURL))
	if out, ok := encJob(b, j); ok {
		return out
	}
	return encFallback(b[:n], j)
}

// AppendRequestJSON appends to b the JSON encoding of r, byte for byte what
// json.Marshal(r) returns, without reflection.
func AppendRequestJSON(b []byte, r *Request) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	// Room for the usual request, so that a nil or short b grows once.
	b = slices.Grow(b, 96+len(r.Method)+len(r.URL)+len(r.Body)*4/3+64*len(r.Header)+
		len(r.Kind)+len(r.TraceParent)+len(r.TraceState)+16*len(r.Backoff.Schedule))
	return encRequest(b, r)
}

// encFallback appends what json.Marshal makes of v (nothing on error).
func encFallback(b []byte, v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return append(b, out...)
}

func encJob(b []byte, j *Job) ([]byte, bool) {
	var ok bool
	b = append(b, `{"id":`...)
	b = encString(b, j.ID)
	b = append(b, `,"type":`...)
	b = encString(b, j.Type)
	b = append(b, `,"state":`...)
	b = encString(b, string(j.State))
	b = append(b, `,"queue":`...)
	b = encString(b, j.Queue)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(j.Attempt), 10)
	b = append(b, `,"max_attempts":`...)
	b = strconv.AppendInt(b, int64(j.MaxAttempts), 10)
	b = append(b, `,"created_at":`...)
	if b, ok = encTime(b, j.CreatedAt); !ok {
		return b, false
	}
	b = append(b, `,"updated_at":`...)
	if b, ok = encTime(b, j.UpdatedAt); !ok {
		return b, false
	}
	b = append(b, `,"started_at":`...)
	if b, ok = encTimePtr(b, j.StartedAt); !ok {
		return b, false
	}
	b = append(b, `,"finished_at":`...)
	if b, ok = encTimePtr(b, j.FinishedAt); !ok {
		return b, false
	}
	b = append(b, `,"next_attempt_at":`...)
	if b, ok = encTimePtr(b, j.NextAttemptAt); !ok {
		return b, false
	}
	b = append(b, `,"result":`...)
	if j.Result == nil {
		b = append(b, "null"...)
	} else if b, ok = encResult(b, j.Result); !ok {
		return b, false
	}
	b = append(b, `,"error":`...)
	b = encString(b, j.Error)
	if len(j.Precheck) > 0 {
		b = append(b, `,"precheck":`...)
		if b, ok = encRaw(b, j.Precheck); !ok {
			return b, false
		}
	}
	if j.Replays != 0 {
		b = append(b, `,"replays":`...)
		b = strconv.AppendInt(b, int64(j.Replays), 10)
	}
	if j.ReplayedAt != nil {
		b = append(b, `,"replayed_at":`...)
		if b, ok = encTime(b, *j.ReplayedAt); !ok {
			return b, false
		}
	}
	if j.CallbackURL != "" {
		b = append(b, `,"callback_url":`...)
		b = encString(b, j.CallbackURL)
	}
	if j.OrderingKey != "" {
		b = append(b, `,"ordering_key":`...)
		b = encString(b, j.OrderingKey)
	}
	if w := j.Webhook; w != nil {
		b = append(b, `,"webhook":{"job_id":`...)
		b = encString(b, w.JobID)
		b = append(b, `,"event":`...)
		b = encString(b, w.Event)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, w.Seq, 10)
		b = append(b, `,"url":`...)
		b = encString(b, w.URL)
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func encResult(b []byte, r *Result) ([]byte, bool) {
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		var arr [16]string
		for i, k := range sortedKeys(arr[:0], r.Headers) {
			if i > 0 {
				b = append(b, ',')
			}
			b = encString(b, k)
			b = append(b, ':')
			b = encString(b, r.Headers[k])
		}
		b = append(b, '}')
	}
	if len(r.Body) > 0 {
		var ok bool
		b = append(b, `,"body":`...)
		if b, ok = encRaw(b, r.Body); !ok {
			return b, false
		}
	}
	if r.BodyBase64 != "" {
		b = append(b, `,"body_base64":`...)
		b = encString(b, r.BodyBase64)
	}
	if r.BodyTooLarge {
		b = append(b, `,"body_too_large":true`...)
	}
	if r.BodySize != 0 {
		b = append(b, `,"body_size":`...)
		b = strconv.AppendInt(b, r.BodySize, 10)
	}
	return append(b, '}'), true
}

// sortedKeys returns m's keys in order (as encoding/json writes a map's
// members), appended to keys.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func encRequest(b []byte, r *Request) []byte {
	// Every member is written with a leading comma; the first one's comma
	// becomes the opening brace at the end.
	open := len(b)
	if r.Method != "" {
		b = append(b, `,"method":`...)
		b = encString(b, r.Method)
	}
	if r.URL != "" {
		b = append(b, `,"url":`...)
		b = encString(b, r.URL)
	}
	if len(r.Header) > 0 {
		b = append(b, `,"header":{`...)
		var arr [16]string
		for i, k := range sortedKeys(arr[:0], r.Header) {
			if i > 0 {
				b = append(b, ',')
			}
			b = encString(b, k)
			b = append(b, ':')
			vs := r.Header[k]
			if vs == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for n, v := range vs {
				if n > 0 {
					b = append(b, ',')
				}
				b = encString(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(r.Body) > 0 {
		b = append(b, `,"body":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Body)
		b = append(b, '"')
	}
	if r.Timeout != 0 {
		b = append(b, `,"timeout":"`...)
		b = encDuration(b, int64(r.Timeout))
		b = append(b, '"')
	}
	b = append(b, `,"backoff":`...)
	b = encBackoff(b, &r.Backoff)
	if r.Kind != "" {
		b = append(b, `,"kind":`...)
		b = encString(b, r.Kind)
	}
	if r.TraceParent != "" {
		b = append(b, `,"traceparent":`...)
		b = encString(b, r.TraceParent)
	}
	if r.TraceState != "" {
		b = append(b, `,"tracestate":`...)
		b = encString(b, r.TraceState)
	}
	// backoff is always there, so the object is never empty.
	b[open] = '{'
	return append(b, '}')
}

func encBackoff(b []byte, o *Backoff) []byte {
	open := len(b)
	if o.Base != 0 {
		b = append(b, `,"base":"`...)
		b = encDuration(b, int64(o.Base))
		b = append(b, '"')
	}
	if o.Max != 0 {
		b = append(b, `,"max":"`...)
		b = encDuration(b, int64(o.Max))
		b = append(b, '"')
	}
	if len(o.Schedule) > 0 {
		b = append(b, `,"schedule":[`...)
		for i, d := range o.Schedule {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = encDuration(b, int64(d))
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if len(b) == open {
		return append(b, "{}"...)
	}
	b[open] = '{'
	return append(b, '}')
}

// encDuration appends the text of Duration.MarshalText (time.Duration's
// String form, such as 1h2m3.5s or 1.5µs) without allocating. Such text
// never needs escaping in a JSON string.
func encDuration(b []byte, d int64) []byte {
	if d == 0 {
		return append(b, "0s"...)
	}
	u := uint64(d)
	if d < 0 {
		b = append(b, '-')
		u = -u // also right for math.MinInt64
	}
	const (
		us     = uint64(time.Microsecond)
		ms     = uint64(time.Millisecond)
		sec    = uint64(time.Second)
		minute = uint64(time.Minute)
		hr     = uint64(time.Hour)
	)
	switch {
	case u < us:
		b = strconv.AppendUint(b, u, 10)
		return append(b, "ns"...)
	case u < ms:
		b = encDecimal(b, u, us, 3)
		return append(b, "µs"...)
	case u < sec:
		b = encDecimal(b, u, ms, 6)
		return append(b, "ms"...)
	}
	if h := u / hr; h > 0 {
		b = strconv.AppendUint(b, h, 10)
		b = append(b, 'h')
		b = strconv.AppendUint(b, u/minute%60, 10)
		b = append(b, 'm')
	} else if m := u / minute; m > 0 {
		b = strconv.AppendUint(b, m, 10)
		b = append(b, 'm')
	}
	b = encDecimal(b, u%minute, sec, 9)
	return append(b, 's')
}

// encDecimal appends v/unit as a decimal number, with the fraction (of
// digits places, unit being 10^digits) shorn of trailing zeros, and no
// point when it is whole.
func encDecimal(b []byte, v, unit uint64, digits int) []byte {
	b = strconv.AppendUint(b, v/unit, 10)
	frac := v % unit
	if frac == 0 {
		return b
	}
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	var buf [9]byte
	for i := digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	b = append(b, '.')
	return append(b, buf[:digits]...)
}

func encTimePtr(b []byte, t *time.Time) ([]byte, bool) {
	if t == nil {
		return append(b, "null"...), true
	}
	return encTime(b, *t)
}

// encTime appends t as time.Time.MarshalJSON writes it, and reports false
// where MarshalJSON fails: a year that is not four digits, or a zone
// offset of 24 hours or more.
func encTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	n := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	if len(b)-n < len("2006-01-02T15:04:05Z") || b[n+4] != '-' {
		return b, false
	}
	if b[len(b)-1] != 'Z' {
		z := b[len(b)-len("-07:00"):]
		if z[0] != '+' && z[0] != '-' || (z[1]-'0')*10+(z[2]-'0') >= 24 {
			return b, false
		}
	}
	return append(b, '"'), true
}

const encHex = "0123456789abcdef"

// encString appends s as a JSON string, escaped as encoding/json escapes
// it (HTML characters included).
func encString(b []byte, s string) []byte {
	b = append(b, '"')
	if jsonx.Plain(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc byte
			switch c {
			case '"', '\\':
				esc = c
			case '\b':
				esc = 'b'
			case '\f':
				esc = 'f'
			case '\n':
				esc = 'n'
			case '\r':
				esc = 'r'
			case '\t':
				esc = 't'
			case '<', '>', '&':
				// \u00XX below.
			default:
				if c >= 0x20 {
					i++
					continue
				}
			}
			b = append(b, s[start:i]...)
			if esc != 0 {
				b = append(b, '\\', esc)
			} else {
				b = append(b, '\\', 'u', '0', '0', encHex[c>>4], encHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', encHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encRaw appends raw as encoding/json writes a json.RawMessage: compacted,
// with <, >, &, U+2028 and U+2029 escaped. It reports false when raw is not
// valid JSON (json.Marshal fails then).
func encRaw(b []byte, raw []byte) ([]byte, bool) {
	if !json.Valid(raw) {
		return b, false
	}
	// raw is valid: outside strings, the only bytes to drop are spaces; the
	// bytes to escape can only be inside strings.
	start := 0
	inString, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			case c == '<' || c == '>' || c == '&':
				b = append(b, raw[start:i]...)
				b = append(b, '\\', 'u', '0', '0', encHex[c>>4], encHex[c&0xf])
				start = i + 1
			case c == 0xe2 && i+2 < len(raw) && raw[i+1] == 0x80 && (raw[i+2] == 0xa8 || raw[i+2] == 0xa9):
				b = append(b, raw[start:i]...)
				b = append(b, '\\', 'u', '2', '0', '2', encHex[raw[i+2]&0xf])
				i += 2
				start = i + 1
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			b = append(b, raw[start:i]...)
			start = i + 1
		}
	}
	return append(b, raw[start:]...), true
}
