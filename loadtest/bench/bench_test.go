package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the harness's own child
// processes (glue, proxy, upstream), as the bench binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "glue", "proxy", "upstream":
			main()
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// TestQuickRun runs every scenario with small numbers: it proves that the
// harness still works and that, under load, every accepted job ends and
// every subscriber sees its job end. Speed is not asserted here.
func TestQuickRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b, cleanup, err := newBench(ctx, quickOptions(), t.TempDir())
	t.Cleanup(cleanup)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.run(ctx); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b.report.text(&out)
	t.Logf("\n%s", out.String())
	for _, scen := range []string{"(a)", "(b)", "(c)", "(d)", "(e)", "(f)", "(g)", "(h)", "(i)", "(j)"} {
		if !strings.Contains(out.String(), scen) {
			t.Errorf("no result for scenario %s", scen)
		}
	}
}
