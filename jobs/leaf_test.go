package jobs

import (
	"os/exec"
	"strings"
	"testing"
)

// TestModelIsALeaf: the job model builds on the standard library and
// internal/jsonx alone: no Redis, asynq or OpenTelemetry, and none of
// asyncgw's packages that store or run jobs (they import it, not the
// other way round).
func TestModelIsALeaf(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"github.com/asyncgw/asyncgw/jobs":           true,
		"github.com/asyncgw/asyncgw/internal/jsonx": true,
	}
	var seen int
	for dep := range strings.FieldsSeq(string(out)) {
		seen++
		if !allowed[dep] {
			t.Errorf("package jobs depends on %s; the model may import only the standard library and internal/jsonx", dep)
		}
	}
	if seen == 0 {
		t.Fatal("go list listed no packages, not even jobs itself")
	}
}
