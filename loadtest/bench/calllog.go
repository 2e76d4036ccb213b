package main

import (
	"net/http"
	"sync"
	"time"
)

// callLog is an upstream that answers at once and notes the order in
// which the jobs' first calls (by X-Asyncgw-Job-Id) arrive: the order in
// which the workers started them.
type callLog struct {
	up    *upstream
	mu    sync.Mutex
	seen  map[string]int // job ID → its index in calls
	calls []call
	// watch is told when a job awaited arrives.
	watch map[string]chan time.Time
}

// call is a job's first call to the upstream.
type call struct {
	id string
	at time.Time
}

func newCallLog() *callLog {
	return &callLog{up: newUpstream(0, 0), seen: map[string]int{}, watch: map[string]chan time.Time{}}
}

func (l *callLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, now := r.Header.Get("X-Asyncgw-Job-Id"), time.Now()
	l.mu.Lock()
	if _, ok := l.seen[id]; !ok {
		l.seen[id] = len(l.calls)
		l.calls = append(l.calls, call{id, now})
		if c, ok := l.watch[id]; ok {
			c <- now
			delete(l.watch, id)
		}
	}
	l.mu.Unlock()
	l.up.ServeHTTP(w, r)
}

// await returns a channel that receives the time of id's first call once
// it arrives (at once if it has).
func (l *callLog) await(id string) <-chan time.Time {
	c := make(chan time.Time, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.seen[id]; ok {
		c <- l.calls[i].at
	} else {
		l.watch[id] = c
	}
	return c
}

// index is the position of id's first call among all calls, or -1.
func (l *callLog) index(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.seen[id]; ok {
		return i
	}
	return -1
}

// count is how many jobs have called.
func (l *callLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// from returns a copy of the calls from index i on.
func (l *callLog) from(i int) []call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]call(nil), l.calls[min(i, len(l.calls)):]...)
}
