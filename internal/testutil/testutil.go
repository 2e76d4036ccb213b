// Package testutil holds small helpers shared by the tests of several
// packages: waiting for a condition, bounding a call, and collecting
// output written from several goroutines.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Poll intervals of WaitFor and WaitForWhy. WaitForWhy's conditions
// usually make a request, so it asks less often.
const (
	pollInterval    = 5 * time.Millisecond
	pollIntervalWhy = 20 * time.Millisecond
)

// WaitFor polls cond until it is true, failing t with what if that takes
// longer than timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// WaitForWhy is WaitFor for a condition that also says why it does not
// hold yet; the failure gives what and cond's last reason.
func WaitForWhy(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollIntervalWhy)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		<-tick.C
	}
}

// Within runs fn, failing t (without stopping it) if fn has not returned
// after d. fn is then left running, so that a stuck call fails its test
// instead of hanging the test binary.
func Within(t testing.TB, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("%s did not return within %s", what, d)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent use, such as a log
// sink or a process's output. The zero value is an empty buffer.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
