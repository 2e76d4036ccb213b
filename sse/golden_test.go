package sse_test

import (
	"bytes"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// writeTranscript writes the conversation recorded in
// testdata/transcript.golden: what a client watching one job sees from
// connection to server shutdown.
func writeTranscript(t *testing.T, s *sse.Stream) {
	t.Helper()
	steps := []func() error{
		func() error { return s.Comment("connected") },
		func() error {
			return s.Send(sse.Event{ID: "job-7f3k:1", Event: "queued", Data: []byte(`{"state":"queued"}`)})
		},
		func() error {
			return s.Send(sse.Event{ID: "job-7f3k:2", Event: "running", Data: []byte(`{"state":"running","attempt":1}`)})
		},
		func() error { return s.Comment("heartbeat") },
		func() error {
			return s.Send(sse.Event{ID: "job-7f3k:3", Event: "log", Data: []byte("upstream said:\r\nline one\nline two\r")})
		},
		func() error {
			return s.Send(sse.Event{ID: "job-7f3k:4\r\nevent: forged", Event: "retrying\n\ndata: forged", Data: []byte(`{"state":"retrying"}`), Retry: 2 * time.Second})
		},
		func() error {
			return s.Send(sse.Event{ID: "job-7f3k:5", Event: "succeeded", Data: []byte(`{"state":"succeeded","status":201}`)})
		},
		func() error { return s.Retry(5 * time.Second) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTranscriptGolden(t *testing.T) {
	rec := httptest.NewRecorder()
	s, err := sse.NewStream(rec)
	if err != nil {
		t.Fatal(err)
	}
	writeTranscript(t, s)
	got := rec.Body.Bytes()

	golden := filepath.Join("testdata", "transcript.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("transcript differs from %s (run go test -update to rewrite it)\n got:\n%s\nwant:\n%s", golden, got, want)
	}

	events, err := readAll(sse.NewReader(bytes.NewReader(want)))
	if err != io.EOF {
		t.Fatalf("reading golden transcript: %v", err)
	}
	wantEvents := []sse.Event{
		{ID: "job-7f3k:1", Event: "queued", Data: []byte(`{"state":"queued"}`)},
		{ID: "job-7f3k:2", Event: "running", Data: []byte(`{"state":"running","attempt":1}`)},
		{ID: "job-7f3k:3", Event: "log", Data: []byte("upstream said:\nline one\nline two\n")},
		{ID: "job-7f3k:4event: forged", Event: "retryingdata: forged", Data: []byte(`{"state":"retrying"}`), Retry: 2 * time.Second},
		{ID: "job-7f3k:5", Event: "succeeded", Data: []byte(`{"state":"succeeded","status":201}`)},
		{ID: "job-7f3k:5", Retry: 5 * time.Second},
	}
	if !reflect.DeepEqual(events, wantEvents) {
		t.Errorf("events in golden transcript:\n got %+v\nwant %+v", events, wantEvents)
	}
}
