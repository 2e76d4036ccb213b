package status

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// stalledWrites dials connections whose writes it can stall: while it
// holds, a write blocks until release, as on a Redis that has stopped
// reading or a full network buffer.
type stalledWrites struct {
	mu      sync.Mutex
	holding chan struct{} // closed by release; nil while writes go through
}

func (s *stalledWrites) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &stalledConn{Conn: conn, s: s}, nil
}

func (s *stalledWrites) hold() {
	s.mu.Lock()
	s.holding = make(chan struct{})
	s.mu.Unlock()
}

func (s *stalledWrites) release() {
	s.mu.Lock()
	if s.holding != nil {
		close(s.holding)
		s.holding = nil
	}
	s.mu.Unlock()
}

type stalledConn struct {
	net.Conn
	s *stalledWrites
}

func (c *stalledConn) Write(p []byte) (int, error) {
	c.s.mu.Lock()
	held := c.s.holding
	c.s.mu.Unlock()
	if held != nil {
		<-held
	}
	return c.Conn.Write(p)
}

// TestSubscribeWhileWritesStall: while the hub's connection cannot write,
// subscribing and Wait still return at once (a subscriber sends Redis
// nothing: the hub listens on every event channel already), and once the
// writes go through the subscribers get their events.
func TestSubscribeWhileWritesStall(t *testing.T) {
	t.Parallel()
	stall := &stalledWrites{}
	t.Cleanup(stall.release)
	rdb := redis.NewClient(&redis.Options{
		Addr: redistest.Shared(t).Addr(), Protocol: 2, Dialer: stall.dial,
		ContextTimeoutEnabled: true, WriteTimeout: time.Minute,
	})
	t.Cleanup(func() { rdb.Close() })
	b := setupOn(t, rdb, Config{})
	h := NewHub(rdb, b.store, nil)
	if err := h.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopHub(t, h) })

	stall.hold()
	var subs []*Subscription
	j := newJob("acme")
	testutil.Within(t, 5*time.Second, "subscribing while writes stall", func() {
		for _, tenant := range []string{"acme", "globex", "initech"} {
			subs = append(subs, h.SubscribeTenant(tenant), h.SubscribeJob(tenant, j.ID))
		}
		for _, sub := range subs {
			if err := sub.Wait(testContext(t)); err != nil {
				t.Errorf("Wait while writes stall: %v", err)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for _, sub := range subs {
		closeLater(t, sub)
	}
	stall.release()
	if err := b.store.Create(testContext(t), j, &jobs.Request{}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range subs[:2] {
		if ev := next(t, sub); ev.JobID != j.ID {
			t.Fatalf("got job %s, want %s", ev.JobID, j.ID)
		}
	}
	for _, sub := range subs[2:] {
		noEvent(t, sub)
	}
	if n := b.numSub(t); n != 1 {
		t.Errorf("%d subscriptions to the event channel, want 1", n)
	}
}
