package sse_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

// detachedServer serves streams that are detached from their handlers and
// then driven by run, in a goroutine of their own. Each run's end is
// reported on the returned channel once the stream is closed, with the
// handler's goroutine already gone.
func detachedServer(t *testing.T, run func(ctx context.Context, s *sse.Stream) error) (*httptest.Server, <-chan error) {
	t.Helper()
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := sse.NewStream(w)
		if err != nil {
			ended <- err
			return
		}
		ctx, err := s.Detach(r)
		if err != nil {
			ended <- err
			return
		}
		go func() {
			err := run(ctx, s)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
			ended <- err
		}()
	}))
	t.Cleanup(srv.Close)
	return srv, ended
}

// rawGet sends GET / in proto (such as "HTTP/1.1") on a connection of its
// own to srv, which it closes when t ends, and returns the connection
// without reading anything.
func rawGet(t *testing.T, srv *httptest.Server, proto string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET / %s\r\nHost: %s\r\n\r\n", proto, srv.Listener.Addr()); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestDetachedStream(t *testing.T) {
	proceed := make(chan struct{})
	srv, ended := detachedServer(t, func(_ context.Context, s *sse.Stream) error {
		if err := s.Send(sse.Event{ID: "1", Event: "queued", Data: []byte("first")}); err != nil {
			return err
		}
		<-proceed
		if err := s.Comment("keep-alive"); err != nil {
			return err
		}
		return s.Send(sse.Event{ID: "2", Data: []byte(strings.Repeat("x", 5000) + "\nend")})
	})
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %q, want chunked", resp.TransferEncoding)
	}
	r := sse.NewReader(resp.Body)
	// The first event arrives while the stream is still open, from a
	// goroutine that is not the handler's.
	e, err := r.Next()
	if err != nil || e.ID != "1" || string(e.Data) != "first" {
		t.Fatalf("first event %+v, %v", e, err)
	}
	close(proceed)
	e, err = r.Next()
	if err != nil || e.ID != "2" || !strings.HasSuffix(string(e.Data), "\nend") || len(e.Data) != 5004 {
		t.Fatalf("second event %q…, %v", e.ID, err)
	}
	// Close ends the response properly: a clean end, not a cut connection.
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last event: %v, want io.EOF", err)
	}
	if err := <-ended; err != nil {
		t.Errorf("stream: %v", err)
	}
}

// TestDetachedStreamNoticesClientLeaving checks that a detached stream's
// context ends when the client closes its connection, without a write.
func TestDetachedStreamNoticesClientLeaving(t *testing.T) {
	srv, ended := detachedServer(t, func(ctx context.Context, s *sse.Stream) error {
		if err := s.Comment("hello"); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("the client's leaving went unnoticed")
		}
	})
	conn := rawGet(t, srv, "HTTP/1.1")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != ": hello\n" {
		t.Fatalf("read %q, %v; want the comment", line, err)
	}
	conn.Close()
	if err := <-ended; err != nil && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
		t.Error(err)
	}
}

// TestDetachedStreamNoticesClientSending checks that a detached stream's
// context ends when the client sends anything (a client of an event
// stream has nothing to say), also bytes sent right behind the request,
// before the stream was taken over; and that the stream then ends
// properly: Close sends the last chunk, so that the client reads a
// complete response, and the connection closes without a reset even when
// the client sent more than one read takes.
func TestDetachedStreamNoticesClientSending(t *testing.T) {
	for _, tc := range []struct {
		name string
		sent string
		// early: sent in the same write as the request.
		early bool
	}{
		{"one byte", "x", false},
		{"many bytes", strings.Repeat("x", 64<<10), false},
		{"with the request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Bool // the client has begun to send
			sent.Store(tc.early)
			srv, ended := detachedServer(t, func(ctx context.Context, s *sse.Stream) error {
				if err := s.Comment("hello"); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					if !sent.Load() {
						return errors.New("the stream's context ended before the client sent anything")
					}
					return nil
				case <-time.After(30 * time.Second):
					return errors.New("what the client sent went unnoticed")
				}
			})
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
			if tc.early {
				req += tc.sent
			}
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body := bufio.NewReader(resp.Body)
			if line, err := body.ReadString('\n'); err != nil || line != ": hello\n" {
				t.Fatalf("read %q, %v; want the comment", line, err)
			}
			if !tc.early {
				sent.Store(true)
				if _, err := io.WriteString(conn, tc.sent); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-ended:
				if err != nil {
					t.Errorf("stream: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the stream did not end after the client sent something")
			}
			rest, err := io.ReadAll(body)
			if err != nil {
				t.Errorf("the response did not end with its last chunk: %v", err)
			}
			if string(rest) != "\n" {
				t.Errorf("after the comment: %q, want the end of the comment only", rest)
			}
			if n, err := br.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("after the response: %d bytes, %v; want the connection closed (io.EOF, not a reset)", n, err)
			}
		})
	}
}

// isConnReset reports a write to a connection the client has closed.
func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// TestDetachedStreamWriteTimeout checks that a client that stops reading
// makes a detached stream's writes fail instead of blocking.
func TestDetachedStreamWriteTimeout(t *testing.T) {
	srv, ended := detachedServer(t, func(_ context.Context, s *sse.Stream) error {
		s.WriteTimeout = 100 * time.Millisecond
		data := []byte(strings.Repeat("x", 64<<10))
		for {
			if err := s.Send(sse.Event{Data: data}); err != nil {
				return nil
			}
		}
	})
	rawGet(t, srv, "HTTP/1.1")
	select {
	case err := <-ended:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a detached stream blocked on a client that does not read")
	}
}

// TestDetachNotPossible checks that streams Detach cannot take over go on
// on their handlers.
func TestDetachNotPossible(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
		proto string
	}{
		{name: "HTTP/2", http2: true},
		{name: "HTTP/1.0", proto: "HTTP/1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s, err := sse.NewStream(w)
				if err != nil {
					return
				}
				if _, err := s.Detach(r); !errors.Is(err, sse.ErrNotDetachable) {
					_ = s.Send(sse.Event{Data: fmt.Appendf(nil, "Detach: %v", err)})
					return
				}
				_ = s.Send(sse.Event{Data: []byte("on the handler")})
			}))
			if tc.http2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			var body io.Reader
			if tc.proto != "" {
				resp, err := http.ReadResponse(bufio.NewReader(rawGet(t, srv, tc.proto)), nil)
				if err != nil {
					t.Fatal(err)
				}
				body = resp.Body
			} else {
				resp, err := srv.Client().Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body = resp.Body
			}
			got, err := readAll(sse.NewReader(body))
			if err != io.EOF || len(got) != 1 || string(got[0].Data) != "on the handler" {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}
