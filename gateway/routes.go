package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"
)

// build wires the echo application: middleware order, then routes.
func (g *Gateway) build() *echo.Echo {
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(g.log)
	if g.cors != nil {
		// Before routing: a preflight is answered whatever the path's
		// methods and without authentication.
		e.Pre(g.cors.middleware)
	}
	e.Use(requestID, g.trace, g.accessLog, recoverPanics)

	e.GET("/healthz", g.healthz)
	e.GET("/openapi.json", g.openAPI)
	e.GET("/readyz", g.readyz)
	if g.deps.MetricsHandler != nil {
		e.GET("/metrics", echo.WrapHandler(g.deps.MetricsHandler))
	}

	// Authentication is per route, not on a group: a group with
	// middleware adds a catch-all route that turns every 405 (a known path
	// called with another method) into a 404. Unknown paths get the
	// router's 404; the error handler makes both problems.
	auth := g.authenticate
	e.POST("/v1/jobs", g.submitGeneric, auth)
	if g.lister() != nil {
		e.GET("/v1/jobs", g.listJobs, auth)
	}
	e.GET("/v1/jobs/:id", g.getJob, auth)
	e.DELETE("/v1/jobs/:id", g.cancelJob, auth)
	e.GET("/v1/jobs/:id/result", g.getResult, auth)
	e.GET("/v1/jobs/:id/events", g.jobEvents, g.streamAuth(jobScope))
	e.POST("/v1/jobs/:id/stream-token", g.jobStreamToken, auth)
	e.GET("/v1/jobs/:id/webhooks", g.jobWebhooks, auth)
	e.GET("/v1/events", g.tenantEvents, g.streamAuth(tenantStreamScope))
	e.POST("/v1/events/stream-token", g.tenantStreamToken, auth)

	g.adminRoutes(e)
	g.consoleRoutes(e)

	for _, r := range g.routes {
		e.Add(r.Method, r.Path, g.submitRoute(r), auth)
	}
	if g.cfg.Demo {
		e.Any("/_demo/upstream", demoUpstream)
		e.Any("/_demo/upstream/*", demoUpstream)
	}
	return e
}

// requestID echoes a well-formed X-Request-ID or makes one.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(rid) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			rid = hex.EncodeToString(b[:])
			c.Request().Header.Set(echo.HeaderXRequestID, rid)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, rid)
		return next(c)
	}
}

// validRequestID accepts 1–128 visible ASCII characters, so an echoed ID
// cannot inject anything into headers or logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// accessLog writes one line per request; for a write that stored a job,
// the line names the job, its type and its queue.
func (g *Gateway) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		err := next(c)
		status := http.StatusOK
		if resp, uerr := echo.UnwrapResponse(c.Response()); uerr == nil && resp.Status != 0 {
			status = resp.Status
		}
		var p *Problem
		if err != nil {
			p = toProblem(err)
			status = p.Status
		}
		g.observe(c, status, p, time.Since(start))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		if !g.log.Enabled(c.Request().Context(), level) {
			return err
		}
		attrs := make([]slog.Attr, 0, 9)
		attrs = append(attrs,
			slog.String("method", c.Request().Method),
			slog.String("path", c.Path()),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("tenant", caller(c)),
		)
		if a, ok := c.Get(acceptedKey).(*accepted); ok {
			attrs = append(attrs, slog.String("job_id", a.id), slog.String("type", a.jobType), slog.String("queue", a.queue))
		}
		g.log.LogAttrs(c.Request().Context(), level, "http request", attrs...)
		return err
	}
}

// caller is the authenticated tenant, or "" before authentication.
func caller(c *echo.Context) string {
	p, _ := c.Get(principalKey).(principal)
	return p.tenant
}

// recoverPanics turns a handler panic into a 500 problem instead of a
// dropped connection.
func recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = problem(http.StatusInternalServerError, "internal", "an internal error occurred")
			}
		}()
		return next(c)
	}
}

func (g *Gateway) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) readyz(c *echo.Context) error {
	reasons := g.Readiness(c.Request().Context())
	g.metrics.Ready(len(reasons) == 0)
	if len(reasons) > 0 {
		return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reasons": reasons})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready"})
}
