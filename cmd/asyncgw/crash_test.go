package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// Crash-safety tests: real asyncgw processes and real redis-server
// processes, killed or stopped while jobs are accepted or running. Each
// checks what a 202 promises: the job is stored, runs, ends exactly once,
// and a crash or a shutdown does not use up one of its attempts.

// startHeld starts a gateway and a worker process on s, submits n jobs and
// waits until the upstream holds the first call of each, every job running
// its attempt 1. It returns the worker process, the gateway's URL and the
// job IDs.
func startHeld(t *testing.T, s *setup, up *jobUpstream, n int) (wk *proc, base string, ids []string) {
	t.Helper()
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	wk = startAsyncgw(t, nil, "worker", "--config", s.config)
	base = gw.baseURL(t)
	wk.waitLog(t, "workers started", 30*time.Second)

	ids = make([]string, n)
	for i := range ids {
		ids[i] = postJob(t, base+"/v1/work", fmt.Sprintf(`{"sku":"A-%d"}`, i))
	}
	testutil.WaitForWhy(t, 30*time.Second, "the upstream to hold every job's call", func() (bool, string) {
		h := up.held()
		return h == n, fmt.Sprintf("%d of %d held", h, n)
	})
	for _, id := range ids {
		if j := getJob(t, base, id); j.State != jobs.StateRunning || j.Attempt != 1 {
			t.Fatalf("job %s: %s with attempt %d while the upstream holds its call, want running, 1", id, j.State, j.Attempt)
		}
	}
	return wk, base, ids
}

// jobUpstream is an upstream that keeps count of its calls per job (by
// X-Asyncgw-Job-Id), for any number of calls. hold decides, for the n-th
// call of a job (from 1), whether to hold the call until the caller goes
// away (or the test ends) instead of answering 200 at once.
type jobUpstream struct {
	*httptest.Server
	hold func(id string, n int) bool

	mu      sync.Mutex
	calls   map[string][]string // job ID → X-Asyncgw-Attempt of each call
	holding int                 // calls held right now
}

func newJobUpstream(t *testing.T, hold func(id string, n int) bool) *jobUpstream {
	t.Helper()
	u := &jobUpstream{hold: hold, calls: map[string][]string{}}
	testDone := make(chan struct{})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server watch the
		// connection, so that r.Context() ends when the caller goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("X-Asyncgw-Job-Id")
		u.mu.Lock()
		u.calls[id] = append(u.calls[id], r.Header.Get("X-Asyncgw-Attempt"))
		n := len(u.calls[id])
		held := u.hold != nil && u.hold(id, n)
		if held {
			u.holding++
		}
		u.mu.Unlock()
		if held {
			select {
			case <-r.Context().Done():
			case <-testDone:
			}
			u.mu.Lock()
			u.holding--
			u.mu.Unlock()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	t.Cleanup(func() { close(testDone) }) // runs first: Close waits for held calls
	return u
}

// held is how many calls the upstream holds right now.
func (u *jobUpstream) held() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.holding
}

// attemptsOf lists the X-Asyncgw-Attempt header of every call for job id.
func (u *jobUpstream) attemptsOf(id string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.calls[id])
}

// jobIDs lists the jobs the upstream was called for.
func (u *jobUpstream) jobIDs() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for id := range u.calls {
		out = append(out, id)
	}
	return out
}

// fetchJob reads GET /v1/jobs/{id}, reporting rather than failing.
func fetchJob(base, id string) (jobs.Job, error) {
	var j jobs.Job
	resp, err := httpClient.Get(base + "/v1/jobs/" + id)
	if err != nil {
		return j, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return j, fmt.Errorf("GET /v1/jobs/%s: %s: %s", id, resp.Status, b)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("GET /v1/jobs/%s: %w; body: %s", id, err, b)
	}
	return j, nil
}

// waitEnded polls the jobs until every one is in a terminal state and
// returns them by ID. A job that cannot be read (the gateway answers 503
// while Redis is away) is polled again. On a timeout it logs what asynq and
// the logs of procs say about each job still live.
func waitEnded(t *testing.T, base string, s *setup, ids []string, timeout time.Duration, procs ...*proc) map[string]jobs.Job {
	t.Helper()
	ended := map[string]jobs.Job{}
	deadline := time.Now().Add(timeout)
	for {
		var live []string
		for _, id := range ids {
			if _, ok := ended[id]; ok {
				continue
			}
			j, err := fetchJob(base, id)
			if err == nil && j.State.Terminal() {
				ended[id] = j
				continue
			}
			live = append(live, id)
		}
		if len(live) == 0 {
			return ended
		}
		if time.Now().After(deadline) {
			insp := asynq.NewInspectorFromRedisClient(s.redis.Client(t))
			for _, id := range live[:min(len(live), 10)] {
				j, err := fetchJob(base, id)
				ti, terr := insp.GetTaskInfo(oneShard(s.queue), id)
				task := fmt.Sprintf("%v", terr)
				if terr == nil {
					task = fmt.Sprintf("%s retried %d last_err %q next %v", ti.State, ti.Retried, ti.LastErr, ti.NextProcessAt)
				}
				t.Logf("live job %s: state %s attempt %d (%v); task: %s", id, j.State, j.Attempt, err, task)
				for _, p := range procs {
					for _, line := range strings.Split(p.stderr.String(), "\n") {
						if strings.Contains(line, id) {
							t.Logf("    %s", line)
						}
					}
				}
			}
			t.Fatalf("timed out after %v waiting for %d jobs to end: %d still live", timeout, len(ids), len(live))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSucceededOnce checks the job's event log: exactly one terminal
// event, the last one, and it is succeeded.
func checkSucceededOnce(t *testing.T, st *status.Store, id string) {
	t.Helper()
	evs, err := st.Events(context.Background(), "default", id, 0)
	if err != nil {
		t.Errorf("job %s: read events: %v", id, err)
		return
	}
	var all, terminal []string
	for _, ev := range evs {
		all = append(all, ev.Kind)
		if ev.Terminal() {
			terminal = append(terminal, ev.Kind)
		}
	}
	if len(terminal) != 1 || !evs[len(evs)-1].Terminal() || terminal[0] != string(jobs.StateSucceeded) {
		t.Errorf("job %s: events %q, want exactly one terminal event, succeeded, at the end", id, all)
	}
}

// checkRunOnceAfterStop checks a job that was running when its worker went
// away and ran again on a second worker: it succeeded, ended once, and the
// interrupted run did not use up an attempt (the upstream saw attempt 1
// twice: before the stop and after).
func checkRunOnceAfterStop(t *testing.T, st *status.Store, up *jobUpstream, j jobs.Job) {
	t.Helper()
	if j.State != jobs.StateSucceeded || j.Attempt != 1 || j.Result == nil || j.Result.Status != http.StatusOK || j.Error != "" {
		t.Errorf("job %s: state %s, attempt %d, result %+v, error %q; want succeeded, attempt 1, 200, no error",
			j.ID, j.State, j.Attempt, j.Result, j.Error)
	}
	if got := up.attemptsOf(j.ID); !slices.Equal(got, []string{"1", "1"}) {
		t.Errorf("job %s: upstream attempts %q, want [1 1]: one call before the stop, one after, and the interrupted run must not use up an attempt", j.ID, got)
	}
	checkSucceededOnce(t, st, j.ID)
}

// TestWorkerSIGTERMRequeues stops a worker process with SIGTERM while it
// runs many jobs against an upstream slower than the worker's shutdown
// timeout. The worker exits 0 soon after the timeout and puts the
// unfinished jobs back on their queue at once (not left leased for the
// recoverer); a second worker runs each of them once more, to success,
// without the interrupted run counting as an attempt.
func TestWorkerSIGTERMRequeues(t *testing.T) {
	t.Parallel()
	const n = 8
	const shutdownTimeout = 2 * time.Second
	var fast atomic.Bool // until set, the upstream never answers
	up := newJobUpstream(t, func(string, int) bool { return !fast.Load() })
	s := newSizedSetup(t, redistest.Shared(t), up.URL+"/orders", n, shutdownTimeout)
	wk, base, ids := startHeld(t, s, up, n)

	wk.signal(t, syscall.SIGTERM)
	stopped := time.Now()
	if code := wk.wait(t, shutdownTimeout+15*time.Second); code != 0 {
		t.Errorf("worker exit code %d after SIGTERM, want 0", code)
	}
	took := time.Since(stopped)
	t.Logf("the worker exited %v after SIGTERM (shutdown timeout %v)", took.Round(10*time.Millisecond), shutdownTimeout)
	if took > shutdownTimeout+10*time.Second {
		t.Errorf("the worker took %v to exit, far beyond its %v shutdown timeout", took, shutdownTimeout)
	}
	// The interrupted calls were cut, not left running.
	testutil.WaitForWhy(t, 10*time.Second, "the held upstream calls to be dropped", func() (bool, string) {
		h := up.held()
		return h == 0, fmt.Sprintf("%d still held", h)
	})

	// Every task is back on its queue, pending, none left leased to the
	// dead worker (that would wait up to 40s for the recoverer),
	// none retried (that would have used up an attempt) or lost.
	insp := asynq.NewInspectorFromRedisClient(s.redis.Client(t))
	qi, err := insp.GetQueueInfo(oneShard(s.queue))
	if err != nil {
		t.Fatalf("queue info: %v", err)
	}
	if qi.Pending != n || qi.Active != 0 || qi.Retry != 0 || qi.Archived != 0 {
		t.Errorf("after the shutdown the queue has %d pending, %d active, %d retry, %d archived; want %d pending only",
			qi.Pending, qi.Active, qi.Retry, qi.Archived, n)
	}
	for _, id := range ids {
		ti, err := insp.GetTaskInfo(oneShard(s.queue), id)
		if err != nil {
			t.Errorf("task %s: %v", id, err)
			continue
		}
		if ti.State != asynq.TaskStatePending || ti.Retried != 0 {
			t.Errorf("task %s: %s, retried %d; want pending, retried 0", id, ti.State, ti.Retried)
		}
	}

	fast.Store(true)
	wk2 := startAsyncgw(t, nil, "worker", "--config", s.config)
	wk2.waitLog(t, "workers started", 30*time.Second)
	ended := waitEnded(t, base, s, ids, 30*time.Second, wk, wk2)
	st := s.store(t)
	for _, id := range ids {
		checkRunOnceAfterStop(t, st, up, ended[id])
		wk2.waitLog(t, "job_id="+id, 10*time.Second)
	}
}

// accept is one POST to the gateway made by TestRedisKilledDuringAccepts.
type accept struct {
	start, end time.Time
	status     int // 0: no answer
	id         string
	err        error
	body       string
}

// TestRedisKilledDuringAccepts kills Redis (kill -9, AOF with appendfsync
// always) while clients keep sending writes to an asyncgw gateway, and
// starts it again on the same data two seconds later. While Redis is away
// every write is refused with 503, never accepted, and the gateway stays
// up; every write that got a 202, before or after the crash, is still there
// after it and runs to success, once, with attempt 1.
//
// The worker process starts only once Redis is back, so every job accepted
// before the crash is still waiting in Redis when it dies. A worker that
// runs jobs through the crash is not tested here: in asynq v0.26.0 a task
// whose end the worker could not write to Redis stays active until the
// lease recoverer takes it back, up to 40 s later (the syncer that should
// retry the write uses a context that is already canceled), which is too
// long for this test.
func TestRedisKilledDuringAccepts(t *testing.T) {
	t.Parallel()
	const clients = 4
	srv := redistest.Start(t, redistest.WithAOF(), redistest.WithArgs("--maxmemory-policy", "noeviction"))
	up := newJobUpstream(t, nil)
	s := newSizedSetup(t, srv, up.URL+"/orders", 16, 5*time.Second)
	p := startAsyncgw(t, nil, "gateway", "--config", s.config)
	base := p.baseURL(t)

	var (
		mu      sync.Mutex
		results []accept
	)
	// count counts the answers so far with status code and a start after
	// since.
	count := func(code int, since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range results {
			if a.status == code && !a.start.Before(since) {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := accept{start: time.Now()}
				resp, err := client.Post(base+"/v1/work", "application/json",
					strings.NewReader(fmt.Sprintf(`{"client":%d,"n":%d}`, c, i)))
				if err != nil {
					a.err = err
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					a.status, a.body = resp.StatusCode, string(b)
					if a.status == http.StatusAccepted {
						var acc struct {
							ID string `json:"id"`
						}
						if err := json.Unmarshal(b, &acc); err != nil || !jobs.ValidID(acc.ID) {
							a.err = fmt.Errorf("202 without a job ID (%v)", err)
						}
						a.id = acc.ID
					}
				}
				a.end = time.Now()
				mu.Lock()
				results = append(results, a)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopClients)

	// About a second of accepts before the crash, and as long after it.
	begin := time.Now()
	testutil.WaitForWhy(t, 15*time.Second, "accepts before the crash", func() (bool, string) {
		n := count(http.StatusAccepted, begin)
		return n >= 20 && time.Since(begin) > time.Second, fmt.Sprintf("%d 202s", n)
	})
	killing := time.Now()
	srv.Kill()
	killed := time.Now() // Redis is gone: nothing after this can be stored
	time.Sleep(2 * time.Second)
	restarting := time.Now()
	srv.Restart(t)
	restarted := time.Now()
	testutil.WaitForWhy(t, 15*time.Second, "accepts after the restart", func() (bool, string) {
		n := count(http.StatusAccepted, restarted)
		return n >= 20 && time.Since(restarted) > time.Second, fmt.Sprintf("%d 202s since the restart", n)
	})
	stopClients()
	if p.exited() {
		t.Fatalf("the gateway exited while Redis was down")
	}

	var accepted []string
	seen := map[string]bool{}
	// Answers by phase: before the kill, while Redis was down, after the
	// restart, and across the kill or the restart.
	const before, down, after, across = "before", "down", "after", "across"
	byPhase := map[string]map[int]int{}
	upBusy := 0 // 503s while Redis was up, logged
	bad := 0
	for _, a := range results {
		if a.status == http.StatusAccepted && a.err == nil {
			accepted = append(accepted, a.id)
			seen[a.id] = true
		}
		phase := across
		switch {
		case a.end.Before(killing):
			phase = before
		case !a.start.Before(killed) && a.end.Before(restarting):
			phase = down
		case !a.start.Before(restarted):
			phase = after
		}
		if byPhase[phase] == nil {
			byPhase[phase] = map[int]int{}
		}
		byPhase[phase][a.status]++
		var problem string
		switch {
		case a.err != nil:
			problem = a.err.Error()
		case a.status != http.StatusAccepted && a.status != http.StatusServiceUnavailable:
			problem = "want 202 or 503"
		case phase == down && a.status == http.StatusAccepted:
			problem = "accepted while Redis was down"
		}
		if problem != "" {
			if bad++; bad <= 10 {
				t.Errorf("POST at %+.3fs after the kill: %d %s: %s",
					a.start.Sub(killed).Seconds(), a.status, strings.TrimSpace(a.body), problem)
			}
		}
		if (phase == before || phase == after) && a.status == http.StatusServiceUnavailable {
			if upBusy++; upBusy <= 3 {
				t.Logf("503 while Redis was up, at %+.3fs after the kill (%v): %s",
					a.start.Sub(killed).Seconds(), a.end.Sub(a.start).Round(time.Millisecond), strings.TrimSpace(a.body))
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d bad answers in all", bad)
	}
	t.Logf("%d requests, statuses by phase %v; %d accepted; Redis back %v after the kill",
		len(results), byPhase, len(accepted), restarted.Sub(killed).Round(time.Millisecond))
	if byPhase[down][http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while Redis was down (%v)", byPhase[down])
	}

	// Every accepted job survived the crash and runs to success once.
	wk := startAsyncgw(t, nil, "worker", "--config", s.config)
	wk.waitLog(t, "workers started", 30*time.Second)
	ended := waitEnded(t, base, s, accepted, time.Minute, p, wk)
	st := s.store(t)
	for _, id := range accepted {
		j := ended[id]
		if j.State != jobs.StateSucceeded || j.Attempt != 1 || j.Result == nil || j.Result.Status != http.StatusOK {
			t.Errorf("job %s: state %s, attempt %d, result %+v, error %q; want succeeded, attempt 1, 200",
				id, j.State, j.Attempt, j.Result, j.Error)
		}
		if calls := up.attemptsOf(id); len(calls) == 0 || slices.ContainsFunc(calls, func(a string) bool { return a != "1" }) {
			t.Errorf("job %s: upstream attempts %q, want at least one call, all attempt 1", id, calls)
		}
		checkSucceededOnce(t, st, id)
	}
	// A write refused with 503 must never run. A write that Redis stored
	// in the instant it was killed, before it could answer, is the one
	// exception the gateway cannot know about; report it if it happens.
	for _, id := range up.jobIDs() {
		if !seen[id] {
			t.Logf("the upstream was called for job %s, which no client got a 202 for (stored as Redis died?)", id)
			for _, line := range strings.Split(p.stderr.String()+wk.stderr.String(), "\n") {
				if strings.Contains(line, id) {
					t.Logf("    %s", line)
				}
			}
		}
	}
}

// oneShard is the asynq queue of queue on a deployment of one shard (the
// default): "s0}<queue>" (see internal/keyspace).
func oneShard(queue string) string { return "s0}" + queue }
