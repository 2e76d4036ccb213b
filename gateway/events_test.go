package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/sse"
	"github.com/asyncgw/asyncgw/status"
)

// streamMetrics records what the event-stream tests look at.
type streamMetrics struct {
	nopMetrics
	mu       sync.Mutex
	observed map[string]int // answered requests by route
	open     int
}

func (m *streamMetrics) ObserveHTTP(route, _ string, _ int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observed[route]++
}

func (m *streamMetrics) StreamOpened(string) { m.mu.Lock(); m.open++; m.mu.Unlock() }
func (m *streamMetrics) StreamClosed(string) { m.mu.Lock(); m.open--; m.mu.Unlock() }

func (m *streamMetrics) state(route string) (observed, open int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.observed[route], m.open
}

// TestJobStreamDetached checks that an HTTP/1.1 event stream is served
// apart from its handler once it follows live events (the request is
// answered as far as the HTTP server is concerned while the stream goes
// on), that it still notices a client leaving without a heartbeat to
// write, and that shutdown ends it with a reconnection hint.
func TestJobStreamDetached(t *testing.T) {
	t.Parallel()
	m := &streamMetrics{observed: map[string]int{}}
	bg := newTestGateway(t, func(c *Config, d *Deps) {
		c.Heartbeat = time.Hour
		d.Metrics = m
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- bg.g.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	addr := ln.Addr().String()

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/orders", strings.NewReader(benchOrder))
	req.Header.Set("Authorization", "Bearer "+benchAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var acc struct{ ID string }
	err = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d, %v", resp.StatusCode, err)
	}

	const route = "/v1/jobs/:id/events"
	open := func() (net.Conn, *sse.Reader) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", acc.ID, addr, benchAPIKey)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("events: %v", err)
		}
		rd := sse.NewReader(resp.Body)
		if ev, err := rd.Next(); err != nil || ev.Event != "queued" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		return conn, rd
	}

	conn, _ := open()
	// The handler has returned while the stream is open.
	testutil.WaitFor(t, 10*time.Second, "the handler to return", func() bool {
		observed, open := m.state(route)
		return observed == 1 && open == 1
	})
	conn.Close()
	testutil.WaitFor(t, 10*time.Second, "the stream to notice its client leaving", func() bool {
		_, open := m.state(route)
		return open == 0
	})

	_, rd := open()
	testutil.WaitFor(t, 10*time.Second, "the second stream to be detached", func() bool {
		observed, _ := m.state(route)
		return observed == 2
	})
	cancel()
	ev, err := rd.Next()
	if err != nil || ev.Retry <= 0 {
		t.Errorf("at shutdown: %+v, %v; want a retry: field", ev, err)
	}
	if _, err := rd.Next(); err == nil {
		t.Error("the stream goes on after shutdown")
	}
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Serve: %v", err)
	}
	served <- nil
	if _, open := m.state(route); open != 0 {
		t.Errorf("%d streams open after Serve returned", open)
	}
}

// heldWrites dials connections to Redis whose writes it can hold back:
// while it holds, what is written is kept and reported as sent, so that
// commands go unanswered as on a Redis or a network that has stalled, with
// no error on the connection. release sends what was kept, in order.
type heldWrites struct {
	mu      sync.Mutex
	holding bool
	conns   []*heldConn
}

// heldConn is a connection dialed by heldWrites.
type heldConn struct {
	net.Conn
	h    *heldWrites
	kept []byte
}

// dial is a redis.Options.Dialer.
func (h *heldWrites) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &heldConn{Conn: conn, h: h}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return c, nil
}

func (h *heldWrites) hold() {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
}

func (h *heldWrites) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holding = false
	for _, c := range h.conns {
		if len(c.kept) == 0 {
			continue
		}
		// The deadline go-redis set for the write it made may have
		// passed while the bytes were kept.
		if err := c.Conn.SetWriteDeadline(time.Time{}); err != nil {
			return err
		}
		if _, err := c.Conn.Write(c.kept); err != nil {
			return err
		}
		c.kept = nil
	}
	return nil
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if c.h.holding {
		c.kept = append(c.kept, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestEventsUnavailableWhileSubscriptionStalls checks what the gateway
// answers while Redis does not confirm the hub's subscription of a
// tenant's channel (the hub's commands are held back on their way): the
// event endpoints answer 503 problem+json at the end of subscribeTimeout,
// rather than a stream that could miss events, and a submit with
// Prefer: wait is still stored and answered with a plain 202, at once
// rather than after the wait it asked for. The subscriptions given up are
// closed: once Redis answers again, the hub leaves the tenant's channel
// when its last subscriber goes.
//
// Not parallel: it shortens subscribeTimeout while it runs.
func TestEventsUnavailableWhileSubscriptionStalls(t *testing.T) {
	defer func(d time.Duration) { subscribeTimeout = d }(subscribeTimeout)
	// Above Config.RedisTimeout (1s by default): a submit's wait for its
	// subscription must not spend the time its write to Redis has.
	subscribeTimeout = 1500 * time.Millisecond

	held := &heldWrites{}
	var (
		hub   *status.Hub
		store *status.Store
	)
	bg := newTestGateway(t, func(_ *Config, d *Deps) {
		store = d.Store.(*status.Store)
		opts, err := redis.ParseURL(redistest.Shared(t).URL())
		if err != nil {
			t.Fatal(err)
		}
		opts.Dialer = held.dial
		rdb := redis.NewClient(opts)
		t.Cleanup(func() { _ = rdb.Close() })
		hub = status.NewHub(rdb, store, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hub.Stop(context.Background()) })
		d.Hub = hub
	})
	// serve answers a request; slow reports an answer that took more than
	// 10s, which subscribeTimeout is far below.
	serve := func(method, target, body string, header http.Header) (rec *httptest.ResponseRecorder, slow bool) {
		t.Helper()
		// A stream opened by mistake would go on until its client left:
		// the deadline ends it, and its status tells what happened.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		for name, values := range header {
			req.Header[name] = values
		}
		req.Header.Set("Authorization", "Bearer "+benchAPIKey)
		rec = httptest.NewRecorder()
		start := time.Now()
		bg.g.ServeHTTP(rec, req)
		return rec, time.Since(start) > 10*time.Second
	}

	held.hold()

	rec, slow := serve(http.MethodPost, "/v1/orders", benchOrder, http.Header{
		"Content-Type": {"application/json"},
		"Prefer":       {"wait=30"},
	})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("submit with Prefer: wait: %d %s; want 202", rec.Code, rec.Body)
	}
	var acc Accepted
	if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil || acc.ID == "" {
		t.Fatalf("submit with Prefer: wait: body %s (%v); want the accepted job", rec.Body, err)
	}
	if got := rec.Header().Get("Preference-Applied"); got != "" {
		t.Errorf("Preference-Applied: %q on a plain 202", got)
	}
	// Nothing works the queue, so the job never ends: a gateway that
	// waited for it would answer only after the 30s asked for.
	if slow {
		t.Error("the 202 came late: the gateway waited for an end it could not see")
	}
	if rec, _ := serve(http.MethodGet, "/v1/jobs/"+acc.ID, "", nil); rec.Code != http.StatusOK {
		t.Errorf("the job of the 202: GET answers %d %s", rec.Code, rec.Body)
	}

	for _, target := range []string{"/v1/jobs/" + acc.ID + "/events", "/v1/events"} {
		rec, slow := serve(http.MethodGet, target, "", http.Header{"Accept": {"text/event-stream"}})
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: %d %q; want 503", target, rec.Code, rec.Body)
			continue
		}
		if slow {
			t.Errorf("GET %s: the 503 came late: the wait for the subscription was not bounded by subscribeTimeout", target)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("GET %s: Content-Type %q, want application/problem+json", target, ct)
		}
		if ra := rec.Header().Get("Retry-After"); ra != "1" {
			t.Errorf("GET %s: Retry-After %q, want 1", target, ra)
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Errorf("GET %s: body %q: %v", target, rec.Body, err)
			continue
		}
		if p.Type != problemTypeBase+"unavailable" || p.Status != http.StatusServiceUnavailable ||
			!strings.Contains(p.Detail, "live events are unavailable") {
			t.Errorf("GET %s: problem %+v; want type unavailable, status 503 and a detail on live events", target, p)
		}
	}

	// Redis answers again: the SUBSCRIBE and UNSUBSCRIBE commands that were
	// held back reach it, in order, and a new subscription goes live after
	// them.
	if err := held.release(); err != nil {
		t.Fatal(err)
	}
	check := redistest.Shared(t).Client(t)
	channel := store.TenantChannel("acme")
	numSub := func() int64 {
		t.Helper()
		m, err := check.PubSubNumSub(context.Background(), channel).Result()
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		return m[channel]
	}
	sub := hub.SubscribeTenant("acme")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sub.Wait(ctx); err != nil {
		sub.Close()
		t.Fatalf("a subscription after Redis answers again: %v", err)
	}
	if n := numSub(); n != 1 {
		t.Errorf("the tenant's channel has %d subscribers on the server, want 1", n)
	}
	sub.Close()
	testutil.WaitFor(t, 10*time.Second, "the hub to leave the tenant's channel after its last subscriber (the 503s' subscriptions were not closed?)", func() bool {
		return numSub() == 0
	})
}
