package submit_test

import (
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The store a Client submits to.
var _ submit.Store = (*status.Store)(nil)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 15 * time.Second

// awaitState waits for a job of tenant "default" to reach a state.
func awaitState(t *testing.T, store *status.Store, id string, want jobs.State) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	testutil.WaitFor(t, waitTimeout, "job "+string(want), func() bool {
		var err error
		j, err = store.Get(t.Context(), "default", id)
		return err == nil && j.State == want
	})
	return j
}
