package submit_test

import (
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The store a Client submits to.
var _ submit.Store = (*status.Store)(nil)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 15 * time.Second
