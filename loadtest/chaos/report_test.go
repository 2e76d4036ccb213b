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
		"slow resume": {func(r *Report) {
			r.Faults = append(r.Faults, FaultResult{Fault: Fault{Target: RedisNode, ResumeWithin: time.Second}, Recovered: time.Second, Resumed: 2 * time.Second})
		}, "accepts back 2s after it, want within 1s"},
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

// TestResumedAt finds the end of the outage after a fault: the first 202
// to a try sent after the last failure of the first burst of failures,
// with later failures counted apart.
func TestResumedAt(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	try := func(start, end, code int) Try { return Try{Start: at(start), End: at(end), Code: code} }
	tries := []Try{
		try(-100, 10, 202),     // before the fault
		try(0, 20, 202),        // the old master still answers
		try(100, 150, 503),     // the outage
		try(900, 950, 0),       // still
		try(1000, 1010, 202),   // one got through
		try(2500, 2600, 503),   // the outage's last failure
		try(2400, 2700, 202),   // sent before the last failure
		try(2800, 2900, 202),   // back
		try(9000, 9100, 503),   // a stray failure
		try(12000, 12010, 503), // the next fault's
	}
	back, stray, ok := resumedAt(tries, at(0), at(11000))
	if !ok || !back.Equal(at(2900)) || stray != 1 {
		t.Errorf("resumedAt = %v after the fault, %d stray, %v; want 2.9s, 1 stray", back.Sub(t0), stray, ok)
	}
	back, stray, ok = resumedAt(tries[:2], at(0), time.Time{})
	if !ok || !back.Equal(at(20)) || stray != 0 {
		t.Errorf("without failures: %v, %d, %v; want 20ms, 0", back.Sub(t0), stray, ok)
	}
	if _, _, ok := resumedAt(tries[:4], at(0), time.Time{}); ok {
		t.Errorf("resumedAt found accepts back where none came after the outage")
	}
}
