package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps the failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }

// TestReportCheck checks that a clean report passes and that each broken
// promise fails the soak.
func TestReportCheck(t *testing.T) {
	t.Parallel()
	clean := func() *Report {
		return &Report{
			Writes: 10, Accepted: 10, Terminal: 10, Succeeded: 10, UpstreamCalls: 11, Duplicated: 1, ExtraCalls: 1,
			Faults: []FaultResult{{Fault: Fault{Target: Worker}, Recovered: time.Second}},
		}
	}
	r := &recorder{TB: t}
	clean().Check(r)
	if len(r.errs) != 0 {
		t.Fatalf("a clean report (duplicate calls allowed) failed: %q", r.errs)
	}
	for name, tc := range map[string]struct {
		breakIt func(*Report)
		want    string
	}{
		"lost":          {func(r *Report) { r.Lost, r.Terminal, r.Succeeded = 1, 9, 9 }, "accepted jobs lost: 1"},
		"live":          {func(r *Report) { r.Live, r.Terminal, r.Succeeded = 1, 9, 9 }, "accepted jobs not ended: 1"},
		"dead":          {func(r *Report) { r.Succeeded = 9 }, "accepted jobs not succeeded: 1"},
		"ended twice":   {func(r *Report) { r.EndedTwice = 1 }, "jobs ended other than once: 1"},
		"unknown":       {func(r *Report) { r.Unknown = 1 }, "jobs no client was told about: 1"},
		"given up":      {func(r *Report) { r.GaveUp = 1 }, "writes given up: 1"},
		"nothing":       {func(r *Report) { r.Accepted, r.Terminal, r.Succeeded = 0, 0, 0 }, "no write was accepted"},
		"not recovered": {func(r *Report) { r.Faults[0].Recovered = 0 }, "no recovery"},
		"exited":        {func(r *Report) { r.Exited = []string{"asyncgw worker exited by itself"} }, "exited by itself"},
	} {
		rep := clean()
		tc.breakIt(rep)
		r := &recorder{TB: t}
		rep.Check(r)
		if !strings.Contains(strings.Join(r.errs, "\n"), tc.want) {
			t.Errorf("%s: failures %q, want one with %q", name, r.errs, tc.want)
		}
	}
}

// TestCensusTerminal counts terminal events only.
func TestCensusTerminal(t *testing.T) {
	t.Parallel()
	c := census{"a": {"queued": 1, "running": 2, "retrying": 1, "succeeded": 1}, "b": {"queued": 1, "succeeded": 1, "dead": 1}}
	for id, want := range map[string]int{"a": 1, "b": 2, "c": 0} {
		if got := c.terminal(id); got != want {
			t.Errorf("terminal(%s) = %d, want %d", id, got, want)
		}
	}
}
