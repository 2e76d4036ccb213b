package sse_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

func TestStreamHeadersAndFlush(t *testing.T) {
	proceed := make(chan struct{})
	handlerErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlerErr <- func() error {
			s, err := sse.NewStream(w)
			if err != nil {
				return err
			}
			if err := s.Send(sse.Event{ID: "1", Event: "queued", Data: []byte("first")}); err != nil {
				return err
			}
			// Hold the response open until the client has seen the first
			// event, which it can only do if Send flushed it.
			select {
			case <-proceed:
			case <-r.Context().Done():
				return r.Context().Err()
			}
			if err := s.Comment("heartbeat"); err != nil {
				return err
			}
			if err := s.Send(sse.Event{ID: "2", Data: []byte("second\nline")}); err != nil {
				return err
			}
			return s.Retry(5 * time.Second)
		}()
	}))
	defer srv.Close()
	// Make sure the handler is not left waiting if the test fails early.
	release := sync.OnceFunc(func() { close(proceed) })
	defer release()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
	wantHeaders := map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"Connection":        "keep-alive",
		"X-Accel-Buffering": "no",
	}
	for k, v := range wantHeaders {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}

	r := sse.NewReader(resp.Body)
	first := make(chan error, 1)
	go func() {
		e, err := r.Next()
		if err == nil && (e.ID != "1" || e.Event != "queued" || string(e.Data) != "first") {
			err = fmt.Errorf("first event = %+v", e)
		}
		first <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first event not received while the handler was still running: Send did not flush")
	}
	release()

	e, err := r.Next()
	if err != nil || e.ID != "2" || string(e.Data) != "second\nline" {
		t.Fatalf("second event = %+v, %v", e, err)
	}
	e, err = r.Next()
	if err != nil || e.Retry != 5*time.Second || e.Data != nil {
		t.Fatalf("retry event = %+v, %v", e, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after last event: error = %v, want io.EOF", err)
	}
	if err := <-handlerErr; err != nil {
		t.Fatalf("handler: %v", err)
	}
}

func TestStreamRecorder(t *testing.T) {
	rec := httptest.NewRecorder()
	s, err := sse.NewStream(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Error("NewStream did not flush")
	}
	if err := s.Send(sse.Event{ID: "a", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Comment(""); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(0); err != nil {
		t.Fatal(err)
	}
	if want := "id: a\ndata: x\n\n:\n\nretry: 1\n\n"; rec.Body.String() != want {
		t.Errorf("body = %q, want %q", rec.Body.String(), want)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type = %q", got)
	}
}

// noFlushWriter is a ResponseWriter that cannot flush.
type noFlushWriter struct {
	h    http.Header
	code int
}

func (w *noFlushWriter) Header() http.Header         { return w.h }
func (w *noFlushWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *noFlushWriter) WriteHeader(code int)        { w.code = code }

func TestNewStreamNoFlusher(t *testing.T) {
	_, err := sse.NewStream(&noFlushWriter{h: http.Header{}})
	if !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("NewStream error = %v, want ErrNotSupported", err)
	}
}

// TestStreamOutlivesServerWriteTimeout checks that NewStream lifts the
// deadline http.Server.WriteTimeout puts on the response.
func TestStreamOutlivesServerWriteTimeout(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w)
		if err != nil {
			return
		}
		// No per-write deadline, so only NewStream can have lifted the
		// server's.
		s.WriteTimeout = -1
		for i := range 3 {
			time.Sleep(100 * time.Millisecond)
			if s.Send(sse.Event{Data: fmt.Appendf(nil, "%d", i)}) != nil {
				return
			}
		}
	}))
	srv.Config.WriteTimeout = 150 * time.Millisecond
	srv.Start()
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := readAll(sse.NewReader(resp.Body))
	if err != io.EOF || len(got) != 3 {
		t.Fatalf("got %d events and error %v, want 3 events and io.EOF", len(got), err)
	}
}

// TestStreamIdleHTTP2 checks that a Stream lifts its per-write deadline after
// each write: on HTTP/2 an expired deadline resets the stream even while it
// is idle.
func TestStreamIdleHTTP2(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w)
		if err != nil {
			return
		}
		// A deadline a write under load still meets, and an idle spell
		// well past it.
		s.WriteTimeout = 300 * time.Millisecond
		for i := range 2 {
			if i > 0 {
				time.Sleep(time.Second)
			}
			if s.Send(sse.Event{Data: fmt.Appendf(nil, "%d", i)}) != nil {
				return
			}
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol = %s, want HTTP/2", resp.Proto)
	}
	got, err := readAll(sse.NewReader(resp.Body))
	if err != io.EOF || len(got) != 2 {
		t.Fatalf("got %d events and error %v, want 2 events and io.EOF", len(got), err)
	}
}

// TestStreamWriteTimeout checks that a client that stops reading makes Send
// fail instead of blocking forever.
func TestStreamWriteTimeout(t *testing.T) {
	handlerErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w)
		if err != nil {
			handlerErr <- err
			return
		}
		s.WriteTimeout = 100 * time.Millisecond
		data := []byte(strings.Repeat("x", 64<<10))
		for {
			if err := s.Send(sse.Event{Data: data}); err != nil {
				// A broken Stream keeps failing with the same error.
				if err2 := s.Comment("again"); err2 != err {
					err = fmt.Errorf("%w; then Comment returned %v, want the same error", err, err2)
				}
				handlerErr <- err
				return
			}
		}
	}))
	defer srv.Close()

	// A raw connection that sends a request and never reads the response.
	rawGet(t, srv, "HTTP/1.1")

	// The client neither reads nor closes the connection before the
	// handler reports, so only the write deadline can make Send fail.
	select {
	case err := <-handlerErr:
		if strings.Contains(err.Error(), "then Comment") {
			t.Fatal(err)
		}
		t.Logf("Send failed as expected: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Send blocked on a client that does not read")
	}
}

func TestParseLastEventID(t *testing.T) {
	long := strings.Repeat("a", sse.MaxLastEventIDLen)
	tests := []struct {
		name   string
		header []string
		query  string
		want   string
	}{
		{"none", nil, "", ""},
		{"header", []string{"42"}, "", "42"},
		{"header wins", []string{"42"}, "lastEventId=7", "42"},
		{"query", nil, "lastEventId=7", "7"},
		{"empty header falls back", []string{""}, "lastEventId=7", "7"},
		{"blank header falls back", []string{"  "}, "lastEventId=7", "7"},
		{"trimmed", []string{" \t42\t "}, "", "42"},
		{"query trimmed", nil, "lastEventId=+7+", "7"},
		{"max length", []string{long}, "", long},
		{"too long", []string{long + "a"}, "", ""},
		{"too long query", nil, "lastEventId=" + long + "a", ""},
		{"query lf", nil, "lastEventId=" + url.QueryEscape("1\ndata: x"), ""},
		{"query cr", nil, "lastEventId=" + url.QueryEscape("1\r"), ""},
		{"query nul", nil, "lastEventId=1%00", ""},
		{"header nul", []string{"1\x002"}, "", ""},
		{"header lf", []string{"1\n2"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/jobs/x/events?"+tt.query, nil)
			for _, v := range tt.header {
				r.Header.Add("Last-Event-ID", v)
			}
			if got := sse.ParseLastEventID(r); got != tt.want {
				t.Errorf("ParseLastEventID = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseLastEventIDOverHTTP checks the header as a real client sends it.
func TestParseLastEventIDOverHTTP(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- sse.ParseLastEventID(r)
	}))
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", "job-17:4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if id := <-got; id != "job-17:4" {
		t.Errorf("ParseLastEventID = %q, want %q", id, "job-17:4")
	}
}
