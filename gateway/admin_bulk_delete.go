package gateway

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/admin"
)

// bulkDeleteRequest is the body of POST /admin/v1/dlq/delete.
type bulkDeleteRequest struct {
	admin.FilterInput
	DryRun bool `json:"dry_run"`
	Limit  int  `json:"limit"`
}

var bulkDeleteFields = map[string]bool{
	"queue": true, "type": true, "tenant": true, "error": true, "since": true, "until": true,
	"dry_run": true, "limit": true,
}

// adminBulkDelete serves POST /admin/v1/dlq/delete: every dead letter
// matching the filter leaves the dead-letter queue for good.
func (g *Gateway) adminBulkDelete(c *echo.Context) error {
	var in bulkDeleteRequest
	if err := decodeBulkBody(c, &in, bulkDeleteFields); err != nil {
		return err
	}
	f, fields := dlqFilter(in.FilterInput, func(name string) FieldError { return FieldError{Pointer: "/" + name} })
	if in.Limit < 0 || in.Limit > admin.MaxBulk {
		fields = append(fields, FieldError{Pointer: "/limit", Detail: "must be from 1 to " + strconv.Itoa(admin.MaxBulk)})
	}
	if len(fields) > 0 {
		p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
		p.Errors = fields
		return p
	}
	res, err := g.deps.Admin.DeleteMatching(c.Request().Context(), admin.BulkDelete{Filter: f, DryRun: in.DryRun, Limit: in.Limit})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
