package gateway

import (
	"testing"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// The benchmarks of the accept path run on the shared Redis server.
func TestMain(m *testing.M) { redistest.Main(m) }
