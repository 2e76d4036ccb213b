package jobs

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// jencPrefix is what the appended encodings are written after, so that the
// tests see that the functions append and leave b's bytes alone.
const jencPrefix = "prefix:"

// checkJobJSON fails t unless AppendJobJSON writes what json.Marshal does.
func checkJobJSON(t testing.TB, j *Job) {
	t.Helper()
	want, err := json.Marshal(j)
	if err != nil {
		want = nil // json.Marshal returns nothing; nothing is appended.
	}
	got := AppendJobJSON([]byte(jencPrefix), j)
	if !bytes.HasPrefix(got, []byte(jencPrefix)) || !bytes.Equal(got[len(jencPrefix):], want) {
		t.Fatalf("AppendJobJSON(%#v)\n got: %q\nwant: %q (err %v)", j, got, want, err)
	}
}

// checkRequestJSON fails t unless AppendRequestJSON writes what
// json.Marshal does.
func checkRequestJSON(t testing.TB, r *Request) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", r, err)
	}
	got := AppendRequestJSON([]byte(jencPrefix), r)
	if !bytes.HasPrefix(got, []byte(jencPrefix)) || !bytes.Equal(got[len(jencPrefix):], want) {
		t.Fatalf("AppendRequestJSON(%#v)\n got: %q\nwant: %q", r, got, want)
	}
}

// jencStrings need escaping of every kind encoding/json does.
var jencStrings = []string{
	"", "plain", "queued", "a\"b", `a\b`, "a/b", "<script>&</script>", "tab\there", "line\nfeed\r",
	"\b\f", "\x00\x01\x1f", "\x7f", "é", "日本語", "emoji 😀", "\u2028\u2029", "x\u2028y", "\ufffd",
	"\xff", "bad \xc3 utf8", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "trunc\xe2\x80\xa8\xe2",
	"mixed <é> & \"\\\n\xfe\u2029", "~!@#$%^*()_+{}|:?", strings.Repeat("long ", 40),
}

func TestAppendJSONString(t *testing.T) {
	t.Parallel()
	check := func(s string) {
		t.Helper()
		want, _ := json.Marshal(s)
		if got := encString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("encString(%q) = %q, want %q", s, got, want)
		}
	}
	for _, s := range jencStrings {
		check(s)
	}
	for c := 0; c < 256; c++ {
		check(string([]byte{byte(c)}))
		check("a" + string([]byte{byte(c)}) + "z")
	}
	for _, r := range []rune{0x80, 0x7ff, 0x800, 0xfffd, 0xfffe, 0xffff, 0x10000, 0x10ffff, 0x2027, 0x2028, 0x2029, 0x202a} {
		check(string(r))
	}
}

func TestAppendJSONDuration(t *testing.T) {
	t.Parallel()
	check := func(d time.Duration) {
		t.Helper()
		want, _ := Duration(d).MarshalText()
		if got := encDuration(nil, int64(d)); !bytes.Equal(got, want) {
			t.Fatalf("encDuration(%d) = %q, want %q", int64(d), got, want)
		}
	}
	for _, d := range []time.Duration{0, 1, -1, 999, 1000, 1001, 1500, 999999, 1000000, 1234567, 999999999,
		time.Second, time.Second + 1, 1500 * time.Millisecond, time.Minute, time.Minute + time.Nanosecond,
		90 * time.Minute, time.Hour, time.Hour + time.Second/2, 100000 * time.Hour, math.MaxInt64, math.MinInt64,
		math.MinInt64 + 1, -time.Hour} {
		check(d)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		d := time.Duration(rng.Int64())
		check(d)
		check(d >> rng.IntN(64))
		check(-d >> rng.IntN(64))
	}
}

func TestAppendJobJSON(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	ptr := func(t time.Time) *time.Time { return &t }
	base := func() Job {
		return Job{
			ID: "abcdefghijklmnopqrstuvwxyz", Type: "orders", State: StateQueued, Queue: "default",
			Attempt: 0, MaxAttempts: 5, CreatedAt: created, UpdatedAt: created,
		}
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	cases := map[string]func(j *Job){
		"typical": func(j *Job) {},
		"zero":    func(j *Job) { *j = Job{} },
		"hidden fields": func(j *Job) {
			j.Tenant, j.IdempotencyKey, j.Version, j.CallbackEvents = "t", "k", "3", []State{StateDead}
		},
		"negative ints": func(j *Job) { j.Attempt, j.MaxAttempts, j.Replays = -1, math.MinInt, -7 },
		"big ints":      func(j *Job) { j.Attempt, j.MaxAttempts, j.Replays = math.MaxInt, 1<<40, math.MaxInt },
		"all times": func(j *Job) {
			j.StartedAt, j.FinishedAt, j.NextAttemptAt, j.ReplayedAt = ptr(created), ptr(created.Add(1)), ptr(time.Time{}), ptr(created)
		},
		"zero time ptr":  func(j *Job) { j.StartedAt = ptr(time.Time{}) },
		"nanos":          func(j *Job) { j.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 1, time.UTC) },
		"micros":         func(j *Job) { j.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 120000, time.UTC) },
		"new york":       func(j *Job) { j.UpdatedAt = created.In(ny) },
		"kathmandu":      func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("NPT", 5*3600+45*60)) },
		"offset seconds": func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("", -(3*3600 + 59))) },
		"offset 23:59":   func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("", 86399)) },
		"offset 24h":     func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("", 86400)) },
		"offset -24h":    func(j *Job) { j.StartedAt = ptr(created.In(time.FixedZone("", -86400))) },
		"offset 100h":    func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("", 100*3600)) },
		"local":          func(j *Job) { j.CreatedAt = created.Local() },
		"monotonic":      func(j *Job) { j.CreatedAt = time.Now() },
		"year 0":         func(j *Job) { j.CreatedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 9999":      func(j *Job) { j.CreatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) },
		"year -1":        func(j *Job) { j.CreatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 10000":     func(j *Job) { j.FinishedAt = ptr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) },
		"year 10000 tz": func(j *Job) {
			j.ReplayedAt = ptr(time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC).In(time.FixedZone("", 3600)))
		},
		"empty result": func(j *Job) { j.Result = &Result{} },
		"result": func(j *Job) {
			j.Result = &Result{Status: 200, Headers: map[string]string{"Content-Type": "application/json", "X-B": "<b>", "A": ""},
				Body: json.RawMessage(`{"ok":true,"n":[1,2.5e3,-0],"s":"a<b"}`), Raw: []byte("ignored")}
		},
		"result empty headers": func(j *Job) { j.Result = &Result{Status: 204, Headers: map[string]string{}, Body: json.RawMessage{}} },
		"result many headers":  func(j *Job) { j.Result = &Result{Status: 200, Headers: jencManyHeaders(40)} },
		"result base64":        func(j *Job) { j.Result = &Result{Status: 502, BodyBase64: "AAEC/w=="} },
		"result too large": func(j *Job) {
			j.Result = &Result{Status: 201, Headers: map[string]string{"Content-Type": "application/json"}, BodyTooLarge: true, BodySize: 1572864}
		},
		"result too large, size unknown": func(j *Job) { j.Result = &Result{Status: 200, BodyTooLarge: true} },
		"result string body":             func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`"text\n\u2028"`)} },
		"result spaced body": func(j *Job) {
			j.Result = &Result{Status: 200, Body: json.RawMessage(" {\n  \"a\" : [ 1 , \"x y\" ] ,\t\"b\":null }\r\n")}
		},
		"result raw html": func(j *Job) {
			j.Result = &Result{Status: 200, Body: json.RawMessage("[\"<&>\", \"\u2028\u2029\", \"\\\"<\"]")}
		},
		"result raw bad utf8": func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage("\"\xff\xe2\x80\"")} },
		"result invalid body": func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`{"a":`)} },
		"result garbage body": func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`hello`)} },
		"result two values":   func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`1 2`)} },
		"result from NewResult": func(j *Job) {
			j.Result = NewResult(201, http.Header{"Content-Type": {"text/plain"}, "Connection": {"x"}}, []byte("hi <there>\n"))
		},
		"precheck":            func(j *Job) { j.Precheck = json.RawMessage(`{"allowed": true}`) },
		"precheck empty":      func(j *Job) { j.Precheck = json.RawMessage{} },
		"precheck invalid":    func(j *Job) { j.Precheck = json.RawMessage(`{`) },
		"precheck whitespace": func(j *Job) { j.Precheck = json.RawMessage(" \t\n") },
		"precheck scalar":     func(j *Job) { j.Precheck = json.RawMessage(` 42 `) },
		"callback": func(j *Job) {
			j.CallbackURL = "https://example.com/hook?a=1&b=<2>"
			j.Webhook = &WebhookRef{JobID: "j", Event: "succeeded", Seq: 42, URL: "https://x/y"}
		},
		"empty webhook": func(j *Job) { j.Webhook = &WebhookRef{} },
		"replays":       func(j *Job) { j.Replays, j.ReplayedAt = 3, ptr(created.Add(time.Hour)) },
		"error text":    func(j *Job) { j.State, j.Error = StateFailed, "upstream said: \"no\" <500>\n\xff" },
		"escaped names": func(j *Job) { j.ID, j.Type, j.State, j.Queue = "a\u2028", "t\x00", "q<", "日本" },
	}
	for name, edit := range cases {
		j := base()
		edit(&j)
		t.Run(name, func(t *testing.T) { checkJobJSON(t, &j) })
	}
	for _, s := range jencStrings {
		j := base()
		j.ID, j.Type, j.Error, j.CallbackURL, j.OrderingKey = s, s, s, s, s
		j.Result = &Result{Headers: map[string]string{s: s}, BodyBase64: s}
		j.Webhook = &WebhookRef{JobID: s, Event: s, URL: s}
		checkJobJSON(t, &j)
	}
	checkJobJSON(t, nil)
}

// TestAppendJobJSONFallback: where json.Marshal fails, nothing is
// appended, and b is left as it was.
func TestAppendJobJSONFallback(t *testing.T) {
	t.Parallel()
	for _, j := range []*Job{
		{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Precheck: json.RawMessage("nope")},
		{Result: &Result{Body: json.RawMessage("[1,")}},
	} {
		if _, err := json.Marshal(j); err == nil {
			t.Fatalf("json.Marshal(%#v) did not fail", j)
		}
		if got := AppendJobJSON([]byte(jencPrefix), j); string(got) != jencPrefix {
			t.Errorf("AppendJobJSON(%#v) = %q, want %q", j, got, jencPrefix)
		}
	}
}

func jencManyHeaders(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[strings.Repeat(string(rune('z'-i%26)), 1+i/26)] = strings.Repeat("v", i)
	}
	return m
}

func TestAppendRequestJSON(t *testing.T) {
	t.Parallel()
	cases := map[string]Request{
		"zero":          {},
		"typical":       jencTypicalRequest(),
		"go handler":    {Body: []byte(`{"x":1}`), Kind: "email", Backoff: Backoff{Schedule: []Duration{Duration(time.Second), Duration(90 * time.Minute)}}},
		"nil header":    {Method: "GET", Header: nil},
		"empty header":  {Method: "GET", Header: http.Header{}},
		"nil values":    {Header: http.Header{"X-Nil": nil, "X-Empty": {}, "X-Two": {"a", "b<"}, "": {""}}},
		"many header":   {Header: jencManyHeaderValues(40)},
		"empty body":    {Body: []byte{}},
		"binary body":   {Body: []byte{0, 1, 2, 0xfe, 0xff}},
		"body sizes":    {Body: []byte("ab")},
		"body sizes 2":  {Body: []byte("abc")},
		"body sizes 3":  {Body: []byte("abcd")},
		"timeout":       {Timeout: Duration(1500 * time.Microsecond)},
		"neg timeout":   {Timeout: Duration(-time.Second)},
		"min timeout":   {Timeout: Duration(math.MinInt64)},
		"backoff":       {Backoff: Backoff{Base: 1, Max: Duration(time.Hour + 1)}},
		"only max":      {Backoff: Backoff{Max: Duration(time.Minute)}},
		"empty sched":   {Backoff: Backoff{Schedule: []Duration{}}},
		"zero in sched": {Backoff: Backoff{Schedule: []Duration{0, -1, 1}}},
		"trace":         {TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "a=b,c=<d>"},
		"only trace":    {TraceState: "x"},
		"escapes":       {Method: "P\x00ST", URL: "http://h/<p>?a=1&b=\u2028", Kind: "k\xff"},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) { checkRequestJSON(t, &r) })
	}
	for _, s := range jencStrings {
		r := Request{Method: s, URL: s, Header: http.Header{s: {s, s}}, Body: []byte(s), Kind: s, TraceParent: s, TraceState: s}
		checkRequestJSON(t, &r)
	}
	checkRequestJSON(t, nil)
}

func jencManyHeaderValues(n int) http.Header {
	h := make(http.Header, n)
	for k, v := range jencManyHeaders(n) {
		h[k] = []string{v, k}
	}
	return h
}

func jencTypicalRequest() Request {
	return Request{
		Method: http.MethodPost,
		URL:    "http://127.0.0.1:8080/orders",
		Header: http.Header{
			"Content-Type": {"application/json"},
			"X-Request-Id": {"0af7651916cd43dd8448eb211c80319c"},
		},
		Body:    []byte(`{"order_id":"ord_8f14e45fceea167a","customer":"cus_1234","amount":4999,"currency":"EUR","items":3}`),
		Timeout: Duration(30 * time.Second),
		Backoff: Backoff{Base: Duration(time.Second), Max: Duration(time.Minute)},
	}
}

func jencTypicalJob() Job {
	now := time.Now().UTC()
	return Job{
		ID: NewID(), Type: "orders", State: StateQueued, Queue: "default",
		Attempt: 0, MaxAttempts: 5, CreatedAt: now, UpdatedAt: now,
	}
}

// jencRand makes random values for the property test.
type jencRand struct{ *rand.Rand }

// newJencRand is a jencRand on stream, seeded from the clock; the seed is
// logged, so that a failure can be made again.
func newJencRand(t *testing.T, stream uint64) jencRand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return jencRand{rand.New(rand.NewPCG(seed, stream))}
}

var jencPieces = []string{
	"a", "Z", "0", " ", "orders", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f",
	"\x7f", "é", "ß", "日", "😀", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80",
	"\xf0\x9f", "\xc0\xaf", "µ",
}

func (r jencRand) str() string {
	if r.IntN(4) == 0 {
		return ""
	}
	var sb strings.Builder
	for range r.IntN(12) {
		if r.IntN(3) == 0 {
			sb.WriteByte(byte(r.IntN(256)))
		} else {
			sb.WriteString(jencPieces[r.IntN(len(jencPieces))])
		}
	}
	return sb.String()
}

func (r jencRand) int() int {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return r.IntN(10)
	case 2:
		return -r.IntN(1000)
	}
	return int(r.Int64())
}

var jencZones = []*time.Location{
	time.UTC, time.Local, time.FixedZone("CET", 3600), time.FixedZone("", -5*3600), time.FixedZone("", 5*3600+45*60),
	time.FixedZone("", 59), time.FixedZone("", -86399), time.FixedZone("", 86400), time.FixedZone("", -100*3600),
}

func (r jencRand) time() time.Time {
	switch r.IntN(10) {
	case 0:
		return time.Time{}
	case 1:
		return time.Now()
	}
	var sec int64
	if r.IntN(8) == 0 {
		sec = r.Int64N(400e9) - 100e9 // about years -1200 to 14600
	} else {
		sec = r.Int64N(4e9) // 1970 to 2096
	}
	var nsec int64
	switch r.IntN(4) {
	case 1:
		nsec = r.Int64N(1000) * 1e6
	case 2:
		nsec = r.Int64N(1e6) * 1e3
	case 3:
		nsec = r.Int64N(1e9)
	}
	loc := jencZones[r.IntN(len(jencZones))]
	if r.IntN(10) == 0 {
		loc = time.FixedZone("", r.IntN(400000)-200000)
	}
	return time.Unix(sec, nsec).In(loc)
}

func (r jencRand) timePtr() *time.Time {
	if r.IntN(2) == 0 {
		return nil
	}
	t := r.time()
	return &t
}

// raw returns JSON text, mostly valid and laid out at random, or nil.
func (r jencRand) raw() json.RawMessage {
	switch r.IntN(8) {
	case 0:
		return nil
	case 1:
		return json.RawMessage{}
	case 2:
		b := []byte(r.str())
		return b
	}
	var b []byte
	b = r.jsonValue(b, 3)
	if r.IntN(20) == 0 && len(b) > 0 {
		b = b[:r.IntN(len(b))]
	}
	return b
}

func (r jencRand) space(b []byte) []byte {
	for r.IntN(4) == 0 {
		b = append(b, " \t\r\n"[r.IntN(4)])
	}
	return b
}

func (r jencRand) jsonValue(b []byte, depth int) []byte {
	b = r.space(b)
	n := 7
	if depth == 0 {
		n = 5
	}
	switch r.IntN(n) {
	case 0:
		b = append(b, []string{"null", "true", "false"}[r.IntN(3)]...)
	case 1:
		b = append(b, []string{"0", "-0", "12", "-3.25", "1e10", "6.02E-23", "1.5e+3"}[r.IntN(7)]...)
	case 2, 3, 4:
		b = r.jsonString(b)
	case 5:
		b = append(b, '[')
		for i := range r.IntN(4) {
			if i > 0 {
				b = r.space(b)
				b = append(b, ',')
			}
			b = r.jsonValue(b, depth-1)
		}
		b = r.space(b)
		b = append(b, ']')
	case 6:
		b = append(b, '{')
		for i := range r.IntN(4) {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.space(b)
			b = r.jsonString(b)
			b = r.space(b)
			b = append(b, ':')
			b = r.jsonValue(b, depth-1)
		}
		b = r.space(b)
		b = append(b, '}')
	}
	return r.space(b)
}

// jsonString writes a JSON string with raw characters of every kind a
// valid document may hold (HTML characters, U+2028, invalid UTF-8) and
// escapes.
func (r jencRand) jsonString(b []byte) []byte {
	b = append(b, '"')
	for range r.IntN(8) {
		switch r.IntN(4) {
		case 0:
			b = append(b, []string{`\"`, `\\`, `\/`, `\n`, `\u2028`, `\u003c`, `\ud83d\ude00`, `\b`}[r.IntN(8)]...)
		case 1:
			if c := byte(r.IntN(256)); c >= 0x20 && c != '"' && c != '\\' {
				b = append(b, c)
			}
		default:
			if p := jencPieces[r.IntN(len(jencPieces))]; p[0] >= 0x20 && p != `"` && p != `\` {
				b = append(b, p...)
			}
		}
	}
	return append(b, '"')
}

func (r jencRand) job() *Job {
	j := &Job{
		ID: r.str(), Type: r.str(), State: State(r.str()), Queue: r.str(),
		Attempt: r.int(), MaxAttempts: r.int(), CreatedAt: r.time(), UpdatedAt: r.time(),
		StartedAt: r.timePtr(), FinishedAt: r.timePtr(), NextAttemptAt: r.timePtr(),
		Error: r.str(), Precheck: r.raw(), Replays: r.int(), ReplayedAt: r.timePtr(),
		CallbackURL: r.str(), OrderingKey: r.str(), Tenant: r.str(), IdempotencyKey: r.str(), Version: r.str(),
	}
	if r.IntN(2) == 0 {
		res := &Result{Status: r.int(), Body: r.raw(), BodyBase64: r.str(), Raw: []byte(r.str())}
		if r.IntN(3) > 0 {
			res.Headers = map[string]string{}
			for range r.IntN(6) {
				res.Headers[r.str()] = r.str()
			}
		}
		j.Result = res
	}
	if r.IntN(3) == 0 {
		j.Webhook = &WebhookRef{JobID: r.str(), Event: r.str(), Seq: int64(r.int()), URL: r.str()}
	}
	if r.IntN(3) == 0 {
		j.CallbackEvents = []State{StateQueued}
	}
	return j
}

func (r jencRand) duration() Duration {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return Duration(r.Int64N(int64(time.Hour)))
	case 2:
		return Duration(r.Int64N(1e6)) * Duration(time.Millisecond)
	}
	return Duration(r.Int64())
}

func (r jencRand) request() *Request {
	q := &Request{
		Method: r.str(), URL: r.str(), Timeout: r.duration(), Kind: r.str(), TraceParent: r.str(), TraceState: r.str(),
		Backoff: Backoff{Base: r.duration(), Max: r.duration()},
	}
	if r.IntN(3) > 0 {
		q.Header = http.Header{}
		for range r.IntN(6) {
			var vs []string
			if r.IntN(5) > 0 {
				vs = []string{}
				for range r.IntN(3) {
					vs = append(vs, r.str())
				}
			}
			q.Header[r.str()] = vs
		}
	}
	if r.IntN(3) > 0 {
		q.Body = []byte(r.str())
	}
	if r.IntN(3) == 0 {
		q.Backoff.Schedule = []Duration{}
		for range r.IntN(4) {
			q.Backoff.Schedule = append(q.Backoff.Schedule, r.duration())
		}
	}
	return q
}

// TestAppendJSONRandom compares the encoders with json.Marshal on many
// random jobs and requests.
func TestAppendJSONRandom(t *testing.T) {
	t.Parallel()
	r := newJencRand(t, 0x6a6f6273)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var failed, rawValid int
	for range n {
		j := r.job()
		if _, err := json.Marshal(j); err != nil {
			failed++
		}
		if json.Valid(j.Precheck) && bytes.ContainsAny(j.Precheck, " <\n") {
			rawValid++
		}
		checkJobJSON(t, j)
		checkRequestJSON(t, r.request())
	}
	// The generator must reach both the hand-written path and the fallback.
	if failed == 0 || failed == n || rawValid == 0 {
		t.Errorf("poor coverage: %d of %d jobs json.Marshal refuses, %d with spaced or HTML prechecks", failed, n, rawValid)
	}
}

func FuzzAppendJobJSON(f *testing.F) {
	f.Add("abcdefghijklmnopqrstuvwxyz", "queued", "", 0, int64(1741964966), int64(535897932), 0, uint8(0), []byte(nil), []byte(nil), "Content-Type", "application/json", "")
	f.Add("id<>&", "st\u2028", "err\n\xff", -3, int64(-62167219200), int64(1), 3600, uint8(0xff), []byte(`{"a": "<b>"}`), []byte(" [1, 2]\n"), "X-\x00", "v\u2029", "AAEC")
	f.Add("", "", "\b\f\"\\", math.MaxInt, int64(253402300799), int64(999999999), -86399, uint8(0x55), []byte(`{`), []byte(`"\ud83d"`), "", "", "x")
	f.Add("x", "dead", "e", 7, int64(253402300800), int64(0), 86400, uint8(0xaa), []byte("\"\xe2\x80\xa8\""), []byte("nul"), "k", "", "")
	f.Fuzz(func(t *testing.T, id, state, errText string, attempt int, sec, nsec int64, offset int, flags uint8,
		precheck, body []byte, hk, hv, b64 string) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		j := &Job{
			ID: id, Type: hv, State: State(state), Queue: hk, Attempt: attempt, MaxAttempts: offset,
			CreatedAt: at, UpdatedAt: at.UTC(), Error: errText, Precheck: precheck, Replays: attempt,
			CallbackURL: b64,
		}
		if flags&1 != 0 {
			j.StartedAt = &at
		}
		if flags&2 != 0 {
			j.FinishedAt, j.ReplayedAt = &at, &at
		}
		if flags&4 != 0 {
			j.Result = &Result{Status: attempt, Body: body, BodyBase64: b64}
			if flags&8 != 0 {
				j.Result.Headers = map[string]string{hk: hv, hv: errText, "Content-Type": id}
			}
		}
		if flags&16 != 0 {
			j.Webhook = &WebhookRef{JobID: id, Event: state, Seq: sec, URL: errText}
		}
		checkJobJSON(t, j)

		q := &Request{
			Method: state, URL: id, Body: body, Timeout: Duration(sec), Kind: errText, TraceParent: hk, TraceState: hv,
			Backoff: Backoff{Base: Duration(nsec), Max: Duration(attempt)},
		}
		if flags&32 != 0 {
			q.Header = http.Header{hk: {hv, b64}, hv: nil, id: {}}
		}
		if flags&64 != 0 {
			q.Backoff.Schedule = []Duration{Duration(sec), Duration(nsec), Duration(offset)}
		}
		checkRequestJSON(t, q)
	})
}

func BenchmarkJobJSON(b *testing.B) {
	j := jencTypicalJob()
	benchEncoder(b, &j, func(buf []byte) []byte { return AppendJobJSON(buf, &j) })
}

func BenchmarkRequestJSON(b *testing.B) {
	r := jencTypicalRequest()
	benchEncoder(b, &r, func(buf []byte) []byte { return AppendRequestJSON(buf, &r) })
}

// benchEncoder compares json.Marshal of v with appendJSON, into a reused
// buffer and into a fresh one.
func benchEncoder(b *testing.B, v any, appendJSON func([]byte) []byte) {
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = appendJSON(buf[:0])
		}
	})
	b.Run("append_fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = appendJSON(nil)
		}
	})
}
