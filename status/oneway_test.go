package status

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOneWayPath: the store knows the job model and the key layout, never
// the packages that submit or run jobs: they call the store, and it
// answers them through its event hub, not by calling back. Of asyncgw's
// own packages it builds on jobs, internal/keyspace, internal/autopipe and
// internal/redisconn (and what those use) only.
func TestOneWayPath(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/asyncgw/asyncgw/"
	allowed := map[string]bool{
		"status": true, "jobs": true, "internal/jsonx": true,
		"internal/keyspace": true, "internal/autopipe": true, "internal/redisconn": true,
	}
	var own int
	for dep := range strings.FieldsSeq(string(out)) {
		pkg, ok := strings.CutPrefix(dep, module)
		if !ok {
			continue
		}
		own++
		switch {
		case pkg == "jobs/submit" || pkg == "jobs/worker":
			t.Errorf("package status depends on %s: the store must not call who submits or runs jobs", dep)
		case !allowed[pkg]:
			t.Errorf("package status depends on %s; allowed of asyncgw's packages: jobs, internal/keyspace, internal/autopipe, internal/redisconn", dep)
		}
	}
	if own < 2 {
		t.Fatalf("go list listed %d of asyncgw's packages, want at least status and jobs", own)
	}
}
