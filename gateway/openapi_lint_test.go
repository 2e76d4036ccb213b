package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// redoclyProblem is one finding of `redocly lint --format=json`.
type redoclyProblem struct {
	RuleID   string `json:"ruleId"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Location []struct {
		Pointer string `json:"pointer"`
	} `json:"location"`
}

// redoclyReport is what `redocly lint --format=json` writes for one file.
type redoclyReport struct {
	Totals struct {
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
	} `json:"totals"`
	Problems []redoclyProblem `json:"problems"`
}

// installRedocly runs scripts/ensure-node-tools.sh and returns the path of
// the redocly command it installed. Without node, npm or the registry the
// test fails: the document is not known to be valid then.
func installRedocly(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "scripts", "ensure-node-tools.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// TestOpenAPILint: @redocly/cli, at the version scripts/ensure-node-tools.sh
// pins and with the rules of redocly.yaml, finds no error and no warning in
// the documents made for a configuration with several routes (schemas that
// refer to other files, both path syntaxes, a required Idempotency-Key, a
// rate limit, a pre-check), in both authentication modes, nor in the
// document of a gateway without routes.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	redocly := installRedocly(t)
	config, err := filepath.Abs(filepath.Join("..", "redocly.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for name, auth := range authModes {
		for label, routes := range map[string][]Route{"routes": openAPIRoutes(), "no-routes": nil} {
			g := newDocGateway(t, Config{Routes: routes, Auth: auth, Types: []Type{{Name: "resize"}}})
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+"-"+label+".json")
			if err := os.WriteFile(file, g.OpenAPI(), 0o600); err != nil {
				t.Fatal(err)
			}
			files = append(files, file)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, redocly, append([]string{"lint", "--format=json", "--config", config}, files...)...)
	// Nothing leaves the machine: no usage data, no update check.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	// One JSON report per file, in order.
	dec := json.NewDecoder(&stdout)
	for _, file := range files {
		var rep redoclyReport
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("redocly lint (%v) did not report on %s: %v\nstderr:\n%s", runErr, filepath.Base(file), err, stderr.String())
		}
		for _, p := range rep.Problems {
			at := ""
			if len(p.Location) > 0 {
				at = p.Location[0].Pointer
			}
			t.Errorf("%s: %s %s at %s: %s", filepath.Base(file), p.Severity, p.RuleID, at, p.Message)
		}
		if rep.Totals.Errors+rep.Totals.Warnings != len(rep.Problems) {
			t.Errorf("%s: %d errors and %d warnings, %d problems listed", filepath.Base(file), rep.Totals.Errors, rep.Totals.Warnings, len(rep.Problems))
		}
	}
	if runErr != nil && !t.Failed() {
		t.Errorf("redocly lint: %v\nstderr:\n%s", runErr, stderr.String())
	}
}
