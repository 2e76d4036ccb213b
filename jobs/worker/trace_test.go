package worker

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/asyncgw/asyncgw/jobs"
)

// TestForwardCarriesStoredTrace: with no tracer provider installed (tracing
// off), an attempt still carries the trace context stored with its job to
// the upstream, unchanged, in place of the traceparent among the stored
// headers.
func TestForwardCarriesStoredTrace(t *testing.T) {
	t.Parallel()
	// What SetupTracing installs; the tracer provider stays the no-op one.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	const (
		stored = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		stale  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	)
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer srv.Close()

	now := time.Now()
	j := &jobs.Job{ID: jobs.NewID(), Type: "orders", Queue: "default", Attempt: 1, StartedAt: &now}
	req := &jobs.Request{
		URL: srv.URL, Header: http.Header{"Traceparent": {stale}, "Tracestate": {"a=1"}},
		TraceParent: stored, TraceState: "a=2",
	}
	ctx, span := startAttempt(t.Context(), j, req, now, time.Second)
	if sc := trace.SpanContextFromContext(ctx); sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("attempt context in trace %s, want the stored one", sc.TraceID())
	}
	res, err := forward(ctx, srv.Client(), j, req, RouteOptions{MaxResponse: DefaultMaxResponse})
	endAttempt(span, res, err)
	if err != nil {
		t.Fatal(err)
	}
	h := <-got
	if v := h.Values("Traceparent"); len(v) != 1 || v[0] != stored {
		t.Errorf("upstream got traceparent %q, want only the stored %q", v, stored)
	}
	if v := h.Values("Tracestate"); len(v) != 1 || v[0] != "a=2" {
		t.Errorf("upstream got tracestate %q, want only the stored a=2", v)
	}
}

func TestTraceContextWithoutStoredTrace(t *testing.T) {
	t.Parallel()
	ctx := traceContext(t.Context(), &jobs.Request{})
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a request without a stored trace has a span context")
	}
	ctx = traceContext(t.Context(), &jobs.Request{TraceParent: "junk"})
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a malformed stored traceparent gives a span context")
	}
}
