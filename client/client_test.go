package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/client"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/e2e"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/ratelimit"
)

// testTimeout bounds each test's calls.
const testTimeout = 60 * time.Second

// ordersRoute is the route the tests submit to.
var ordersRoute = gateway.Route{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}

// okOrder answers like an orders service.
func okOrder(w http.ResponseWriter, _ *http.Request, _ e2e.Call) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"order":"o-1"}`)
}

func newClient(t *testing.T, base, key string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithRetry(client.Retry{Base: 20 * time.Millisecond, Max: 500 * time.Millisecond})}, opts...)
	c, err := client.New(base, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestSubmitWaitGetResultCancel: the operations against a real gateway,
// worker and Redis, and the errors they answer.
func TestSubmitWaitGetResultCancel(t *testing.T) {
	t.Parallel()
	key, digest := gateway.NewKey()
	otherKey, otherDigest := gateway.NewKey()
	h := e2e.Start(t, e2e.Options{
		Routes: []gateway.Route{ordersRoute},
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digest}},
			{Name: "globex", KeySHA256: []string{otherDigest}},
		}},
	})
	h.Upstream.Handle(okOrder)
	ctx := testContext(t)
	c := newClient(t, h.URL, key)

	acc, err := c.Submit(ctx, "/v1/orders", map[string]any{"sku": "A-1"})
	if err != nil {
		t.Fatal(err)
	}
	if acc.ID == "" || acc.State != client.Queued || acc.Replayed || acc.IdempotencyKey == "" {
		t.Errorf("accepted %+v", acc)
	}
	job, err := c.Wait(ctx, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != acc.ID || job.State != client.Succeeded || job.Result == nil || job.Result.Status != 201 ||
		string(job.Result.Body) != `{"order":"o-1"}` || job.FinishedAt == nil {
		t.Errorf("waited for %+v (result %+v)", job, job.Result)
	}
	calls := h.Upstream.Calls(acc.ID)
	if len(calls) != 1 || string(calls[0].Body) != `{"sku":"A-1"}` {
		t.Errorf("upstream calls %+v, want one with the body", calls)
	}
	got, err := c.Get(ctx, acc.ID)
	if err != nil || got.State != client.Succeeded {
		t.Errorf("Get: %+v, %v", got, err)
	}
	res, err := c.Result(ctx, acc.ID)
	if err != nil || res.Status != 201 || string(res.Body) != `{"order":"o-1"}` || res.State != client.Succeeded ||
		res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Result: %+v, %v", res, err)
	}

	// The same key again: the same job, replayed.
	again, err := c.Submit(ctx, "/v1/orders", map[string]any{"sku": "A-1"}, client.IdempotencyKey(acc.IdempotencyKey))
	if err != nil || again.ID != acc.ID || !again.Replayed {
		t.Errorf("the same key again: %+v, %v; want the same job, replayed", again, err)
	}
	// The same key for another body: 422, which is not retried.
	_, err = c.Submit(ctx, "/v1/orders", map[string]any{"sku": "B-2"}, client.IdempotencyKey(acc.IdempotencyKey))
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 422 || e.Slug() != "idempotency-key-reused" || !errors.Is(err, client.ErrInvalid) || e.RequestID == "" {
		t.Errorf("a reused key: %v (%+v)", err, e)
	}

	// A job of type orders through POST /v1/jobs.
	acc2, err := c.SubmitJob(ctx, client.JobRequest{Type: "orders", Payload: []byte(`{"sku":"C-3"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.Wait(ctx, acc2.ID); err != nil || j.State != client.Succeeded {
		t.Errorf("SubmitJob then Wait: %+v, %v", j, err)
	}
	if calls := h.Upstream.Calls(acc2.ID); len(calls) != 1 || string(calls[0].Body) != `{"sku":"C-3"}` {
		t.Errorf("SubmitJob: upstream calls %+v", calls)
	}

	// Errors.
	if _, err := c.Cancel(ctx, acc.ID); !errors.Is(err, client.ErrJobEnded) {
		t.Errorf("Cancel of an ended job: %v, want ErrJobEnded", err)
	}
	other := newClient(t, h.URL, otherKey)
	for what, err := range map[string]error{
		"Get of another tenant's job":   func() error { _, err := other.Get(ctx, acc.ID); return err }(),
		"Wait for another tenant's job": func() error { _, err := other.Wait(ctx, acc.ID); return err }(),
		"Get of a missing job":          func() error { _, err := c.Get(ctx, "aaaaaaaaaaaaaaaaaaaaaaaaaa"); return err }(),
		"token for another's job":       func() error { _, err := other.StreamToken(ctx, acc.ID); return err }(),
	} {
		if !errors.Is(err, client.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}
	bad := newClient(t, h.URL, "agw_wrong")
	if _, err := bad.Get(ctx, acc.ID); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("a wrong key: %v, want ErrUnauthorized", err)
	}
	_, err = c.Submit(ctx, "/v1/orders", "{not json")
	if !errors.As(err, &e) || !errors.Is(err, client.ErrInvalid) || e.Type == "" || e.Title == "" || e.Detail == "" {
		t.Errorf("a malformed body: %v", err)
	}

	// Cancel a job that has not run: a held upstream keeps the first
	// busy; a scheduled one waits.
	acc3, err := c.SubmitJob(ctx, client.JobRequest{Type: "orders", Payload: map[string]int{"n": 1}, Delay: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if j, err := c.Cancel(ctx, acc3.ID); err != nil || j.State != client.Canceled {
		t.Errorf("Cancel: %+v, %v", j, err)
	}
	if _, err := c.Result(ctx, acc3.ID); err == nil {
		t.Errorf("Result of a canceled job without an answer: no error")
	}
	if j, err := c.Wait(ctx, acc3.ID); err != nil || j.State != client.Canceled {
		t.Errorf("Wait for a canceled job: %+v, %v", j, err)
	}
}

// TestResultBeforeTheEnd: Result of a live job is ErrNoResult.
func TestResultBeforeTheEnd(t *testing.T) {
	t.Parallel()
	h := e2e.Start(t, e2e.Options{Routes: []gateway.Route{ordersRoute}})
	ctx := testContext(t)
	c := newClient(t, h.URL, "")
	acc, err := c.SubmitJob(ctx, client.JobRequest{Type: "orders", Delay: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Result(ctx, acc.ID)
	var e *client.Error
	if !errors.Is(err, client.ErrNoResult) || errors.Is(err, client.ErrNotFound) || !errors.As(err, &e) || e.RetryAfter != time.Second {
		t.Errorf("Result of a scheduled job: %v; want ErrNoResult with Retry-After 1s", err)
	}
}

// frontProxy forwards to a gateway, letting a test change what the
// client sees.
type frontProxy struct {
	*httptest.Server
	target *url.URL
	// hook, when it returns true, has answered the request itself.
	hook func(w http.ResponseWriter, r *http.Request, forward func() (*http.Response, []byte)) bool
}

func newFrontProxy(t *testing.T, target string, hook func(w http.ResponseWriter, r *http.Request, forward func() (*http.Response, []byte)) bool) *frontProxy {
	t.Helper()
	u, _ := url.Parse(target)
	p := &frontProxy{target: u, hook: hook}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() { p.CloseClientConnections(); p.Close() })
	return p
}

func (p *frontProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	forward := func() (*http.Response, []byte) {
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), strings.NewReader(string(body)))
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			return nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if p.hook != nil && p.hook(w, r, forward) {
		return
	}
	// Plain forwarding, streams included.
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), strings.NewReader(string(body)))
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
			http.NewResponseController(w).Flush()
		}
		if err != nil {
			return
		}
	}
}

// TestSubmitRetriedMakesOneJob: a write the gateway stored, whose answer
// the client never saw (a 503 in its place, or the connection cut), is
// sent again with the same Idempotency-Key, and the gateway answers with
// the job it made: one job, one upstream call.
func TestSubmitRetriedMakesOneJob(t *testing.T) {
	t.Parallel()
	h := e2e.Start(t, e2e.Options{Routes: []gateway.Route{ordersRoute}})
	h.Upstream.Handle(okOrder)
	ctx := testContext(t)
	for _, tc := range []struct {
		name string
		lose func(w http.ResponseWriter)
	}{
		{"503 instead of the 202", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"type":"https://asyncgw.dev/problems/unavailable","title":"Service Unavailable","status":503,"detail":"lost"}`)
		}},
		{"connection cut", func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
	} {
		var mu sync.Mutex
		var keys []string
		var posts atomic.Int32
		p := newFrontProxy(t, h.URL, func(w http.ResponseWriter, r *http.Request, forward func() (*http.Response, []byte)) bool {
			if r.Method != http.MethodPost {
				return false
			}
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			mu.Unlock()
			if posts.Add(1) > 1 {
				return false
			}
			if resp, _ := forward(); resp == nil || resp.StatusCode != http.StatusAccepted {
				t.Errorf("%s: the first post was not accepted by the gateway", tc.name)
			}
			tc.lose(w)
			return true
		})
		before := len(h.JobIDs(t, gateway.DefaultTenant))
		c := newClient(t, p.URL, "")
		start := time.Now()
		acc, err := c.Submit(ctx, "/v1/orders", `{"sku":"R-1"}`)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !acc.Replayed {
			t.Errorf("%s: the answer to the retry is not a replay: %+v", tc.name, acc)
		}
		if tc.name == "503 instead of the 202" && time.Since(start) < time.Second {
			t.Errorf("%s: retried after %s, before the Retry-After of 1s", tc.name, time.Since(start))
		}
		ids := h.JobIDs(t, gateway.DefaultTenant)
		if len(ids)-before != 1 {
			t.Errorf("%s: %d jobs made, want 1", tc.name, len(ids)-before)
		}
		mu.Lock()
		if len(keys) != 2 || keys[0] != keys[1] || keys[0] == "" {
			t.Errorf("%s: Idempotency-Keys sent %q, want the same one twice", tc.name, keys)
		}
		mu.Unlock()
		if j, err := c.Wait(ctx, acc.ID); err != nil || j.State != client.Succeeded {
			t.Fatalf("%s: Wait: %+v, %v", tc.name, j, err)
		}
		if calls := h.Upstream.Calls(acc.ID); len(calls) != 1 {
			t.Errorf("%s: %d upstream calls, want 1", tc.name, len(calls))
		}
	}
}

// TestSubmitRetriesRateLimit: a real 429 of a route's rate limit is
// waited out as its Retry-After says, and the write then accepted.
func TestSubmitRetriesRateLimit(t *testing.T) {
	t.Parallel()
	limited := ordersRoute
	limited.RateLimit = &ratelimit.Limit{Rate: 1, Burst: 1}
	h := e2e.Start(t, e2e.Options{Routes: []gateway.Route{limited}})
	h.Upstream.Handle(okOrder)
	ctx := testContext(t)
	c := newClient(t, h.URL, "")
	a1, err := c.Submit(ctx, "/v1/orders", `{"n":1}`)
	if err != nil {
		t.Fatal(err)
	}
	// Without retries the second write is refused at once.
	once := newClient(t, h.URL, "", client.WithRetry(client.Retry{Attempts: 1}))
	if _, err := once.Submit(ctx, "/v1/orders", `{"n":2}`); !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("an immediate second write without retries: %v, want ErrRateLimited", err)
	}
	a2, err := c.Submit(ctx, "/v1/orders", `{"n":3}`)
	if err != nil {
		t.Fatalf("the write after a 429: %v", err)
	}
	if a1.ID == a2.ID || a2.Replayed {
		t.Errorf("two writes: %+v, %+v; want two jobs", a1, a2)
	}
}

// TestWaitAcrossGatewayRestart: the gateway shuts down while Wait follows
// a job's stream, and starts again on the same address; the job ends
// while it is down, or once it is back. Wait returns the terminal job.
func TestWaitAcrossGatewayRestart(t *testing.T) {
	t.Parallel()
	for _, endWhileDown := range []bool{true, false} {
		name := "ends after the restart"
		if endWhileDown {
			name = "ends while the gateway is down"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := e2e.Start(t, e2e.Options{Routes: []gateway.Route{ordersRoute}})
			release := make(chan struct{})
			h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c e2e.Call) {
				select {
				case <-release:
				case <-h.Upstream.Released():
				}
				okOrder(w, r, c)
			})
			ctx := testContext(t)
			streams := make(chan string, 16) // Last-Event-ID of each stream opened
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				resp, err := http.DefaultTransport.RoundTrip(r)
				if err == nil && strings.HasSuffix(r.URL.Path, "/events") && resp.StatusCode == http.StatusOK {
					streams <- r.Header.Get("Last-Event-ID")
				}
				return resp, err
			})}
			c := newClient(t, h.URL, "", client.WithHTTPClient(hc))
			acc, err := c.Submit(ctx, "/v1/orders", `{"sku":"S-1"}`)
			if err != nil {
				t.Fatal(err)
			}
			h.WaitState(t, acc.ID, jobs.StateRunning)
			type result struct {
				job *client.Job
				err error
			}
			done := make(chan result, 1)
			go func() {
				j, err := c.Wait(ctx, acc.ID)
				done <- result{j, err}
			}()
			select {
			case <-streams:
			case <-ctx.Done():
				t.Fatal("Wait opened no stream")
			}
			addr := strings.TrimPrefix(h.URL, "http://")
			if err := h.Shutdown(); err != nil {
				t.Fatal(err)
			}
			if endWhileDown {
				close(release)
				e2e.Eventually(t, e2e.WaitTimeout, func() (bool, string) {
					j, err := h.Store.Get(ctx, gateway.DefaultTenant, acc.ID)
					return err == nil && j.State == jobs.StateSucceeded, "the job has not succeeded"
				})
			}
			select {
			case r := <-done:
				t.Fatalf("Wait returned while the gateway was down: %+v, %v", r.job, r.err)
			default:
			}
			h.StartGatewayAt(t, addr)
			if !endWhileDown {
				// Wait for the resumed stream before the job ends.
				select {
				case last := <-streams:
					if last == "" {
						t.Errorf("the stream was reopened without Last-Event-ID")
					}
				case <-ctx.Done():
					t.Fatal("Wait did not reopen the stream")
				}
				close(release)
			}
			select {
			case r := <-done:
				if r.err != nil || r.job.ID != acc.ID || r.job.State != client.Succeeded || r.job.Result == nil {
					t.Fatalf("Wait: %+v, %v; want the succeeded job", r.job, r.err)
				}
			case <-ctx.Done():
				t.Fatal("Wait did not return after the gateway came back")
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestWaitPollsWithoutStreams: behind a proxy that answers event streams
// with a page of its own, or keeps failing them, Wait polls the job to
// its end.
func TestWaitPollsWithoutStreams(t *testing.T) {
	t.Parallel()
	h := e2e.Start(t, e2e.Options{Routes: []gateway.Route{ordersRoute}})
	release := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c e2e.Call) {
		select {
		case <-release:
		case <-h.Upstream.Released():
		}
		okOrder(w, r, c)
	})
	ctx := testContext(t)
	for _, tc := range []struct {
		name   string
		status int
		ctype  string
	}{
		{"a page instead of the stream", http.StatusOK, "text/html"},
		{"a proxy error", http.StatusBadGateway, "text/plain"},
	} {
		var polls atomic.Int32
		p := newFrontProxy(t, h.URL, func(w http.ResponseWriter, r *http.Request, _ func() (*http.Response, []byte)) bool {
			if strings.HasSuffix(r.URL.Path, "/events") {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, "<html>streams are not allowed here</html>")
				return true
			}
			if r.Method == http.MethodGet {
				polls.Add(1)
			}
			return false
		})
		c := newClient(t, p.URL, "", client.WithPollInterval(50*time.Millisecond))
		acc, err := c.Submit(ctx, "/v1/orders", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var job *client.Job
		go func() {
			var err error
			job, err = c.Wait(ctx, acc.ID)
			done <- err
		}()
		e2e.Eventually(t, 20*time.Second, func() (bool, string) {
			return polls.Load() >= 2, "Wait does not poll"
		})
		release <- struct{}{}
		if err := <-done; err != nil || job.State != client.Succeeded {
			t.Errorf("%s: Wait: %+v, %v", tc.name, job, err)
		}
	}
	close(release)
}

// TestEventsResume: the tenant stream, followed across a gateway restart
// during which another gateway accepted a job that ended: every event
// comes once, and a new Events resumes after a kept ID.
func TestEventsResume(t *testing.T) {
	t.Parallel()
	h := e2e.Start(t, e2e.Options{Routes: []gateway.Route{ordersRoute}})
	h.Upstream.Handle(okOrder)
	other := h.StartGateway(t)
	ctx := testContext(t)
	opened := make(chan struct{}, 16)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && r.URL.Path == "/v1/events" && resp.StatusCode == http.StatusOK {
			opened <- struct{}{}
		}
		return resp, err
	})}
	c := newClient(t, h.URL, "", client.WithHTTPClient(hc))
	via := newClient(t, other.URL, "")

	seen := map[string][]string{} // job → event kinds
	ids := map[string]bool{}
	next, stop := iterPull(c.Events(ctx))
	defer stop()
	select {
	case <-opened: // live from now on
	case <-ctx.Done():
		t.Fatal("Events opened no stream")
	}
	acc1, err := via.Submit(ctx, "/v1/orders", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var lastID string
	for !ended(seen[acc1.ID]) {
		ev := next(t)
		record(t, seen, ids, ev)
		lastID = ev.ID
	}

	addr := strings.TrimPrefix(h.URL, "http://")
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}
	acc2, err := via.Submit(ctx, "/v1/orders", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if j, err := via.Wait(ctx, acc2.ID); err != nil || j.State != client.Succeeded {
		t.Fatalf("the job accepted while the first gateway was down: %+v, %v", j, err)
	}
	h.StartGatewayAt(t, addr)
	for !ended(seen[acc2.ID]) {
		record(t, seen, ids, next(t))
	}
	for id, kinds := range seen {
		if strings.Join(kinds, ",") != "queued,running,succeeded" {
			t.Errorf("job %s: events %v, want queued, running, succeeded once each", id, kinds)
		}
	}

	// A new Events after the first job's last event gives the second
	// job's events, and nothing of the first.
	resumed := map[string][]string{}
	for ev, err := range c.Events(ctx, client.After(lastID)) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Job.ID != acc2.ID {
			t.Fatalf("resumed after the first job's end: got %s of job %s", ev.Kind, ev.Job.ID)
		}
		resumed[ev.Job.ID] = append(resumed[ev.Job.ID], ev.Kind)
		if ended(resumed[ev.Job.ID]) {
			break
		}
	}
	if got := strings.Join(resumed[acc2.ID], ","); got != "queued,running,succeeded" {
		t.Errorf("resumed: %s", got)
	}
}

// iterPull reads a sequence one element at a time; next fails t on an
// error or when no element comes in time.
func iterPull(seq iter.Seq2[client.Event, error]) (next func(t *testing.T) client.Event, stop func()) {
	type item struct {
		ev  client.Event
		err error
	}
	ch := make(chan item)
	stopc := make(chan struct{})
	go func() {
		defer close(ch)
		for ev, err := range seq {
			select {
			case ch <- item{ev, err}:
			case <-stopc:
				return
			}
		}
	}()
	var once sync.Once
	next = func(t *testing.T) client.Event {
		t.Helper()
		select {
		case v, ok := <-ch:
			if !ok {
				t.Fatal("the event sequence ended")
			}
			if v.err != nil {
				t.Fatal(v.err)
			}
			return v.ev
		case <-time.After(testTimeout):
			t.Fatal("no event in time")
		}
		return client.Event{}
	}
	return next, func() { once.Do(func() { close(stopc) }) }
}

func record(t *testing.T, seen map[string][]string, ids map[string]bool, ev client.Event) {
	t.Helper()
	if ids[ev.ID] {
		t.Errorf("event %s came twice", ev.ID)
	}
	ids[ev.ID] = true
	seen[ev.Job.ID] = append(seen[ev.Job.ID], ev.Kind)
}

func ended(kinds []string) bool {
	return len(kinds) > 0 && client.State(kinds[len(kinds)-1]).Terminal()
}

// TestStreamTokenOpensStream: a token from StreamToken opens the job's
// stream without the API key, and EventsStreamToken the tenant's.
func TestStreamTokenOpensStream(t *testing.T) {
	t.Parallel()
	key, digest := gateway.NewKey()
	h := e2e.Start(t, e2e.Options{
		Routes: []gateway.Route{ordersRoute},
		Auth:   gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{{Name: "acme", KeySHA256: []string{digest}}}},
	})
	h.Upstream.Handle(okOrder)
	ctx := testContext(t)
	c := newClient(t, h.URL, key)
	acc, err := c.Submit(ctx, "/v1/orders", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.StreamToken(ctx, acc.ID)
	if err != nil || time.Until(tok.ExpiresAt) < 4*time.Minute {
		t.Fatalf("StreamToken: %+v, %v", tok, err)
	}
	resp, err := http.Get(h.URL + "/v1/jobs/" + acc.ID + "/events?token=" + url.QueryEscape(tok.Token))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "event: succeeded") {
		t.Errorf("the job's stream with its token: %d %s", resp.StatusCode, body)
	}
	tt, err := c.EventsStreamToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(h.URL + "/v1/jobs/" + acc.ID + "/events?token=" + url.QueryEscape(tt.Token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a tenant token on a job stream: %d, want 403", resp.StatusCode)
	}
}

// TestNew checks the base URL and options.
func TestNew(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "gateway:8080", "ftp://g", "http://g/?q=1", "http:///x"} {
		if _, err := client.New(bad, ""); err == nil {
			t.Errorf("New(%q): no error", bad)
		}
	}
	if _, err := client.New("http://g", "key\nX-Evil: 1"); err == nil {
		t.Error("New with a key holding a line break: no error")
	}
	// A base path is kept as a prefix.
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path + " " + r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "state": "queued"})
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/asyncgw/", "k")
	if _, err := c.Get(testContext(t), "x"); err != nil || got != "/asyncgw/v1/jobs/x Bearer k" {
		t.Errorf("Get: %v; the server saw %q", err, got)
	}
}
