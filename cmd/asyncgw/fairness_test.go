package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// gatedUpstream holds every call until open is called, then answers each
// after delay; it records the tenant (the body's "t") of every call that
// started after the gate opened, in order, and when the first of each
// tenant started.
type gatedUpstream struct {
	*httptest.Server
	gate   chan struct{}
	delay  time.Duration
	opened time.Time

	mu      sync.Mutex
	held    int
	after   []string // tenants of the calls started after open, in order
	firstAt map[string]time.Time
}

func newGatedUpstream(t *testing.T, delay time.Duration) *gatedUpstream {
	t.Helper()
	u := &gatedUpstream{gate: make(chan struct{}), delay: delay, firstAt: map[string]time.Time{}}
	testDone := make(chan struct{})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			T string `json:"t"`
		}
		_ = json.Unmarshal(b, &body)
		u.mu.Lock()
		select {
		case <-u.gate:
			u.after = append(u.after, body.T)
			if _, ok := u.firstAt[body.T]; !ok {
				u.firstAt[body.T] = time.Now()
			}
			u.mu.Unlock()
		default:
			u.held++
			u.mu.Unlock()
			select {
			case <-u.gate:
			case <-r.Context().Done():
				return
			case <-testDone:
				return
			}
		}
		time.Sleep(u.delay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	t.Cleanup(func() { close(testDone) })
	return u
}

// open lets the held calls go and every later call through.
func (u *gatedUpstream) open() {
	u.mu.Lock()
	u.opened = time.Now()
	close(u.gate)
	u.mu.Unlock()
}

// heldCalls is how many calls wait at the gate.
func (u *gatedUpstream) heldCalls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.held
}

// calls returns the tenants of the calls started since the gate opened,
// in order, and how long after it opened tenant's first call started
// (-1 when it has none yet).
func (u *gatedUpstream) calls(tenant string) ([]string, time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	wait := time.Duration(-1)
	if at, ok := u.firstAt[tenant]; ok {
		wait = at.Sub(u.opened)
	}
	return append([]string(nil), u.after...), wait
}

// fairnessSetup is a gateway and two worker processes (2 shards, 2 jobs
// at a time each) with two tenants, a and b, in front of up.
func fairnessSetup(t *testing.T, up string, fair bool) (base string) {
	t.Helper()
	digest := func(key string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(key))) }
	queue := redistest.Queue(t, "default")
	config := writeFile(t, "asyncgw.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
redis:
  url: %s
  prefix: %s
  shards: 2
queues: {%s: 1}
fairness:
  enabled: %t
worker:
  concurrency: 2
  shutdown_timeout: 1s
gateway:
  shutdown_timeout: 5s
  drain_delay: 0s
auth:
  enabled: true
  tenants:
    - name: a
      keys: [{sha256: %q}]
    - name: b
      keys: [{sha256: %q}]
routes:
  - name: work
    path: /v1/work
    upstream: %s
    queue: %s
    timeout: 60s
    max_attempts: 1
`, redistest.Shared(t).URL(), redistest.Prefix(t), queue, fair, digest("key-a"), digest("key-b"), up, queue))
	gw := startAsyncgw(t, nil, "gateway", "--config", config)
	base = gw.baseURL(t)
	for range 2 {
		wk := startAsyncgw(t, nil, "worker", "--config", config)
		wk.waitLog(t, "workers started", 30*time.Second)
	}
	return base
}

// submitBacklog has tenant submit n jobs to base's /v1/work, 16 at a time.
func submitBacklog(t *testing.T, base, tenant string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/work", strings.NewReader(fmt.Sprintf(`{"t":%q,"n":%d}`, tenant, i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer key-"+tenant)
				acceptedID(t, req)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestFairnessAcrossTenants: tenant a has a backlog on a queue whose
// upstream is slow (its calls held, so that the backlog builds), served by
// two worker processes; tenant b then submits jobs to the same queue.
// Once the upstream answers, b's first job starts within a second and
// among the very first, and while both have backlogs the workers take
// their jobs in turn: about half of the calls are b's. With fairness off,
// the same run puts every one of b's jobs behind a's whole backlog.
func TestFairnessAcrossTenants(t *testing.T) {
	t.Parallel()
	const workers, concurrency = 2, 2
	for _, tc := range []struct {
		name        string
		fair        bool
		backlog, bs int
	}{
		{"fair", true, 1500, 300},
		{"fifo", false, 300, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newGatedUpstream(t, 20*time.Millisecond)
			base := fairnessSetup(t, up.URL+"/work", tc.fair)
			submitBacklog(t, base, "a", tc.backlog)
			// Every worker slot holds one of a's calls at the gate; the
			// rest of a's jobs wait on the queue.
			testutil.WaitFor(t, 30*time.Second, "every worker slot busy", func() bool { return up.heldCalls() == workers*concurrency })
			submitBacklog(t, base, "b", tc.bs)
			up.open()

			// The first calls after the gate opens, as many as b has jobs.
			var calls []string
			var bWait time.Duration
			testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("%d calls after the gate opened", tc.bs), func() bool {
				calls, bWait = up.calls("b")
				return len(calls) >= tc.bs
			})
			calls = calls[:tc.bs]
			firstB, bs := -1, 0
			for i, tenant := range calls {
				if tenant == "b" {
					bs++
					if firstB < 0 {
						firstB = i
					}
				}
			}
			t.Logf("b's first call: %d calls and %v after the gate opened; b has %d of the first %d calls", firstB, bWait, bs, tc.bs)
			if !tc.fair {
				// Behind a's backlog: none of b's jobs among the first.
				if bs != 0 {
					t.Errorf("fairness off: b has %d of the first %d calls, want none (a's %d jobs were accepted first)", bs, tc.bs, tc.backlog)
				}
				return
			}
			// b's first job is taken with the first takes: at most a
			// batch per worker loop and shard of a's ahead of it. (Its
			// time, logged above, follows from that and the machine's
			// load; the bench measures the 1s target behind 20,000 jobs.)
			if firstB < 0 || firstB > 40 {
				t.Errorf("b's first call is call %d after the gate opened, want among the first 40 (a's backlog: %d)", firstB, tc.backlog)
			}
			// In turn: half of the first calls are b's, less the start.
			if bs < tc.bs*2/5 {
				t.Errorf("b has %d of the first %d calls, want at least %d (tenants in turn)", bs, tc.bs, tc.bs*2/5)
			}
		})
	}
}
