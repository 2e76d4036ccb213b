// Package sse implements Server-Sent Events as described in the WHATWG HTML
// Living Standard ("Server-sent events"): encoding events onto the wire, a
// Stream that writes them to an HTTP response and flushes each one, and a
// Reader that parses a stream the way a browser's EventSource does.
//
// The encoder never lets a caller-supplied value end an event early or add a
// field: CR, LF and NUL are removed from IDs, event names and comments, and
// data is split into one data field per line whatever its line endings.
package sse

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one server-sent event.
type Event struct {
	// ID is the event ID. A client remembers the last ID it received and
	// sends it back in the Last-Event-ID header when it reconnects. CR, LF
	// and NUL are removed when encoding; an ID that is empty after that is
	// not written, so the client keeps the ID it had.
	ID string

	// Event is the event type. CR, LF and NUL are removed when encoding. An
	// empty Event stands for the default type, "message".
	Event string

	// Data is the payload. Every line of it, whether ended by LF, CRLF or
	// CR, is written as its own data field; a client joins them with LF.
	Data []byte

	// Retry, if positive, asks the client to wait this long before
	// reconnecting. It is sent in whole milliseconds, rounded down, but
	// never less than one.
	Retry time.Duration
}

// unsafeChars are the bytes that must not appear in an id, event or comment
// line: CR and LF would end the line, and an id containing NUL is ignored by
// clients.
const unsafeChars = "\r\n\x00"

// AppendEvent appends the wire encoding of e to dst and returns the extended
// slice. It allocates only when dst has to grow, so reusing the returned
// slice (as in buf = AppendEvent(buf[:0], e)) makes encoding free of
// allocations.
//
// Fields are written in the order id, event, retry, data, followed by the
// blank line that ends the event. At least one data field is always written,
// so a client dispatches the event even when Data is empty, except for an
// Event that carries nothing but Retry (ID and Event empty once sanitised,
// and no Data): that encodes to a bare retry field, which changes the
// client's reconnection delay without dispatching anything.
func AppendEvent(dst []byte, e Event) []byte {
	hasID, hasName := hasSafe(e.ID), hasSafe(e.Event)
	if hasID {
		dst = append(dst, "id: "...)
		dst = appendClean(dst, e.ID)
		dst = append(dst, '\n')
	}
	if hasName {
		dst = append(dst, "event: "...)
		dst = appendClean(dst, e.Event)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, retryMillis(e.Retry), 10)
		dst = append(dst, '\n')
		if !hasID && !hasName && len(e.Data) == 0 {
			return append(dst, '\n')
		}
	}
	data := e.Data
	for {
		i := indexLineEnd(data)
		line := data
		if i >= 0 {
			line = data[:i]
		}
		if len(line) == 0 {
			dst = append(dst, "data:\n"...)
		} else {
			dst = append(dst, "data: "...)
			dst = append(dst, line...)
			dst = append(dst, '\n')
		}
		if i < 0 {
			break
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// AppendComment appends a comment line followed by a blank line, ": text\n\n",
// to dst and returns the extended slice. Clients ignore comments, which makes
// them suitable as heartbeats that keep idle connections and proxies alive.
// CR, LF and NUL are removed from text; if nothing is left, the comment is
// just ":".
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	if hasSafe(text) {
		dst = append(dst, ' ')
		dst = appendClean(dst, text)
	}
	return append(dst, '\n', '\n')
}

// WriteTo writes the encoding of e, as produced by AppendEvent, to w in a
// single Write call. It implements io.WriterTo.
func (e Event) WriteTo(w io.Writer) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	b := AppendEvent((*bp)[:0], e)
	n, err := w.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return int64(n), err
}

// maxPooledBuf is the largest buffer WriteTo returns to the pool, so that
// one very large event does not pin its memory.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{
	New: func() any {
		b := make([]byte, 0, 512)
		return &b
	},
}

// retryMillis converts a positive reconnection delay to whole milliseconds,
// rounding down but to no less than one.
func retryMillis(d time.Duration) int64 {
	if ms := d.Milliseconds(); ms > 0 {
		return ms
	}
	return 1
}

// indexLineEnd returns the index of the first CR or LF in b, or -1.
func indexLineEnd(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// hasSafe reports whether s contains any byte that appendClean keeps.
func hasSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n', 0:
		default:
			return true
		}
	}
	return false
}

// appendClean appends s to dst without its CR, LF and NUL bytes.
func appendClean(dst []byte, s string) []byte {
	for {
		i := strings.IndexAny(s, unsafeChars)
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		s = s[i+1:]
	}
}
