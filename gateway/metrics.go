package gateway

import (
	"net/http"
	"slices"
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

// Series lists the label values the gateway reports under, as far as its
// configuration tells, so that the metrics can make those series at zero
// before the first request (telemetry.Metrics.Prime).
type Series struct {
	// Writes are the endpoints that accept writes: POST /v1/jobs and every
	// route, by method and path template as requests are counted.
	Writes []Endpoint
	// Jobs maps each job type a client may submit to the queues it may go
	// to (its own, and those X-Priority may pick).
	Jobs map[string][]string
	// RateLimited maps each route with a rate limit to the tenants it
	// limits: every configured tenant, or "default" without auth.
	RateLimited map[string][]string
	// Breakers maps a kind of circuit breaker ("redis", "precheck") to the
	// names of the gateway's breakers of that kind.
	Breakers map[string][]string
}

// Endpoint is an HTTP method and a path template.
type Endpoint struct{ Method, Path string }

// Series returns what the gateway reports under (see Series).
func (g *Gateway) Series() Series {
	g = g.current.Load()
	s := Series{
		Jobs:        map[string][]string{},
		RateLimited: map[string][]string{},
		Breakers:    map[string][]string{"redis": {g.cfg.RedisBreaker.Name}},
	}
	for key := range g.submitPaths {
		method, path, _ := strings.Cut(key, " ")
		s.Writes = append(s.Writes, Endpoint{Method: method, Path: path})
	}
	slices.SortFunc(s.Writes, func(a, b Endpoint) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	tenants := []string{DefaultTenant}
	if g.cfg.Auth.Enabled {
		tenants = nil
		for _, t := range g.cfg.Auth.Tenants {
			tenants = append(tenants, t.Name)
		}
	}
	for _, r := range g.cfg.Routes {
		qs := append([]string{r.Queue}, r.Priorities...)
		slices.Sort(qs)
		s.Jobs[r.Name] = slices.Compact(qs)
		if r.RateLimit != nil {
			s.RateLimited[r.Name] = tenants
		}
	}
	for _, t := range g.cfg.Types {
		qs := append([]string{t.Queue}, g.cfg.Queues...)
		slices.Sort(qs)
		s.Jobs[t.Name] = slices.Compact(qs)
	}
	for _, b := range g.prechecks {
		s.Breakers["precheck"] = append(s.Breakers["precheck"], b.Name())
	}
	slices.Sort(s.Breakers["precheck"])
	return s
}

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
	case slug == "unavailable" || slug == "replica-ack-timeout":
		return "redis_unavailable"
	case strings.HasPrefix(slug, "precheck"):
		return "precheck"
	case p.Status == http.StatusBadRequest || p.Status == http.StatusRequestEntityTooLarge ||
		p.Status == http.StatusUnsupportedMediaType || p.Status == http.StatusUnprocessableEntity:
		return "validation"
	}
	return "other"
}
