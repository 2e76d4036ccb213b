package client_test

import (
	"testing"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// The tests run a real gateway, worker and Redis (internal/e2e).
func TestMain(m *testing.M) { redistest.Main(m) }
