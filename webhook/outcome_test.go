package webhook

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"github.com/asyncgw/asyncgw/jobs"
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
		{res(http.StatusGone), jobs.Permanent(errors.New("gone")), "gone"},
		{res(http.StatusGone), jobs.RetryLater(http.StatusGone, 0, errors.New("disabling failed")), "retry"},
		{nil, jobs.Permanent(blocked), "refused"},
		{nil, jobs.Permanent(errors.New("callback URL refused")), "refused"},
		{nil, jobs.GiveUp(errors.New("endpoint disabled")), "disabled"},
		{res(http.StatusInternalServerError), jobs.RetryLater(500, 0, errors.New("500")), "retry"},
		{nil, jobs.RetryLater(0, 0, errors.New("connection refused")), "retry"},
	} {
		if got := Outcome(tt.res, tt.err); got != tt.want {
			t.Errorf("Outcome(%v, %v) = %q, want %q", tt.res, tt.err, got, tt.want)
		}
	}
}
