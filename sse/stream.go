package sse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultWriteTimeout is the bound a Stream puts on each write when its
// WriteTimeout is zero.
const DefaultWriteTimeout = 10 * time.Second

// maxKeptBuf is the largest encoding buffer a Stream keeps between writes.
const maxKeptBuf = 64 << 10

// Stream writes server-sent events to an HTTP response, flushing after each
// write so that the client receives it at once.
//
// A Stream is not safe for concurrent use: all calls must come from one
// goroutine, normally the handler's, or be serialised by the caller.
//
// Once a write fails the Stream is broken, and every later call returns the
// same error; the handler should then return.
type Stream struct {
	// WriteTimeout bounds each write and flush, so that a client that has
	// stopped reading cannot block the writer forever. Zero means
	// DefaultWriteTimeout and a negative value means no bound. The bound
	// is set with http.ResponseController.SetWriteDeadline before each
	// write and lifted once the write has been flushed, so a stream that
	// is idle between events is never cut off; it is skipped when the
	// ResponseWriter does not support deadlines.
	WriteTimeout time.Duration
	// OnSend, when set, is called after each event Send has written.
	OnSend func()

	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error

	// conn is the connection once the stream is detached; writes then
	// go to it directly, each event framed as one HTTP/1.1 chunk.
	conn   net.Conn
	cancel context.CancelFunc
}

// NewStream starts an event stream on w. It sets the headers
// Content-Type: text/event-stream, Cache-Control: no-cache,
// Connection: keep-alive and X-Accel-Buffering: no (which stops nginx from
// buffering the response), writes status 200, clears any write deadline the
// server set so that the stream can outlive http.Server.WriteTimeout, and
// flushes the headers to the client.
//
// NewStream must be called before anything else is written to w. It fails if
// w cannot be flushed, in which case the status line may already have been
// sent and the handler can only return.
func NewStream(w http.ResponseWriter) (*Stream, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, fmt.Errorf("sse: clearing write deadline: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("sse: flushing response: %w", err)
	}
	return &Stream{w: w, rc: rc}, nil
}

// Send writes e, encoded as by AppendEvent, and flushes it.
func (s *Stream) Send(e Event) error {
	if s.err != nil {
		return s.err
	}
	s.buf = AppendEvent(s.buf[:0], e)
	if err := s.write(); err != nil {
		return err
	}
	if s.OnSend != nil {
		s.OnSend()
	}
	return nil
}

// Comment writes a comment, encoded as by AppendComment, and flushes it.
// Clients ignore comments; sending one periodically keeps an idle connection
// from being closed by proxies and reveals a client that has gone away.
func (s *Stream) Comment(text string) error {
	if s.err != nil {
		return s.err
	}
	s.buf = AppendComment(s.buf[:0], text)
	return s.write()
}

// Retry writes a bare retry field, asking the client to wait d before it
// reconnects, and flushes it. A server that is shutting down can send it
// just before closing the stream. Nothing is dispatched to the client's
// event listeners. A d of less than one millisecond is sent as one
// millisecond.
func (s *Stream) Retry(d time.Duration) error {
	if s.err != nil {
		return s.err
	}
	d = max(d, time.Millisecond)
	s.buf = AppendEvent(s.buf[:0], Event{Retry: d})
	return s.write()
}

// write sends s.buf under the write timeout and flushes it, recording any
// failure in s.err.
func (s *Stream) write() error {
	if err := s.writeBuf(); err != nil {
		s.err = err
	}
	if cap(s.buf) > maxKeptBuf {
		s.buf = nil
	}
	return s.err
}

func (s *Stream) writeBuf() error {
	timeout := s.WriteTimeout
	if timeout == 0 {
		timeout = DefaultWriteTimeout
	}
	if s.conn != nil {
		return s.writeConn(appendChunk(make([]byte, 0, len(s.buf)+12), s.buf), timeout)
	}
	bounded := false
	if timeout > 0 {
		err := s.rc.SetWriteDeadline(time.Now().Add(timeout))
		switch {
		case err == nil:
			bounded = true
		case !errors.Is(err, http.ErrNotSupported):
			return err
		}
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil {
		return err
	}
	if bounded {
		// Lift the deadline again: on HTTP/2 an expired deadline resets
		// the stream even when nothing is being written, which would end
		// a stream that is merely idle between events.
		return s.rc.SetWriteDeadline(time.Time{})
	}
	return nil
}

// ErrNotDetachable is returned by Detach for a connection it cannot take
// over: HTTP/2, HTTP/1.0, or a ResponseWriter that cannot be hijacked.
var ErrNotDetachable = errors.New("sse: stream cannot be detached from its handler")

// Detach takes the stream's connection over from the HTTP server, so that
// the handler can return while the stream goes on in a goroutine of the
// caller's. An idle stream then costs that goroutine, a small reader and
// the connection, instead of the server's goroutines, buffers and request
// for as long as it stays open.
//
// r is the stream's request. Only HTTP/1.1 connections can be detached,
// and only after NewStream and before the handler returns; otherwise
// Detach returns an error wrapping ErrNotDetachable and the stream goes on
// as before, on the handler's goroutine. The handler must not use the
// request or the ResponseWriter again after a successful Detach.
//
// The returned context is done when the client closes the connection (or
// sends anything: a client of an event stream has nothing to say) and
// when the stream is closed. Close must be called to end a detached
// stream: it sends the end of the response and closes the connection.
func (s *Stream) Detach(r *http.Request) (context.Context, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.conn != nil {
		return nil, errors.New("sse: stream already detached")
	}
	// net/http frames a flushed HTTP/1.1 response without a length in
	// chunks; the detached stream continues that framing.
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || s.w.Header().Get("Content-Length") != "" || s.w.Header().Get("Transfer-Encoding") != "" {
		return nil, ErrNotDetachable
	}
	conn, rw, err := s.rc.Hijack()
	if err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			return nil, fmt.Errorf("%w: %w", ErrNotDetachable, err)
		}
		return nil, fmt.Errorf("sse: detaching: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.conn, s.cancel, s.w, s.rc = conn, cancel, nil, nil
	s.buf = nil
	// Bytes the server had read ahead were sent before the stream was
	// taken over (a pipelined request, which is not answered): the client
	// has sent something, and the stream ends as for bytes sent later.
	if rw.Reader.Buffered() > 0 {
		cancel()
	}
	go watch(conn, cancel)
	return ctx, nil
}

// watch reads conn until it fails, then closes it: the first byte or
// failure cancels (the client has sent something, has gone, or the stream
// was closed). It goes on reading, and drops what it reads, so that the
// connection is not closed on unread bytes, which resets it and can lose
// the end of the stream at the client.
func watch(conn net.Conn, cancel context.CancelFunc) {
	defer conn.Close()
	defer cancel()
	var b [16]byte
	for {
		n, err := conn.Read(b[:])
		if n > 0 {
			cancel()
		}
		if err != nil {
			return
		}
	}
}

// lingerTime bounds how long a closed stream's connection waits for the
// client to close its side before it is closed anyway.
const lingerTime = 500 * time.Millisecond

// Close ends a detached stream: it sends the end of the response and
// closes the connection. On a stream that is not detached it does
// nothing, as the response ends when the handler returns. It is safe to
// call more than once.
//
// A TCP connection is closed for writing at once, and closed whole when
// the client closes its side (or after lingerTime), with what the client
// sent meanwhile read and dropped: closing it on unread bytes would reset
// it.
func (s *Stream) Close() error {
	if s.conn == nil {
		return nil
	}
	defer s.cancel()
	var err error
	if s.err == nil {
		timeout := s.WriteTimeout
		if timeout == 0 {
			timeout = DefaultWriteTimeout
		}
		err = s.writeConn([]byte("0\r\n\r\n"), timeout)
		s.err = net.ErrClosed
		if cw, ok := s.conn.(interface{ CloseWrite() error }); ok && err == nil {
			if cw.CloseWrite() == nil && s.conn.SetReadDeadline(time.Now().Add(lingerTime)) == nil {
				return nil // watch closes it
			}
		}
	}
	if cerr := s.conn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// writeConn writes b to the detached connection, bounded by timeout when
// it is positive.
func (s *Stream) writeConn(b []byte, timeout time.Duration) error {
	if timeout > 0 {
		if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
	}
	_, err := s.conn.Write(b)
	return err
}

// appendChunk appends p as one HTTP/1.1 chunk.
func appendChunk(dst, p []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(len(p)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, p...)
	return append(dst, "\r\n"...)
}

// MaxLastEventIDLen is the longest value ParseLastEventID accepts, in bytes.
const MaxLastEventIDLen = 256

// ParseLastEventID returns the ID of the last event a reconnecting client
// saw. It reads the Last-Event-ID header or, when that is missing or empty,
// the lastEventId query parameter, which lets a browser's EventSource, which
// cannot set headers, pass an ID on its first connection. Surrounding spaces
// and tabs are trimmed. It returns "" when there is no ID or when the value
// is longer than MaxLastEventIDLen bytes or contains CR, LF or NUL.
func ParseLastEventID(r *http.Request) string {
	v := r.Header.Get("Last-Event-ID")
	if strings.Trim(v, " \t") == "" && r.URL != nil {
		v = r.URL.Query().Get("lastEventId")
	}
	if strings.ContainsAny(v, unsafeChars) {
		return ""
	}
	v = strings.Trim(v, " \t")
	if len(v) > MaxLastEventIDLen {
		return ""
	}
	return v
}
