package main

import (
	"io"
	"sync"
	"time"
)

// logOut writes log lines to w from a goroutine of its own, a few at a
// time: the first line into an empty queue wakes the writer, which waits
// logOutDelay for more and writes them all at once. A request does not
// wait for a write to stderr, and under load the writes are far fewer
// than the lines (an access log line per request otherwise costs a system
// call and a wake-up of whoever reads the other end). A line is out at
// most logOutDelay after it was logged; a crash that kills the process
// loses what was logged in that time. At most logOutMax bytes wait:
// beyond that, a caller waits for the writer, as it would for w itself.
type logOut struct {
	w       io.Writer
	mu      sync.Mutex
	changed sync.Cond // signalled when buf is taken or filled, or on close
	buf     []byte    // lines not yet taken by the writer
	spare   []byte    // the writer's last buffer, for reuse
	closed  bool
	done    chan struct{}
}

const (
	logOutMax   = 1 << 20
	logOutDelay = 5 * time.Millisecond
)

func newLogOut(w io.Writer) *logOut {
	o := &logOut{w: w, done: make(chan struct{})}
	o.changed.L = &o.mu
	go o.run()
	return o
}

// Write queues p, which slog hands over as one whole line. After Close
// it writes p itself.
func (o *logOut) Write(p []byte) (int, error) {
	o.mu.Lock()
	for len(o.buf) >= logOutMax && !o.closed {
		o.changed.Wait()
	}
	if o.closed {
		o.mu.Unlock()
		return o.w.Write(p)
	}
	wake := len(o.buf) == 0
	o.buf = append(o.buf, p...)
	o.mu.Unlock()
	if wake {
		o.changed.Broadcast()
	}
	return len(p), nil
}

func (o *logOut) run() {
	defer close(o.done)
	o.mu.Lock()
	for {
		for len(o.buf) == 0 && !o.closed {
			o.changed.Wait()
		}
		if len(o.buf) == 0 {
			o.mu.Unlock()
			return
		}
		if !o.closed {
			o.mu.Unlock()
			time.Sleep(logOutDelay)
			o.mu.Lock()
		}
		b := o.buf
		o.buf = o.spare[:0]
		o.mu.Unlock()
		o.changed.Broadcast()
		_, _ = o.w.Write(b)
		o.mu.Lock()
		if cap(b) <= 64<<10 {
			o.spare = b
		} else {
			o.spare = nil
		}
	}
}

// Close writes what is queued and returns once it is written; later
// lines are written directly.
func (o *logOut) Close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.changed.Broadcast()
	<-o.done
	return nil
}
