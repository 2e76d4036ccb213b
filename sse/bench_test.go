package sse_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/sse"
)

// benchJob is a job resource as the gateway streams it at the end of a
// job: every timestamp set and the upstream's answer included.
func benchJob() *jobs.Job {
	created := time.Date(2026, 11, 21, 10, 30, 0, 123456789, time.UTC)
	started := created.Add(180 * time.Millisecond)
	finished := started.Add(1500 * time.Millisecond)
	return &jobs.Job{
		ID: "a5j7bmpopj6rqpkrug7jgpmjgu", Type: "orders", State: jobs.StateSucceeded, Queue: "default",
		Attempt: 1, MaxAttempts: 8, CreatedAt: created, UpdatedAt: finished,
		StartedAt: &started, FinishedAt: &finished,
		Result: &jobs.Result{
			Status: 201,
			Headers: map[string]string{
				"Content-Type": "application/json",
				"Location":     "/orders/8812",
			},
			Body: json.RawMessage(`{"id":8812,"sku":"A-1042","quantity":3,"note":"leave at the door","status":"confirmed"}`),
		},
	}
}

// benchEvents are the events the benchmarks encode: the job's terminal
// event with its resource on one line, as the gateway sends it, and the
// same resource indented, so that its data spans many lines.
func benchEvents(b *testing.B) []struct {
	name string
	ev   sse.Event
} {
	b.Helper()
	line, err := json.Marshal(benchJob())
	if err != nil {
		b.Fatal(err)
	}
	lines, err := json.MarshalIndent(benchJob(), "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	return []struct {
		name string
		ev   sse.Event
	}{
		{"job", sse.Event{ID: "3", Event: "succeeded", Data: line}},
		{"multiline", sse.Event{ID: "3", Event: "succeeded", Data: lines}},
	}
}

// BenchmarkEncode measures encoding one event: AppendEvent into a buffer
// that is reused, and Event.WriteTo (which borrows a pooled buffer).
func BenchmarkEncode(b *testing.B) {
	for _, tc := range benchEvents(b) {
		b.Run(tc.name+"/append", func(b *testing.B) {
			buf := sse.AppendEvent(nil, tc.ev)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = sse.AppendEvent(buf[:0], tc.ev)
			}
		})
		b.Run(tc.name+"/writeto", func(b *testing.B) {
			n, err := tc.ev.WriteTo(io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.ev.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// discardResponse is a ResponseWriter that flushes and throws away what is
// written: a client that reads as fast as the gateway writes.
type discardResponse struct {
	h     http.Header
	code  int
	bytes int64
}

func (w *discardResponse) Header() http.Header  { return w.h }
func (w *discardResponse) WriteHeader(code int) { w.code = code }
func (w *discardResponse) Flush()               {}

func (w *discardResponse) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	return len(p), nil
}

// deadlineResponse is a discardResponse that also takes write deadlines,
// as the ResponseWriter of net/http does, so that a Stream bounds each
// write.
type deadlineResponse struct{ discardResponse }

func (w *deadlineResponse) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkStreamSend measures Stream.Send: encoding, write and flush, and,
// with a ResponseWriter that takes deadlines, setting and lifting the write
// deadline around each write.
func BenchmarkStreamSend(b *testing.B) {
	for _, tc := range benchEvents(b) {
		for _, deadlines := range []bool{false, true} {
			name := tc.name
			if deadlines {
				name += "_deadline"
			}
			b.Run(name, func(b *testing.B) {
				var w http.ResponseWriter
				var d *discardResponse
				if deadlines {
					dw := &deadlineResponse{discardResponse{h: http.Header{}}}
					w, d = dw, &dw.discardResponse
				} else {
					d = &discardResponse{h: http.Header{}}
					w = d
				}
				s, err := sse.NewStream(w)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Send(tc.ev); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(d.bytes)
				b.ReportAllocs()
				for b.Loop() {
					if err := s.Send(tc.ev); err != nil {
						b.Fatal(err)
					}
				}
				if d.code != http.StatusOK {
					b.Fatalf("status %d, want 200", d.code)
				}
			})
		}
	}
}
