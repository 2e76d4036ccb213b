package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/webhook"
)

// Tracing is global to the process: the first test that needs it installs
// an SDK tracer provider for the whole package, which keeps only the spans
// of the traces a test watches. Tests that do not watch are unaffected,
// but for a traceparent on the calls they cause.
var (
	tracesOnce sync.Once
	traces     *traceSink
)

// recordTraces installs the package's tracer provider and the W3C
// propagators, once, and returns the sink of the watched traces.
func recordTraces() *traceSink {
	tracesOnce.Do(func() {
		traces = &traceSink{rec: tracetest.NewSpanRecorder(), watched: map[trace.TraceID]bool{}}
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
		otel.SetTracerProvider(sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
			sdktrace.WithSpanProcessor(traces),
		))
	})
	return traces
}

// traceSink is a span processor that hands the spans of watched traces to
// a span recorder and ignores the rest.
type traceSink struct {
	rec *tracetest.SpanRecorder

	mu      sync.Mutex
	watched map[trace.TraceID]bool
}

var _ sdktrace.SpanProcessor = (*traceSink)(nil)

func (s *traceSink) watch(id trace.TraceID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watched[id] = true
}

func (s *traceSink) watching(id trace.TraceID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watched[id]
}

func (s *traceSink) OnStart(ctx context.Context, sp sdktrace.ReadWriteSpan) {
	if s.watching(sp.SpanContext().TraceID()) {
		s.rec.OnStart(ctx, sp)
	}
}

func (s *traceSink) OnEnd(sp sdktrace.ReadOnlySpan) {
	if s.watching(sp.SpanContext().TraceID()) {
		s.rec.OnEnd(sp)
	}
}

func (s *traceSink) Shutdown(context.Context) error   { return nil }
func (s *traceSink) ForceFlush(context.Context) error { return nil }

// ended returns the ended spans of trace id.
func (s *traceSink) ended(id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.rec.Ended() {
		if sp.SpanContext().TraceID() == id {
			out = append(out, sp)
		}
	}
	return out
}

// traceparentRE is a version 00 traceparent.
var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)

// parseTraceparent splits a traceparent into its trace and parent span
// IDs, failing t unless it is one well-formed value.
func parseTraceparent(t *testing.T, what string, h http.Header) (traceID, spanID string) {
	t.Helper()
	vs := h.Values("Traceparent")
	if len(vs) != 1 {
		t.Fatalf("%s: %d traceparent headers %q, want 1", what, len(vs), vs)
	}
	m := traceparentRE.FindStringSubmatch(vs[0])
	if m == nil || m[1] == strings.Repeat("0", 32) || m[2] == strings.Repeat("0", 16) {
		t.Fatalf("%s: traceparent %q is not valid", what, vs[0])
	}
	return m[1], m[2]
}

// newTraceparent returns a sampled traceparent of a new trace.
func newTraceparent(t *testing.T) (tp string, tid trace.TraceID, sid trace.SpanID) {
	t.Helper()
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	tid[0] |= 1 // never all zeros
	sid[0] |= 1
	return fmt.Sprintf("00-%s-%s-01", tid, sid), tid, sid
}

func attr(sp sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range sp.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestTraceContinues: a job submitted with a traceparent continues the
// caller's trace: each upstream attempt gets a traceparent of the same
// trace, with a parent span of its own, and so does the webhook that
// reports the job's end. The trace holds the gateway's server span, the
// queue wait, one span per attempt and the delivery's attempt.
func TestTraceContinues(t *testing.T) {
	t.Parallel()
	sink := recordTraces()
	h := Start(t, Options{
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 3}},
		Webhooks: &webhook.Config{
			Policy:   webhook.Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
			Secrets:  []string{newSecret(t)},
			Schedule: []time.Duration{50 * time.Millisecond},
		},
	})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if c.Attempt == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		okJSON(w, r, c)
	})
	rc := newReceiver(t, nil)
	tp, tid, sid := newTraceparent(t)
	sink.watch(tid)

	r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), http.Header{
		"Content-Type": {"application/json"}, "X-Callback-URL": {rc.URL}, "Traceparent": {tp},
	})
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: status %d, body %s", r.Status, r.Body)
	}
	var a gateway.Accepted
	_ = json.Unmarshal(r.Body, &a)
	h.WaitState(t, a.ID, jobs.StateSucceeded)

	calls := h.Upstream.Calls(a.ID)
	if len(calls) != 2 {
		t.Fatalf("upstream got %d calls, want 2", len(calls))
	}
	upstreamParents := map[string]bool{}
	for _, c := range calls {
		gotTrace, parent := parseTraceparent(t, fmt.Sprintf("attempt %d", c.Attempt), c.Header)
		if gotTrace != tid.String() || parent == sid.String() {
			t.Errorf("attempt %d: traceparent %q, want trace %s under a span other than the caller's %s",
				c.Attempt, c.Header.Get("Traceparent"), tid, sid)
		}
		upstreamParents[parent] = true
	}
	if len(upstreamParents) != 2 {
		t.Errorf("the two attempts share a parent span: %v", upstreamParents)
	}
	d := rc.waitDeliveries(t, 1)[0]
	if gotTrace, _ := parseTraceparent(t, "webhook delivery", d.Header); gotTrace != tid.String() {
		t.Errorf("webhook delivery: traceparent %q, want trace %s", d.Header.Get("Traceparent"), tid)
	}

	// Spans end just after the answers that show them: wait for the last.
	var spans []sdktrace.ReadOnlySpan
	var server, wait, delivery sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	Eventually(t, WaitTimeout, func() (bool, string) {
		spans = sink.ended(tid)
		server, wait, delivery, attempts = nil, nil, nil, nil
		for _, sp := range spans {
			switch {
			case sp.Name() == "POST /v1/orders":
				server = sp
			case sp.Name() == "queue wait" && attr(sp, "asyncgw.job.id").AsString() == a.ID:
				wait = sp
			case sp.Name() == "attempt" && attr(sp, "asyncgw.job.id").AsString() == a.ID:
				attempts = append(attempts, sp)
			case sp.Name() == "attempt" && attr(sp, "asyncgw.job.type").AsString() == webhook.JobType:
				delivery = sp
			}
		}
		return server != nil && wait != nil && delivery != nil && len(attempts) == 2,
			fmt.Sprintf("trace %s has %d spans: server %v, queue wait %v, %d attempts, delivery %v",
				tid, len(spans), server != nil, wait != nil, len(attempts), delivery != nil)
	})

	if server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID() != sid || !server.Parent().IsRemote() {
		t.Errorf("server span: kind %v, parent %v, want a server span under the caller's span %s", server.SpanKind(), server.Parent().SpanID(), sid)
	}
	if got := attr(server, "http.route").AsString(); got != "/v1/orders" {
		t.Errorf("server span http.route = %q", got)
	}
	if got := attr(server, "http.response.status_code").AsInt64(); got != http.StatusAccepted {
		t.Errorf("server span http.response.status_code = %d, want 202", got)
	}
	if attr(server, "asyncgw.request_id").AsString() == "" {
		t.Error("server span has no asyncgw.request_id")
	}
	for _, sp := range append([]sdktrace.ReadOnlySpan{wait, delivery}, attempts...) {
		if sp.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("%s of %s: parent %s, want the server span %s", sp.Name(), attr(sp, "asyncgw.job.id").AsString(),
				sp.Parent().SpanID(), server.SpanContext().SpanID())
		}
	}
	for _, sp := range attempts {
		if attr(sp, "asyncgw.attempt").AsInt64() == 1 &&
			(wait.StartTime().Before(server.StartTime()) || wait.EndTime().Before(wait.StartTime()) || wait.EndTime().After(sp.StartTime())) {
			t.Errorf("queue wait %s–%s is not between the accept (%s) and the first attempt (%s)",
				wait.StartTime(), wait.EndTime(), server.StartTime(), sp.StartTime())
		}
	}
	for _, sp := range attempts {
		n := attr(sp, "asyncgw.attempt").AsInt64()
		if !upstreamParents[sp.SpanContext().SpanID().String()] {
			t.Errorf("attempt %d: span %s is not a parent the upstream saw (%v)", n, sp.SpanContext().SpanID(), upstreamParents)
		}
		if sp.SpanKind() != trace.SpanKindClient || attr(sp, "asyncgw.queue").AsString() != h.Queues.Default ||
			attr(sp, "asyncgw.tenant").AsString() != gateway.DefaultTenant || attr(sp, "asyncgw.job.type").AsString() != "orders" {
			t.Errorf("attempt %d: kind %v, attributes %v", n, sp.SpanKind(), sp.Attributes())
		}
		wantStatus, wantErr := int64(http.StatusOK), false
		if n == 1 {
			wantStatus, wantErr = http.StatusServiceUnavailable, true
		}
		if attr(sp, "http.response.status_code").AsInt64() != wantStatus || (sp.Status().Code.String() == "Error") != wantErr {
			t.Errorf("attempt %d: status code %d, span status %v; want %d, error %v",
				n, attr(sp, "http.response.status_code").AsInt64(), sp.Status(), wantStatus, wantErr)
		}
	}
	if _, parent := parseTraceparent(t, "webhook delivery", d.Header); parent != delivery.SpanContext().SpanID().String() {
		t.Errorf("webhook delivery: parent span %s, want the delivery attempt's %s", parent, delivery.SpanContext().SpanID())
	}
}

// TestTraceWithoutTraceparent: a job submitted without a traceparent, or
// with a malformed one, reaches its upstream with a well-formed
// traceparent of its own, never the client's junk.
func TestTraceWithoutTraceparent(t *testing.T) {
	t.Parallel()
	recordTraces()
	h := Start(t, Options{
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 1}},
	})
	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"none", http.Header{}},
		{"malformed", http.Header{"Traceparent": {"00-garbage-01"}, "Tracestate": {"x=1"}}},
	} {
		tt.header.Set("Content-Type", "application/json")
		r := h.Do(t, http.MethodPost, "/v1/orders", []byte(`{"n":1}`), tt.header)
		if r.Status != http.StatusAccepted {
			t.Fatalf("%s: submit: status %d, body %s", tt.name, r.Status, r.Body)
		}
		var a gateway.Accepted
		_ = json.Unmarshal(r.Body, &a)
		h.WaitState(t, a.ID, jobs.StateSucceeded)
		calls := h.Upstream.Calls(a.ID)
		if len(calls) != 1 {
			t.Fatalf("%s: upstream got %d calls, want 1", tt.name, len(calls))
		}
		if len(calls[0].Header.Values("Traceparent")) > 0 {
			parseTraceparent(t, tt.name, calls[0].Header)
		}
	}
}
