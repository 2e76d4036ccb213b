package gateway

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
)

// jobID reads and checks the :id path parameter; a malformed ID answers
// 404 like a missing job.
func jobID(c *echo.Context) (string, error) {
	id := c.Param("id")
	if !jobs.ValidID(id) {
		return "", jobs.ErrNotFound
	}
	return id, nil
}

// getJob serves GET /v1/jobs/{id}.
func (g *Gateway) getJob(c *echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := g.deps.Store.Get(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	if !j.State.Terminal() {
		c.Response().Header().Set("Retry-After", "1")
	}
	return c.JSON(http.StatusOK, j)
}

// cancelJob serves DELETE /v1/jobs/{id}.
func (g *Gateway) cancelJob(c *echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := g.deps.Jobs.Cancel(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	g.metrics.Completed(j.Queue, j.Type, string(j.State))
	g.log.Info("job canceled", "job_id", id, "tenant", j.Tenant)
	return c.JSON(http.StatusOK, j)
}

// getResult serves GET /v1/jobs/{id}/result: the upstream's answer as it
// came, once the job has ended.
func (g *Gateway) getResult(c *echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := g.deps.Store.Get(c.Request().Context(), tenant(c), id)
	if err != nil {
		return err
	}
	if !j.State.Terminal() || j.Result == nil {
		p := problem(http.StatusNotFound, "no-result", "the job has no result yet (state "+string(j.State)+")")
		if !j.State.Terminal() {
			p.RetryAfter = 1
		}
		return p
	}
	if j.Result.BodyTooLarge {
		// Never a cut body presented as whole: the answer is not kept.
		size := "of unknown size"
		if j.Result.BodySize > 0 {
			size = "of " + strconv.FormatInt(j.Result.BodySize, 10) + " bytes"
		}
		return problem(http.StatusGone, "result-too-large",
			"the upstream answered "+strconv.Itoa(j.Result.Status)+" with a body "+size+
				", over the route's max_response, so the body was not kept; the status and headers are in the job resource")
	}
	h := c.Response().Header()
	for k, v := range j.Result.Headers {
		if k != echo.HeaderXRequestID {
			h.Set(k, v)
		}
	}
	h.Set("X-Asyncgw-Job-State", string(j.State))
	body, err := g.deps.Store.ResultBody(c.Request().Context(), tenant(c), id)
	if err != nil {
		body = j.Result.Bytes() // a record from before raw bodies were kept
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.Response().WriteHeader(j.Result.Status)
	_, err = c.Response().Write(body)
	return err
}
