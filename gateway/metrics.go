package gateway

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/breaker"
)

// Metrics receives what the gateway counts (telemetry.Metrics). Every
// label value it is given comes from the configuration or a fixed set,
// never from a client.
type Metrics interface {
	// ObserveHTTP records an answered request by route template.
	ObserveHTTP(route, method string, code int, d time.Duration)
	// Accepted counts a job stored by a write.
	Accepted(queue, jobType string)
	// Rejected counts a write refused before anything was stored.
	Rejected(reason string)
	// RateLimited counts a 429 of a route's rate limit.
	RateLimited(tenant, route string)
	// Completed counts a job the gateway ended (canceled).
	Completed(queue, jobType, state string)
	// StreamOpened and StreamClosed track open event streams by scope
	// ("job", "tenant"); EventSent counts events written to them.
	StreamOpened(scope string)
	StreamClosed(scope string)
	EventSent()
	// BreakerChanged reports a state change of the Redis or a pre-check
	// breaker.
	BreakerChanged(kind, name string, to breaker.State)
	// Ready records the outcome of a readiness check.
	Ready(ok bool)
}

type nopMetrics struct{}

func (nopMetrics) ObserveHTTP(string, string, int, time.Duration) {}
func (nopMetrics) Accepted(string, string)                        {}
func (nopMetrics) Rejected(string)                                {}
func (nopMetrics) RateLimited(string, string)                     {}
func (nopMetrics) Completed(string, string, string)               {}
func (nopMetrics) StreamOpened(string)                            {}
func (nopMetrics) StreamClosed(string)                            {}
func (nopMetrics) EventSent()                                     {}
func (nopMetrics) BreakerChanged(string, string, breaker.State)   {}
func (nopMetrics) Ready(bool)                                     {}

// acceptedKey marks, in the echo context, a write that stored a job.
const acceptedKey = "asyncgw.accepted"

// accepted is what acceptedKey holds.
type accepted struct{ id, queue, jobType string }

// observe counts one answered request: by route template, and for writes,
// whether a job was stored or why not.
func (g *Gateway) observe(c *echo.Context, status int, p *Problem, d time.Duration) {
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	method := c.Request().Method
	g.metrics.ObserveHTTP(route, method, status, d)
	if !g.submitPaths[method+" "+c.Path()] {
		return
	}
	if a, ok := c.Get(acceptedKey).(*accepted); ok {
		g.metrics.Accepted(a.queue, a.jobType)
		return
	}
	if status >= 400 && p != nil {
		g.metrics.Rejected(rejectReason(p))
	}
}

// rejectReason maps a problem to the reasons of asyncgw_jobs_rejected_total.
func rejectReason(p *Problem) string {
	slug := p.Type[strings.LastIndexByte(p.Type, '/')+1:]
	switch {
	case slug == "unauthorized" || slug == "forbidden":
		return "auth"
	case strings.Contains(slug, "idempotency"):
		return "idempotency"
	case slug == "rate-limited":
		return "rate_limit"
	case slug == "overloaded":
		return "backpressure"
	case slug == "unavailable":
		return "redis_unavailable"
	case strings.HasPrefix(slug, "precheck"):
		return "precheck"
	case p.Status == http.StatusBadRequest || p.Status == http.StatusRequestEntityTooLarge ||
		p.Status == http.StatusUnsupportedMediaType || p.Status == http.StatusUnprocessableEntity:
		return "validation"
	}
	return "other"
}
