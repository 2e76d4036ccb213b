package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// sentinelConfig writes a configuration for the Sentinel deployment d with
// one route ("work", POST /v1/work) to upstream.
func sentinelConfig(t *testing.T, d *redistest.Sentinel, upstream string, extra string) string {
	t.Helper()
	addrs, _ := json.Marshal(d.SentinelAddrs())
	queue := redistest.Queue(t, "default")
	return writeFile(t, "asyncgw.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
redis:
  sentinel: {master_name: %s, addrs: %s}
  prefix: %s
%squeues: {%s: 1}
worker:
  concurrency: 8
  poll_interval: 50ms
gateway:
  drain_delay: 0s
routes:
  - name: work
    path: /v1/work
    upstream: %s
    queue: %s
    max_attempts: 5
    backoff: {base: 100ms, max: 1s}
`, d.MasterName(), addrs, redistest.Prefix(t), extra, queue, upstream, queue))
}

// ledger is what a client under load saw: every 202 and when its request
// was sent, and how many answers of each status.
type ledger struct {
	mu       sync.Mutex
	accepted []accepted202
	codes    map[int]int
}

type accepted202 struct {
	id   string
	sent time.Time
}

// load posts a job with a fresh Idempotency-Key every 25ms until ctx ends.
func (l *ledger) load(ctx context.Context, base string) {
	client := &http.Client{Timeout: 5 * time.Second}
	for n := 0; ctx.Err() == nil; n++ {
		sent := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/work", strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("load-%d", n))
		code := 0
		if resp, err := client.Do(req); err == nil {
			code = resp.StatusCode
			var body struct{ ID string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if code == http.StatusAccepted {
				l.mu.Lock()
				l.accepted = append(l.accepted, accepted202{id: body.ID, sent: sent})
				l.mu.Unlock()
			}
		}
		l.mu.Lock()
		l.codes[code]++
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// acceptedAfter returns when the first request sent after since was
// answered 202 (its send time), or false.
func (l *ledger) acceptedAfter(since time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.accepted {
		if a.sent.After(since) {
			return a.sent, true
		}
	}
	return time.Time{}, false
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// readyLog polls /readyz every 100ms and keeps what it answered.
type readyLog struct {
	mu   sync.Mutex
	seen []readySample
}

type readySample struct {
	at      time.Time
	code    int
	reasons string
}

func (r *readyLog) poll(ctx context.Context, base string) {
	for ctx.Err() == nil {
		code, body, _ := readyz(base)
		r.mu.Lock()
		r.seen = append(r.seen, readySample{at: time.Now(), code: code, reasons: fmt.Sprint(body["reasons"])})
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notReadySince returns the answers other than 200 given after since.
func (r *readyLog) notReadySince(since time.Time) []readySample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []readySample
	for _, s := range r.seen {
		if s.at.After(since) && s.code != http.StatusOK {
			out = append(out, s)
		}
	}
	return out
}

// TestSentinelFailoverUnderLoad runs an all-in-one asyncgw (the real
// binary) on a Sentinel deployment with redis.sentinel, under a steady
// load of accepts with unique Idempotency-Keys, through a SENTINEL
// FAILOVER and then a kill -9 of the master. After each, accepts resume by
// themselves (after the kill within 6s); every job accepted before the
// failover started and every job accepted around the kill exists and
// succeeds; /readyz says not ready while the master is gone and ready
// afterwards.
//
// Jobs accepted by the old master during a SENTINEL FAILOVER, between the
// replica's promotion and the switch, are lost as long as replication is
// asynchronous: that window is closed by redis.min_replicas_ack (Redis
// WAIT), not by the connection; the test logs how many.
func TestSentinelFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	d := redistest.StartSentinel(t, redistest.WithAOF(), redistest.WithArgs("--min-replicas-to-write", "1"))
	var callsMu sync.Mutex
	calls := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		callsMu.Lock()
		calls[r.Header.Get("Idempotency-Key")]++
		callsMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	path := sentinelConfig(t, d, up.URL, "  require_durable: true\n  min_replicas_ack: 1\n")
	p := startAsyncgw(t, nil, "--config", path)
	base := p.baseURL(t)
	if code, body, err := readyz(base); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz: %d %v (%v), want 200", code, body, err)
	}

	// A live stream of the tenant's events, opened once: it must carry
	// the ends of jobs accepted after the failovers without reconnecting.
	ended := map[string]bool{}
	var endedMu sync.Mutex
	events := openEvents(t, base+"/v1/events")
	go func() {
		for ev := range events.events {
			var j struct{ ID, State string }
			if json.Unmarshal(ev.Data, &j) == nil && j.State == "succeeded" {
				endedMu.Lock()
				ended[j.ID] = true
				endedMu.Unlock()
			}
		}
	}()

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	l := &ledger{codes: map[int]int{}}
	rl := &readyLog{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.load(ctx, base) }()
	go func() { defer wg.Done(); rl.poll(ctx, base) }()
	waitAccepts := func(n int) {
		t.Helper()
		want := l.count() + n
		testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%d more accepts", n), func() bool { return l.count() >= want })
	}
	waitAccepts(10)

	// SENTINEL FAILOVER: accepts carry on on the new master.
	failoverStart := time.Now()
	old := d.Failover(t)
	next := d.WaitNewMaster(t, old, 30*time.Second)
	switched := time.Now()
	testutil.WaitForWhy(t, 15*time.Second, "accepts after the failover", func() (bool, string) {
		_, ok := l.acceptedAfter(switched)
		return ok, "none yet"
	})
	p.waitLog(t, "redis master switched", 10*time.Second)
	if !strings.Contains(p.stderr.String(), next.Addr()) {
		t.Errorf("the log does not name the new master %s", next.Addr())
	}
	d.Settle(t)
	waitAccepts(10)

	// kill -9 of the master: accepts pause, then resume within 6s. The
	// clock starts once the master is dead: a request sent before could
	// still be accepted by it, and would say nothing of the failover.
	killed := d.KillMaster(t)
	killedAt := time.Now()
	d.WaitNewMaster(t, killed.Addr(), 30*time.Second)
	var resumed time.Time
	testutil.WaitForWhy(t, 15*time.Second, "accepts after the kill", func() (bool, string) {
		at, ok := l.acceptedAfter(killedAt)
		resumed = at
		return ok, "none yet"
	})
	t.Logf("accepts resumed %v after the kill -9 of the master", resumed.Sub(killedAt).Round(time.Millisecond))
	if took := resumed.Sub(killedAt); took > 6*time.Second {
		t.Errorf("accepts resumed %v after the kill, want within 6s", took)
	}
	if nr := rl.notReadySince(killedAt); len(nr) == 0 {
		t.Errorf("/readyz never said not ready while the master was down")
	} else if !strings.Contains(nr[0].reasons, "redis") {
		t.Errorf("/readyz said %d %s, want a redis reason", nr[0].code, nr[0].reasons)
	}
	waitAccepts(10)
	stop()
	wg.Wait()

	// The ledger: every job accepted outside the failover's window exists
	// and succeeds.
	l.mu.Lock()
	accepted := append([]accepted202(nil), l.accepted...)
	codes := fmt.Sprint(l.codes)
	l.mu.Unlock()
	window := func(a accepted202) bool {
		return a.sent.After(failoverStart) && a.sent.Before(switched.Add(time.Second))
	}
	lostInWindow, inWindow := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for _, a := range accepted {
		if window(a) {
			inWindow++
		}
		for {
			j, err := fetchJob(base, a.id)
			if err == nil && j.State.Terminal() {
				if j.State != "succeeded" {
					t.Errorf("job %s ended %s", a.id, j.State)
				}
				break
			}
			if err != nil && strings.Contains(err.Error(), "404") {
				if window(a) {
					lostInWindow++
				}
				t.Errorf("job %s, accepted %v after the failover started, is lost", a.id, a.sent.Sub(failoverStart).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s did not end within 60s: %+v (%v)", a.id, j, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	callsMu.Lock()
	dups := 0
	for _, n := range calls {
		if n > 1 {
			dups++
		}
	}
	callsMu.Unlock()
	t.Logf("%d accepted (%d during the failover's window, %d of them lost); %d jobs called upstream more than once; answers by status: %s",
		len(accepted), inWindow, lostInWindow, dups, codes)
	if code, body, err := readyz(base); err != nil || code != http.StatusOK {
		t.Errorf("/readyz at the end: %d %v (%v), want 200", code, body, err)
	}
	// The stream opened before both failovers saw the jobs accepted after
	// the kill end.
	var after []string
	for _, a := range accepted {
		if a.sent.After(resumed) {
			after = append(after, a.id)
		}
	}
	testutil.WaitForWhy(t, 15*time.Second, "the live stream to carry the ends of the jobs accepted after the kill", func() (bool, string) {
		endedMu.Lock()
		defer endedMu.Unlock()
		missing := 0
		for _, id := range after {
			if !ended[id] {
				missing++
			}
		}
		return missing == 0 && len(after) > 0, fmt.Sprintf("%d of %d not seen", missing, len(after))
	})
}

// TestSentinelMisconfigured points asyncgw at the wrong nodes of a
// Sentinel deployment, and checks every node at start.
func TestSentinelMisconfigured(t *testing.T) {
	t.Parallel()
	// Replica 1 has no AOF: the durability check must name it.
	d := redistest.StartSentinel(t, redistest.WithAOF(), redistest.OnReplica(1, redistest.WithArgs("--appendonly", "no")))
	badReplica := d.Replicas(t)[1]

	t.Run("sentinel as redis.url", func(t *testing.T) {
		t.Parallel()
		sentinel := d.SentinelAddrs()[0]
		path := writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:0\nredis:\n  url: redis://"+sentinel+"/0\n")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, asyncgwBin, "--config", path)
		cmd.Env = childEnv(nil)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("asyncgw on a sentinel: %v, want exit code 1; stderr:\n%s", cmd.ProcessState, &stderr)
		}
		want := "asyncgw: redis.url: " + sentinel + " is a Redis Sentinel, not a Redis server; use redis.sentinel {master_name, addrs} to reach the master it watches\n"
		if stderr.String() != want {
			t.Errorf("stderr:\n%q\nwant:\n%q", &stderr, want)
		}
	})

	t.Run("replica as redis.url", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:0\nredis:\n  url: "+d.Replicas(t)[0].URL()+"\n  prefix: "+redistest.Prefix(t)+"\n")
		p := startAsyncgw(t, nil, "gateway", "--config", path)
		base := p.baseURL(t)
		code, body, err := readyz(base)
		reasons, _ := body["reasons"].([]any)
		if err != nil || code != http.StatusServiceUnavailable || len(reasons) == 0 || reasons[0] != "redis is not a master (role slave)" {
			t.Errorf("/readyz: %d %v (%v), want 503 with the reason \"redis is not a master (role slave)\"", code, body, err)
		}
		p.waitLog(t, "redis is not a master", 10*time.Second)
		p.waitLog(t, `msg="not ready" reasons="redis is not a master (role slave)"`, 10*time.Second)
		// What the AsyncgwRedisNotMaster alert reads.
		if m := get(t, base+"/metrics"); !strings.Contains(m, "\nasyncgw_redis_not_master 1\n") {
			t.Errorf("/metrics does not say asyncgw_redis_not_master 1")
		}
	})

	t.Run("durability required", func(t *testing.T) {
		t.Parallel()
		path := sentinelConfig(t, d, "http://127.0.0.1:9/", "  require_durable: true\n")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"--config", path}, env(nil), &stdout, &stderr)
		want := "redis.require_durable: Redis at " + badReplica.Addr() + " (replica) fails the durability check: " + problemNoAOF
		if err == nil || err.Error() != want {
			t.Errorf("run: %v\nwant: %s", err, want)
		}
	})

	t.Run("durability warned", func(t *testing.T) {
		t.Parallel()
		path := sentinelConfig(t, d, "http://127.0.0.1:9/", "")
		r := startRun(t, env(nil), "--config", path)
		out := r.waitListening(t)
		re := regexp.MustCompile(`level=WARN msg="REDIS MAY NOT BE DURABLE: [^"]*" redis_node="([^"]*)" redis_durability="([^"]*)"`)
		ms := re.FindAllStringSubmatch(out, -1)
		if len(ms) != 1 || ms[0][1] != badReplica.Addr()+" (replica)" || ms[0][2] != problemNoAOF {
			t.Errorf("durability warnings %q, want one for %s (replica)", ms, badReplica.Addr())
		}
		r.stop(t)
	})
}
