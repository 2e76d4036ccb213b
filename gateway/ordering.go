package gateway

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
)

// The ordering policies of a route (Route.Ordering).
const (
	OrderingOptional = "optional"
	OrderingRequired = "required"
	OrderingOff      = "off"
)

// ParseOrderingKey reads the X-Ordering-Key header (values as given by
// Header.Values): 1 to jobs.MaxOrderingKeyLen printable ASCII characters,
// taken as they are. It returns "" when the header is absent.
func ParseOrderingKey(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("send one X-Ordering-Key header, not several")
	}
	if err := checkOrderingKey(values[0]); err != nil {
		return "", fmt.Errorf("the X-Ordering-Key header %w", err)
	}
	return values[0], nil
}

// checkOrderingKey says what is wrong with an ordering key, as the end of
// a sentence naming where it came from.
func checkOrderingKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("is empty")
	case len(key) > jobs.MaxOrderingKeyLen:
		return fmt.Errorf("is longer than %d characters", jobs.MaxOrderingKeyLen)
	case !jobs.ValidOrderingKey(key):
		return fmt.Errorf("must be printable ASCII (no control characters)")
	}
	return nil
}

// orderingKey is the ordering key of a submission: the X-Ordering-Key
// header or, for POST /v1/jobs, the body's ordering_key (both: the same
// key), checked against the route's policy.
func orderingKey(r *http.Request, s submission) (string, error) {
	key, err := ParseOrderingKey(r.Header.Values("X-Ordering-Key"))
	if err != nil {
		return "", problem(http.StatusBadRequest, "bad-ordering-key", err.Error())
	}
	if s.orderingSet {
		if err := checkOrderingKey(s.orderingKey); err != nil {
			p := problem(http.StatusBadRequest, "validation", "the request body is invalid")
			p.Errors = []FieldError{{Pointer: "/ordering_key", Detail: err.Error()}}
			return "", p
		}
		if key != "" && key != s.orderingKey {
			return "", problem(http.StatusBadRequest, "bad-ordering-key",
				"the X-Ordering-Key header and the body's ordering_key differ: send one, or the same key in both")
		}
		key = s.orderingKey
	}
	switch {
	case key == "" && s.ordering == OrderingRequired:
		return "", problem(http.StatusBadRequest, "ordering-key-required",
			"this route requires an ordering key: send an X-Ordering-Key header (or ordering_key in POST /v1/jobs)")
	case key != "" && s.ordering == OrderingOff:
		return "", problem(http.StatusBadRequest, "ordering-key-not-allowed",
			"this route does not take an ordering key (ordering: off): send the write without X-Ordering-Key")
	}
	return key, nil
}

// maxLineJobs is how many jobs of a line GET /admin/v1/ordering shows.
const maxLineJobs = 100

// adminOrderingLine serves GET /admin/v1/ordering?tenant=&key=: the line
// of the tenant's jobs with that ordering key, head first, to see what
// holds it.
func (g *Gateway) adminOrderingLine(c *echo.Context) error {
	q := c.Request().URL.Query()
	if fields := checkParams(q, "tenant", "key"); len(fields) > 0 {
		return queryProblem(fields...)
	}
	t, key := q.Get("tenant"), q.Get("key")
	var fields []FieldError
	if !jobs.ValidName(t) {
		fields = append(fields, FieldError{Parameter: "tenant", Detail: "is required: a tenant name"})
	}
	if err := checkOrderingKey(key); err != nil {
		fields = append(fields, FieldError{Parameter: "key", Detail: "is required: an ordering key; this one " + err.Error()})
	}
	if len(fields) > 0 {
		return queryProblem(fields...)
	}
	n, js, err := g.deps.Admin.OrderingLine(c.Request().Context(), t, key, maxLineJobs)
	if err != nil {
		return err
	}
	if js == nil {
		js = []*jobs.Job{}
	}
	return c.JSON(http.StatusOK, map[string]any{"tenant": t, "ordering_key": key, "length": n, "jobs": js})
}
