package sse_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

func TestAppendEvent(t *testing.T) {
	tests := []struct {
		name string
		in   sse.Event
		want string
	}{
		{"zero", sse.Event{}, "data:\n\n"},
		{"data only", sse.Event{Data: []byte("hello")}, "data: hello\n\n"},
		{"all fields", sse.Event{ID: "42", Event: "progress", Data: []byte(`{"pct":50}`), Retry: 1500 * time.Millisecond},
			"id: 42\nevent: progress\nretry: 1500\ndata: {\"pct\":50}\n\n"},
		{"empty data with id", sse.Event{ID: "1"}, "id: 1\ndata:\n\n"},
		{"lf lines", sse.Event{Data: []byte("a\nb\nc")}, "data: a\ndata: b\ndata: c\n\n"},
		{"crlf lines", sse.Event{Data: []byte("a\r\nb\r\nc")}, "data: a\ndata: b\ndata: c\n\n"},
		{"cr lines", sse.Event{Data: []byte("a\rb\rc")}, "data: a\ndata: b\ndata: c\n\n"},
		{"mixed endings", sse.Event{Data: []byte("a\r\rb\n\r\nc")}, "data: a\ndata:\ndata: b\ndata:\ndata: c\n\n"},
		{"trailing newline", sse.Event{Data: []byte("a\n")}, "data: a\ndata:\n\n"},
		{"only newline", sse.Event{Data: []byte("\r\n")}, "data:\ndata:\n\n"},
		{"blank line in data", sse.Event{Data: []byte("a\n\nid: evil")}, "data: a\ndata:\ndata: id: evil\n\n"},
		{"leading space kept", sse.Event{Data: []byte(" x")}, "data:  x\n\n"},
		{"id injection lf", sse.Event{ID: "1\ndata: evil\n\n", Data: []byte("x")}, "id: 1data: evil\ndata: x\n\n"},
		{"id injection crlf", sse.Event{ID: "1\r\nevent: evil", Data: []byte("x")}, "id: 1event: evil\ndata: x\n\n"},
		{"id nul", sse.Event{ID: "a\x00b", Data: []byte("x")}, "id: ab\ndata: x\n\n"},
		{"id only unsafe", sse.Event{ID: "\r\n\x00", Data: []byte("x")}, "data: x\n\n"},
		{"event injection", sse.Event{Event: "done\r\rretry: 1", Data: []byte("x")}, "event: doneretry: 1\ndata: x\n\n"},
		{"retry only", sse.Event{Retry: 3 * time.Second}, "retry: 3000\n\n"},
		{"retry rounds down", sse.Event{Retry: 2500 * time.Microsecond, Data: []byte("x")}, "retry: 2\ndata: x\n\n"},
		{"retry at least 1ms", sse.Event{Retry: time.Nanosecond}, "retry: 1\n\n"},
		{"negative retry omitted", sse.Event{Retry: -time.Second, Data: []byte("x")}, "data: x\n\n"},
		{"retry with id", sse.Event{ID: "7", Retry: time.Second}, "id: 7\nretry: 1000\ndata:\n\n"},
		{"retry with unsafe id", sse.Event{ID: "\n", Retry: time.Second}, "retry: 1000\n\n"},
		{"nul in data kept", sse.Event{Data: []byte("a\x00b")}, "data: a\x00b\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(sse.AppendEvent(nil, tt.in))
			if got != tt.want {
				t.Errorf("AppendEvent(%+v)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, "\r") {
				t.Errorf("encoding contains CR: %q", got)
			}
			if i := strings.Index(got, "\n\n"); i != len(got)-2 {
				t.Errorf("blank line at %d, want only at the end: %q", i, got)
			}
		})
	}
}

func TestAppendEventAppends(t *testing.T) {
	dst := []byte("prefix")
	got := sse.AppendEvent(dst, sse.Event{Data: []byte("x")})
	if want := "prefixdata: x\n\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendComment(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"", ":\n\n"},
		{"ping", ": ping\n\n"},
		{"a\nb", ": ab\n\n"},
		{"a\r\n\r\ndata: evil", ": adata: evil\n\n"},
		{"\x00\r\n", ":\n\n"},
	}
	for _, tt := range tests {
		if got := string(sse.AppendComment(nil, tt.text)); got != tt.want {
			t.Errorf("AppendComment(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestEventWriteTo(t *testing.T) {
	e := sse.Event{ID: "9", Event: "state", Data: []byte("line1\nline2")}
	var buf bytes.Buffer
	n, err := e.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := sse.AppendEvent(nil, e)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteTo wrote %q, want %q", buf.Bytes(), want)
	}
	if n != int64(len(want)) {
		t.Errorf("WriteTo returned %d, want %d", n, len(want))
	}

	errWrite := errors.New("boom")
	if _, err := e.WriteTo(failWriter{errWrite}); !errors.Is(err, errWrite) {
		t.Errorf("WriteTo error = %v, want %v", err, errWrite)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestAppendEventAllocs(t *testing.T) {
	e := benchEvent()
	buf := sse.AppendEvent(nil, e)
	allocs := testing.AllocsPerRun(100, func() {
		buf = sse.AppendEvent(buf[:0], e)
		buf = sse.AppendComment(buf[:0], "heartbeat")
	})
	if allocs != 0 {
		t.Errorf("AppendEvent with a reused buffer allocated %v times per run, want 0", allocs)
	}
}

func benchEvent() sse.Event {
	return sse.Event{
		ID:    "01J9Z3K7Q8X4",
		Event: "job.state",
		Data:  []byte("{\"id\":\"01J9Z3K7Q8X4\",\"state\":\"running\",\n\"attempt\":2}"),
		Retry: 2 * time.Second,
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	e := benchEvent()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = sse.AppendEvent(buf[:0], e)
	}
	b.SetBytes(int64(len(buf)))
}
