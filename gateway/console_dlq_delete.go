package gateway

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/status"
)

// previewDelete counts and samples the dead letters a delete of every
// match would take, as of now: the confirmation carries that time, so
// that a job dying after the preview is not deleted unseen.
func (g *Gateway) previewDelete(ctx context.Context, f status.DLQFilter, v *dlqView) error {
	asOf := time.Now().UTC()
	if f.Until.IsZero() || f.Until.After(asOf) {
		f.Until = asOf
	}
	res, err := g.deps.Admin.DeleteMatching(ctx, admin.BulkDelete{Filter: f, DryRun: true})
	if err != nil {
		return err
	}
	v.DeletePreview, v.AsOf = res, asOf.Format(time.RFC3339Nano)
	return nil
}

// consoleBulkDelete deletes every dead letter matching a filter that died
// before the dry run the page showed, once confirmed.
func (g *Gateway) consoleBulkDelete(c *echo.Context) error {
	form := c.Request().PostForm
	in := dlqInput(form)
	f, fields := dlqFilter(in, func(name string) FieldError { return FieldError{Parameter: name} })
	asOf, err := time.Parse(time.RFC3339Nano, form.Get("asof"))
	if err != nil {
		fields = append(fields, FieldError{Parameter: "asof", Detail: "must be the time of the dry run (RFC 3339); preview the deletion again"})
	} else if f.Until.IsZero() || f.Until.After(asOf) {
		f.Until = asOf
	}
	if form.Get("confirm") != "yes" {
		fields = append(fields, FieldError{Parameter: "confirm", Detail: "tick the box to confirm the deletion"})
	}
	v := dlqView{Query: url.Values{}, Filter: in}
	if len(fields) > 0 {
		v.Errors = fields
		return g.render(c, http.StatusBadRequest, "dlq", g.page(c, "Dead letters", "dlq", v))
	}
	res, err := g.deps.Admin.DeleteMatching(c.Request().Context(), admin.BulkDelete{Filter: f})
	if err != nil {
		return err
	}
	v.Deleted = res
	g.log.Info("bulk delete from the console", "matched", res.Matched, "deleted", res.Deleted)
	return g.render(c, http.StatusOK, "dlq", g.page(c, "Dead letters", "dlq", v))
}
