package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// otelEnv are the variables SetupTracing and the SDK read.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

// clearOTelEnv empties the OpenTelemetry environment for the test.
func clearOTelEnv(t *testing.T) {
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
}

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestTracingExporting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		enabled bool
		env     map[string]string
		want    bool
		wantErr bool
	}{
		{name: "nothing set"},
		{name: "enabled", enabled: true, want: true},
		{name: "enabled wins over the environment", enabled: true, env: map[string]string{"OTEL_SDK_DISABLED": "true"}, want: true},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, want: true},
		{name: "otlp named", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: true},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "sdk not disabled", env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: true},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "exporter unsupported", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := TracingConfig{Enabled: tt.enabled}.exporting(func(k string) string { return tt.env[k] })
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("exporting = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTracingConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg   TracingConfig
		field string // "" when valid
	}{
		{TracingConfig{}, ""},
		{TracingConfig{SampleRatio: 0.25, Endpoint: "https://collector.example:4318"}, ""},
		{TracingConfig{SampleRatio: -0.1}, "tracing.sample_ratio"},
		{TracingConfig{SampleRatio: 1.5}, "tracing.sample_ratio"},
		{TracingConfig{Endpoint: "collector:4318"}, "tracing.endpoint"},
		{TracingConfig{Endpoint: "grpc://collector:4317"}, "tracing.endpoint"},
	}
	for _, tt := range tests {
		err := tt.cfg.validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: %v", tt.cfg, err)
		case tt.field != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.field+":")):
			t.Errorf("%+v: error %v, want one naming %s", tt.cfg, err, tt.field)
		}
	}
}

func TestTracesURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://c:4318":            "http://c:4318/v1/traces",
		"http://c:4318/":           "http://c:4318/v1/traces",
		"https://c/otlp/v1/traces": "https://c/otlp/v1/traces",
		"http://c:4318/custom":     "http://c:4318/custom",
	} {
		if got := tracesURL(in); got != want {
			t.Errorf("tracesURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTracingResource(t *testing.T) {
	clearOTelEnv(t)
	ctx := context.Background()
	name := func(cfg TracingConfig) string {
		t.Helper()
		res, err := tracingResource(ctx, cfg, "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := res.Set().Value(semconv.ServiceVersionKey)
		if v.AsString() != "1.2.3" {
			t.Errorf("service.version = %q, want 1.2.3", v.AsString())
		}
		n, _ := res.Set().Value(semconv.ServiceNameKey)
		return n.AsString()
	}
	if got := name(TracingConfig{}); got != "asyncgw" {
		t.Errorf("default service.name = %q, want asyncgw", got)
	}
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	if got := name(TracingConfig{}); got != "from-env" {
		t.Errorf("service.name with OTEL_SERVICE_NAME = %q, want from-env", got)
	}
	if got := name(TracingConfig{ServiceName: "configured"}); got != "configured" {
		t.Errorf("configured service.name = %q, want configured", got)
	}
}

// TestTracerProviderSampling: a new trace is kept at the configured ratio,
// but a span whose caller sampled its trace is always kept, as the
// caller's child.
func TestTracerProviderSampling(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	res, err := tracingResource(context.Background(), TracingConfig{ServiceName: "svc"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	tp := newTracerProvider(TracingConfig{SampleRatio: 1e-12}, res, exp, none)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tp.Tracer("test")

	_, root := tr.Start(context.Background(), "root")
	root.End()
	if root.SpanContext().IsSampled() {
		t.Error("a new trace was sampled at a ratio of 1e-12")
	}

	tc := propagation.TraceContext{}
	ctx := tc.Extract(context.Background(), propagation.MapCarrier{"traceparent": parent})
	_, child := tr.Start(ctx, "child")
	child.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "child" {
		t.Fatalf("exported %d spans (%v), want the child only", len(spans), spans.Snapshots())
	}
	s := spans[0]
	if s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("child: trace %s parent %s, want the caller's", s.SpanContext.TraceID(), s.Parent.SpanID())
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range s.Resource.Attributes() {
		attrs[kv.Key] = kv.Value.Emit()
	}
	if attrs[semconv.ServiceNameKey] != "svc" || attrs[semconv.ServiceVersionKey] != "v1" {
		t.Errorf("resource = %v, want service svc v1", attrs)
	}

	// Without a configured ratio every new trace is kept.
	exp.Reset()
	all := newTracerProvider(TracingConfig{}, res, exp, none)
	t.Cleanup(func() { _ = all.Shutdown(context.Background()) })
	_, sp := all.Tracer("test").Start(context.Background(), "root")
	sp.End()
	if !sp.SpanContext().IsSampled() {
		t.Error("default ratio: a new trace was not sampled")
	}
}

// TestSetupTracingOff: with nothing asking for export, SetupTracing only
// installs the propagators, and a caller's trace context passes through a
// span unchanged.
func TestSetupTracingOff(t *testing.T) {
	clearOTelEnv(t)
	shutdown, err := SetupTracing(context.Background(), TracingConfig{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Fatal("an SDK tracer provider was installed with tracing off")
	}
	prop := otel.GetTextMapPropagator()
	ctx := prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": parent, "baggage": "k=v"})
	ctx, span := otel.Tracer("test").Start(ctx, "op")
	defer span.End()
	out := propagation.MapCarrier{}
	prop.Inject(ctx, out)
	if out["traceparent"] != parent || out["baggage"] != "k=v" {
		t.Errorf("injected %v, want the caller's traceparent and baggage", out)
	}
}

// TestSetupTracingExports: turned on, spans reach an OTLP/HTTP collector
// at the configured endpoint when the provider shuts down.
func TestSetupTracingExports(t *testing.T) {
	clearOTelEnv(t)
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	shutdown, err := SetupTracing(context.Background(), TracingConfig{Enabled: true, Endpoint: srv.URL, ServiceName: "svc-test"}, "9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "exported-span", trace.WithSpanKind(trace.SpanKindServer))
	if !span.SpanContext().IsSampled() {
		t.Error("span not sampled with tracing on")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := bytes.Join(bodies, nil)
	for _, want := range []string{"exported-span", "svc-test", "9.9.9"} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("the collector got no export naming %q (%d requests)", want, len(bodies))
		}
	}
}
