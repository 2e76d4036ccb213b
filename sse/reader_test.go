package sse_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

// readAll returns every event in r up to the first error.
func readAll(r *sse.Reader) ([]sse.Event, error) {
	var events []sse.Event
	for {
		e, err := r.Next()
		if err != nil {
			return events, err
		}
		events = append(events, e)
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []sse.Event
		wantErr error
	}{
		{"empty", "", nil, io.EOF},
		{"single", "data: hello\n\n", []sse.Event{{Data: []byte("hello")}}, io.EOF},
		{"all fields", "id: 1\nevent: state\nretry: 2500\ndata: x\n\n",
			[]sse.Event{{ID: "1", Event: "state", Data: []byte("x"), Retry: 2500 * time.Millisecond}}, io.EOF},
		{"multi-line data", "data: a\ndata: b\ndata:\ndata: c\n\n", []sse.Event{{Data: []byte("a\nb\n\nc")}}, io.EOF},
		{"crlf", "id: 1\r\ndata: a\r\ndata: b\r\n\r\n", []sse.Event{{ID: "1", Data: []byte("a\nb")}}, io.EOF},
		{"cr", "id: 1\rdata: a\rdata: b\r\r", []sse.Event{{ID: "1", Data: []byte("a\nb")}}, io.EOF},
		{"cr then crlf", "data: a\r\r\ndata: b\n\n", []sse.Event{{Data: []byte("a")}, {Data: []byte("b")}}, io.EOF},
		{"comments ignored", ": hi\ndata: a\n: there\ndata: b\n\n:\n\n", []sse.Event{{Data: []byte("a\nb")}}, io.EOF},
		{"no space after colon", "data:x\n\n", []sse.Event{{Data: []byte("x")}}, io.EOF},
		{"only one space stripped", "data:  x \n\n", []sse.Event{{Data: []byte(" x ")}}, io.EOF},
		{"field without colon", "data\ndata\n\n", []sse.Event{{Data: []byte("\n")}}, io.EOF},
		{"empty data dispatched", "data:\n\n", []sse.Event{{Data: []byte{}}}, io.EOF},
		{"no data not dispatched", "id: 1\nevent: x\n\ndata: y\n\n", []sse.Event{{ID: "1", Data: []byte("y")}}, io.EOF},
		{"unknown field ignored", "foo: bar\ndata: x\n\n", []sse.Event{{Data: []byte("x")}}, io.EOF},
		{"field names are case-sensitive", "Data: x\ndata: y\n\n", []sse.Event{{Data: []byte("y")}}, io.EOF},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
			[]sse.Event{{ID: "1", Data: []byte("a")}, {ID: "1", Data: []byte("b")}, {ID: "", Data: []byte("c")}}, io.EOF},
		{"id with nul ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			[]sse.Event{{ID: "1", Data: []byte("a")}, {ID: "1", Data: []byte("b")}}, io.EOF},
		{"event type resets", "event: a\ndata: 1\n\ndata: 2\n\n",
			[]sse.Event{{Event: "a", Data: []byte("1")}, {Data: []byte("2")}}, io.EOF},
		{"bad retry ignored", "retry: 1.5\nretry: -1\nretry:\nretry: 1e3\ndata: x\n\n", []sse.Event{{Data: []byte("x")}}, io.EOF},
		{"retry overflow ignored", "retry: 99999999999999999999\ndata: x\n\n", []sse.Event{{Data: []byte("x")}}, io.EOF},
		{"retry only", "retry: 5000\n\n", []sse.Event{{Retry: 5 * time.Second}}, io.EOF},
		{"retry zero", "retry: 0\n\n", []sse.Event{{}}, io.EOF},
		{"bom skipped", "\ufeffdata: x\n\n", []sse.Event{{Data: []byte("x")}}, io.EOF},
		{"only one bom skipped", "\ufeff\ufeffdata: x\n\ndata: y\n\n", []sse.Event{{Data: []byte("y")}}, io.EOF},
		{"bom later kept", "data: a\n\n\ufeffdata: b\n\n", []sse.Event{{Data: []byte("a")}}, io.EOF},
		{"utf-8 and invalid bytes", "data: héllo \xff\n\n", []sse.Event{{Data: []byte("héllo \xff")}}, io.EOF},
		{"unterminated event", "data: a\n\ndata: b\n", []sse.Event{{Data: []byte("a")}}, io.ErrUnexpectedEOF},
		{"unterminated line", "data: a\n\ndata: b", []sse.Event{{Data: []byte("a")}}, io.ErrUnexpectedEOF},
		{"trailing comment", "data: a\n\n: bye\n", []sse.Event{{Data: []byte("a")}}, io.EOF},
		{"trailing cr", "data: a\r\r", []sse.Event{{Data: []byte("a")}}, io.EOF},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data err": iotest.DataErrReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := readAll(sse.NewReader(wrap(strings.NewReader(tt.in))))
				if err != tt.wantErr {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events:\n got %+v\nwant %+v", got, tt.want)
				}
			})
		}
	}
}

func TestReaderStickyError(t *testing.T) {
	errRead := errors.New("connection reset")
	r := sse.NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(errRead)))
	if e, err := r.Next(); err != nil || string(e.Data) != "a" {
		t.Fatalf("Next = %+v, %v; want data a", e, err)
	}
	for range 2 {
		if _, err := r.Next(); err != errRead {
			t.Fatalf("Next error = %v, want %v", err, errRead)
		}
	}
}

func TestReaderMaxEventSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"long line", "data: " + strings.Repeat("x", 100) + "\n\n"},
		{"long comment", ":" + strings.Repeat("x", 100) + "\n\n"},
		{"many lines", strings.Repeat("data: 0123456789\n", 10) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sse.NewReader(strings.NewReader("data: ok\n\n" + tt.in))
			r.MaxEventSize = 64
			if e, err := r.Next(); err != nil || string(e.Data) != "ok" {
				t.Fatalf("Next = %+v, %v; want data ok", e, err)
			}
			if _, err := r.Next(); err != sse.ErrEventTooLarge {
				t.Fatalf("Next error = %v, want %v", err, sse.ErrEventTooLarge)
			}
		})
	}
}

func TestReaderDataNotShared(t *testing.T) {
	r := sse.NewReader(strings.NewReader("data: first\n\ndata: second\n\n"))
	a, _ := r.Next()
	b, _ := r.Next()
	if string(a.Data) != "first" || string(b.Data) != "second" {
		t.Errorf("got %q and %q, want first and second", a.Data, b.Data)
	}
}

func TestRoundTrip(t *testing.T) {
	events := []sse.Event{
		{ID: "1", Event: "queued", Data: []byte(`{"state":"queued"}`)},
		{ID: "2", Event: "running", Data: []byte("line one\nline two\n"), Retry: 3 * time.Second},
		{ID: "3", Data: []byte("crlf\r\nand\rcr")},
		{ID: "4", Event: "empty"},
		{ID: "5", Data: []byte("  leading spaces and trailing  ")},
		{ID: "6", Data: []byte("\n\n\n")},
		{ID: "7\r\n", Event: "x\x00y", Data: []byte("sanitised header fields")},
		{Retry: 250 * time.Millisecond},
	}
	var buf []byte
	for i, e := range events {
		buf = sse.AppendEvent(buf, e)
		if i == 3 {
			buf = sse.AppendComment(buf, "heartbeat")
		}
	}
	want := []sse.Event{
		{ID: "1", Event: "queued", Data: []byte(`{"state":"queued"}`)},
		{ID: "2", Event: "running", Data: []byte("line one\nline two\n"), Retry: 3 * time.Second},
		{ID: "3", Data: []byte("crlf\nand\ncr")},
		{ID: "4", Event: "empty", Data: []byte{}},
		{ID: "5", Data: []byte("  leading spaces and trailing  ")},
		{ID: "6", Data: []byte("\n\n\n")},
		{ID: "7", Event: "xy", Data: []byte("sanitised header fields")},
		{ID: "7", Retry: 250 * time.Millisecond},
	}
	got, err := readAll(sse.NewReader(bytes.NewReader(buf)))
	if err != io.EOF {
		t.Fatalf("error = %v, want io.EOF", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}
