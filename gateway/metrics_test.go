package gateway

import (
	"net/http"
	"testing"
)

// TestRejectReason: each problem a write can end in is counted under the
// reason operators alert on.
func TestRejectReason(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status int
		slug   string
		want   string
	}{
		{http.StatusUnauthorized, "unauthorized", "auth"},
		{http.StatusForbidden, "forbidden", "auth"},
		{http.StatusBadRequest, "bad-idempotency-key", "idempotency"},
		{http.StatusBadRequest, "idempotency-key-required", "idempotency"},
		{http.StatusConflict, "idempotency-key-in-use", "idempotency"},
		{http.StatusUnprocessableEntity, "idempotency-key-reused", "idempotency"},
		{http.StatusTooManyRequests, "rate-limited", "rate_limit"},
		{http.StatusServiceUnavailable, "overloaded", "backpressure"},
		{http.StatusServiceUnavailable, "unavailable", "redis_unavailable"},
		{http.StatusServiceUnavailable, "precheck-unavailable", "precheck"},
		{http.StatusConflict, "precheck-refused", "precheck"},
		{http.StatusBadRequest, "validation", "validation"},
		{http.StatusBadRequest, "malformed-json", "validation"},
		{http.StatusBadRequest, "bad-callback-url", "validation"},
		{http.StatusRequestEntityTooLarge, "body-too-large", "validation"},
		{http.StatusUnsupportedMediaType, "unsupported-media-type", "validation"},
		{http.StatusInternalServerError, "internal", "other"},
	} {
		if got := rejectReason(problem(tt.status, tt.slug, "")); got != tt.want {
			t.Errorf("rejectReason(%d %s) = %q, want %q", tt.status, tt.slug, got, tt.want)
		}
	}
}
