package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/sse"
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

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	waitUntil(t, "the handler to return", func() bool {
		observed, open := m.state(route)
		return observed == 1 && open == 1
	})
	conn.Close()
	waitUntil(t, "the stream to notice its client leaving", func() bool {
		_, open := m.state(route)
		return open == 0
	})

	_, rd := open()
	waitUntil(t, "the second stream to be detached", func() bool {
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
