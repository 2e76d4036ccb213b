// Command bench measures asyncgw side by side with what it replaces.
//
//	go run ./loadtest/bench [-quick] [-only accept,latency,proxy,e2e,sse,drain,limits,cluster,ordering,fairness] [-out FILE]
//
// It starts its own redis-server (no persistence), builds and starts the
// gateway, and measures in one run: (a) the full accept path (auth,
// Idempotency-Key, job record, enqueue) against a bare echo + asynq handler
// at the same concurrency; (b) accept latency at fixed arrival rates, timed
// from each request's due time; (c) the gateway against a synchronous
// reverse proxy in front of a 200 ms upstream that serves 64 at a time;
// (d) enqueue → worker start latency and (e) jobs per second end to end at
// a fixed rate, with the backlog sampled; (f) memory per idle event-stream
// subscriber and event delivery latency while jobs end; (g) how fast the
// workers drain a backlog, against the glue's own workers; (g2) what the
// upstream limits cost a job: the same drain with limits that never bind
// on the upstream's host, against none; (h) what a job
// costs Redis (CPU, commands by kind, each master's share, idle commands)
// on its redis-server and on a 3-master Redis Cluster it starts for that
// (internal/redistest.RunCluster), side by side; (i) what ordering keys
// cost, accepting and draining, against the same runs without them; (j)
// how the workers share a queue among tenants with the fair lines, against
// accept order (fairness.enabled: false): a new tenant's wait behind
// another's backlog, the shares while both have backlogs, and the drain's
// cost. It prints a table, writes it as Markdown, and exits 1 if a result
// was incorrect (a job lost, an error answered) — a missed speed target is
// reported, not failed.
//
// The servers it compares run as child processes of this binary:
//
//	bench upstream -listen ADDR [-delay D] [-concurrency N]
//	bench glue -listen ADDR -redis URL -queue Q [-upstream URL -concurrency N -fetchers F]
//	bench proxy -listen ADDR -upstream URL
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var err error
	args := os.Args[1:]
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		err = runCmd(args)
	case "upstream":
		err = upstreamCmd(args)
	case "glue":
		err = glueCmd(args)
	case "proxy":
		err = proxyCmd(args)
	default:
		err = fmt.Errorf("unknown command %q (want upstream, glue or proxy, or none to run the benchmarks)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runCmd(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "small numbers, seconds in all (checks that it works, not how fast)")
	only := fs.String("only", "", "comma-separated scenarios to run: accept, latency, proxy, e2e, sse, drain, limits, cluster, ordering, fairness")
	out := fs.String("out", "", "also write the table as Markdown to this file")
	measure := fs.Duration("measure", 0, "length of each measurement (default 10s; 1s with -quick)")
	profiles := fs.String("profiles", "", "write CPU profiles of the gateway under load into this directory")
	sse := fs.Int("sse", 0, "event-stream subscribers (default 10000; 100 with -quick)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt := fullOptions()
	if *quick {
		opt = quickOptions()
	}
	if *measure > 0 {
		opt.measure = *measure
	}
	opt.profiles = *profiles
	if *sse > 0 {
		opt.sse = *sse
	}
	if *only != "" {
		opt.only = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			opt.only[strings.TrimSpace(s)] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "asyncgw-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	began := time.Now()
	b, cleanup, err := newBench(ctx, opt, dir)
	defer cleanup()
	if err != nil {
		return err
	}
	runErr := b.run(ctx)
	fmt.Println()
	b.report.text(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		b.report.markdown(f, "go run ./loadtest/bench "+strings.Join(args, " "), time.Since(began))
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Printf("\nwritten to %s\n", *out)
	}
	if n := b.report.missed(); n > 0 {
		fmt.Printf("\n%d target(s) missed\n", n)
	}
	return runErr
}
