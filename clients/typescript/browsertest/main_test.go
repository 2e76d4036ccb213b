//go:build tsbrowser

package browsertest

import (
	"testing"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
