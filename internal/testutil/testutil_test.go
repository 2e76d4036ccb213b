package testutil

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures. Fatalf ends the calling
// goroutine, as it does for a real test, so helpers are run by call.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	fatal  bool
	failed bool
	msgs   []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}

// call runs fn with r in a goroutine of its own and reports whether fn
// returned (rather than ending through Fatalf).
func (r *recorder) call(fn func(tb testing.TB)) (returned bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
		returned = true
	}()
	<-done
	return returned
}

func (r *recorder) message() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

func TestWaitForReturnsOnceTrue(t *testing.T) {
	r := &recorder{TB: t}
	var calls int
	returned := r.call(func(tb testing.TB) {
		WaitFor(tb, 10*time.Second, "the third call", func() bool {
			calls++
			return calls == 3
		})
	})
	if !returned || r.failed {
		t.Fatalf("WaitFor: returned %v, failed %v (%s); want a plain return", returned, r.failed, r.message())
	}
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

func TestWaitForFailsAfterTimeout(t *testing.T) {
	r := &recorder{TB: t}
	const timeout = 50 * time.Millisecond
	var calls int
	start := time.Now()
	returned := r.call(func(tb testing.TB) {
		WaitFor(tb, timeout, "the impossible", func() bool {
			calls++
			return false
		})
	})
	elapsed := time.Since(start)
	if returned || !r.fatal {
		t.Fatalf("WaitFor on a false cond: returned %v, fatal %v; want Fatalf", returned, r.fatal)
	}
	if msg := r.message(); !strings.Contains(msg, "the impossible") || !strings.Contains(msg, timeout.String()) {
		t.Errorf("failure %q does not name what was waited for and the timeout", msg)
	}
	if elapsed < timeout {
		t.Errorf("gave up after %v, before the %v timeout", elapsed, timeout)
	}
	if calls < 2 {
		t.Errorf("cond called %d times; WaitFor did not poll", calls)
	}
}

func TestWaitForWhy(t *testing.T) {
	t.Run("true", func(t *testing.T) {
		r := &recorder{TB: t}
		var calls int
		returned := r.call(func(tb testing.TB) {
			WaitForWhy(tb, 10*time.Second, "the second call", func() (bool, string) {
				calls++
				return calls == 2, "first call"
			})
		})
		if !returned || r.failed {
			t.Fatalf("WaitForWhy: returned %v, failed %v (%s); want a plain return", returned, r.failed, r.message())
		}
		if calls != 2 {
			t.Errorf("cond called %d times, want 2", calls)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := &recorder{TB: t}
		const timeout = 50 * time.Millisecond
		var calls int
		start := time.Now()
		returned := r.call(func(tb testing.TB) {
			WaitForWhy(tb, timeout, "the impossible", func() (bool, string) {
				calls++
				return false, fmt.Sprintf("reason %d", calls)
			})
		})
		elapsed := time.Since(start)
		if returned || !r.fatal {
			t.Fatalf("WaitForWhy on a false cond: returned %v, fatal %v; want Fatalf", returned, r.fatal)
		}
		msg := r.message()
		if !strings.Contains(msg, "the impossible") || !strings.Contains(msg, timeout.String()) {
			t.Errorf("failure %q does not name what was waited for and the timeout", msg)
		}
		if last := fmt.Sprintf("reason %d", calls); !strings.HasSuffix(msg, ": "+last) {
			t.Errorf("failure %q does not end with the last reason %q", msg, last)
		}
		if elapsed < timeout {
			t.Errorf("gave up after %v, before the %v timeout", elapsed, timeout)
		}
		if calls < 2 {
			t.Errorf("cond called %d times; WaitForWhy did not poll", calls)
		}
	})
}

func TestWithin(t *testing.T) {
	t.Run("returns", func(t *testing.T) {
		r := &recorder{TB: t}
		var ran bool
		returned := r.call(func(tb testing.TB) {
			Within(tb, 10*time.Second, "a quick call", func() { ran = true })
		})
		if !returned || r.failed {
			t.Fatalf("Within: returned %v, failed %v (%s); want a plain return", returned, r.failed, r.message())
		}
		if !ran {
			t.Error("fn was not run")
		}
	})
	t.Run("stuck", func(t *testing.T) {
		r := &recorder{TB: t}
		const d = 50 * time.Millisecond
		stuck := make(chan struct{})
		defer close(stuck)
		var running atomic.Bool
		start := time.Now()
		returned := r.call(func(tb testing.TB) {
			Within(tb, d, "a stuck call", func() {
				running.Store(true)
				<-stuck
			})
		})
		elapsed := time.Since(start)
		if !returned || r.fatal || !r.failed {
			t.Fatalf("Within on a stuck call: returned %v, fatal %v, failed %v; want an Errorf and a return", returned, r.fatal, r.failed)
		}
		if msg := r.message(); !strings.Contains(msg, "a stuck call") || !strings.Contains(msg, d.String()) {
			t.Errorf("failure %q does not name the call and the limit", msg)
		}
		if elapsed < d {
			t.Errorf("gave up after %v, before the %v limit", elapsed, d)
		}
		if !running.Load() {
			t.Error("fn was not run")
		}
	})
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var _ io.Writer = &b
	var _ fmt.Stringer = &b
	if got := b.String(); got != "" {
		t.Fatalf("zero SyncBuffer holds %q, want nothing", got)
	}
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				line := fmt.Sprintf("w%d %d\n", w, i)
				if n, err := b.Write([]byte(line)); n != len(line) || err != nil {
					t.Errorf("Write(%q) = %d, %v", line, n, err)
				}
				_ = b.String() // reads alongside writes
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		seen[l] = true
	}
	for w := range writers {
		for i := range each {
			if l := fmt.Sprintf("w%d %d", w, i); !seen[l] {
				t.Errorf("line %q missing", l)
			}
		}
	}
}
