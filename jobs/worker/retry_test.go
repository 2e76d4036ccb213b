package worker

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   bool
	}{
		{http.StatusOK, false},
		{http.StatusCreated, false},
		{http.StatusFound, false},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
		{http.StatusUnprocessableEntity, false},
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{599, true},
	}
	for _, tt := range tests {
		if got := Retryable(tt.status); got != tt.want {
			t.Errorf("Retryable(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestRetryClassification(t *testing.T) {
	t.Parallel()
	plain := errors.New("boom")
	tests := []struct {
		name    string
		err     error
		failure bool
		delay   time.Duration
	}{
		{"plain error", plain, true, time.Second},
		{"retry", &retryError{Delay: 7 * time.Second, Err: plain}, true, 7 * time.Second},
		{"wrapped retry", fmt.Errorf("run: %w", &retryError{Delay: 3 * time.Second, Err: plain}), true, 3 * time.Second},
		{"uncounted", &uncounted{Delay: 2 * time.Second, Err: plain}, false, 2 * time.Second},
		{"wrapped uncounted", fmt.Errorf("x: %w", &uncounted{Err: plain}), false, 0},
		{"lease expired", asynq.ErrLeaseExpired, false, time.Second},
		{"permanent", Permanent(plain), true, time.Second},
	}
	for _, tt := range tests {
		if got := isFailure(tt.err); got != tt.failure {
			t.Errorf("%s: isFailure = %v, want %v", tt.name, got, tt.failure)
		}
		if got := retryDelay(tt.err); got != tt.delay {
			t.Errorf("%s: retryDelay = %s, want %s", tt.name, got, tt.delay)
		}
	}
	if err := Permanent(plain); !errors.Is(err, plain) || err.Error() != "boom" {
		t.Errorf("Permanent(%v) = %v, does not wrap it", plain, err)
	}
}
