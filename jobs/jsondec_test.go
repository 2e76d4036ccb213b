package jobs

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkDecodeJob fails t unless DecodeJob gives for b what json.Unmarshal
// gives on a zero Job: the same error, or the same value. DecodeJob is
// handed a Job that is not zero, to see that nothing of it survives.
func checkDecodeJob(t testing.TB, b []byte) {
	t.Helper()
	var want Job
	wantErr := json.Unmarshal(b, &want)
	got := Job{ID: "stale", Tenant: "stale", Result: &Result{Status: 1}, Precheck: json.RawMessage("1")}
	err := DecodeJob(b, &got)
	checkDecodeResult(t, b, got, want, err, wantErr)
}

// checkDecodeRequest fails t unless DecodeRequest gives for b what
// json.Unmarshal gives on a zero Request, as checkDecodeJob does for jobs.
func checkDecodeRequest(t testing.TB, b []byte) {
	t.Helper()
	var want Request
	wantErr := json.Unmarshal(b, &want)
	got := Request{URL: "stale", Header: http.Header{"A": {"b"}}, Backoff: Backoff{Schedule: []Duration{1}}}
	err := DecodeRequest(b, &got)
	checkDecodeResult(t, b, got, want, err, wantErr)
}

// checkDecodeResult compares a decoder's result with json.Unmarshal's:
// the errors must read the same, and without one the values must be
// reflect.DeepEqual (which tells a nil slice or map from an empty one, and
// compares times with their locations).
func checkDecodeResult(t testing.TB, b []byte, got, want any, err, wantErr error) {
	t.Helper()
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("decode %q: error %v, encoding/json's %v", b, err, wantErr)
	case err != nil && err.Error() != wantErr.Error():
		t.Fatalf("decode %q: error %q, encoding/json's %q", b, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("decode %q:\n got %#v\nwant %#v", b, got, want)
	}
}

// decTestJobs returns jobs with every kind of member value AppendJobJSON
// writes: results with JSON, text and base64 bodies and headers, prechecks,
// webhook references, replays, callback URLs, nil and set times in several
// zones, extreme integers, and strings that need escaping.
func decTestJobs() []*Job {
	created := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	ptr := func(t time.Time) *time.Time { return &t }
	base := func() *Job {
		return &Job{
			ID: "abcdefghijklmnopqrstuvwxyz", Type: "orders", State: StateQueued, Queue: "default",
			MaxAttempts: 5, CreatedAt: created, UpdatedAt: created,
		}
	}
	edits := []func(j *Job){
		func(j *Job) {},
		func(j *Job) { *j = Job{} },
		func(j *Job) { j.Attempt, j.MaxAttempts, j.Replays = -1, math.MinInt, -7 },
		func(j *Job) { j.Attempt, j.MaxAttempts, j.Replays = math.MaxInt, 1<<40, math.MaxInt },
		func(j *Job) {
			j.StartedAt, j.FinishedAt, j.NextAttemptAt, j.ReplayedAt = ptr(created), ptr(created.Add(1)), ptr(time.Time{}), ptr(created)
		},
		func(j *Job) { j.CreatedAt = time.Date(2025, 1, 2, 3, 4, 5, 120000, time.UTC) },
		func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("NPT", 5*3600+45*60)) },
		func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("", -(3*3600 + 59))) },
		func(j *Job) { j.UpdatedAt = created.In(time.FixedZone("", 86399)) },
		func(j *Job) { j.CreatedAt = created.Local() },
		func(j *Job) { j.CreatedAt = time.Now() },
		func(j *Job) { j.CreatedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) },
		func(j *Job) { j.CreatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) },
		func(j *Job) { j.Result = &Result{} },
		func(j *Job) {
			j.State, j.Attempt, j.StartedAt, j.FinishedAt = StateSucceeded, 1, ptr(created), ptr(created.Add(time.Second))
			j.Result = &Result{Status: 200, Headers: map[string]string{"Content-Type": "application/json", "X-B": "<b>", "A": ""},
				Body: json.RawMessage(`{"ok":true,"n":[1,2.5e3,-0,1E-7],"s":"a<b\"\\\u00e9","o":{},"a":[],"z":null,"f":false}`)}
		},
		func(j *Job) { j.Result = &Result{Status: 204, Headers: map[string]string{}, Body: json.RawMessage{}} },
		func(j *Job) { j.Result = &Result{Status: 200, Headers: jencManyHeaders(40)} },
		func(j *Job) { j.Result = &Result{Status: 502, BodyBase64: "AAEC/w=="} },
		func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`"text\n\u2028"`)} },
		func(j *Job) {
			j.Result = &Result{Status: 200, Body: json.RawMessage(" {\n  \"a\" : [ 1 , \"x y\" ] ,\t\"b\":null }\r\n")}
		},
		func(j *Job) {
			j.Result = &Result{Status: 200, Body: json.RawMessage("[\"<&>\", \"\u2028\u2029\", \"\\\"<\"]")}
		},
		func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage("\"\xff\xe2\x80\"")} },
		func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`"\ud83d \udc00"`)} },
		func(j *Job) { j.Result = &Result{Status: 200, Body: json.RawMessage(`{"a":`)} }, // json.Marshal fails
		func(j *Job) {
			j.Result = NewResult(201, http.Header{"Content-Type": {"text/plain"}, "Connection": {"x"}}, []byte("hi <there>\n"))
		},
		func(j *Job) { j.Precheck = json.RawMessage(`{"allowed": true}`) },
		func(j *Job) { j.Precheck = json.RawMessage(` 42 `) },
		func(j *Job) { j.Precheck = json.RawMessage(`null`) },
		func(j *Job) { j.Precheck = json.RawMessage(strings.Repeat("[", 100) + strings.Repeat("]", 100)) },
		func(j *Job) {
			j.CallbackURL = "https://example.com/hook?a=1&b=<2>"
			j.Webhook = &WebhookRef{JobID: "j", Event: "succeeded", Seq: 42, URL: "https://x/y"}
		},
		func(j *Job) { j.Webhook = &WebhookRef{Seq: math.MinInt64} },
		func(j *Job) { j.Replays, j.ReplayedAt = 3, ptr(created.Add(time.Hour)) },
		func(j *Job) { j.State, j.Error = StateFailed, "upstream said: \"no\" <500>\n\xff" },
		func(j *Job) { j.ID, j.Type, j.State, j.Queue = "a\u2028", "t\x00", "q<", "日本" },
		func(j *Job) { j.State = StateDead },
		func(j *Job) {
			j.Tenant, j.IdempotencyKey, j.Version, j.CallbackEvents = "t", "k", "3", []State{StateDead}
		},
	}
	out := []*Job{decBenchJob(), decFullJob()}
	for _, edit := range edits {
		j := base()
		edit(j)
		out = append(out, j)
	}
	for _, s := range jencStrings {
		j := base()
		j.ID, j.Type, j.Error, j.CallbackURL, j.OrderingKey = s, s, s, s, s
		j.Result = &Result{Headers: map[string]string{s: s}, BodyBase64: s}
		j.Webhook = &WebhookRef{JobID: s, Event: s, URL: s}
		out = append(out, j)
	}
	return out
}

// decTestRequests returns requests with every kind of member value
// AppendRequestJSON writes.
func decTestRequests() []*Request {
	out := []*Request{
		{},
		{Method: "GET", Header: http.Header{}},
		{Body: []byte(`{"x":1}`), Kind: "email", Backoff: Backoff{Schedule: []Duration{Duration(time.Second), Duration(90 * time.Minute)}}},
		{Header: http.Header{"X-Nil": nil, "X-Empty": {}, "X-Two": {"a", "b<"}, "": {""}}},
		{Header: jencManyHeaderValues(40)},
		{Body: []byte{}},
		{Body: []byte{0, 1, 2, 0xfe, 0xff}},
		{Body: []byte("ab")},
		{Body: []byte("abc")},
		{Timeout: Duration(1500 * time.Microsecond)},
		{Timeout: Duration(-time.Second)},
		{Timeout: Duration(math.MinInt64)},
		{Timeout: Duration(math.MaxInt64)},
		{Timeout: Duration(time.Nanosecond)},
		{Timeout: Duration(250 * time.Millisecond)},
		{Backoff: Backoff{Base: 1, Max: Duration(time.Hour + 1)}},
		{Backoff: Backoff{Max: Duration(time.Minute)}},
		{Backoff: Backoff{Schedule: []Duration{}}},
		{Backoff: Backoff{Schedule: []Duration{0, -1, 1, Duration(time.Hour)}}},
		{TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "a=b,c=<d>"},
		{Method: "P\x00ST", URL: "http://h/<p>?a=1&b=\u2028", Kind: "k\xff"},
	}
	typical := jencTypicalRequest()
	out = append(out, &typical)
	for _, s := range jencStrings {
		out = append(out, &Request{Method: s, URL: s, Header: http.Header{s: {s, s}}, Body: []byte(s), Kind: s, TraceParent: s, TraceState: s})
	}
	return out
}

func TestDecodeJobRoundTrip(t *testing.T) {
	t.Parallel()
	for _, j := range decTestJobs() {
		checkDecodeJob(t, AppendJobJSON(nil, j))
	}
}

func TestDecodeRequestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range decTestRequests() {
		checkDecodeRequest(t, AppendRequestJSON(nil, r))
	}
}

// TestDecodeFastPath: whatever our encoders write, the hand-written reader
// decodes by itself, never handing it to encoding/json.
func TestDecodeFastPath(t *testing.T) {
	t.Parallel()
	fastJobDoc := func(b []byte) {
		t.Helper()
		if len(b) == 0 {
			return // json.Marshal refused the job; there is nothing to read
		}
		if !fastJob(b, new(Job)) {
			t.Fatalf("fastJob(%q) gave up", b)
		}
	}
	fastRequestDoc := func(b []byte) {
		t.Helper()
		if !fastRequest(b, new(Request)) {
			t.Fatalf("fastRequest(%q) gave up", b)
		}
	}
	for _, j := range decTestJobs() {
		fastJobDoc(AppendJobJSON(nil, j))
	}
	for _, r := range decTestRequests() {
		fastRequestDoc(AppendRequestJSON(nil, r))
	}
	r := newJencRand(t, 0x64656373)
	for range 2000 {
		fastJobDoc(AppendJobJSON(nil, r.job()))
		fastRequestDoc(AppendRequestJSON(nil, r.request()))
	}
}

// TestDecodeRandom compares the decoders with json.Unmarshal on the
// encodings of many random jobs and requests.
func TestDecodeRandom(t *testing.T) {
	t.Parallel()
	r := newJencRand(t, 0x72616e64)
	n := 5000
	if testing.Short() {
		n = 500
	}
	for range n {
		checkDecodeJob(t, AppendJobJSON(nil, r.job()))
		checkDecodeRequest(t, AppendRequestJSON(nil, r.request()))
	}
}

// decJobDocs are job documents other than our encoder's: escapes of every
// kind, invalid UTF-8, nulls, other layouts, unknown, folded and repeated
// names, odd numbers, times and raw values, and invalid JSON. fast marks
// those the hand-written reader must decode by itself.
var decJobDocs = []struct {
	doc  string
	fast bool
}{
	{`{}`, true},
	{`{"id":"a\u00e9\ud83d\ude00\ud83d\u0041\udc00x\/\"\\\b\f\n\r\t\u0000\u001F"}`, true},
	{`{"id":"\ud800\udc00","type":"\udc00\ud800","queue":"\ud800\ud800\udc00","error":"\ud800"}`, true},
	{"{\"id\":\"\xff\xfe bad \xed\xa0\x80 \xe2\x80\",\"error\":\"ok é 日本 😀\"}", true},
	{"{\"id\":\"\xc3\",\"type\":\"\\u00e9\xc3\xa9\"}", true},
	{`{"id":"a\'"}`, false},
	{`{"id":"a\x"}`, false},
	{`{"id":"a\u12"}`, false},
	{`{"id":"a\u12G4"}`, false},
	{"{\"id\":\"tab\there\"}", false},
	{"{\"id\":\"\x7f\"}", true},
	{`{"id":null}`, false},
	{`{"id":1}`, false},
	{`{"ID":"x"}`, false},
	{`{"Id":"x","STATE":"queued"}`, false},
	{`{"id":"x","unknown":[1,{"a":2}]}`, false},
	{`{"Tenant":"t","CallbackEvents":["dead"]}`, false},
	{`{"\u0069d":"x"}`, false},
	{`{ "id":"x"}`, false},
	{`{"id" :"x"}`, false},
	{`{"id": "x"}`, false},
	{`{"id":"x" }`, false},
	{`{"id":"x"} `, false},
	{"\n{\"id\":\"x\"}", false},
	{`{"id":"x","id":"y"}`, false},
	{`{"result":{"status":1},"result":{"body":2}}`, false},
	{`{"result":{"headers":{"a":"1"},"headers":{"b":"2"}}}`, false},
	{`{"result":{"headers":{"A":"b","A":"c","\u00e9\n":"\ud83d"}}}`, true},
	{`{"result":{"headers":{"a":null}}}`, false},
	{`{"result":{"headers":{"a":1}}}`, false},
	{`{"result":{"headers":null,"body":null}}`, true},
	{`{"result":{"headers":{}}}`, true},
	{`{"result":{"status":200,"body":{"a":[1,2.5e-3,-0,true,false,null,"\u0000"],"b":{}}}}`, true},
	{"{\"result\":{\"body\":{ \"a\" : [ 1 ,\t2 ] ,\n\"b\" :{ } }}}", true},
	{`{"result":{"body": 1}}`, false},
	{`{"result":{"body":1 }}`, false},
	{`{"result":{"body":"x\u0041"},"precheck":"\ud83d"}`, true},
	{`{"result":{"body":[1,]}}`, false},
	{`{"result":{"body":{"a":1,}}}`, false},
	{`{"result":{"body":{"a"}}}`, false},
	{`{"result":{"body":{1:2}}}`, false},
	{`{"result":{"body":[01]}}`, false},
	{`{"result":{"body":-}}`, false},
	{`{"result":{"body":1.}}`, false},
	{`{"result":{"body":1e}}`, false},
	{`{"result":{"body":.5}}`, false},
	{`{"result":{"body":+1}}`, false},
	{`{"result":{"body":tru}}`, false},
	{`{"result":{"body":truex}}`, false},
	{`{"result":{"body":[true false]}}`, false},
	{`{"result":{"body":"\'"}}`, false},
	{`{"result":{"body":1E+2}}`, true},
	{`{"result":{"status":"200"}}`, false},
	{`{"result":{"body_base64":"AA=="},"webhook":null}`, true},
	{`{"result":[]}`, false},
	{`{"result":null,"webhook":null,"started_at":null,"finished_at":null,"next_attempt_at":null,"replayed_at":null}`, true},
	{`{"precheck":"x","replays":2}`, true},
	{`{"precheck":null}`, true},
	{`{"precheck":01}`, false},
	{`{"precheck":[1,]}`, false},
	{`{"precheck":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, false},
	{`{"precheck":` + strings.Repeat(`{"a":`, 300) + `1` + strings.Repeat("}", 300) + `}`, false},
	{`{"precheck":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, false},
	{`{"attempt":1.0}`, false},
	{`{"attempt":1e2}`, false},
	{`{"attempt":-0}`, true},
	{`{"attempt":-}`, false},
	{`{"attempt":00}`, false},
	{`{"attempt":-01}`, false},
	{`{"attempt":9223372036854775807,"max_attempts":-9223372036854775808}`, true},
	{`{"attempt":9223372036854775808}`, false},
	{`{"attempt":-9223372036854775809}`, false},
	{`{"attempt":12345678901234567890}`, false},
	{`{"attempt":00000000000000000000001}`, false},
	{`{"attempt":null}`, false},
	{`{"attempt":"1"}`, false},
	{`{"webhook":{"seq":-5,"url":"u","event":"dead","job_id":"j"}}`, true},
	{`{"webhook":{"seq":1.5}}`, false},
	{`{"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00.123456789+01:00"}`, true},
	{`{"created_at":"2025-01-01T00:00:00-00:00"}`, true},
	{`{"created_at":"2025-01-01T00:00:00\u005a"}`, false},
	{`{"created_at":"2025-13-01T00:00:00Z"}`, false},
	{`{"created_at":"2025-01-01 00:00:00Z"}`, false},
	{`{"created_at":"2025-01-01T00:00:00+24:00"}`, true},
	{`{"created_at":"2025-01-01T00:00:00+25:00"}`, false},
	{`{"created_at":"10000-01-01T00:00:00Z"}`, false},
	{`{"created_at":null}`, false},
	{`{"created_at":1}`, false},
	{`{"started_at":"2025-01-01T00:00:00Z","started_at":null}`, false},
	{`{"state":"succeeded","error":""}`, true},
	{`null`, false},
	{`[]`, false},
	{`""`, false},
	{``, false},
	{`{`, false},
	{`{"id":"x"`, false},
	{`{"id":"x",}`, false},
	{`{"id":"x"}x`, false},
	{`{"id":"x"}{}`, false},
	{`{"id"}`, false},
	{`{"id":}`, false},
	{`{"id":"x`, false},
}

// decRequestDocs are request documents other than our encoder's, as
// decJobDocs are for jobs.
var decRequestDocs = []struct {
	doc  string
	fast bool
}{
	{`{}`, true},
	{`{"backoff":{}}`, true},
	{`{"backoff":null}`, false},
	{`{"backoff":[]}`, false},
	{`{"backoff":{"schedule":null,"base":"1s"}}`, true},
	{`{"backoff":{"schedule":[],"base":"1s","max":"2m"}}`, true},
	{`{"backoff":{"schedule":["1s",null]}}`, false},
	{`{"backoff":{"schedule":["1s" ]}}`, false},
	{`{"backoff":{"base":"1s","base":"2s"}}`, false},
	{`{"header":{"A":null,"B":[],"C":["x","y"],"\u00e9":["\ud83d\ude00"]},"body":"","backoff":{}}`, true},
	{`{"header":{"A":["1"],"A":["2","3"]}}`, true},
	{`{"header":{"A":"x"}}`, false},
	{`{"header":{"A":[null]}}`, false},
	{`{"header":{"A":[1]}}`, false},
	{`{"header":null,"body":null}`, true},
	{`{"body":"YWJj"}`, true},
	{`{"body":"YWJjZA=="}`, true},
	{`{"body":"YWJjZA"}`, false},
	{`{"body":"YWJ"}`, false},
	{`{"body":"YW\nJj"}`, true},
	{`{"body":"YW\rJj\n"}`, true},
	{`{"body":"YW\u004aj"}`, true},
	{`{"body":"YW Jj"}`, false},
	{`{"body":"é"}`, false},
	{`{"body":[1]}`, false},
	{`{"timeout":"1.5s"}`, true},
	{`{"timeout":"1h2m3s"}`, true},
	{`{"timeout":"1h2m3.5s4ms"}`, true},
	{`{"timeout":"-1s"}`, true},
	{`{"timeout":"+1s"}`, true},
	{`{"timeout":"0"}`, true},
	{`{"timeout":"0s"}`, true},
	{`{"timeout":"1"}`, false},
	{`{"timeout":""}`, false},
	{`{"timeout":"1x"}`, false},
	{`{"timeout":"1µs"}`, true},
	{`{"timeout":"1μs"}`, true},
	{`{"timeout":"1us2ns"}`, true},
	{`{"timeout":"1.s"}`, true},
	{`{"timeout":".5s"}`, true},
	{`{"timeout":"."}`, false},
	{`{"timeout":"9223372036854775807ns"}`, true},
	{`{"timeout":"9223372036854775808ns"}`, false},
	{`{"timeout":"2562047h47m16.854775807s"}`, true},
	{`{"timeout":"2562047h47m16s854ms775807ns"}`, true},
	{`{"timeout":"2562047h47m16s854ms775808ns"}`, false},
	{`{"timeout":"2562048h"}`, false},
	{`{"timeout":"9999999999999999999h"}`, false},
	{`{"timeout":"000000000000000000000000001s"}`, true},
	{`{"timeout":"1\u0073"}`, true},
	{`{"timeout":1}`, false},
	{`{"timeout":null}`, false},
	{`{"method":"POST","url":"http://h/\u003cp\u003e","kind":"k","traceparent":"t","tracestate":"s"}`, true},
	{`{"method":null}`, false},
	{`{"Method":"GET"}`, false},
	{`{"method":"GET"} `, false},
	{`{"method":"GET"`, false},
	{`null`, false},
	{``, false},
}

func TestDecodeJobDocs(t *testing.T) {
	t.Parallel()
	for _, c := range decJobDocs {
		checkDecodeJob(t, []byte(c.doc))
		if fast := fastJob([]byte(c.doc), new(Job)); fast != c.fast {
			t.Errorf("fastJob(%q) = %v, want %v", c.doc, fast, c.fast)
		}
	}
}

func TestDecodeRequestDocs(t *testing.T) {
	t.Parallel()
	for _, c := range decRequestDocs {
		checkDecodeRequest(t, []byte(c.doc))
		if fast := fastRequest([]byte(c.doc), new(Request)); fast != c.fast {
			t.Errorf("fastRequest(%q) = %v, want %v", c.doc, fast, c.fast)
		}
	}
}

// TestDecodeTruncated: every prefix of our encoders' documents, and each
// with one byte dropped, decodes as with encoding/json.
func TestDecodeTruncated(t *testing.T) {
	t.Parallel()
	var docs [][]byte
	for _, j := range []*Job{decBenchJob(), decFullJob()} {
		docs = append(docs, AppendJobJSON(nil, j))
	}
	for _, doc := range docs {
		for n := range len(doc) {
			checkDecodeJob(t, doc[:n])
			checkDecodeJob(t, append(doc[:n:n], doc[n+1:]...))
		}
	}
	typical := jencTypicalRequest()
	typical.Backoff.Schedule = []Duration{Duration(time.Second), Duration(time.Minute)}
	doc := AppendRequestJSON(nil, &typical)
	for n := range len(doc) {
		checkDecodeRequest(t, doc[:n])
		checkDecodeRequest(t, append(doc[:n:n], doc[n+1:]...))
	}
}

// TestDecodeCopies: the values decoded do not share the document's bytes,
// which the caller may reuse.
func TestDecodeCopies(t *testing.T) {
	t.Parallel()
	b := AppendJobJSON(nil, decBenchJob())
	var j Job
	if err := DecodeJob(b, &j); err != nil {
		t.Fatal(err)
	}
	want := string(j.Result.Body) + j.ID + j.Type
	for i := range b {
		b[i] = 'x'
	}
	if got := string(j.Result.Body) + j.ID + j.Type; got != want {
		t.Errorf("decoded values changed with the document: %q, was %q", got, want)
	}
}

func FuzzDecodeJob(f *testing.F) {
	for _, j := range decTestJobs() {
		f.Add(AppendJobJSON(nil, j))
	}
	for _, c := range decJobDocs {
		f.Add([]byte(c.doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeJob(t, b) })
}

func FuzzDecodeRequest(f *testing.F) {
	for _, r := range decTestRequests() {
		f.Add(AppendRequestJSON(nil, r))
	}
	for _, c := range decRequestDocs {
		f.Add([]byte(c.doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeRequest(t, b) })
}

// decBenchJob is a typical finished job: succeeded on its first attempt,
// with a small JSON answer.
func decBenchJob() *Job {
	created := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	started := created.Add(120 * time.Millisecond)
	finished := started.Add(85 * time.Millisecond)
	return &Job{
		ID: "k2m4q7x3bz5a6cd7ef2gh3ij4k", Type: "orders", State: StateSucceeded, Queue: "default",
		Attempt: 1, MaxAttempts: 5, CreatedAt: created, UpdatedAt: finished, StartedAt: &started, FinishedAt: &finished,
		Result: &Result{
			Status:  200,
			Headers: map[string]string{"Content-Type": "application/json"},
			Body:    json.RawMessage(`{"order_id":"ord_8f14e45fceea167a","status":"accepted","total":4999}`),
		},
	}
}

// decFullJob is a job with every member of the resource set.
func decFullJob() *Job {
	j := decBenchJob()
	replayed, next := j.CreatedAt.Add(time.Hour), j.CreatedAt.Add(2*time.Hour).In(time.FixedZone("CET", 3600))
	j.NextAttemptAt, j.ReplayedAt, j.Replays = &next, &replayed, 2
	j.Result.Headers["X-Trace"] = "a&b"
	j.Result.BodyBase64 = "AAEC"
	j.Error, j.Precheck, j.CallbackURL = "upstream: \"no\"", json.RawMessage(`{"allowed":true,"why":[]}`), "https://example.com/hook"
	j.Webhook = &WebhookRef{JobID: "j2m4q7x3bz5a6cd7ef2gh3ij4k", Event: "succeeded", Seq: 3, URL: "https://example.com/hook"}
	return j
}

func BenchmarkDecodeJob(b *testing.B) {
	doc := AppendJobJSON(nil, decBenchJob())
	benchDecoder(b, doc, func() error { var j Job; return json.Unmarshal(doc, &j) },
		func() error { var j Job; return DecodeJob(doc, &j) })
}

func BenchmarkDecodeRequest(b *testing.B) {
	r := jencTypicalRequest()
	doc := AppendRequestJSON(nil, &r)
	benchDecoder(b, doc, func() error { var r Request; return json.Unmarshal(doc, &r) },
		func() error { var r Request; return DecodeRequest(doc, &r) })
}

// benchDecoder compares decoding doc with encoding/json and by hand.
func benchDecoder(b *testing.B, doc []byte, std, hand func() error) {
	for _, c := range []struct {
		name   string
		decode func() error
	}{{"encoding_json", std}, {"hand", hand}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if err := c.decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
