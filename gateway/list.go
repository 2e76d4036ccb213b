package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// Lister lists jobs from the job index and finds a job whatever its
// tenant (status.Store). A Store without it serves no GET /v1/jobs.
type Lister interface {
	ListJobs(ctx context.Context, f status.JobFilter, cursor string, limit, budget int) ([]*jobs.Job, string, error)
	FindJob(ctx context.Context, id string) (*jobs.Job, error)
}

var _ Lister = (*status.Store)(nil)

// Job listing limits.
const (
	// DefaultListLimit and MaxListLimit bound a page of GET /v1/jobs.
	DefaultListLimit = 50
	MaxListLimit     = 200
	// listBudget bounds the index entries one page looks at, so that a
	// narrow filter over many jobs answers in bounded time, with a cursor.
	listBudget = 5000
)

// lister is the store's Lister, or nil.
func (g *Gateway) lister() Lister {
	l, _ := g.deps.Store.(Lister)
	return l
}

// listQuery is a parsed query of GET /v1/jobs or GET /admin/v1/jobs.
type listQuery struct {
	filter status.JobFilter
	cursor string
	limit  int
}

// parseListQuery checks a listing's query; withTenant allows tenant=.
func parseListQuery(q url.Values, withTenant bool) (listQuery, []FieldError) {
	names := []string{"type", "state", "since", "until", "cursor", "limit"}
	if withTenant {
		names = append(names, "tenant")
	}
	fields := checkParams(q, names...)
	lq := listQuery{cursor: q.Get("cursor"), limit: DefaultListLimit}
	f := &lq.filter
	if v := q.Get("tenant"); v != "" && withTenant {
		if !status.ValidTenant(v) {
			fields = append(fields, FieldError{Parameter: "tenant", Detail: "must be 1-64 letters, digits, '-', '_', '.'"})
		}
		f.Tenant = v
	}
	if v := q.Get("type"); v != "" {
		if !jobs.ValidName(v) {
			fields = append(fields, FieldError{Parameter: "type", Detail: "must be 1-64 letters, digits, '-', '_', '.'"})
		}
		f.Type = v
	}
	if v := q.Get("state"); v != "" {
		f.State = jobs.State(v)
		if !f.State.Valid() {
			fields = append(fields, FieldError{Parameter: "state", Detail: "must be one of queued, scheduled, running, retrying, succeeded, failed, dead, canceled"})
		}
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			fields = append(fields, FieldError{Parameter: t.name, Detail: "must be an RFC 3339 time such as 2026-11-21T10:00:00Z"})
			continue
		}
		*t.to = at
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		fields = append(fields, FieldError{Parameter: "until", Detail: "must be after since"})
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			fields = append(fields, FieldError{Parameter: "limit", Detail: "must be a whole number from 1 to " + strconv.Itoa(MaxListLimit)})
		}
		lq.limit = n
	}
	if len(lq.cursor) > 1024 {
		fields = append(fields, FieldError{Parameter: "cursor", Detail: "is not a cursor this API handed out"})
	}
	return lq, fields
}

// list runs a parsed listing; a cursor the store refuses is a 400.
func (g *Gateway) list(ctx context.Context, lq listQuery) ([]*jobs.Job, string, error) {
	items, next, err := g.lister().ListJobs(ctx, lq.filter, lq.cursor, lq.limit, listBudget)
	if errors.Is(err, status.ErrBadCursor) {
		return nil, "", queryProblem(FieldError{Parameter: "cursor", Detail: "is not a cursor this API handed out"})
	}
	return items, next, err
}

// listJobs serves GET /v1/jobs: the caller's own jobs, newest first.
func (g *Gateway) listJobs(c *echo.Context) error {
	lq, fields := parseListQuery(c.Request().URL.Query(), false)
	if len(fields) > 0 {
		return queryProblem(fields...)
	}
	lq.filter.Tenant = tenant(c)
	items, next, err := g.list(c.Request().Context(), lq)
	if err != nil {
		return err
	}
	if items == nil {
		items = []*jobs.Job{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items, "next_cursor": next})
}

// TenantJob is a job with its tenant, as the admin listing shows it.
type TenantJob struct {
	Tenant string    `json:"tenant"`
	Job    *jobs.Job `json:"job"`
}

// adminListJobs serves GET /admin/v1/jobs: every tenant's jobs (or one
// tenant's), newest first.
func (g *Gateway) adminListJobs(c *echo.Context) error {
	lq, fields := parseListQuery(c.Request().URL.Query(), true)
	if len(fields) > 0 {
		return queryProblem(fields...)
	}
	items, next, err := g.list(c.Request().Context(), lq)
	if err != nil {
		return err
	}
	out := make([]TenantJob, len(items))
	for i, j := range items {
		out[i] = TenantJob{Tenant: j.Tenant, Job: j}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": out, "next_cursor": next})
}
