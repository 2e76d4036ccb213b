package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"time"
)

// DefaultMaxEventSize is the limit a Reader applies when its MaxEventSize is
// zero.
const DefaultMaxEventSize = 1 << 20

// ErrEventTooLarge is returned by Reader.Next when a line or the data of an
// event exceeds the Reader's MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

// Reader parses an event stream following the processing model of the
// WHATWG specification: lines may end in LF, CRLF or CR; a leading byte
// order mark is skipped; comment lines and unknown fields are ignored; the
// data fields of an event are joined with LF; an id containing NUL is
// ignored; and a retry value that is not all ASCII digits is ignored.
//
// Unlike a browser, a Reader works on bytes and passes invalid UTF-8
// through unchanged.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	// MaxEventSize limits the length of a single line and the total data of
	// a single event, in bytes. Zero means DefaultMaxEventSize. Set it
	// before the first call to Next.
	MaxEventSize int

	br      *bufio.Reader
	line    []byte
	started bool // a line has been read, so a BOM can no longer occur
	skipLF  bool // the last line ended in CR, so an LF right after it belongs to it
	err     error

	lastID    string
	eventType string
	data      []byte
	hasData   bool
	retry     time.Duration
	hasRetry  bool
	pending   bool // a field of an unfinished event has been read
}

// NewReader returns a Reader that parses the event stream read from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReader(r)}
}

// Next returns the next event in the stream.
//
// The returned Event's ID is the last event ID in effect when the event
// ended, which a browser reports as MessageEvent.lastEventId: an event with
// no id field carries the ID of an earlier one. Event is "" when the event
// had no event field, meaning the type "message". Data is nil only for
// events without data fields.
//
// A browser dispatches only events that have data. Next also returns an
// event that has no data but does have a valid retry field, such as the one
// Stream.Retry writes, so that callers can observe reconnection advice; its
// Retry is set and its Data is nil. Retry is zero for events without a
// retry field.
//
// At the end of the stream Next returns io.EOF. If the stream ends in the
// middle of a line or after some fields of an event without the blank line
// that completes it, the incomplete event is discarded, as the
// specification requires, and Next returns io.ErrUnexpectedEOF. Any error is
// sticky: later calls return it again.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && (len(line) > 0 || r.pending) {
				err = io.ErrUnexpectedEOF
			}
			r.err = err
			r.reset()
			return Event{}, err
		}
		if len(line) == 0 {
			if e, ok := r.dispatch(); ok {
				return e, nil
			}
			continue
		}
		if err := r.processLine(line); err != nil {
			r.err = err
			r.reset()
			return Event{}, err
		}
	}
}

func (r *Reader) maxSize() int {
	if r.MaxEventSize > 0 {
		return r.MaxEventSize
	}
	return DefaultMaxEventSize
}

// readLine returns the next line without its line ending. The slice is valid
// until the next call. At the end of the stream it returns any unterminated
// final line together with the error.
func (r *Reader) readLine() ([]byte, error) {
	if r.skipLF {
		r.skipLF = false
		b, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '\n' {
			_ = r.br.UnreadByte()
		}
	}
	r.line = r.line[:0]
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				return r.line, err
			}
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		i := indexLineEnd(buf)
		n := len(buf)
		if i >= 0 {
			n = i
		}
		if len(r.line)+n > r.maxSize() {
			return nil, ErrEventTooLarge
		}
		r.line = append(r.line, buf[:n]...)
		if i < 0 {
			_, _ = r.br.Discard(n)
			continue
		}
		r.skipLF = buf[i] == '\r'
		_, _ = r.br.Discard(i + 1)
		if !r.started {
			r.started = true
			r.line = bytes.TrimPrefix(r.line, []byte("\uFEFF"))
		}
		return r.line, nil
	}
}

// processLine interprets one non-empty line.
func (r *Reader) processLine(line []byte) error {
	if line[0] == ':' {
		return nil
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		r.eventType = string(value)
		r.pending = true
	case "data":
		if len(r.data)+len(value)+1 > r.maxSize() {
			return ErrEventTooLarge
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
		r.pending = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.lastID = string(value)
		}
		r.pending = true
	case "retry":
		if d, ok := parseRetry(value); ok {
			r.retry, r.hasRetry = d, true
		}
		r.pending = true
	}
	return nil
}

// dispatch ends the current event, reporting whether it is to be returned.
func (r *Reader) dispatch() (Event, bool) {
	defer r.reset()
	if !r.hasData && !r.hasRetry {
		return Event{}, false
	}
	e := Event{ID: r.lastID, Event: r.eventType}
	if r.hasData {
		e.Data = bytes.Clone(r.data[:len(r.data)-1])
	}
	if r.hasRetry {
		e.Retry = r.retry
	}
	return e, true
}

// reset clears the per-event state; the last event ID survives.
func (r *Reader) reset() {
	r.eventType = ""
	r.data = r.data[:0]
	r.hasData = false
	r.retry, r.hasRetry = 0, false
	r.pending = false
}

// parseRetry parses a retry value, which must consist of ASCII digits only,
// as a number of milliseconds.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMillis = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if ms > (maxMillis-d)/10 {
			return 0, false
		}
		ms = ms*10 + d
	}
	return time.Duration(ms) * time.Millisecond, true
}
