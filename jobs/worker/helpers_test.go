package worker_test

import (
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// The store a worker runs on, and the wake source it hears from.
var (
	_ worker.Store      = (*status.Store)(nil)
	_ worker.WakeSource = (*status.Wake)(nil)
)
