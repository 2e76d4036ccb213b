package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// shippedAlerts is the rules file shipped in configs/, from this package's
// directory.
const shippedAlerts = "../../configs/prometheus/alerts.yml"

var updateAlerts = flag.Bool("update-alerts", false, "rewrite "+shippedAlerts+" from alerts.yml.tmpl")

// TestShippedAlerts: configs/prometheus/alerts.yml is what writeAlerts
// writes with the default runbook base, byte for byte, so that the file
// and `asyncgw alerts` cannot drift apart.
func TestShippedAlerts(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := writeAlerts(&b, defaultRunbookBase); err != nil {
		t.Fatal(err)
	}
	if *updateAlerts {
		if err := os.WriteFile(shippedAlerts, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shipped, err := os.ReadFile(shippedAlerts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, b.Bytes()) {
		t.Errorf("%s differs from writeAlerts(%q); edit cmd/asyncgw/alerts.yml.tmpl and run go test ./cmd/asyncgw -run TestShippedAlerts -update-alerts\n%s",
			shippedAlerts, defaultRunbookBase, firstDifference(shipped, b.Bytes()))
	}
}

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  file:        " + gl + "\n  writeAlerts: " + wl
		}
	}
	return "(same lines)"
}

// TestWriteAlertsRunbookBase: with another base, every runbook_url is that
// base plus the alert's own anchor, and the rules still parse.
func TestWriteAlertsRunbookBase(t *testing.T) {
	t.Parallel()
	for _, base := range []string{
		"https://wiki.example.com/asyncgw/operations",
		"http://intranet:8080/runbooks/asyncgw.md?version=2&lang=en",
		"https://[2001:db8::1]/ops/OPERATIONS.md",
	} {
		var b bytes.Buffer
		if err := writeAlerts(&b, base); err != nil {
			t.Errorf("writeAlerts(%q): %v", base, err)
			continue
		}
		groups, errs := rulefmt.Parse(b.Bytes(), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			t.Errorf("writeAlerts(%q) does not parse: %v", base, errs)
			continue
		}
		n := 0
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				n++
				if got, want := r.Annotations["runbook_url"], base+"#"+strings.ToLower(r.Alert); got != want {
					t.Errorf("base %q: alert %s: runbook_url %q, want %q", base, r.Alert, got, want)
				}
			}
		}
		if n == 0 {
			t.Errorf("writeAlerts(%q) wrote no alerts", base)
		}
	}
}

// TestWriteAlertsBadBase: a base that would not make absolute, clickable
// links (or would break the YAML) is refused, and nothing is written.
func TestWriteAlertsBadBase(t *testing.T) {
	t.Parallel()
	for _, base := range []string{
		"",
		"docs/OPERATIONS.md",
		"/docs/OPERATIONS.md",
		"//example.com/ops",
		"ftp://example.com/ops",
		"https://",
		"https://example.com/ops#runbook",
		"https://example.com/my runbook",
		"https://example.com/ops\n  severity: none",
		"https://example.com/ops\"",
		"https://example.com/é",
		"javascript:alert(1)",
	} {
		var b bytes.Buffer
		err := writeAlerts(&b, base)
		if err == nil {
			t.Errorf("writeAlerts(%q) = nil, want an error", base)
		} else if !strings.Contains(err.Error(), "runbook base") {
			t.Errorf("writeAlerts(%q) = %v, want it to name the runbook base", base, err)
		}
		if b.Len() > 0 {
			t.Errorf("writeAlerts(%q) wrote %d bytes with its error", base, b.Len())
		}
	}
}

// TestAlertsCommand: asyncgw alerts prints the shipped rules, or those
// under --runbook-base; a bad base is a usage error.
func TestAlertsCommand(t *testing.T) {
	t.Parallel()
	shipped, err := os.ReadFile("../../configs/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, nil, "alerts"); err != nil || out != string(shipped) {
		t.Errorf("asyncgw alerts: error %v; output equal to configs/prometheus/alerts.yml: %v", err, out == string(shipped))
	}
	const base = "https://wiki.example.com/ops.md"
	var want bytes.Buffer
	if err := writeAlerts(&want, base); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, nil, "alerts", "--runbook-base", base); err != nil || out != want.String() {
		t.Errorf("asyncgw alerts --runbook-base: error %v; output as writeAlerts: %v", err, out == want.String())
	}
	_, err = runCLI(t, nil, "alerts", "--runbook-base", "docs/OPERATIONS.md")
	var u *usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--runbook-base") {
		t.Errorf("a relative base: %v, want a usage error naming --runbook-base", err)
	}
}
