package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestClientRetriesWithTheSameKey checks the careful client: a write that
// gets no answer or a 5xx is tried again with the same Idempotency-Key
// until it gets a 202, and the ledger keeps every answer and the job ID.
func TestClientRetriesWithTheSameKey(t *testing.T) {
	t.Parallel()
	var tries atomic.Int32
	keys := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys <- r.Header.Get("Idempotency-Key")
		switch tries.Add(1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			// No answer: the connection is cut.
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		default:
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"id":"job-1","state":"queued"}`))
		}
	}))
	defer srv.Close()
	l := &Ledger{}
	// No kept-alive connections: Go's transport would retry a POST with
	// an Idempotency-Key by itself when a kept-alive connection is cut.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	c := &client{url: srv.URL, http: hc, ledger: l, retryFor: 10 * time.Second}
	c.run(context.Background(), "k", 10, 100*time.Millisecond) // one write
	es := l.Entries()
	if len(es) != 1 {
		t.Fatalf("%d entries, want 1", len(es))
	}
	e := es[0]
	if !slices.Equal(e.Codes, []int{503, NoAnswer, 202}) || e.JobID != "job-1" || !e.Replayed || e.GaveUp {
		t.Errorf("entry %+v, want answers [503 0 202], job job-1, replayed", e)
	}
	close(keys)
	for k := range keys {
		if k != e.Key {
			t.Errorf("a try had Idempotency-Key %q, want %q on every try", k, e.Key)
		}
	}
}

// TestClientGivesUp checks that a write that never gets an answer is
// given up after retryFor.
func TestClientGivesUp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	l := &Ledger{}
	c := &client{url: srv.URL, http: srv.Client(), ledger: l, retryFor: 300 * time.Millisecond}
	c.run(context.Background(), "k", 10, 100*time.Millisecond)
	es := l.Entries()
	if len(es) != 1 || !es[0].GaveUp || es[0].Accepted() || len(es[0].Codes) < 2 {
		t.Errorf("entries %+v, want one given up after several 503s", es)
	}
}
