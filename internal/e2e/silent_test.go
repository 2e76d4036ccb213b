package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

// silentStream is an event stream that the test leaves unread, like a
// client that has stopped reading, until it reads it at the end.
type silentStream struct {
	conn net.Conn
	resp *http.Response
}

// openSilentStream opens GET path on a raw connection with a small receive
// buffer and reads only the answer's header.
func openSilentStream(t *testing.T, s *Server, path string) *silentStream {
	t.Helper()
	addr := strings.TrimPrefix(s.URL, "http://")
	d := net.Dialer{Timeout: RequestTimeout, Control: smallReadBuffer}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(StreamTimeout))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, addr); err != nil {
		t.Fatalf("send request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		t.Fatalf("read answer header: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", path, resp.StatusCode)
	}
	return &silentStream{conn: conn, resp: resp}
}

// readAll reads up to limit events, stopping early when the stream ends or
// fails.
func (s *silentStream) readAll(t *testing.T, limit int) []sse.Event {
	t.Helper()
	rd := sse.NewReader(s.resp.Body)
	var out []sse.Event
	for len(out) < limit {
		ev, err := rd.Next()
		if err != nil {
			t.Logf("silent stream ended after %d events: %v", len(out), err)
			break
		}
		out = append(out, ev)
	}
	return out
}
