package worker

import (
	"context"
	"net/url"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/asyncgw/asyncgw/jobs"
)

// tracerName names the worker's spans' instrumentation scope. It is the
// path of the package the worker lived in before jobs/worker, kept so that
// queries on the scope still find the worker's spans.
const tracerName = "github.com/asyncgw/asyncgw/jobs"

// traceContext returns ctx in the trace stored with req, when it has one.
func traceContext(ctx context.Context, req *jobs.Request) context.Context {
	if req.TraceParent == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": req.TraceParent}
	if req.TraceState != "" {
		carrier["tracestate"] = req.TraceState
	}
	return propagation.TraceContext{}.Extract(ctx, carrier)
}

// startAttempt starts the span of one attempt of j, in the trace the job
// was accepted in; the returned context carries it into the call. started
// is when the attempt was recorded: when that is the job's start
// (j.StartedAt, on a cycle's first attempt), the waited before it is
// first recorded as a "queue wait" span.
func startAttempt(ctx context.Context, j *jobs.Job, req *jobs.Request, started time.Time, waited time.Duration) (context.Context, trace.Span) {
	ctx = traceContext(ctx, req)
	tracer := otel.Tracer(tracerName)
	attrs := []attribute.KeyValue{
		attribute.String("asyncgw.job.id", j.ID),
		attribute.String("asyncgw.job.type", j.Type),
		attribute.String("asyncgw.queue", j.Queue),
		attribute.String("asyncgw.tenant", j.Tenant),
	}
	if j.StartedAt != nil && j.StartedAt.Equal(started) {
		_, wait := tracer.Start(ctx, "queue wait",
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithTimestamp(started.Add(-max(waited, 0))),
			trace.WithAttributes(attrs...))
		wait.End(trace.WithTimestamp(started))
	}
	kind := trace.SpanKindInternal // a Go handler
	if req.URL != "" {
		kind = trace.SpanKindClient
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(spanMethod(req.Method)))
		if u, err := url.Parse(req.URL); err == nil && u.Hostname() != "" {
			attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
		}
	}
	attrs = append(attrs, attribute.Int("asyncgw.attempt", j.Attempt))
	return tracer.Start(ctx, "attempt", trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// endAttempt ends the span of an attempt with its outcome.
func endAttempt(span trace.Span, res *jobs.Result, err error) {
	if res != nil {
		span.SetAttributes(semconv.HTTPResponseStatusCode(res.Status))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// spanMethod is the method of a stored request as spans name it.
func spanMethod(m string) string {
	if m == "" {
		return "POST" // forward's default
	}
	return m
}
