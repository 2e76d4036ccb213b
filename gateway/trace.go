package gateway

import (
	"net/http"

	"github.com/labstack/echo/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the gateway's spans' instrumentation scope.
const tracerName = "github.com/asyncgw/asyncgw/gateway"

// trace starts the server span of a request, continuing the caller's trace
// when the request carries a traceparent, and puts it in the request's
// context: a job accepted by the request stores that context, so that its
// attempts join the trace. Health probes get no span.
func (g *Gateway) trace(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		route := c.Path() // routing is done before middleware runs
		if c.RouteInfo().Name == echo.NotFoundRouteName {
			route = ""
		}
		if route == "/healthz" || route == "/readyz" {
			return next(c)
		}
		method := spanMethod(r.Method)
		name := method
		if method == "_OTHER" {
			name = "HTTP"
		}
		if route != "" {
			name += " " + route
		}
		attrs := make([]attribute.KeyValue, 0, 3)
		attrs = append(attrs,
			semconv.HTTPRequestMethodKey.String(method),
			attribute.String("asyncgw.request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
		)
		if route != "" {
			attrs = append(attrs, semconv.HTTPRoute(route))
		}
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := otel.Tracer(tracerName).Start(ctx, name,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()
		c.SetRequest(r.WithContext(ctx))

		err := next(c)
		status := http.StatusOK
		if resp, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && resp.Status != 0 {
			status = resp.Status
		}
		if err != nil {
			status = toProblem(err).Status
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		return err
	}
}

// spanMethod is the method as spans name it: a standard method, or
// "_OTHER", so that junk methods do not make new span names.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
