package chaos

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Upstream is the service behind the gateway in a soak. It answers every
// call with 200 after a fixed delay and records it: the job it is for
// (from Idempotency-Key, which asyncgw sets to the job ID), the attempt
// (X-Asyncgw-Attempt) and when. A job called more than once is a duplicate
// run: at-least-once delivery allows it, and the soak counts it.
type Upstream struct {
	srv   *httptest.Server
	delay time.Duration

	mu      sync.Mutex
	calls   map[string][]Call // by job ID
	times   []time.Time       // of every call, in arrival order
	running map[string]int    // calls in progress, by job ID
	// gate, when not nil, holds every answer until it is closed.
	gate chan struct{}
	// mismatched counts calls whose Idempotency-Key and
	// X-Asyncgw-Job-Id differ: both must name the job.
	mismatched int
}

// Call is one call the upstream received.
type Call struct {
	// Attempt is the X-Asyncgw-Attempt header.
	Attempt string
	// At is when the call arrived.
	At time.Time
}

// NewUpstream starts an upstream on a free port of 127.0.0.1 that answers
// after delay. Close stops it.
func NewUpstream(delay time.Duration) *Upstream {
	u := &Upstream{delay: delay, calls: map[string][]Call{}, running: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	now := time.Now()
	id := r.Header.Get("Idempotency-Key")
	u.mu.Lock()
	if r.Header.Get("X-Asyncgw-Job-Id") != id {
		u.mismatched++
	}
	u.calls[id] = append(u.calls[id], Call{Attempt: r.Header.Get("X-Asyncgw-Attempt"), At: now})
	u.times = append(u.times, now)
	u.running[id]++
	gate := u.gate
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		if u.running[id]--; u.running[id] == 0 {
			delete(u.running, id)
		}
		u.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if u.delay > 0 {
		t := time.NewTimer(u.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// URL is the upstream's base URL.
func (u *Upstream) URL() string { return u.srv.URL }

// Close stops the upstream, cutting calls in progress.
func (u *Upstream) Close() {
	u.srv.CloseClientConnections()
	u.srv.Close()
}

// Calls returns the calls made for the job id.
func (u *Upstream) Calls(id string) []Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Call(nil), u.calls[id]...)
}

// Jobs returns the number of calls made for each job.
func (u *Upstream) Jobs() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]int, len(u.calls))
	for id, c := range u.calls {
		out[id] = len(c)
	}
	return out
}

// hold makes the upstream hold every call, answering none, until release
// is called.
func (u *Upstream) hold() (release func()) {
	gate := make(chan struct{})
	u.mu.Lock()
	u.gate = gate
	u.mu.Unlock()
	return sync.OnceFunc(func() {
		u.mu.Lock()
		u.gate = nil
		u.mu.Unlock()
		close(gate)
	})
}

// Running returns the jobs whose calls are in progress.
func (u *Upstream) Running() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]string, 0, len(u.running))
	for id := range u.running {
		out = append(out, id)
	}
	return out
}

// Mismatched counts calls whose Idempotency-Key and X-Asyncgw-Job-Id
// differ.
func (u *Upstream) Mismatched() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.mismatched
}

// FirstCallAfter returns when the first call at or after t arrived.
func (u *Upstream) FirstCallAfter(t time.Time) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var first time.Time
	for _, at := range u.times {
		if !at.Before(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}
