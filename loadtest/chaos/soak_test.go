package chaos

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment variables of TestSoak.
const (
	// envMode set to "long" runs the long soak (make soak).
	envMode = "ASYNCGW_SOAK"
	// envRate and envDuration override the soak's rate (writes per
	// second) and its length (a Go duration).
	envRate, envDuration = "ASYNCGW_SOAK_RATE", "ASYNCGW_SOAK_DURATION"
	// envOut names a file to write the report to, as Markdown.
	envOut = "ASYNCGW_SOAK_OUT"
)

// shortSoak is the soak of the test suite: 20 writes/s for 20 s with one
// kill of each kind. Redis and the worker die early, so that the jobs
// they leave running come back (60–120 s after the kill, asynq's
// recoverer) while the rest of the soak goes on.
func shortSoak() Options {
	return Options{
		Rate: 20, Duration: 20 * time.Second,
		Faults: []Fault{
			{Target: RedisNode, At: 3 * time.Second},
			{Target: Worker, At: 6 * time.Second, Busy: true},
			{Target: Gateway, At: 12 * time.Second},
		},
	}
}

// longSoak is the soak of make soak: 100 writes/s for two minutes with
// one kill of each kind.
func longSoak() Options {
	return Options{
		Rate: 100, Duration: 2 * time.Minute,
		Faults: []Fault{
			{Target: Worker, At: 20 * time.Second, Busy: true},
			{Target: RedisNode, At: 50 * time.Second},
			{Target: Gateway, At: 80 * time.Second},
		},
		Settle: 4 * time.Minute,
	}
}

// TestSoak runs asyncgw's gateway and worker processes against a Redis
// with AOF (appendfsync always) under a steady load of writes, kills the
// Redis server, the worker and the gateway with SIGKILL and restarts each,
// and checks the ledger: every 202 names a job that exists and ends
// succeeded exactly once, no job exists that no client was told about,
// and every write gets its 202 in the end (a client retries with the same
// Idempotency-Key). Duplicate upstream calls are reported, not failed:
// delivery is at least once.
func TestSoak(t *testing.T) {
	t.Parallel()
	opt, mode := fromEnv(t, shortSoak(), longSoak())
	began := time.Now()
	rep := Run(t, opt)
	report(t, "Soak ("+mode+")", began, rep)
	rep.Check(t)
}

// fromEnv returns short, or long with ASYNCGW_SOAK=long, with the rate
// and duration of the environment, and the mode's name.
func fromEnv(t *testing.T, short, long Options) (Options, string) {
	t.Helper()
	opt, mode := short, "short"
	if os.Getenv(envMode) == "long" {
		opt, mode = long, "long"
	}
	if v := os.Getenv(envRate); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of writes per second", envRate, v)
		}
		opt.Rate = n
	}
	if v := os.Getenv(envDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 2m", envDuration, v)
		}
		opt.Duration = d
	}
	return opt, mode
}

// report logs the report and writes it to the file ASYNCGW_SOAK_OUT
// names, if any, under the title with the date and how long it all took.
func report(t *testing.T, title string, began time.Time, rep *Report) {
	t.Helper()
	took := time.Since(began).Round(time.Second)
	t.Logf("%s, %s in all:\n%s", title, took, rep)
	if path := os.Getenv(envOut); path != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "%s, %s, %s in all\n\n", title, began.Format("2006-01-02 15:04 MST"), took)
		rep.Markdown(&b)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Errorf("write %s: %v", path, err)
		}
	}
}
