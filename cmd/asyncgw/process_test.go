package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// setup is what a process test shares with the processes it starts: one
// configuration file on a real Redis, with its own key prefix and queue, and
// one route ("work", POST /v1/work) to the test's upstream.
type setup struct {
	config string // path of the configuration file
	prefix string
	queue  string
	redis  *redistest.Server
}

// newSetup writes the configuration for upstream on srv: a worker that
// runs 4 jobs at once and lets them finish for 5s on SIGTERM.
func newSetup(t *testing.T, srv *redistest.Server, upstream string) *setup {
	t.Helper()
	return newSizedSetup(t, srv, upstream, 4, 5*time.Second)
}

// newSizedSetup is newSetup for a worker that runs concurrency jobs at
// once and lets them finish for workerShutdown on SIGTERM.
func newSizedSetup(t *testing.T, srv *redistest.Server, upstream string, concurrency int, workerShutdown time.Duration) *setup {
	t.Helper()
	s := &setup{prefix: redistest.Prefix(t), queue: redistest.Queue(t, "default"), redis: srv}
	s.config = writeFile(t, "asyncgw.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
redis:
  url: %s
  prefix: %s
queues: {%s: 1}
worker:
  concurrency: %d
  shutdown_timeout: %s
gateway:
  shutdown_timeout: 5s
  drain_delay: 0s
log:
  level: debug
routes:
  - name: work
    path: /v1/work
    upstream: %s
    queue: %s
    timeout: 30s
    max_attempts: 3
    backoff: {base: 100ms, max: 1s}
`, srv.URL(), s.prefix, s.queue, concurrency, workerShutdown, upstream, s.queue))
	return s
}

// store opens the job records of the setup directly in Redis.
func (s *setup) store(t *testing.T) *status.Store {
	t.Helper()
	st, err := status.New(status.Config{Prefix: s.prefix}, s.redis.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// upstream is the service behind the gateway in a test. Each call is
// recorded; handle decides the answer (nil: 200 with a small JSON body).
type upstream struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []*http.Request
	called chan struct{} // one value per call, never blocks the handler
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

func newUpstream(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *upstream {
	t.Helper()
	// Large enough that no test fills it: a handler that blocked on it
	// would hold the worker that called it (and the server's Close).
	u := &upstream{called: make(chan struct{}, 1<<16), handle: handle}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server watch the
		// connection, so that r.Context() ends when the caller goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.calls = append(u.calls, r.Clone(context.Background()))
		n := len(u.calls)
		u.mu.Unlock()
		u.called <- struct{}{}
		if u.handle != nil {
			u.handle(n, w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	return u
}

// attempts lists the X-Asyncgw-Attempt header of every call so far.
func (u *upstream) attempts() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, r := range u.calls {
		out = append(out, r.Header.Get("X-Asyncgw-Attempt"))
	}
	return out
}

// call returns the i-th call (from 0).
func (u *upstream) call(i int) *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[i]
}

// waitCall waits for the next call.
func (u *upstream) waitCall(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-u.called:
	case <-time.After(timeout):
		t.Fatalf("the upstream was not called within %v", timeout)
	}
}

// TestDemoWithoutRedis runs asyncgw as a first-time user would: no file,
// no Redis, only ASYNCGW_LISTEN. The demo route works end to end and the
// log warns loudly that nothing is durable.
func TestDemoWithoutRedis(t *testing.T) {
	t.Parallel()
	p := startAsyncgw(t, map[string]string{"ASYNCGW_LISTEN": "127.0.0.1:0"})
	base := p.baseURL(t)
	if log := p.stderr.String(); !strings.Contains(log, "NO REDIS CONFIGURED") || !strings.Contains(log, "NOT durable") {
		t.Errorf("no not-durable warning in the log:\n%s", log)
	}

	id := postJob(t, base+"/v1/demo", `{"hello":"world"}`)
	evs, err := openEvents(t, base+"/v1/jobs/"+id+"/events").rest(t, 30*time.Second)
	if err != io.EOF {
		t.Errorf("event stream ended with %v, want EOF", err)
	}
	if got, want := kinds(evs), []string{"queued", "running", "succeeded"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	var j jobs.Job
	if err := json.Unmarshal(evs[2].Data, &j); err != nil {
		t.Fatal(err)
	}
	if j.ID != id || j.Attempt != 1 || j.Result == nil || j.Result.Status != http.StatusCreated {
		t.Errorf("succeeded event: %s", evs[2].Data)
	}
	var body struct {
		Received       map[string]string `json:"received"`
		IdempotencyKey string            `json:"idempotency_key"`
	}
	if err := json.Unmarshal(j.Result.Body, &body); err != nil || body.Received["hello"] != "world" || body.IdempotencyKey != id {
		t.Errorf("demo upstream answered %s (%v)", j.Result.Body, err)
	}

	// A reload of the demo keeps its route and its embedded Redis, and
	// Ctrl-C stops it at once: it has no load balancer to drain for.
	p.signal(t, syscall.SIGHUP)
	log := p.waitLog(t, `msg="config reloaded"`, 10*time.Second)
	if strings.Contains(log, "only after a restart") {
		t.Errorf("the demo's reload warned of settings that did not change:\n%s", log)
	}
	postJob(t, base+"/v1/demo", `{"hello":"again"}`)
	p.signal(t, syscall.SIGINT)
	stopped := time.Now()
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0", code)
	}
	if took := time.Since(stopped); took > 3*time.Second {
		t.Errorf("the demo took %s to stop: it has no drain delay", took)
	}
}

// TestGatewayAndWorkerProcesses runs the gateway and the workers as two
// processes on one Redis: the worker process runs what the gateway
// process accepted.
func TestGatewayAndWorkerProcesses(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	wk := startAsyncgw(t, nil, "worker", "--config", s.config)
	base := gw.baseURL(t)
	wk.waitLog(t, "workers started", 30*time.Second)

	id := postJob(t, base+"/v1/work", `{"sku":"A-1"}`)
	evs, err := openEvents(t, base+"/v1/jobs/"+id+"/events").rest(t, 30*time.Second)
	if err != io.EOF {
		t.Errorf("event stream ended with %v, want EOF", err)
	}
	if got := kinds(evs); len(got) == 0 || got[len(got)-1] != "succeeded" {
		t.Fatalf("events %q, want them to end in succeeded", got)
	}
	j := getJob(t, base, id)
	if j.State != jobs.StateSucceeded || j.Attempt != 1 || j.Result == nil || j.Result.Status != http.StatusOK {
		t.Errorf("job %+v", j)
	}
	if got := up.attempts(); !slices.Equal(got, []string{"1"}) {
		t.Errorf("upstream attempts %q, want one call, attempt 1", got)
	}
	if key := up.call(0).Header.Get("Idempotency-Key"); key != id {
		t.Errorf("upstream got Idempotency-Key %q, want the job ID %q", key, id)
	}
	// The worker process ran it, not the gateway process. (Log lines go
	// out a few milliseconds after they are made.)
	wk.waitLog(t, "job_id="+id, 10*time.Second)
	if strings.Contains(gw.stderr.String(), "workers started") {
		t.Errorf("the gateway process started workers")
	}
	// Each process's connections carry its role's name.
	list := redistest.Shared(t).Client(t).ClientList(t.Context()).Val()
	for _, name := range []string{"asyncgw-gateway", "asyncgw-worker"} {
		if !strings.Contains(list, " name="+name+" ") {
			t.Errorf("no Redis connection named %s in\n%s", name, list)
		}
	}
}

// TestWorkerKilledMidJob kills the worker process with SIGKILL while it
// runs many jobs, each held by the upstream, and starts another at once.
// The new worker takes the tasks back once their leases have run out and
// runs each of them once more, within the documented bound (lease 30s +
// 5s allowance for clocks + recover_interval, 5s: 40s after the kill),
// never before the lease ran out; the crash does not use up an attempt:
// every job succeeds with attempt 1, ends exactly once, and the upstream
// saw it twice, both times as attempt 1. The new worker runs several fetch
// loops and one recoverer: its log has no "recoverer: ... NOT FOUND" line.
func TestWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	const n = 20
	// The bound documented in docs/RELIABILITY.md, and how soon the jobs
	// may run again at the earliest: the lease, renewed every 5s, less a
	// second that Redis' whole-second lease scores may take off.
	const bound, earliest = 40 * time.Second, 24 * time.Second
	// Each job's first call is held until the worker dies; later calls
	// succeed.
	up := newJobUpstream(t, func(_ string, call int) bool { return call == 1 })
	s := newSizedSetup(t, redistest.Shared(t), up.URL+"/orders", n, 5*time.Second)
	// Several fetch loops: each is an asynq server, which used to run a
	// recoverer of its own.
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	s.config = writeFile(t, "asyncgw.yaml", strings.Replace(string(cfg), "worker:\n", "worker:\n  fetchers: 4\n", 1))
	wk, base, ids := startHeld(t, s, up, n)
	wk.kill(t)
	killed := time.Now()

	wk2 := startAsyncgw(t, nil, "worker", "--config", s.config)
	wk2.waitLog(t, "workers started", 30*time.Second)
	ended := waitEnded(t, base, s, ids, bound+30*time.Second, wk, wk2)
	took := time.Since(killed)
	t.Logf("the jobs ran again and ended %v after the kill", took.Round(100*time.Millisecond))
	// waitEnded sees a job end up to a poll of every job later than it did.
	if took > bound+2*time.Second {
		t.Errorf("the jobs ended %v after the kill, beyond the documented %v", took, bound)
	}
	if took < earliest {
		t.Errorf("the jobs ran again %v after the kill, before their lease ran out", took)
	}

	st := s.store(t)
	for _, id := range ids {
		checkRunOnceAfterStop(t, st, up, ended[id])
		wk2.waitLog(t, "job_id="+id, 10*time.Second)
	}
	log := wk2.waitLog(t, "took back the tasks of workers that died", 10*time.Second)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "NOT FOUND") || strings.Contains(line, "recoverer:") {
			t.Errorf("the new worker logged: %s", line)
		}
	}
}

// TestGracefulShutdown sends SIGTERM to an all-in-one process while a job
// runs and an event stream is open: the stream is told to reconnect and
// ends, the listener closes, the job still finishes and is recorded, and
// the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := newUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	p := startAsyncgw(t, nil, "--config", s.config)
	base := p.baseURL(t)

	id := postJob(t, base+"/v1/work", `{"sku":"A-1"}`)
	events := openEvents(t, base+"/v1/jobs/"+id+"/events")
	if ev := events.next(t, 10*time.Second); ev.Event != "queued" {
		t.Fatalf("first event %q, want queued", ev.Event)
	}
	if ev := events.next(t, 10*time.Second); ev.Event != "running" {
		t.Fatalf("second event %q, want running", ev.Event)
	}
	up.waitCall(t, 10*time.Second)

	p.signal(t, syscall.SIGTERM)
	stopped := time.Now()

	// The stream gets a reconnection hint, then ends cleanly.
	rest, err := events.rest(t, 10*time.Second)
	if err != io.EOF {
		t.Errorf("event stream ended with %v, want EOF", err)
	}
	if len(rest) != 1 || rest[0].Retry <= 0 || rest[0].Data != nil {
		t.Errorf("after SIGTERM the stream sent %+v, want only a retry: field", rest)
	}

	// New connections are refused while the job still runs.
	u, _ := url.Parse(base)
	testutil.WaitForWhy(t, 5*time.Second, "new connections to be refused", func() (bool, string) {
		conn, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED), err.Error()
		}
		conn.Close()
		return false, "connected"
	})
	if p.exited() {
		t.Fatalf("asyncgw exited before its job finished")
	}

	releaseOnce.Do(func() { close(release) })
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("shutdown took %v, more than its 5s timeout", took)
	}

	j, err := s.store(t).Get(context.Background(), "default", id)
	if err != nil {
		t.Fatalf("read the record: %v", err)
	}
	if j.State != jobs.StateSucceeded || j.Attempt != 1 || j.Result == nil || j.Result.Status != http.StatusOK {
		t.Errorf("recorded job: state %s, attempt %d, result %+v; want succeeded, 1, 200", j.State, j.Attempt, j.Result)
	}
	if got := up.attempts(); !slices.Equal(got, []string{"1"}) {
		t.Errorf("upstream attempts %q, want exactly one", got)
	}
}

// readyz reads GET /readyz.
func readyz(base string) (int, map[string]any, error) {
	resp, err := httpClient.Get(base + "/readyz")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp.StatusCode, nil, fmt.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, body, nil
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)

	t.Run("redis up", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, redistest.Shared(t), up.URL)
		base := startAsyncgw(t, nil, "--config", s.config).baseURL(t)
		code, body, err := readyz(base)
		if err != nil || code != http.StatusOK || body["status"] != "ready" {
			t.Errorf("/readyz: %d %v (%v), want 200 ready", code, body, err)
		}
	})

	t.Run("redis down and back", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		// ASYNCGW_REDIS_URL wins over the file.
		s := newSetup(t, redistest.Shared(t), up.URL)
		p := startAsyncgw(t, map[string]string{"ASYNCGW_REDIS_URL": srv.URL()}, "gateway", "--config", s.config)
		base := p.baseURL(t)
		if code, body, err := readyz(base); err != nil || code != http.StatusOK {
			t.Fatalf("/readyz: %d %v (%v), want 200", code, body, err)
		}

		srv.Kill()
		testutil.WaitForWhy(t, 15*time.Second, "/readyz to answer 503", func() (bool, string) {
			code, body, err := readyz(base)
			if err != nil || code != http.StatusServiceUnavailable {
				return false, fmt.Sprintf("%d %v (%v)", code, body, err)
			}
			reasons, _ := body["reasons"].([]any)
			for _, r := range reasons {
				if s, _ := r.(string); strings.Contains(s, "redis unreachable") {
					return body["status"] == "not ready", ""
				}
			}
			return false, fmt.Sprintf("503 without a redis reason: %v", body)
		})
		// Writes trip the Redis breaker, and /readyz says so.
		testutil.WaitForWhy(t, 15*time.Second, "/readyz to name the open breaker", func() (bool, string) {
			for range 6 {
				if resp, err := httpClient.Post(base+"/v1/work", "application/json", strings.NewReader(`{}`)); err == nil {
					resp.Body.Close()
				}
			}
			_, body, _ := readyz(base)
			reasons, _ := body["reasons"].([]any)
			for _, r := range reasons {
				if s, _ := r.(string); strings.Contains(s, "circuit breaker open") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("reasons %v", reasons)
		})

		srv.Restart(t)
		testutil.WaitForWhy(t, 15*time.Second, "/readyz to answer 200 again", func() (bool, string) {
			code, body, err := readyz(base)
			return err == nil && code == http.StatusOK, fmt.Sprintf("%d %v (%v)", code, body, err)
		})
		if p.exited() {
			t.Errorf("asyncgw exited while Redis was down")
		}
	})
}
