package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/breaker"
)

// Precheck is a synchronous call made before a write is accepted: the
// upstream can refuse the write while the client is still there.
type Precheck struct {
	// URL receives a POST with the request's body and content type.
	// Required.
	URL string
	// Timeout bounds the call. Defaults to 2s.
	Timeout time.Duration
}

// maxPrecheckBody caps what is kept of a pre-check's answer.
const maxPrecheckBody = 64 << 10

// errPrecheckFailed: the pre-check could not give an answer (it failed, or
// its breaker is open).
var errPrecheckFailed = errors.New("pre-check unavailable")

// precheck calls the route's pre-check. It returns the JSON to attach to
// the job (nil if the answer had no JSON body), or a problem for the client.
func (g *Gateway) precheck(c *echo.Context, rt *Route, body []byte) (json.RawMessage, error) {
	pc := rt.Precheck
	if pc == nil {
		return nil, nil
	}
	r := c.Request()
	var status int
	var answer []byte
	var ctype string
	err := g.prechecks[rt.Name].Do(func() error {
		ctx, cancel := context.WithTimeout(r.Context(), pc.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, pc.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		req.Header.Set(echo.HeaderXRequestID, c.Response().Header().Get(echo.HeaderXRequestID))
		req.Header.Set("X-Asyncgw-Tenant", tenant(c))
		resp, err := g.precheckClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, maxPrecheckBody))
		status, ctype = resp.StatusCode, resp.Header.Get("Content-Type")
		if status >= 500 {
			return fmt.Errorf("pre-check answered %d", status)
		}
		return nil
	})
	if err != nil {
		g.log.Warn("pre-check failed", "route", rt.Name, "err", err, "tenant", tenant(c))
		p := problem(http.StatusServiceUnavailable, "precheck-unavailable",
			"the pre-check of this route is unavailable; nothing was stored, retry later")
		p.RetryAfter = 1
		if errors.Is(err, breaker.ErrOpen) {
			p.RetryAfter = int(g.prechecks[rt.Name].OpenTimeout().Seconds()) + 1
		}
		return nil, p
	}
	if status < 200 || status > 299 {
		// A refusal is the pre-check's own 4xx; anything else that is not
		// a 2xx (1xx, 3xx) refuses as 422.
		if status < 400 {
			status = http.StatusUnprocessableEntity
		}
		p := problem(status, "precheck-refused", "the pre-check refused the request")
		if len(answer) > 0 {
			p.Detail += ": " + sanitize(strings.TrimSpace(string(answer)))
		}
		return nil, p
	}
	if len(answer) > 0 && json.Valid(answer) && strings.Contains(ctype, "json") {
		return json.RawMessage(answer), nil
	}
	return nil, nil
}

// newPrecheckBreakers makes one breaker per route with a pre-check.
func newPrecheckBreakers(routes []Route, g *Gateway) (map[string]*breaker.Breaker, error) {
	out := map[string]*breaker.Breaker{}
	for _, r := range routes {
		if r.Precheck == nil {
			continue
		}
		b, err := breaker.New(breaker.Config{
			Name:     "precheck:" + r.Name,
			OnChange: func(name string, _, to breaker.State) { g.metrics.BreakerChanged("precheck", name, to) },
		}, g.log)
		if err != nil {
			return nil, err
		}
		out[r.Name] = b
	}
	return out, nil
}
