package chaos

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxProblems bounds how many problems a report keeps word for word.
const maxProblems = 20

// Report is what a soak found.
type Report struct {
	// Options are the soak's options, defaults filled in.
	Options Options

	// Writes counts the writes sent (each with its own key, tried one or
	// more times).
	Writes int
	// Accepted counts writes that got a 202 (Replayed of them on a retry
	// that found the first try's job).
	Accepted, Replayed int
	// GaveUp counts writes whose client stopped retrying without a final
	// answer; Refused those that got a final answer other than 202.
	GaveUp, Refused int
	// Codes counts every answer to every try, by status code and problem
	// type ("no answer" for none).
	Codes map[string]int

	// Terminal counts accepted jobs that ended, Succeeded those that
	// ended succeeded.
	Terminal, Succeeded int
	// Lost counts accepted jobs the gateway does not know (404): a 202
	// that was not kept. It must be 0.
	Lost int
	// Live counts accepted jobs not ended within Options.Settle; Unread
	// those the gateway could not be asked about.
	Live, Unread int
	// EndedTwice counts jobs with more than one terminal event (or, once
	// ended, none) in the tenant's event stream.
	EndedTwice int
	// Unknown counts jobs stored or run that no client was told about.
	Unknown int

	// UpstreamCalls counts the upstream's calls; Duplicated the jobs it
	// was called for more than once, ExtraCalls the calls beyond the
	// first of each.
	UpstreamCalls, Duplicated, ExtraCalls int

	// Faults are the kills, in order, with their recovery.
	Faults []FaultResult
	// Settled is how long after the last write's final answer every
	// accepted job had ended and been checked.
	Settled time.Duration
	// Exited lists asyncgw processes that exited without being killed.
	Exited []string

	// Problems are the first of the problems found, word for word;
	// ProblemCount counts them all.
	Problems     []string
	ProblemCount int
}

func (r *Report) problem(format string, args ...any) {
	r.ProblemCount++
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Check fails t for each broken promise: an accepted job lost, not ended,
// ended other than succeeded or more than once, a job nobody was told
// about, a write given up or refused, a fault the deployment did not
// recover from, a process that exited by itself.
func (r *Report) Check(t testing.TB) {
	t.Helper()
	if r.Accepted == 0 {
		t.Errorf("no write was accepted")
	}
	for name, n := range map[string]int{
		"accepted jobs lost": r.Lost, "accepted jobs not ended": r.Live, "accepted jobs unreadable": r.Unread,
		"jobs ended other than once": r.EndedTwice, "jobs no client was told about": r.Unknown,
		"writes given up": r.GaveUp, "writes refused": r.Refused,
		"accepted jobs not succeeded": r.Accepted - r.Succeeded,
	} {
		if n != 0 {
			t.Errorf("%s: %d, want 0", name, n)
		}
	}
	for _, f := range r.Faults {
		if f.Recovered == 0 {
			t.Errorf("%s: no recovery before the load ended", f.Fault)
		}
		if w := f.ResumeWithin; w > 0 && f.Target != Worker && f.Recovered > 0 && (f.Resumed == 0 || f.Resumed > w) {
			t.Errorf("%s: accepts back %s after it, want within %s", f.Fault, f.Resumed.Round(10*time.Millisecond), w)
		}
		if f.Busy && (len(f.Interrupted) == 0 || f.RanAgain == 0) {
			t.Errorf("%s: %d jobs running at the kill, ran again after %s: want at least one, each called again", f.Fault, len(f.Interrupted), f.RanAgain)
		}
	}
	for _, e := range r.Exited {
		t.Errorf("%s", e)
	}
	for _, p := range r.Problems {
		t.Logf("problem: %s", p)
	}
	if r.ProblemCount > len(r.Problems) {
		t.Logf("... %d problems in all", r.ProblemCount)
	}
}

// Markdown writes the report as a Markdown table.
func (r *Report) Markdown(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| load | %d writes/s for %s, each with its own `Idempotency-Key`, retried on no answer or a 5xx |\n", o.Rate, o.Duration)
	if o.Redis != nil {
		fmt.Fprintf(w, "| Redis | %s |\n", describe(o.Redis))
	}
	fmt.Fprintf(w, "| writes sent | %d (answers: %s) |\n", r.Writes, codes(r.Codes))
	fmt.Fprintf(w, "| accepted (202) | %d, %d of them replayed to a retry |\n", r.Accepted, r.Replayed)
	fmt.Fprintf(w, "| lost | %d |\n", r.Lost)
	fmt.Fprintf(w, "| ended | %d (%d succeeded), %d still live, %d ended more than once |\n", r.Terminal, r.Succeeded, r.Live, r.EndedTwice)
	fmt.Fprintf(w, "| stored or run, no client told | %d |\n", r.Unknown)
	fmt.Fprintf(w, "| given up by clients, refused | %d, %d |\n", r.GaveUp, r.Refused)
	fmt.Fprintf(w, "| upstream calls | %d; %d jobs called more than once (%d extra calls) |\n", r.UpstreamCalls, r.Duplicated, r.ExtraCalls)
	for _, f := range r.Faults {
		rec := "never, within the load"
		if f.Recovered > 0 {
			what := "accepts again"
			if f.Target == Worker {
				what = "upstream calls again"
			}
			rec = fmt.Sprintf("%s after %s", what, f.Recovered.Round(10*time.Millisecond))
			if f.Target != Worker && f.Resumed.Round(10*time.Millisecond) != f.Recovered.Round(10*time.Millisecond) {
				rec += fmt.Sprintf(", after the outage %s", f.Resumed.Round(10*time.Millisecond))
			}
			if f.Stray > 0 {
				rec += fmt.Sprintf(" (%d tries failed later)", f.Stray)
			}
		}
		if f.Busy {
			again := "not all called again"
			if f.RanAgain > 0 {
				again = fmt.Sprintf("called again %s after the kill", f.RanAgain.Round(100*time.Millisecond))
			}
			rec = fmt.Sprintf("%d jobs running at the kill, %s; ", len(f.Interrupted), again) + rec
		}
		fmt.Fprintf(w, "| %s | %s; answers meanwhile: %s |\n", f.Fault, rec, codes(f.Codes))
	}
	fmt.Fprintf(w, "| every job ended and checked | %s after the last write's answer |\n", r.Settled.Round(100*time.Millisecond))
}

func (r *Report) String() string {
	var b strings.Builder
	r.Markdown(&b)
	return b.String()
}

// describe names a Redis deployment in a report.
func describe(r Redis) string {
	switch r.(type) {
	case *Single:
		return "one `redis-server`, `appendfsync always`"
	case *Sentinel:
		return "Sentinel: 1 master, 2 replicas, 3 sentinels, `appendfsync always` on each node; `redis.min_replicas_ack: 1`"
	case *Cluster:
		return "Cluster: 3 masters with 1 replica each, `appendfsync always` and `min-replicas-to-write 1` on each node; `redis.min_replicas_ack: 1`, 1 shard"
	default:
		return fmt.Sprintf("%T", r)
	}
}

// codes formats answer counts as "202 ×1,234 · 503 ×12".
func codes(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, " · ")
}
