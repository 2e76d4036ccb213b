package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records what it is given and in how many writes; gate,
// when set, holds every write until it is closed.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLogOutKeepsEveryLine: lines written from many goroutines all come
// out once Close returns, whole and each goroutine's in its order.
func TestLogOutKeepsEveryLine(t *testing.T) {
	w := &countingWriter{}
	o := newLogOut(w)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(o, "g%d line %d\n", g, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines out, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d line %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	// Written after Close: directly.
	if _, err := o.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(w.String(), "late\n") {
		t.Error("a line written after Close is missing")
	}
}

// TestLogOutBatchesWhileWriting: lines logged while a write is under way go
// out together in the next one; and past logOutMax queued bytes, a caller
// waits for the writer rather than the queue growing.
func TestLogOutBatchesWhileWriting(t *testing.T) {
	w := &countingWriter{gate: make(chan struct{})}
	o := newLogOut(w)
	if _, err := o.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	// The writer takes "first" and blocks in w; these queue behind it.
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range logOutMax / len(line) {
		if _, err := o.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		_, _ = o.Write([]byte("over\n"))
	}()
	select {
	case <-blocked:
		// The writer may not have taken "first" yet; then the queue
		// held one line more and this write found room: still bounded.
		o.mu.Lock()
		n := len(o.buf)
		o.mu.Unlock()
		if n > logOutMax+len(line) {
			t.Errorf("%d bytes queued, more than the bound %d", n, logOutMax)
		}
	case <-time.After(100 * time.Millisecond):
		// Waiting for the writer, as meant.
	}
	close(w.gate)
	<-blocked
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	lines := logOutMax/len(line) + 2
	if got := strings.Count(w.String(), "\n"); got != lines {
		t.Errorf("%d lines out, want %d", got, lines)
	}
	w.mu.Lock()
	writes := w.writes
	w.mu.Unlock()
	if writes > 4 {
		t.Errorf("%d writes for %d lines logged while the writer was busy; want them batched", writes, lines)
	}
}
