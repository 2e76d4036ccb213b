package status

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
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
// subscribing still returns at once (the SUBSCRIBE waits in the hub, not
// in the caller, and not under a lock other subscribers need); the
// subscriptions are not live until the writes go through, then they are,
// and the commands held back are sent in order.
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
	testutil.Within(t, 5*time.Second, "subscribing while writes stall", func() {
		for _, tenant := range []string{"acme", "globex", "initech"} {
			subs = append(subs, h.SubscribeTenant(tenant), h.SubscribeJob(tenant, "job0"))
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	for _, sub := range subs {
		closeLater(t, sub)
	}
	for _, sub := range subs {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := sub.Wait(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait while the SUBSCRIBE is stalled: %v, want the deadline", err)
		}
	}

	stall.release()
	for _, sub := range subs {
		if err := sub.Wait(testContext(t)); err != nil {
			t.Fatalf("Wait once writes go through: %v", err)
		}
	}
	for _, tenant := range []string{"acme", "globex", "initech"} {
		if n := b.numSubOf(t, b.store.TenantChannel(tenant)); n != 1 {
			t.Errorf("%s: %d subscriptions to its channel, want 1", tenant, n)
		}
	}

	// Commands held back go out in the order they were decided: subscribe,
	// unsubscribe, subscribe again leaves the channel subscribed.
	stall.hold()
	var again *Subscription
	testutil.Within(t, 5*time.Second, "subscribing again while writes stall", func() {
		h.SubscribeTenant("umbrella").Close()
		again = h.SubscribeTenant("umbrella")
	})
	if t.Failed() {
		t.FailNow()
	}
	closeLater(t, again)
	stall.release()
	if err := again.Wait(testContext(t)); err != nil {
		t.Fatalf("Wait after subscribe, unsubscribe, subscribe: %v", err)
	}
	if n := b.numSubOf(t, b.store.TenantChannel("umbrella")); n != 1 {
		t.Errorf("after subscribe, unsubscribe, subscribe: %d subscriptions to the channel, want 1", n)
	}
}
