package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TracingConfig configures tracing. Tracing is off unless Enabled is set
// or the standard OpenTelemetry environment asks for it: an
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, and
// neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none. The
// exporter reads the other OTEL_EXPORTER_OTLP_* variables (headers,
// timeout, compression, TLS) itself.
type TracingConfig struct {
	// Enabled exports spans even when the environment names no collector.
	// Defaults to false.
	Enabled bool
	// ServiceName is the service.name of the spans. Defaults to
	// OTEL_SERVICE_NAME, or "asyncgw".
	ServiceName string
	// Endpoint is the URL of the OTLP/HTTP collector, overriding the
	// environment; a URL without a path gets /v1/traces. Defaults to the
	// environment's, or http://localhost:4318/v1/traces.
	Endpoint string
	// SampleRatio is the share of new traces recorded, more than 0 and at
	// most 1; a span with a parent follows its parent's choice. Defaults
	// to what OTEL_TRACES_SAMPLER chooses when that is set, or 1.
	SampleRatio float64
}

func (c TracingConfig) validate() error {
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing.sample_ratio: %v must be more than 0 and at most 1", c.SampleRatio)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tracing.endpoint: %q is not an http(s) URL", c.Endpoint)
		}
	}
	return nil
}

// exporting reports whether spans are exported, from cfg and the standard
// environment variables.
func (c TracingConfig) exporting(getenv func(string) string) (bool, error) {
	if c.Enabled {
		return true, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "", "otlp":
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
}

// SetupTracing makes the process's tracing: it always installs the W3C
// Trace Context and Baggage propagators, so that a caller's traceparent
// is carried through jobs and into upstream calls; and, when cfg or the
// environment turns exporting on, a tracer provider that sends spans to
// an OTLP/HTTP collector. Otherwise the global no-op provider stays:
// spans cost nothing and a caller's trace context passes through
// unchanged. version is the service.version of the spans.
//
// shutdown flushes the spans not yet sent and stops the exporter; call it
// once, when the process ends.
func SetupTracing(ctx context.Context, cfg TracingConfig, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	noop := func(context.Context) error { return nil }
	if err := cfg.validate(); err != nil {
		return noop, err
	}
	on, err := cfg.exporting(os.Getenv)
	if err != nil || !on {
		return noop, err
	}
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(cfg.Endpoint)))
	}
	res, err := tracingResource(ctx, cfg, version)
	if err != nil {
		return noop, err
	}
	// New only configures the exporter: it connects when spans are sent.
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return noop, fmt.Errorf("create trace exporter: %w", err)
	}
	tp := newTracerProvider(cfg, res, exp, os.Getenv)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// newTracerProvider returns the SDK provider that batches spans to exp.
func newTracerProvider(cfg TracingConfig, res *resource.Resource, exp sdktrace.SpanExporter, getenv func(string) string) *sdktrace.TracerProvider {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	}
	// With no ratio configured, OTEL_TRACES_SAMPLER (read by the SDK)
	// chooses when it is set.
	if cfg.SampleRatio > 0 || getenv("OTEL_TRACES_SAMPLER") == "" {
		ratio := cfg.SampleRatio
		if ratio == 0 {
			ratio = 1
		}
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	}
	return sdktrace.NewTracerProvider(opts...)
}

// tracesURL adds the standard OTLP traces path to a collector URL that has
// no path.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// tracingResource describes the process: service.name from cfg, else from
// OTEL_SERVICE_NAME, else "asyncgw"; service.version; the SDK; and what
// OTEL_RESOURCE_ATTRIBUTES adds.
func tracingResource(ctx context.Context, cfg TracingConfig, version string) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("asyncgw")),
		resource.WithFromEnv(), // later options win
	}
	if version != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	if cfg.ServiceName != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)))
	}
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return res, nil
}
