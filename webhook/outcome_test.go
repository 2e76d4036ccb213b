package webhook

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

func TestOutcome(t *testing.T) {
	t.Parallel()
	res := func(code int) *jobs.Result { return &jobs.Result{Status: code} }
	blocked := &BlockedError{Addr: netip.MustParseAddr("10.0.0.1"), Reason: "private network"}
	for _, tt := range []struct {
		res  *jobs.Result
		err  error
		want string
	}{
		{res(http.StatusNoContent), nil, "delivered"},
		{res(http.StatusGone), worker.Permanent(errors.New("gone")), "gone"},
		{res(http.StatusGone), worker.RetryLater(http.StatusGone, 0, errors.New("disabling failed")), "retry"},
		{nil, worker.Permanent(blocked), "refused"},
		{nil, worker.Permanent(errors.New("callback URL refused")), "refused"},
		{nil, worker.GiveUp(errors.New("endpoint disabled")), "disabled"},
		{res(http.StatusInternalServerError), worker.RetryLater(500, 0, errors.New("500")), "retry"},
		{nil, worker.RetryLater(0, 0, errors.New("connection refused")), "retry"},
	} {
		if got := Outcome(tt.res, tt.err); got != tt.want {
			t.Errorf("Outcome(%v, %v) = %q, want %q", tt.res, tt.err, got, tt.want)
		}
	}
}
