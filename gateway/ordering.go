package gateway

import (
	"fmt"
	"net/http"

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
