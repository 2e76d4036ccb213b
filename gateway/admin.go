package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/upstream"
)

// Admin carries out operator actions (admin.Service).
type Admin interface {
	Queues(ctx context.Context) ([]admin.Queue, error)
	SetPaused(ctx context.Context, queue string, paused bool) (admin.Queue, error)
	DeadLetters(ctx context.Context, f status.DLQFilter, cursor string, limit int) ([]status.DeadLetter, string, error)
	DeadLetter(ctx context.Context, id string) (*status.DeadLetter, error)
	Replay(ctx context.Context, id string) (*jobs.Job, error)
	ReplayMatching(ctx context.Context, b admin.BulkReplay) (*admin.BulkResult, error)
	DeleteMatching(ctx context.Context, b admin.BulkDelete) (*admin.BulkDeleteResult, error)
	Delete(ctx context.Context, id string) error
	DisabledEndpoints(ctx context.Context, tenant string) ([]status.DisabledEndpoint, error)
	EnableEndpoint(ctx context.Context, tenant, url string) (bool, error)
	OrderingLine(ctx context.Context, tenant, key string, limit int) (int64, []*jobs.Job, error)
	Upstreams(ctx context.Context) ([]upstream.Usage, error)
}

// adminRoutes mounts the admin API. Every route needs an admin key.
func (g *Gateway) adminRoutes(e *echo.Echo) {
	if g.deps.Admin == nil {
		return
	}
	mw := []echo.MiddlewareFunc{g.authenticate, requireAdmin}
	e.GET("/admin/v1/queues", g.adminQueues, mw...)
	if g.lister() != nil {
		e.GET("/admin/v1/jobs", g.adminListJobs, mw...)
	}
	e.POST("/admin/v1/queues/:queue/pause", g.adminPause(true), mw...)
	e.POST("/admin/v1/queues/:queue/resume", g.adminPause(false), mw...)
	e.GET("/admin/v1/upstreams", g.adminUpstreams, mw...)
	e.GET("/admin/v1/dlq", g.adminDLQ, mw...)
	e.POST("/admin/v1/dlq/replay", g.adminBulkReplay, mw...)
	e.POST("/admin/v1/dlq/delete", g.adminBulkDelete, mw...)
	e.GET("/admin/v1/dlq/:id", g.adminDeadLetter, mw...)
	e.POST("/admin/v1/dlq/:id/replay", g.adminReplay, mw...)
	e.DELETE("/admin/v1/dlq/:id", g.adminDelete, mw...)
	e.GET("/admin/v1/webhooks/disabled", g.adminDisabledEndpoints, mw...)
	e.DELETE("/admin/v1/webhooks/disabled", g.adminEnableEndpoint, mw...)
	e.GET("/admin/v1/ordering", g.adminOrderingLine, mw...)
}

func (g *Gateway) adminQueues(c *echo.Context) error {
	qs, err := g.deps.Admin.Queues(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"queues": qs})
}

// adminUpstreams serves GET /admin/v1/upstreams: the upstream hosts'
// limits and their use.
func (g *Gateway) adminUpstreams(c *echo.Context) error {
	us, err := g.deps.Admin.Upstreams(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"upstreams": us})
}

func (g *Gateway) adminPause(paused bool) echo.HandlerFunc {
	return func(c *echo.Context) error {
		q, err := g.deps.Admin.SetPaused(c.Request().Context(), c.Param("queue"), paused)
		if errors.Is(err, admin.ErrUnknownQueue) {
			return problem(http.StatusNotFound, "not-found", "no such queue")
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, q)
	}
}

// adminDLQ serves GET /admin/v1/dlq: a page of dead letters, oldest first.
func (g *Gateway) adminDLQ(c *echo.Context) error {
	q := c.Request().URL.Query()
	fields := checkParams(q, "queue", "type", "tenant", "error", "since", "until", "cursor", "limit")
	f, ff := dlqFilter(admin.FilterInput{
		Queue: q.Get("queue"), Type: q.Get("type"), Tenant: q.Get("tenant"),
		Error: q.Get("error"), Since: q.Get("since"), Until: q.Get("until"),
	}, func(name string) FieldError { return FieldError{Parameter: name} })
	fields = append(fields, ff...)
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			fields = append(fields, FieldError{Parameter: "limit", Detail: "must be a whole number from 1 to 1000"})
		}
		limit = n
	}
	if len(fields) > 0 {
		return queryProblem(fields...)
	}
	items, next, err := g.deps.Admin.DeadLetters(c.Request().Context(), f, q.Get("cursor"), limit)
	if errors.Is(err, status.ErrBadCursor) {
		return queryProblem(FieldError{Parameter: "cursor", Detail: "is not a cursor this API handed out"})
	}
	if err != nil {
		return err
	}
	if items == nil {
		items = []status.DeadLetter{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// dlqFilter checks a filter; at names a bad field the way its input does
// (query parameter or JSON pointer).
func dlqFilter(in admin.FilterInput, at func(name string) FieldError) (status.DLQFilter, []FieldError) {
	f, bad := admin.ParseFilter(in)
	var fields []FieldError
	for _, b := range bad {
		fe := at(b.Name)
		fe.Detail = b.Detail
		fields = append(fields, fe)
	}
	return f, fields
}

// deadLetterID reads the :id of an admin dead-letter route; a malformed ID
// is not in the dead-letter queue.
func deadLetterID(c *echo.Context) (string, error) {
	id := c.Param("id")
	if !jobs.ValidID(id) {
		return "", errNotDeadLetter
	}
	return id, nil
}

var errNotDeadLetter = problem(http.StatusNotFound, "not-found", "no such job in the dead-letter queue")

// dlqError maps the dead-letter errors of admin.Service.
func dlqError(err error) error {
	switch {
	case errors.Is(err, admin.ErrNotFound):
		return errNotDeadLetter
	case errors.Is(err, admin.ErrBusy):
		p := problem(http.StatusConflict, "busy", err.Error())
		p.RetryAfter = 1
		return p
	}
	return err
}

func (g *Gateway) adminDeadLetter(c *echo.Context) error {
	id, err := deadLetterID(c)
	if err != nil {
		return err
	}
	d, err := g.deps.Admin.DeadLetter(c.Request().Context(), id)
	if err != nil {
		return dlqError(err)
	}
	return c.JSON(http.StatusOK, d)
}

// adminReplay serves POST /admin/v1/dlq/{id}/replay: the job goes back on
// its queue now, as a new cycle of the same job.
func (g *Gateway) adminReplay(c *echo.Context) error {
	id, err := deadLetterID(c)
	if err != nil {
		return err
	}
	j, err := g.deps.Admin.Replay(c.Request().Context(), id)
	if err != nil {
		return dlqError(err)
	}
	c.Response().Header().Set("Location", "/v1/jobs/"+j.ID)
	return c.JSON(http.StatusAccepted, j)
}

func (g *Gateway) adminDelete(c *echo.Context) error {
	id, err := deadLetterID(c)
	if err != nil {
		return err
	}
	if err := g.deps.Admin.Delete(c.Request().Context(), id); err != nil {
		return dlqError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// bulkReplayRequest is the body of POST /admin/v1/dlq/replay.
type bulkReplayRequest struct {
	admin.FilterInput
	DryRun bool    `json:"dry_run"`
	Rate   float64 `json:"rate"`
	Limit  int     `json:"limit"`
}

var bulkReplayFields = map[string]bool{
	"queue": true, "type": true, "tenant": true, "error": true, "since": true, "until": true,
	"dry_run": true, "rate": true, "limit": true,
}

// decodeBulkBody reads a bulk operation's JSON body (64 KiB at most; an
// empty one is all defaults) into v, strictly, with only the top-level
// members allowed.
func decodeBulkBody(c *echo.Context, v any, allowed map[string]bool) error {
	r := c.Request()
	if _, err := checkContentType(r.Header.Get("Content-Type"), r.ContentLength, nil); err != nil {
		return err
	}
	body, err := readBody(c, 64<<10, true)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := decodeStrict(body, v); err != nil {
		return err
	}
	if p := checkTopKeys(body, allowed); p != nil {
		return p
	}
	return nil
}

// adminBulkReplay serves POST /admin/v1/dlq/replay: every dead letter
// matching the filter goes back on its queue, at most rate per second.
func (g *Gateway) adminBulkReplay(c *echo.Context) error {
	var in bulkReplayRequest
	if err := decodeBulkBody(c, &in, bulkReplayFields); err != nil {
		return err
	}
	f, fields := dlqFilter(in.FilterInput, func(name string) FieldError { return FieldError{Pointer: "/" + name} })
	if in.Rate < 0 || in.Rate > 100000 {
		fields = append(fields, FieldError{Pointer: "/rate", Detail: "must be a number of jobs per second from 0 (the default, 50) to 100000"})
	}
	if in.Limit < 0 || in.Limit > admin.MaxBulk {
		fields = append(fields, FieldError{Pointer: "/limit", Detail: "must be from 1 to " + strconv.Itoa(admin.MaxBulk)})
	}
	if len(fields) > 0 {
		p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
		p.Errors = fields
		return p
	}
	res, err := g.deps.Admin.ReplayMatching(c.Request().Context(), admin.BulkReplay{Filter: f, DryRun: in.DryRun, Rate: in.Rate, Limit: in.Limit})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
