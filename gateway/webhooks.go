package gateway

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// callback decides where the new job's webhooks go: the callback URL the
// request named (checked here, 400 if refused), else the tenant's default.
func (g *Gateway) callback(r *http.Request, tenant string, s submission) (string, []jobs.State, error) {
	refuse := func(detail string) error {
		if s.callbackAt != "" {
			p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
			p.Errors = []FieldError{{Pointer: s.callbackAt, Detail: detail}}
			return p
		}
		return problem(http.StatusBadRequest, "bad-callback-url", "X-Callback-URL: "+detail)
	}
	if s.callbackAt == "" && len(r.Header.Values("X-Callback-URL")) > 1 {
		return "", nil, refuse("is given more than once")
	}
	if g.deps.Webhooks == nil {
		if s.callback != "" {
			return "", nil, refuse("cannot be used: webhooks are not enabled on this gateway")
		}
		return "", nil, nil
	}
	url, events, err := g.deps.Webhooks.Callback(tenant, s.callback)
	if err != nil {
		return "", nil, refuse(sanitize(err.Error()))
	}
	return url, events, nil
}

// jobWebhooks serves GET /v1/jobs/{id}/webhooks: the webhook deliveries
// made for the job, each a job of its own (type "webhook"), oldest event
// first.
func (g *Gateway) jobWebhooks(c *echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	j, err := g.deps.Store.Get(ctx, tenant(c), id)
	if err != nil {
		return err
	}
	ds, err := g.deps.Store.Deliveries(ctx, j.Tenant, id)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []*jobs.Job{}
	}
	return c.JSON(http.StatusOK, map[string]any{"callback_url": j.CallbackURL, "deliveries": ds})
}

// adminDisabledEndpoints serves GET /admin/v1/webhooks/disabled: the
// endpoints that answered 410 Gone, with ?tenant= to see one tenant's.
func (g *Gateway) adminDisabledEndpoints(c *echo.Context) error {
	q := c.Request().URL.Query()
	if fields := checkParams(q, "tenant"); len(fields) > 0 {
		return queryProblem(fields...)
	}
	t := q.Get("tenant")
	if t != "" && !jobs.ValidName(t) {
		return queryProblem(FieldError{Parameter: "tenant", Detail: "is not a valid tenant name"})
	}
	ds, err := g.deps.Admin.DisabledEndpoints(c.Request().Context(), t)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []status.DisabledEndpoint{}
	}
	return c.JSON(http.StatusOK, map[string]any{"items": ds})
}

// adminEnableEndpoint serves DELETE /admin/v1/webhooks/disabled?tenant=&url=:
// deliveries to the endpoint go out again. Those made while it was
// disabled are in the dead-letter queue, to be replayed.
func (g *Gateway) adminEnableEndpoint(c *echo.Context) error {
	q := c.Request().URL.Query()
	if fields := checkParams(q, "tenant", "url"); len(fields) > 0 {
		return queryProblem(fields...)
	}
	t, u := q.Get("tenant"), q.Get("url")
	switch {
	case !jobs.ValidName(t):
		return queryProblem(FieldError{Parameter: "tenant", Detail: "is required: the tenant whose endpoint to enable"})
	case u == "":
		return queryProblem(FieldError{Parameter: "url", Detail: "is required: the endpoint to enable"})
	}
	ok, err := g.deps.Admin.EnableEndpoint(c.Request().Context(), t, u)
	if err != nil {
		return err
	}
	if !ok {
		return problem(http.StatusNotFound, "not-found", "this endpoint is not disabled for this tenant")
	}
	return c.NoContent(http.StatusNoContent)
}

// checkParams names the query parameters that are not among names, and
// those given more than once.
func checkParams(q map[string][]string, names ...string) []FieldError {
	var fields []FieldError
	for name, vs := range q {
		switch {
		case !slices.Contains(names, name):
			fields = append(fields, FieldError{Parameter: name, Detail: "unknown parameter"})
		case len(vs) > 1:
			fields = append(fields, FieldError{Parameter: name, Detail: "is given more than once"})
		}
	}
	return fields
}

// queryProblem is the 400 of an invalid query.
func queryProblem(fields ...FieldError) *Problem {
	p := problem(http.StatusBadRequest, "validation", "the query is invalid")
	p.Errors = fields
	return p
}
