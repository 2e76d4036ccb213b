package sse_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

func ExampleAppendEvent() {
	var buf []byte
	buf = sse.AppendComment(buf, "heartbeat")
	buf = sse.AppendEvent(buf, sse.Event{
		ID:    "job-7f3k:2",
		Event: "running",
		Data:  []byte("{\"state\":\"running\",\n\"attempt\":1}"),
	})
	buf = sse.AppendEvent(buf, sse.Event{Retry: 5 * time.Second})
	os.Stdout.Write(buf)
	// Output:
	// : heartbeat
	//
	// id: job-7f3k:2
	// event: running
	// data: {"state":"running",
	// data: "attempt":1}
	//
	// retry: 5000
}

func ExampleReader() {
	stream := "id: 1\nevent: queued\ndata: {}\n\n: heartbeat\n\nid: 2\ndata: first line\ndata: second line\n\n"
	r := sse.NewReader(strings.NewReader(stream))
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("id=%s event=%q data=%q\n", e.ID, e.Event, e.Data)
	}
	// Output:
	// id=1 event="queued" data="{}"
	// id=2 event="" data="first line\nsecond line"
}

// subscribe stands in for the gateway's feed of job events, replaying those
// after afterID first.
func subscribe(ctx context.Context, jobID, afterID string) <-chan sse.Event {
	ch := make(chan sse.Event)
	close(ch)
	return ch
}

func ExampleStream() {
	shutdown := make(chan struct{}) // closed when the server begins shutting down

	http.HandleFunc("GET /jobs/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		events := subscribe(r.Context(), r.PathValue("id"), sse.ParseLastEventID(r))
		s, err := sse.NewStream(w)
		if err != nil {
			return
		}
		heartbeat := time.NewTicker(15 * time.Second)
		defer heartbeat.Stop()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return
				}
				if s.Send(e) != nil {
					return
				}
			case <-heartbeat.C:
				if s.Comment("heartbeat") != nil {
					return
				}
			case <-shutdown:
				// Ask the client to come back to another instance soon.
				_ = s.Retry(time.Second)
				return
			case <-r.Context().Done():
				return
			}
		}
	})
}
