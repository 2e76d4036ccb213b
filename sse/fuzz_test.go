package sse_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

// normaliseLineEndings turns every CRLF and lone CR in b into LF.
func normaliseLineEndings(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

// stripUnsafe removes CR, LF and NUL from s.
func stripUnsafe(s string) string {
	return strings.NewReplacer("\r", "", "\n", "", "\x00", "").Replace(s)
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("1", "message", []byte("hello"), int64(0))
	f.Add("", "", []byte(""), int64(0))
	f.Add("", "", []byte(""), int64(time.Second))
	f.Add("id\r\nevent: x", "ev\n\ndata: y", []byte("a\r\nb\rc\nd"), int64(1500*time.Millisecond))
	f.Add("\x00", "\r", []byte("\n\n\r\r\n"), int64(-1))
	f.Add(" lead", " space", []byte(" data with space "), int64(999))
	f.Add("\ufeff", ":", []byte(":not a comment\n: nor this"), int64(1))
	f.Fuzz(func(t *testing.T, id, name string, data []byte, retry int64) {
		e := sse.Event{ID: id, Event: name, Data: data, Retry: time.Duration(retry)}
		enc := sse.AppendEvent(nil, e)

		if bytes.IndexByte(enc, '\r') >= 0 {
			t.Fatalf("encoding contains CR: %q", enc)
		}
		if i := bytes.Index(enc, []byte("\n\n")); i != len(enc)-2 {
			t.Fatalf("encoding has a blank line at %d, want only at the end: %q", i, enc)
		}
		var buf bytes.Buffer
		if _, err := e.WriteTo(&buf); err != nil || !bytes.Equal(buf.Bytes(), enc) {
			t.Fatalf("WriteTo = %q, %v; want %q", buf.Bytes(), err, enc)
		}

		r := sse.NewReader(bytes.NewReader(enc))
		got, err := r.Next()
		if err != nil {
			t.Fatalf("Next: %v (encoding %q)", err, enc)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("second Next error = %v, want io.EOF (encoding %q)", err, enc)
		}

		if want := normaliseLineEndings(data); !bytes.Equal(got.Data, want) {
			t.Errorf("Data = %q, want %q", got.Data, want)
		}
		if strings.ContainsAny(got.ID, "\r\n\x00") {
			t.Errorf("ID %q contains CR, LF or NUL", got.ID)
		}
		if want := stripUnsafe(id); got.ID != want {
			t.Errorf("ID = %q, want %q", got.ID, want)
		}
		if want := stripUnsafe(name); got.Event != want {
			t.Errorf("Event = %q, want %q", got.Event, want)
		}
		var wantRetry time.Duration
		if d := time.Duration(retry); d > 0 {
			wantRetry = max(d.Truncate(time.Millisecond), time.Millisecond)
		}
		if got.Retry != wantRetry {
			t.Errorf("Retry = %v, want %v", got.Retry, wantRetry)
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: state\nretry: 1000\ndata: a\ndata: b\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: comment\r\rdata\r\r"))
	f.Add([]byte("\ufeffdata: x\n\nid: \x00\ndata: y\n\nretry: 99999999999999999999\n\n"))
	f.Add([]byte("retry: 5000\n\ndata: unterminated"))
	f.Add([]byte(":\n\n\n\n\r\r\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		events, err := readAll(sse.NewReader(bytes.NewReader(in)))
		if err != io.EOF && err != io.ErrUnexpectedEOF {
			t.Fatalf("error = %v, want io.EOF or io.ErrUnexpectedEOF", err)
		}

		// Splitting the input into one-byte reads must not change the result.
		events2, err2 := readAll(sse.NewReader(iotest.OneByteReader(bytes.NewReader(in))))
		if err2 != err || len(events2) != len(events) {
			t.Fatalf("one-byte reads: %d events and %v, want %d and %v", len(events2), err2, len(events), err)
		}

		for i, e := range events {
			e2 := events2[i]
			if e.ID != e2.ID || e.Event != e2.Event || !bytes.Equal(e.Data, e2.Data) || e.Retry != e2.Retry {
				t.Fatalf("event %d: one-byte reads gave %+v, want %+v", i, e2, e)
			}
			if strings.ContainsAny(e.ID, "\r\n\x00") {
				t.Errorf("event %d: ID %q contains CR, LF or NUL", i, e.ID)
			}
			if strings.ContainsAny(e.Event, "\r\n") || bytes.IndexByte(e.Data, '\r') >= 0 {
				t.Errorf("event %d: line break in %+v", i, e)
			}
			if e.Data == nil && e.Retry <= 0 && !bytes.Contains(in, []byte("retry")) {
				t.Errorf("event %d: neither data nor retry: %+v", i, e)
			}

			// What was read encodes and reads back to the same data.
			r := sse.NewReader(bytes.NewReader(sse.AppendEvent(nil, sse.Event{Event: e.Event, Data: e.Data})))
			back, err := r.Next()
			if err != nil {
				t.Fatalf("event %d: re-reading: %v", i, err)
			}
			if !bytes.Equal(back.Data, e.Data) {
				t.Errorf("event %d: data re-read as %q, want %q", i, back.Data, e.Data)
			}
		}
	})
}
