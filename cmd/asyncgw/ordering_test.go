package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// keyedUpstream records, per ordering key (the body's "key"), the order in
// which its jobs' calls start (by X-Asyncgw-Job-Id) and any two calls of
// one key in flight at once. hold decides whether a call is held until
// its caller goes away (or the test ends).
type keyedUpstream struct {
	*httptest.Server
	hold func(id string, n int) bool

	mu       sync.Mutex
	started  map[string][]string // key → job IDs, one per call
	calls    map[string]int      // job ID → calls
	inFlight map[string]int
	overlaps []string
	holding  map[string]bool // job IDs whose call is held now
}

func newKeyedUpstream(t *testing.T, hold func(id string, n int) bool) *keyedUpstream {
	t.Helper()
	u := &keyedUpstream{hold: hold, started: map[string][]string{}, calls: map[string]int{},
		inFlight: map[string]int{}, holding: map[string]bool{}}
	testDone := make(chan struct{})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(b, &body)
		id := r.Header.Get("X-Asyncgw-Job-Id")
		u.mu.Lock()
		u.started[body.Key] = append(u.started[body.Key], id)
		u.calls[id]++
		u.inFlight[body.Key]++
		if u.inFlight[body.Key] > 1 {
			u.overlaps = append(u.overlaps, fmt.Sprintf("key %s: job %s called with %d other calls in flight", body.Key, id, u.inFlight[body.Key]-1))
		}
		held := u.hold != nil && u.hold(id, u.calls[id])
		if held {
			u.holding[id] = true
		}
		u.mu.Unlock()
		if held {
			select {
			case <-r.Context().Done():
			case <-testDone:
			}
		} else {
			// Long enough for a second call of the key to overlap, were
			// the line to let it.
			time.Sleep(10 * time.Millisecond)
		}
		u.mu.Lock()
		u.inFlight[body.Key]--
		delete(u.holding, id)
		u.mu.Unlock()
		if held {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.Close)
	t.Cleanup(func() { close(testDone) })
	return u
}

// order is the job IDs of key in the order of their first calls.
func (u *keyedUpstream) order(key string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, id := range u.started[key] {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (u *keyedUpstream) isHeld(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.holding[id]
}

// TestOrderingAcrossWorkersAndAKill runs the jobs of several ordering keys
// on two worker processes (the real binary) and kills one with SIGKILL
// while it runs the head of one key. Every job ends, succeeded; each key's
// jobs were called in accept order, never two at once, the killed head
// included (its key waits for it to run again on the other worker); and
// the other keys kept flowing meanwhile.
func TestOrderingAcrossWorkersAndAKill(t *testing.T) {
	t.Parallel()
	const keys, perKey = 3, 6
	// The third job of key k0 is held on its first call, until its worker
	// dies.
	var victim string
	var victimMu sync.Mutex
	up := newKeyedUpstream(t, func(id string, n int) bool {
		victimMu.Lock()
		defer victimMu.Unlock()
		return id == victim && n == 1
	})
	s := newSizedSetup(t, redistest.Shared(t), up.URL+"/orders", 8, 5*time.Second)
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	base := gw.baseURL(t)
	wk1 := startAsyncgw(t, nil, "worker", "--config", s.config)
	wk2 := startAsyncgw(t, nil, "worker", "--config", s.config)
	wk1.waitLog(t, "workers started", 30*time.Second)
	wk2.waitLog(t, "workers started", 30*time.Second)

	post := func(key string, i int) string {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/work", strings.NewReader(fmt.Sprintf(`{"key":%q,"n":%d}`, key, i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Ordering-Key", key)
		return acceptedID(t, req)
	}
	accepted := map[string][]string{}
	var all []string
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			id := post(key, i)
			if key == "k0" && i == 2 {
				victimMu.Lock()
				victim = id
				victimMu.Unlock()
			}
			accepted[key] = append(accepted[key], id)
			all = append(all, id)
		}
	}
	testutil.WaitForWhy(t, 30*time.Second, "the upstream to hold the head of k0", func() (bool, string) {
		return up.isHeld(victim), "not held yet"
	})
	// The worker that runs it dies.
	var killed, other *proc
	testutil.WaitForWhy(t, 10*time.Second, "a worker to log the held job", func() (bool, string) {
		switch {
		case strings.Contains(wk1.stderr.String(), "job_id="+victim):
			killed, other = wk1, wk2
		case strings.Contains(wk2.stderr.String(), "job_id="+victim):
			killed, other = wk2, wk1
		default:
			return false, "no worker logged it yet"
		}
		return true, ""
	})
	killed.kill(t)

	// Other keys flow while k0 waits for its head's lease to run out:
	// keys first used now, so that none of their jobs was on the killed
	// worker (k1's or k2's head may have been, in flight at the kill, and
	// then waits as k0 does).
	for _, key := range []string{"k3", "k4"} {
		for i := range perKey {
			id := post(key, i)
			accepted[key] = append(accepted[key], id)
			all = append(all, id)
		}
		waitEnded(t, base, s, accepted[key], 30*time.Second, other)
	}
	for _, id := range accepted["k0"][3:] {
		if j := getJob(t, base, id); j.State != jobs.StateQueued {
			t.Errorf("job %s behind k0's dead worker's head: %s, want queued", id, j.State)
		}
	}
	ended := waitEnded(t, base, s, all, 90*time.Second, killed, other)
	for _, id := range all {
		if j := ended[id]; j.State != jobs.StateSucceeded {
			t.Errorf("job %s ended %s (%s), want succeeded", id, j.State, j.Error)
		}
	}
	for key, ids := range accepted {
		if got := up.order(key); !slices.Equal(got, ids) {
			t.Errorf("key %s called in order %v, want the accept order %v", key, got, ids)
		}
	}
	up.mu.Lock()
	for _, o := range up.overlaps {
		t.Error(o)
	}
	if n := up.calls[victim]; n != 2 {
		t.Errorf("the killed head was called %d times, want 2 (before the kill, after)", n)
	}
	up.mu.Unlock()
}
