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

// TestEventsUnavailableWhileHubStopped checks what the gateway answers
// when its event hub cannot make a subscription live (it has stopped): the
// event endpoints answer 503 problem+json, rather than a stream that could
// miss events, and a submit with Prefer: wait is still stored and answered
// with a plain 202, at once rather than after the wait it asked for. (A
// subscription needs no Redis command: the hub listens on every shard's
// event channel from its start, so a Redis that stalls does not hold it.)
//
// Not parallel: it shortens subscribeTimeout while it runs.
func TestEventsUnavailableWhileHubStopped(t *testing.T) {
	defer func(d time.Duration) { subscribeTimeout = d }(subscribeTimeout)
	subscribeTimeout = 1500 * time.Millisecond

	var hub *status.Hub
	bg := newTestGateway(t, func(_ *Config, d *Deps) {
		store := d.Store.(*status.Store)
		rdb := redistest.Shared(t).Client(t)
		hub = status.NewHub(rdb, store, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Start(ctx); err != nil {
			t.Fatal(err)
		}
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

	if err := hub.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

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
}
