package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// recv waits for a value on ch, failing t after RequestTimeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(RequestTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// hold blocks an upstream call until proceed is closed. It reports false
// when the call should not be answered: the test ended or the caller gave
// up.
func hold(u *Upstream, r *http.Request, proceed <-chan struct{}) bool {
	select {
	case <-proceed:
		return true
	case <-u.Released():
	case <-r.Context().Done():
	}
	return false
}

var retryAfterSeconds = regexp.MustCompile(`^[1-9][0-9]*$`)

func TestRouteJobSucceeds(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{
		Name: "orders", Method: http.MethodPost, Path: "/v1/orders/:id", Upstream: "/orders/:id/submit",
	}}})
	const (
		reqBody     = `{"sku":"abc","qty":2}`
		reqType     = "application/json; charset=utf-8"
		answer      = `{"order":"o-42","total":12.5}`
		answerType  = "application/vnd.orders+json"
		answerState = http.StatusCreated
	)
	arrived := make(chan struct{}, 1)
	proceed := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, _ Call) {
		arrived <- struct{}{}
		if !hold(h.Upstream, r, proceed) {
			return
		}
		w.Header().Set("Content-Type", answerType)
		w.Header().Set("X-Upstream", "orders")
		w.WriteHeader(answerState)
		_, _ = io.WriteString(w, answer)
	})

	r := h.Do(t, http.MethodPost, "/v1/orders/o-42?x=1&y=two%20words", []byte(reqBody), http.Header{
		"Content-Type":  {reqType},
		"Authorization": {"Bearer secret-api-key"},
		"X-Custom":      {"kept"},
	})

	// The 202, exactly as the contract has it.
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.Status, r.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("decode 202 body %q: %v", r.Body, err)
	}
	id, _ := body["id"].(string)
	if !idPattern.MatchString(id) {
		t.Fatalf("id %q does not match %s", id, idPattern)
	}
	want := map[string]any{
		"id": id, "state": "queued",
		"status_url": "/v1/jobs/" + id, "events_url": "/v1/jobs/" + id + "/events",
	}
	if !jsonEqual(t, r.Body, mustJSON(t, want)) {
		t.Errorf("202 body %s, want exactly %s", r.Body, mustJSON(t, want))
	}
	if got := r.Header.Get("Location"); got != "/v1/jobs/"+id {
		t.Errorf("Location %q, want /v1/jobs/%s", got, id)
	}
	if got := r.Header.Get("Retry-After"); !retryAfterSeconds.MatchString(got) {
		t.Errorf("Retry-After %q, want a positive number of seconds", got)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("202 Content-Type %q, want application/json", ct)
	}
	golden(t, "accepted.golden.json", normalize(r.Body, map[string]string{id: "<job-id>"}))

	// While the upstream holds the call the job is live: GET says so and
	// asks to come back, and there is no result yet.
	recv(t, arrived, "the upstream call")
	j, jr := h.Job(t, id)
	if j.State != jobs.StateRunning || j.Attempt != 1 {
		t.Errorf("while the upstream works: state %s attempt %d, want running attempt 1", j.State, j.Attempt)
	}
	if got := jr.Header.Get("Retry-After"); !retryAfterSeconds.MatchString(got) {
		t.Errorf("non-terminal GET: Retry-After %q, want a positive number of seconds", got)
	}
	requireProblem(t, "GET result before the end", h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil), http.StatusNotFound)
	close(proceed)

	j = h.WaitState(t, id, jobs.StateSucceeded)
	if j.ID != id || j.Type != "orders" || j.Queue != h.Queues.Default || j.Attempt != 1 || j.MaxAttempts != 8 {
		t.Errorf("job %+v: want id %s, type orders, queue %s, attempt 1 of 8", j, id, h.Queues.Default)
	}
	if j.StartedAt == nil || j.FinishedAt == nil || j.NextAttemptAt != nil || j.Error != "" {
		t.Errorf("succeeded job: started_at %v finished_at %v next_attempt_at %v error %q", j.StartedAt, j.FinishedAt, j.NextAttemptAt, j.Error)
	}
	if j.Result == nil || j.Result.Status != answerState || !jsonEqual(t, j.Result.Body, []byte(answer)) {
		t.Fatalf("result %+v, want status %d and body %s", j.Result, answerState, answer)
	}
	if got := j.Result.Headers["X-Upstream"]; got != "orders" {
		t.Errorf("result header X-Upstream %q, want orders", got)
	}
	_, jr = h.Job(t, id)
	if got := jr.Header.Get("Retry-After"); got != "" {
		t.Errorf("terminal GET: Retry-After %q, want none", got)
	}

	// The result, as the upstream sent it.
	res := h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil)
	if res.Status != answerState {
		t.Errorf("GET result: status %d, want %d", res.Status, answerState)
	}
	if ct := res.Header.Get("Content-Type"); ct != answerType {
		t.Errorf("GET result: Content-Type %q, want %q", ct, answerType)
	}
	if string(res.Body) != answer {
		t.Errorf("GET result: body %q, want the upstream's bytes %q", res.Body, answer)
	}

	// What the upstream saw.
	calls := h.Upstream.Calls(id)
	if len(calls) != 1 {
		t.Fatalf("upstream calls for the job: %d, want 1 (all calls: %+v)", len(calls), h.Upstream.AllCalls())
	}
	c := calls[0]
	if c.Method != http.MethodPost || c.Path != "/orders/o-42/submit" || c.RawQuery != "x=1&y=two%20words" {
		t.Errorf("upstream got %s %s?%s, want POST /orders/o-42/submit?x=1&y=two%%20words", c.Method, c.Path, c.RawQuery)
	}
	if string(c.Body) != reqBody {
		t.Errorf("upstream body %q, want %q", c.Body, reqBody)
	}
	if got := c.Header.Get("Content-Type"); got != reqType {
		t.Errorf("upstream Content-Type %q, want %q", got, reqType)
	}
	if got := c.Header.Get("X-Custom"); got != "kept" {
		t.Errorf("upstream X-Custom %q, want kept", got)
	}
	if got := c.Header.Values("Authorization"); len(got) != 0 {
		t.Errorf("upstream saw the caller's Authorization %q", got)
	}
	if c.Attempt != 1 {
		t.Errorf("upstream X-Asyncgw-Attempt %d, want 1", c.Attempt)
	}
}

// TestResultKeepsJSONBytes checks that GET /v1/jobs/{id}/result gives a JSON
// answer back as the upstream wrote it, whitespace and all.
func TestResultKeepsJSONBytes(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	const answer = "{\"order\": \"o-42\",\n  \"note\": \"<a&b>\"}\n"
	h.Upstream.Handle(func(w http.ResponseWriter, _ *http.Request, _ Call) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	})
	id := h.Submit(t, "/v1/orders", `{}`)
	h.WaitState(t, id, jobs.StateSucceeded)
	if res := h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil); string(res.Body) != answer {
		t.Errorf("GET result: body %q, want the upstream's bytes %q", res.Body, answer)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRetryUntilSuccess(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "flaky", Path: "/v1/flaky", Upstream: "/flaky"}}})
	var n atomic.Int32
	h.Upstream.Handle(func(w http.ResponseWriter, _ *http.Request, _ Call) {
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"boom"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"third":"time lucky"}`)
	})
	id := h.Submit(t, "/v1/flaky", `{"a":1}`)
	j := h.WaitState(t, id, jobs.StateSucceeded)
	if j.Attempt != 3 {
		t.Errorf("attempt %d, want 3", j.Attempt)
	}
	if j.Result == nil || j.Result.Status != http.StatusCreated || j.Error != "" {
		t.Errorf("result %+v error %q, want the 201 and no error", j.Result, j.Error)
	}
	var attempts []int
	for _, c := range h.Upstream.Calls(id) {
		attempts = append(attempts, c.Attempt)
		if string(c.Body) != `{"a":1}` {
			t.Errorf("attempt %d: body %q, want the original", c.Attempt, c.Body)
		}
	}
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Errorf("upstream saw X-Asyncgw-Attempt %v, want [1 2 3]", attempts)
	}
}

func TestUpstreamRefusalFailsAtOnce(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "refuse", Path: "/v1/refuse", Upstream: "/refuse"},
		{Name: "fine", Path: "/v1/fine", Upstream: "/fine"},
	}})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if r.URL.Path == "/refuse" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"title":"bad order"}`)
			return
		}
		okJSON(w, r, c)
	})
	id := h.Submit(t, "/v1/refuse", `{}`)
	j := h.WaitState(t, id, jobs.StateFailed)
	if j.Attempt != 1 || j.Error == "" || j.FinishedAt == nil {
		t.Errorf("failed job: attempt %d error %q finished_at %v, want attempt 1 with an error", j.Attempt, j.Error, j.FinishedAt)
	}
	if j.Result == nil || j.Result.Status != http.StatusUnprocessableEntity {
		t.Errorf("result %+v, want the 422", j.Result)
	}
	if n := len(h.Upstream.Calls(id)); n != 1 {
		t.Errorf("upstream called %d times when the job failed, want 1", n)
	}
	res := h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil)
	if res.Status != http.StatusUnprocessableEntity || string(res.Body) != `{"title":"bad order"}` ||
		res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET result: %d %q %q, want the upstream's 422", res.Status, res.Header.Get("Content-Type"), res.Body)
	}

	// A later job on the same worker has run through: had the failed job
	// been retried, it would have been by now.
	h.WaitState(t, h.Submit(t, "/v1/fine", `{}`), jobs.StateSucceeded)
	if n := len(h.Upstream.Calls(id)); n != 1 {
		t.Errorf("upstream called %d times for the failed job, want 1", n)
	}
	if j, _ := h.Job(t, id); j.State != jobs.StateFailed {
		t.Errorf("failed job is now %s", j.State)
	}
}

func TestAttemptsUsedUp(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{
		{Name: "down", Path: "/v1/down", Upstream: "/down", MaxAttempts: 3},
		{Name: "fine", Path: "/v1/fine", Upstream: "/fine"},
	}})
	var n atomic.Int32
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if r.URL.Path == "/down" {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "down for maintenance "+string(rune('0'+n.Add(1))))
			return
		}
		okJSON(w, r, c)
	})
	id := h.Submit(t, "/v1/down", `{}`)
	j := h.WaitState(t, id, jobs.StateDead)
	if j.Attempt != 3 || j.MaxAttempts != 3 || j.Error == "" || j.FinishedAt == nil || j.NextAttemptAt != nil {
		t.Errorf("dead job: attempt %d/%d error %q finished_at %v next_attempt_at %v",
			j.Attempt, j.MaxAttempts, j.Error, j.FinishedAt, j.NextAttemptAt)
	}
	if j.Result == nil || j.Result.Status != http.StatusServiceUnavailable || string(j.Result.Body) != `"down for maintenance 3"` {
		t.Errorf("result %+v, want the last 503", j.Result)
	}
	var attempts []int
	for _, c := range h.Upstream.Calls(id) {
		attempts = append(attempts, c.Attempt)
	}
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Errorf("upstream saw attempts %v, want [1 2 3]", attempts)
	}
	h.WaitState(t, h.Submit(t, "/v1/fine", `{}`), jobs.StateSucceeded)
	if n := len(h.Upstream.Calls(id)); n != 3 {
		t.Errorf("upstream called %d times for the dead job, want 3", n)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{
		Name: "limited", Path: "/v1/limited", Upstream: "/limited",
		Backoff: jobs.Backoff{Base: jobs.Duration(10 * time.Millisecond), Max: jobs.Duration(5 * time.Second)},
	}}})
	var n atomic.Int32
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"slow":"down"}`)
			return
		}
		okJSON(w, r, c)
	})
	id := h.Submit(t, "/v1/limited", `{}`)
	st := h.Events(t, "/v1/jobs/"+id+"/events", "")
	var kinds []string
	var retrying *jobs.Job
	for {
		ev := st.Next(t)
		kinds = append(kinds, ev.Event)
		if ev.Event == string(jobs.StateRetrying) {
			retrying = decodeJob(t, ev.Data)
		}
		if jobs.State(ev.Event).Terminal() {
			break
		}
	}
	want := []string{"queued", "running", "retrying", "running", "succeeded"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if retrying.NextAttemptAt == nil {
		t.Fatal("retrying event has no next_attempt_at")
	}
	calls := h.Upstream.Calls(id)
	if len(calls) != 2 {
		t.Fatalf("upstream calls %d, want 2", len(calls))
	}
	// The 429 was answered after the first call arrived, so the retry may
	// come no sooner than 1s after that.
	if wait := retrying.NextAttemptAt.Sub(calls[0].At); wait < time.Second || wait > 3*time.Second {
		t.Errorf("next_attempt_at is %s after the first call, want the upstream's Retry-After of 1s", wait)
	}
	if retrying.Result == nil || retrying.Result.Status != http.StatusTooManyRequests || retrying.Error == "" || retrying.Attempt != 1 {
		t.Errorf("retrying event: attempt %d result %+v error %q, want attempt 1 with the 429", retrying.Attempt, retrying.Result, retrying.Error)
	}
	if calls[1].At.Before(*retrying.NextAttemptAt) {
		t.Errorf("second call came %s before next_attempt_at", retrying.NextAttemptAt.Sub(calls[1].At))
	}
	if calls[1].Attempt != 2 {
		t.Errorf("second call: X-Asyncgw-Attempt %d, want 2", calls[1].Attempt)
	}
}

func TestScheduledJob(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	h.Upstream.Handle(okJSON)
	before := time.Now()
	r := h.PostJSON(t, "/v1/jobs", `{"type": "orders", "payload": {"sku": "later"}, "delay": "1s"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.Status, r.Body)
	}
	var a gateway.Accepted
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	if a.State != jobs.StateScheduled || !idPattern.MatchString(a.ID) || a.StatusURL != "/v1/jobs/"+a.ID ||
		a.EventsURL != "/v1/jobs/"+a.ID+"/events" || r.Header.Get("Location") != "/v1/jobs/"+a.ID {
		t.Errorf("202 %s Location %q, want state scheduled and the job's URLs", r.Body, r.Header.Get("Location"))
	}
	j, _ := h.Job(t, a.ID)
	if j.NextAttemptAt == nil || j.NextAttemptAt.Before(before.Add(time.Second)) {
		t.Fatalf("scheduled job's next_attempt_at %v, want at least 1s after %v", j.NextAttemptAt, before)
	}
	due := *j.NextAttemptAt
	j = h.WaitState(t, a.ID, jobs.StateSucceeded)
	calls := h.Upstream.Calls(a.ID)
	if len(calls) != 1 {
		t.Fatalf("upstream calls %d, want 1", len(calls))
	}
	if calls[0].At.Before(due) {
		t.Errorf("upstream called %s before the job was due", due.Sub(calls[0].At))
	}
	if string(calls[0].Body) != `{"sku": "later"}` || calls[0].Path != "/orders" || calls[0].Header.Get("Content-Type") != "application/json" {
		t.Errorf("upstream got %s %q (%s), want the payload as JSON on /orders", calls[0].Path, calls[0].Body, calls[0].Header.Get("Content-Type"))
	}
	if j.Attempt != 1 {
		t.Errorf("attempt %d, want 1", j.Attempt)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	const maxBody = 1024
	h := Start(t, Options{
		MaxBody: maxBody,
		Routes: []gateway.Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "/orders"},
			{Name: "items", Path: "/v1/orders/:id/items", Upstream: "/orders/:id/items"},
		},
	})
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	big := `{"pad":"` + strings.Repeat("x", maxBody) + `"}`
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		header  http.Header
		status  int
		pointer string // a JSON pointer errors[] must name
	}{
		{"unknown type", "POST", "/v1/jobs", `{"type":"nope"}`, jsonHeader, 400, "/type"},
		{"missing type", "POST", "/v1/jobs", `{"payload":{}}`, jsonHeader, 400, "/type"},
		{"route with path parameters", "POST", "/v1/jobs", `{"type":"items"}`, jsonHeader, 400, "/type"},
		{"bad delay", "POST", "/v1/jobs", `{"type":"orders","delay":"soon"}`, jsonHeader, 400, "/delay"},
		{"negative delay", "POST", "/v1/jobs", `{"type":"orders","delay":"-1s"}`, jsonHeader, 400, "/delay"},
		{"unknown field", "POST", "/v1/jobs", `{"type":"orders","bogus":1}`, jsonHeader, 400, "/bogus"},
		{"wrong field type", "POST", "/v1/jobs", `{"type":7}`, jsonHeader, 400, "/type"},
		{"trailing data", "POST", "/v1/jobs", `{"type":"orders"} {}`, jsonHeader, 400, ""},
		{"malformed JSON", "POST", "/v1/jobs", `{"type":`, jsonHeader, 400, ""},
		{"not JSON on a route", "POST", "/v1/orders", `{"a":}`, jsonHeader, 400, ""},
		{"wrong content type", "POST", "/v1/jobs", `{"type":"orders"}`, http.Header{"Content-Type": {"text/plain"}}, 415, ""},
		{"wrong content type on a route", "POST", "/v1/orders", `<order/>`, http.Header{"Content-Type": {"application/xml"}}, 415, ""},
		{"no content type", "POST", "/v1/orders", `{}`, http.Header{}, 415, ""},
		{"body over the limit", "POST", "/v1/jobs", big, jsonHeader, 413, ""},
		{"body over the limit on a route", "POST", "/v1/orders", big, jsonHeader, 413, ""},
		{"unknown path", "POST", "/v1/nope", `{}`, jsonHeader, 404, ""},
		{"unknown GET path", "GET", "/nope", "", nil, 404, ""},
		{"bad X-Priority", "POST", "/v1/orders", `{}`, http.Header{"Content-Type": {"application/json"}, "X-Priority": {"urgent"}}, 400, ""},
		{"bad priority field", "POST", "/v1/jobs", `{"type":"orders","priority":"urgent"}`, jsonHeader, 400, ""},
	}
	for _, tt := range tests {
		var body []byte
		if tt.body != "" {
			body = []byte(tt.body)
		}
		r := h.Do(t, tt.method, tt.path, body, tt.header)
		p := requireProblem(t, tt.name, r, tt.status)
		if tt.pointer != "" && !hasPointer(p, tt.pointer) {
			t.Errorf("%s: errors %+v do not name %s", tt.name, p.Errors, tt.pointer)
		}
	}

	// None of that stored anything: the tenant's event stream is empty.
	tail, err := h.Store.TenantTail(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := h.Store.ParseCursor(tail); err != nil || !c.Empty() {
		t.Errorf("a rejected request stored a job: tenant stream tail %s", tail)
	}
	if calls := h.Upstream.AllCalls(); len(calls) != 0 {
		t.Errorf("upstream called %d times for rejected requests", len(calls))
	}

	// A good priority is taken.
	r := h.Do(t, "POST", "/v1/orders", []byte(`{}`), http.Header{"Content-Type": {"application/json"}, "X-Priority": {h.Queues.Low}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("X-Priority %s: status %d, want 202; body %s", h.Queues.Low, r.Status, r.Body)
	}
	var a gateway.Accepted
	_ = json.Unmarshal(r.Body, &a)
	if j, _ := h.Job(t, a.ID); j.Queue != h.Queues.Low {
		t.Errorf("X-Priority %s: queue %s", h.Queues.Low, j.Queue)
	}
}

func TestGoHandlerType(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{
		Types: []gateway.Type{{Name: "resize"}},
		Handlers: map[string]worker.HandlerFunc{
			"resize": func(_ context.Context, j *jobs.Job, payload []byte) (json.RawMessage, error) {
				var in struct{ W, H int }
				if err := json.Unmarshal(payload, &in); err != nil {
					return nil, worker.Permanent(err)
				}
				if in.W < 0 {
					return json.RawMessage("not JSON"), nil
				}
				return json.Marshal(map[string]any{"job": j.ID, "area": in.W * in.H})
			},
		},
	})
	id := h.Submit(t, "/v1/jobs", `{"type":"resize","payload":{"w":3,"h":4}}`)
	j := h.WaitState(t, id, jobs.StateSucceeded)
	want := mustJSON(t, map[string]any{"job": id, "area": 12})
	if j.Type != "resize" || j.Attempt != 1 || j.Result == nil || !jsonEqual(t, j.Result.Body, want) {
		t.Fatalf("job %+v result %+v, want type resize, attempt 1 and body %s", j, j.Result, want)
	}
	res := h.Do(t, http.MethodGet, "/v1/jobs/"+id+"/result", nil, nil)
	if res.Status != http.StatusOK || !jsonEqual(t, res.Body, want) {
		t.Errorf("GET result: %d %s, want 200 %s", res.Status, res.Body, want)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET result: Content-Type %q, want application/json", ct)
	}
	if n := len(h.Upstream.AllCalls()); n != 0 {
		t.Errorf("a Go handler job called the upstream %d times", n)
	}

	// What is not JSON cannot be a result: the job fails, and its record
	// stays readable.
	id = h.Submit(t, "/v1/jobs", `{"type":"resize","payload":{"w":-1}}`)
	j = h.WaitState(t, id, jobs.StateFailed)
	if j.Result != nil || j.Error == "" {
		t.Errorf("handler returning invalid JSON: result %+v error %q, want no result and an error", j.Result, j.Error)
	}

	// A payload the handler refuses fails the job for good.
	id = h.Submit(t, "/v1/jobs", `{"type":"resize","payload":[1,2]}`)
	j = h.WaitState(t, id, jobs.StateFailed)
	if j.Attempt != 1 || j.Error == "" {
		t.Errorf("refused payload: attempt %d error %q, want attempt 1 with an error", j.Attempt, j.Error)
	}
}
