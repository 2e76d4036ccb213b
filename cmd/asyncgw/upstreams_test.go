package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	ups "github.com/asyncgw/asyncgw/upstream"
)

// limitedUpstream records the calls in flight and when each started. answer
// decides each call's answer (nil: 200 at once); it may block.
type limitedUpstream struct {
	*httptest.Server
	answer func(n int, w http.ResponseWriter, r *http.Request)

	mu       sync.Mutex
	inFlight int
	maxIn    int
	starts   []time.Time
	jobs     []string // X-Asyncgw-Job-Id of each call
}

func newLimitedUpstream(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *limitedUpstream {
	t.Helper()
	u := &limitedUpstream{answer: answer}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.inFlight++
		u.maxIn = max(u.maxIn, u.inFlight)
		u.starts = append(u.starts, time.Now())
		u.jobs = append(u.jobs, r.Header.Get("X-Asyncgw-Job-Id"))
		n := len(u.starts)
		u.mu.Unlock()
		defer func() {
			u.mu.Lock()
			u.inFlight--
			u.mu.Unlock()
		}()
		if u.answer != nil {
			u.answer(n, w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	return u
}

// host is the upstream's host:port, as a limits key.
func (u *limitedUpstream) host() string {
	p, _ := url.Parse(u.URL)
	return p.Host
}

func (u *limitedUpstream) calls() (n, maxIn int, starts []time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.starts), u.maxIn, slices.Clone(u.starts)
}

// limitsSetup writes a configuration with two routes, work (to limited)
// and other (to free), the given upstreams section, and workers of
// concurrency 8.
func limitsSetup(t *testing.T, limited, free string, upstreams string) *setup {
	t.Helper()
	srv := redistest.Shared(t)
	s := &setup{prefix: redistest.Prefix(t), queue: redistest.Queue(t, "default"), redis: srv}
	s.config = writeFile(t, "asyncgw.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
redis:
  url: %s
  prefix: %s
queues: {%s: 1}
worker:
  concurrency: 8
  shutdown_timeout: 2s
gateway:
  shutdown_timeout: 5s
  drain_delay: 0s
log:
  level: debug
routes:
  - {name: work, path: /v1/work, upstream: %s, queue: %s, timeout: 30s, max_attempts: 3, backoff: {base: 100ms, max: 1s}}
  - {name: other, path: /v1/other, upstream: %s, queue: %s, timeout: 30s, max_attempts: 3}
upstreams:
%s`, srv.URL(), s.prefix, s.queue, limited, s.queue, free, s.queue, upstreams))
	return s
}

// startTwoWorkers starts an all-in-one process and a worker process on s:
// two worker processes behind one gateway. It returns the gateway's URL.
func startTwoWorkers(t *testing.T, s *setup) (base string, all, wk *proc) {
	t.Helper()
	all = startAsyncgw(t, nil, "--config", s.config)
	wk = startAsyncgw(t, nil, "worker", "--config", s.config)
	base = all.baseURL(t)
	all.waitLog(t, "workers started", 30*time.Second)
	wk.waitLog(t, "workers started", 30*time.Second)
	return base, all, wk
}

func postN(t *testing.T, url string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = postJob(t, url, fmt.Sprintf(`{"n":%d}`, i))
	}
	return ids
}

// adminUpstreams reads GET /admin/v1/upstreams.
func adminUpstreams(t *testing.T, base string) []ups.Usage {
	t.Helper()
	resp, err := httpClient.Get(base + "/admin/v1/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Upstreams []ups.Usage `json:"upstreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/v1/upstreams: %s, %v", resp.Status, err)
	}
	return body.Upstreams
}

// TestUpstreamConcurrencyAcrossWorkers: two worker processes of 8 slots
// each call an upstream limited to 3 calls in flight. There are never
// more than 3, the jobs held back say why and use no attempt, the admin
// API shows the use, and jobs for another host run on meanwhile.
func TestUpstreamConcurrencyAcrossWorkers(t *testing.T) {
	t.Parallel()
	// The limited host's calls wait for the gate until the other host's
	// jobs have ended, so that a backlog is there meanwhile however fast
	// it drains.
	gate := make(chan struct{})
	var opened time.Time
	var openOnce sync.Once
	open := func() { openOnce.Do(func() { opened = time.Now(); close(gate) }) }
	slow := newLimitedUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		time.Sleep(150 * time.Millisecond) // the upstream's work
		_, _ = io.WriteString(w, `{}`)
	})
	t.Cleanup(open)
	free := newLimitedUpstream(t, nil)
	s := limitsSetup(t, slow.URL+"/w", free.URL+"/o", fmt.Sprintf("  %q: {concurrency: 3}\n", slow.host()))
	base, all, wk := startTwoWorkers(t, s)

	ids := postN(t, base+"/v1/work", 40)
	// A job held back says why, with when it tries again, and has used
	// no attempt.
	want := fmt.Sprintf("waiting for upstream %s: concurrency 3 in use", slow.host())
	testutil.WaitFor(t, 30*time.Second, "a job held back by the limit", func() bool {
		for _, id := range ids {
			j, err := fetchJob(base, id)
			if err == nil && strings.Contains(j.Error, want) && j.NextAttemptAt != nil && j.State == jobs.StateRetrying && j.Attempt == 0 {
				return true
			}
		}
		return false
	})
	u := adminUpstreams(t, base)
	if len(u) != 1 || u[0].Host != slow.host() || u[0].Limit.Concurrency != 3 || u[0].InUse > 3 {
		t.Errorf("GET /admin/v1/upstreams: %+v", u)
	}
	// asyncgw queues shows the host, its limit and use.
	q := startAsyncgw(t, nil, "queues", "--config", s.config)
	if code := q.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("asyncgw queues exited %d: %s", code, q.stderr.String())
	}
	out := q.stdout.String()
	t.Logf("asyncgw queues:\n%s", out)
	if !strings.Contains(out, "UPSTREAM") || !strings.Contains(out, slow.host()) {
		t.Errorf("asyncgw queues shows no upstream limits:\n%s", out)
	}
	// The other host's jobs run while the limited one has a backlog.
	others := postN(t, base+"/v1/other", 10)
	waitEnded(t, base, s, others, 30*time.Second, all, wk)
	open()
	ended := waitEnded(t, base, s, ids, 90*time.Second, all, wk)
	for id, j := range ended {
		if j.State != jobs.StateSucceeded || j.Attempt != 1 {
			t.Errorf("job %s: %s after %d attempts, want succeeded after 1", id, j.State, j.Attempt)
		}
	}
	n, maxIn, starts := slow.calls()
	// The pace once the gate opened (the calls waiting at it are in flight
	// then), for the record: a slot given back is taken again at once
	// when a held job is brought forward.
	after := slices.DeleteFunc(starts, func(at time.Time) bool { return at.Before(opened) })
	slices.SortFunc(after, func(a, b time.Time) int { return a.Compare(b) })
	if len(after) > 1 {
		// From the gate's opening to the end of the last call, all of the
		// calls (the 3 at the gate ended 150ms after it opened).
		took := after[len(after)-1].Add(150 * time.Millisecond).Sub(opened)
		t.Logf("%d calls, at most %d in flight; all ended %v after the gate opened: %.1f calls/s (the limit allows %d/s)",
			n, maxIn, took.Round(time.Millisecond), float64(n)/took.Seconds(), 3*1000/150)
	}
	if maxIn > 3 {
		t.Errorf("%d calls in flight at once, want at most 3", maxIn)
	}
	if maxIn < 2 {
		t.Errorf("at most %d call in flight: the limit was not used", maxIn)
	}
	// Both worker processes held jobs back, and slots given back were
	// taken by held jobs brought forward, not left empty until the next
	// second.
	forward := 0
	for _, p := range []*proc{all, wk} {
		if !strings.Contains(p.stderr.String(), "job held back") {
			t.Errorf("a worker process never held a job back")
		}
		forward += strings.Count(p.stderr.String(), "held job brought forward to a freed upstream slot")
	}
	t.Logf("%d held jobs brought forward to a freed slot", forward)
	if forward == 0 {
		t.Errorf("no held job was brought forward to a freed slot")
	}
	if u := adminUpstreams(t, base); u[0].InUse != 0 {
		t.Errorf("slots in use after every job ended: %+v", u[0])
	}
}

// TestUpstreamRateAcrossWorkers: two worker processes call an upstream
// limited to 4 calls per second with a burst of 2: within any second
// there are at most rate + burst calls.
func TestUpstreamRateAcrossWorkers(t *testing.T) {
	t.Parallel()
	const rate, burst = 4, 2
	up := newLimitedUpstream(t, nil)
	free := newLimitedUpstream(t, nil)
	s := limitsSetup(t, up.URL+"/w", free.URL+"/o", fmt.Sprintf("  %q: {rate: %d, burst: %d}\n", up.host(), rate, burst))
	base, all, wk := startTwoWorkers(t, s)
	ids := postN(t, base+"/v1/work", 20)
	ended := waitEnded(t, base, s, ids, 60*time.Second, all, wk)
	for id, j := range ended {
		if j.State != jobs.StateSucceeded || j.Attempt != 1 {
			t.Errorf("job %s: %s after %d attempts, want succeeded after 1", id, j.State, j.Attempt)
		}
	}
	_, _, starts := up.calls()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i, s := range starts {
		n := 0
		for _, x := range starts[i:] {
			if x.Sub(s) < time.Second {
				n++
			}
		}
		most = max(most, n)
	}
	took := starts[len(starts)-1].Sub(starts[0])
	var offs []string
	for _, x := range starts {
		offs = append(offs, x.Sub(starts[0]).Round(10*time.Millisecond).String())
	}
	t.Logf("calls at %s", strings.Join(offs, " "))
	t.Logf("%d calls over %v, at most %d within a second", len(starts), took.Round(time.Millisecond), most)
	if most > rate+burst {
		t.Errorf("%d calls within one second, want at most rate + burst = %d", most, rate+burst)
	}
	// 20 calls at 4/s after a burst of 2 take at least 4.5s.
	if took < 4*time.Second {
		t.Errorf("20 calls took %v: the rate was not kept", took)
	}
}

// TestUpstreamRetryAfterPausesEveryCall: the upstream answers one call
// 429 with Retry-After: 2. No call reaches it, from either worker
// process, for those 2 seconds; the jobs waiting meanwhile say why, and
// all succeed after.
func TestUpstreamRetryAfterPausesEveryCall(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var refusedAt time.Time
	up := newLimitedUpstream(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			mu.Lock()
			refusedAt = time.Now()
			mu.Unlock()
			return
		}
		_, _ = io.WriteString(w, `{}`)
	})
	free := newLimitedUpstream(t, nil)
	s := limitsSetup(t, up.URL+"/w", free.URL+"/o", fmt.Sprintf("  %q: {concurrency: 10}\n", up.host()))
	base, all, wk := startTwoWorkers(t, s)
	first := postJob(t, base+"/v1/work", `{"n":0}`)
	// The pause starts when a worker has the answer, a little after the
	// upstream sent it: a call begun in between is not paused. The jobs
	// below are posted once the pause is stored.
	var pausedUntil time.Time
	testutil.WaitFor(t, 30*time.Second, "the pause stored", func() bool {
		for _, u := range adminUpstreams(t, base) {
			if u.Host == up.host() && u.PausedUntil != nil {
				pausedUntil = *u.PausedUntil
				return true
			}
		}
		return false
	})
	mu.Lock()
	if d := pausedUntil.Sub(refusedAt); d < 1950*time.Millisecond {
		t.Errorf("the pause ends %v after the 429 with Retry-After: 2", d.Round(time.Millisecond))
	}
	mu.Unlock()
	ids := postN(t, base+"/v1/work", 8)
	testutil.WaitFor(t, 30*time.Second, "a job held back by the pause", func() bool {
		for _, id := range ids {
			if j, err := fetchJob(base, id); err == nil && strings.Contains(j.Error, "paused by its Retry-After") && j.Attempt == 0 {
				return true
			}
		}
		return false
	})
	ended := waitEnded(t, base, s, append(ids, first), 60*time.Second, all, wk)
	for id, j := range ended {
		if j.State != jobs.StateSucceeded {
			t.Errorf("job %s: %s", id, j.State)
		}
		if id != first && j.Attempt != 1 {
			t.Errorf("job %s held by the pause used %d attempts, want 1", id, j.Attempt)
		}
	}
	_, _, starts := up.calls()
	mu.Lock()
	defer mu.Unlock()
	for i, at := range starts[1:] {
		// Every call but the 429 is of a job accepted once the pause was
		// stored, or the first job's retry.
		if at.Before(pausedUntil) {
			t.Errorf("call %d came %v before the pause ended (%v after the 429 with Retry-After: 2)",
				i+2, pausedUntil.Sub(at).Round(time.Millisecond), at.Sub(refusedAt).Round(time.Millisecond))
		}
	}
}

// TestUpstreamSlotsOfAKilledWorker: a worker process killed with SIGKILL
// while it holds every slot of an upstream frees them within the
// documented bound (one lease, 15s): the other worker's held-back jobs
// then call the upstream.
func TestUpstreamSlotsOfAKilledWorker(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := newLimitedUpstream(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			// The first two calls (the worker to kill) hang.
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		_, _ = io.WriteString(w, `{}`)
	})
	t.Cleanup(func() { close(release) })
	free := newLimitedUpstream(t, nil)
	s := limitsSetup(t, up.URL+"/w", free.URL+"/o", fmt.Sprintf("  %q: {concurrency: 2}\n", up.host()))
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	victim := startAsyncgw(t, nil, "worker", "--config", s.config)
	base := gw.baseURL(t)
	victim.waitLog(t, "workers started", 30*time.Second)
	postN(t, base+"/v1/work", 2)
	testutil.WaitFor(t, 30*time.Second, "the victim to hold both slots", func() bool {
		_, in, _ := up.calls()
		return in == 2
	})
	survivor := startAsyncgw(t, nil, "worker", "--config", s.config)
	survivor.waitLog(t, "workers started", 30*time.Second)
	ids := postN(t, base+"/v1/work", 3)
	survivor.waitLog(t, "job held back", 30*time.Second)
	if n, _, _ := up.calls(); n != 2 {
		t.Fatalf("%d calls while both slots are held, want 2", n)
	}
	victim.kill(t)
	killed := time.Now()
	testutil.WaitFor(t, 30*time.Second, "a call from the survivor", func() bool {
		n, _, _ := up.calls()
		return n >= 3
	})
	took := time.Since(killed)
	t.Logf("the killed worker's slots were taken again %v after the kill", took.Round(time.Millisecond))
	// One lease, plus the held jobs' return (asynq's retry times are
	// whole seconds, its forwarder looks every 100ms).
	if bound := ups.DefaultLease + 3*time.Second; took > bound {
		t.Errorf("the slots were free %v after the kill, beyond %v", took, bound)
	}
	ended := waitEnded(t, base, s, ids, 60*time.Second, gw, survivor)
	for id, j := range ended {
		if j.State != jobs.StateSucceeded || j.Attempt != 1 {
			t.Errorf("job %s: %s after %d attempts, want succeeded after 1", id, j.State, j.Attempt)
		}
	}
}
