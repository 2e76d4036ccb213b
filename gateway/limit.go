package gateway

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/ratelimit"
)

// limit applies a route's rate limit to the caller's tenant. Every answer
// of a limited route carries the RateLimit headers; over the limit it is
// 429 with Retry-After. If the limiter cannot decide (its Redis is
// unreachable) the request goes on: the accept path has its own guard.
func (g *Gateway) limit(c *echo.Context, rt *Route) error {
	if rt.RateLimit == nil {
		return nil
	}
	t := tenant(c)
	d, err := g.deps.Limiter.Allow(c.Request().Context(), t+"\x00"+rt.Name, *rt.RateLimit)
	if err != nil {
		g.log.Warn("rate limiter unavailable; request let through", "route", rt.Name, "tenant", t, "err", err)
		return nil
	}
	ratelimit.Headers(c.Response().Header(), d)
	if d.Allowed {
		return nil
	}
	g.metrics.RateLimited(t, rt.Name)
	p := problem(http.StatusTooManyRequests, "rate-limited",
		"tenant "+t+" is over the rate limit of route "+rt.Name+" ("+
			strconv.FormatFloat(rt.RateLimit.Rate, 'g', -1, 64)+"/s, burst "+strconv.Itoa(rt.RateLimit.Burst)+")")
	return p
}
