package webhook

import (
	"errors"
	"net/http"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// Outcome names what a delivery attempt came to, for metrics: delivered,
// gone (410), refused (the destination is not allowed), disabled (the
// endpoint answered 410 before), or retry.
func Outcome(res *jobs.Result, err error) string {
	var be *BlockedError
	switch {
	case err == nil:
		return "delivered"
	case res != nil && res.Status == http.StatusGone && worker.IsPermanent(err):
		return "gone"
	case errors.As(err, &be):
		return "refused"
	case worker.IsGiveUp(err):
		return "disabled"
	case worker.IsPermanent(err):
		return "refused"
	}
	return "retry"
}
