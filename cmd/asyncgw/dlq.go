package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

const dlqUsage = `usage: asyncgw dlq <command> [flags]

commands:
  list     a page of the dead-letter queue, oldest first
             [--queue Q] [--type T] [--tenant X] [--error TEXT]
             [--since RFC3339] [--until RFC3339] [--limit N (1-1000, default 100)]
             [--cursor C] [--json]
  show ID  one dead job [--json]
  replay ID
           put one dead job back on its queue now [--json]
  replay --all [the list filters] [--rate R] [--limit N] [--dry-run] [--json]
           put every dead job matching the filters back, oldest first, at
           most R per second (default 50; up to 100000); --limit caps one
           call (1-10000, default 10000); --dry-run only counts and samples
  delete ID
           take a dead job out of the dead-letter queue for good

Every command takes --config FILE (or ASYNCGW_CONFIG); ASYNCGW_REDIS_URL
overrides the file's redis.url, which is required: the embedded Redis of a
demo asyncgw cannot be reached from another process.
`

// dlqCommand runs "asyncgw dlq ...": the dead-letter queue, straight in
// Redis through admin.Service.
func dlqCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return errors.New("dlq: missing command: list, show, replay or delete")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, dlqUsage)
		return nil
	case "list":
		return dlqList(ctx, args, getenv, stdout, stderr)
	case "show":
		return dlqShow(ctx, args, getenv, stdout, stderr)
	case "replay":
		return dlqReplay(ctx, args, getenv, stdout, stderr)
	case "delete":
		return dlqDelete(ctx, args, getenv, stdout, stderr)
	}
	if strings.HasPrefix(sub, "-") {
		return fmt.Errorf("dlq: %s before the command: the command comes first, as in asyncgw dlq list --config FILE", sub)
	}
	fmt.Fprint(stderr, dlqUsage)
	return fmt.Errorf("dlq: unknown command %q: want list, show, replay or delete", sub)
}

// cliFlags is the flag set of one operator command. Flags may come before,
// between or after the arguments; each may be given once.
type cliFlags struct {
	fs     *flag.FlagSet
	name   string
	usage  string
	stderr io.Writer
	config *string
	json   *bool
	counts map[string]*int
}

func newCLIFlags(name, usage string, stderr io.Writer, withJSON bool) *cliFlags {
	c := &cliFlags{fs: flag.NewFlagSet("asyncgw "+name, flag.ContinueOnError), name: name, usage: usage, stderr: stderr, counts: map[string]*int{}}
	// Errors are returned as one line; usage is printed only on --help.
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.config = c.fs.String("config", "", "configuration file (YAML)")
	if withJSON {
		c.json = c.fs.Bool("json", false, "print JSON")
	}
	return c
}

// countedValue counts how often a flag is set.
type countedValue struct {
	flag.Value
	n *int
}

func (v countedValue) Set(s string) error { *v.n++; return v.Value.Set(s) }

type countedBool struct{ countedValue }

func (countedBool) IsBoolFlag() bool { return true }

// parse parses args and returns the positional arguments. It returns
// flag.ErrHelp after printing the usage for -h and --help.
func (c *cliFlags) parse(args []string) ([]string, error) {
	c.fs.VisitAll(func(f *flag.Flag) {
		n := new(int)
		c.counts[f.Name] = n
		cv := countedValue{Value: f.Value, n: n}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			f.Value = countedBool{cv}
		} else {
			f.Value = cv
		}
	})
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stderr, c.usage)
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // after "--" everything is an argument
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	var dup []string
	c.fs.VisitAll(func(f *flag.Flag) {
		if *c.counts[f.Name] > 1 {
			dup = append(dup, "--"+f.Name)
		}
	})
	if len(dup) > 0 {
		return nil, fmt.Errorf("%s: %s: given more than once", c.name, strings.Join(dup, ", "))
	}
	return pos, nil
}

// set reports whether the flag was given.
func (c *cliFlags) set(name string) bool {
	n := c.counts[name]
	return n != nil && *n > 0
}

// jsonOut reports whether --json was given.
func (c *cliFlags) jsonOut() bool { return c.json != nil && *c.json }

// args parses args and checks that there are exactly want positional
// arguments, named by what (such as "ID") in the error.
func (c *cliFlags) args(args []string, want int, what string) ([]string, error) {
	pos, err := c.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) < want {
		return nil, fmt.Errorf("%s: missing %s", c.name, what)
	}
	if len(pos) > want {
		return nil, fmt.Errorf("%s: unexpected argument %q", c.name, pos[want])
	}
	return pos, nil
}

// filterFlags are the dead-letter filters of list and replay --all, checked
// as the admin API checks them.
type filterFlags struct {
	queue, typ, tenant, errText, since, until *string
}

var filterNames = []string{"queue", "type", "tenant", "error", "since", "until"}

func (c *cliFlags) filterFlags() filterFlags {
	return filterFlags{
		queue:   c.fs.String("queue", "", "only jobs of this queue"),
		typ:     c.fs.String("type", "", "only jobs of this type"),
		tenant:  c.fs.String("tenant", "", "only jobs of this tenant"),
		errText: c.fs.String("error", "", "only jobs whose last error contains this text (any case)"),
		since:   c.fs.String("since", "", "only jobs that died at or after this time (RFC 3339)"),
		until:   c.fs.String("until", "", "only jobs that died before this time (RFC 3339)"),
	}
}

// filter returns the filter, or an error naming every bad flag.
func (f filterFlags) filter(cmd string) (status.DLQFilter, error) {
	out, problems := admin.ParseFilter(admin.FilterInput{
		Queue: *f.queue, Type: *f.typ, Tenant: *f.tenant, Error: *f.errText, Since: *f.since, Until: *f.until,
	})
	if len(problems) == 0 {
		return out, nil
	}
	bad := make([]string, len(problems))
	for i, p := range problems {
		if p.Value != "" {
			bad[i] = fmt.Sprintf("--%s %q: %s", p.Name, p.Value, p.Detail)
		} else {
			bad[i] = fmt.Sprintf("--%s: %s", p.Name, p.Detail)
		}
	}
	return out, fmt.Errorf("%s: %s", cmd, strings.Join(bad, "; "))
}

// openAdmin connects to the configured Redis and returns the operator
// service on it, and a function that closes the connection.
func openAdmin(ctx context.Context, cmd, configPath string, getenv func(string) string, stderr io.Writer) (*admin.Service, func(), error) {
	cfg, err := loadConfig(configPath, getenv)
	if err != nil {
		return nil, nil, err
	}
	if cfg.RedisURL == "" {
		return nil, nil, fmt.Errorf("redis.url: required for %q (give --config FILE with redis.url, or ASYNCGW_REDIS_URL; the embedded Redis of a demo asyncgw lives inside that process and cannot be reached)", cmd)
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, configError(cfg.Path, fmt.Errorf("redis.url: %w", err))
	}
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = min(opts.DialTimeout, time.Second)
	opts.DialerRetries, opts.DialerRetryTimeout = 2, 20*time.Millisecond
	// Warnings only: the command's output is its own.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	redis.SetLogger(redisLogger{log})
	rdb := redis.NewClient(opts)
	store, err := status.New(cfg.Status, rdb)
	if err != nil {
		_ = rdb.Close()
		return nil, nil, configError(cfg.Path, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("redis.url: cannot reach %s: %w", opts.Addr, err)
	}
	client := jobs.NewClient(rdb, store, log)
	svc := admin.New(store, client, cfg.AdminQueues, admin.Hooks{}, log)
	return svc, func() { _ = rdb.Close() }, nil
}

// writeJSON prints v as the admin API would answer it.
func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// notDead is the error for a job that is not in the dead-letter queue.
func notDead(id string) error {
	if !jobs.ValidID(id) {
		return fmt.Errorf("job %q: not in the dead-letter queue", id)
	}
	return fmt.Errorf("job %s: not in the dead-letter queue", id)
}

// dlqError words the dead-letter errors of admin.Service.
func dlqError(id string, err error) error {
	switch {
	case errors.Is(err, admin.ErrNotFound):
		return notDead(id)
	case errors.Is(err, admin.ErrBusy):
		return fmt.Errorf("job %s: %w", id, err)
	}
	return err
}

func dlqList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLIFlags("dlq list", dlqUsage, stderr, true)
	ff := c.filterFlags()
	limit := c.fs.Int("limit", 100, "page size, 1-1000")
	cursor := c.fs.String("cursor", "", "the page after this cursor (printed as \"more: --cursor C\")")
	if _, err := c.args(args, 0, ""); err != nil {
		return helpOK(err)
	}
	f, err := ff.filter(c.name)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return fmt.Errorf("%s: --limit %d: must be a whole number from 1 to 1000", c.name, *limit)
	}
	svc, closeFn, err := openAdmin(ctx, "dlq", *c.config, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	items, next, err := svc.DeadLetters(ctx, f, *cursor, *limit)
	if errors.Is(err, status.ErrBadCursor) {
		return fmt.Errorf("%s: --cursor: is not a cursor that asyncgw handed out", c.name)
	}
	if err != nil {
		return err
	}
	if items == nil {
		items = []status.DeadLetter{}
	}
	if c.jsonOut() {
		return writeJSON(stdout, map[string]any{"items": items, "next_cursor": next})
	}
	switch {
	case len(items) > 0:
		if err := writeDeadLetters(stdout, items); err != nil {
			return err
		}
	case next != "":
		fmt.Fprintln(stdout, "no matches among the dead letters looked at so far")
	case f != (status.DLQFilter{}) || *cursor != "":
		fmt.Fprintln(stdout, "no dead letters match")
	default:
		fmt.Fprintln(stdout, "the dead-letter queue is empty")
	}
	if next != "" {
		fmt.Fprintf(stdout, "more: --cursor %s\n", next)
	}
	return nil
}

// helpOK turns the --help "error" into success (the usage is printed).
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// writeDeadLetters prints dead letters as a table.
func writeDeadLetters(w io.Writer, items []status.DeadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tQUEUE\tTYPE\tATTEMPTS\tDEAD AT\tERROR")
	for _, d := range items {
		j := d.Job
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, d.Tenant, j.Queue, j.Type,
			j.Attempt, j.MaxAttempts, d.DeadAt.UTC().Format(time.RFC3339), oneLine(j.Error, 60))
	}
	return tw.Flush()
}

// oneLine puts s on one line, without control characters, and cuts it to
// at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// printable drops the control characters of s but its line breaks.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if unicode.IsControl(r) && r != '\n' {
			return -1
		}
		return r
	}, s)
}

// oneJob parses the arguments of a command that takes one job ID, checks
// the ID and connects: dlq show and dlq delete.
func oneJob(ctx context.Context, c *cliFlags, args []string, usage string, getenv func(string) string, stderr io.Writer) (string, *admin.Service, func(), error) {
	pos, err := c.args(args, 1, usage)
	if err != nil {
		return "", nil, nil, helpOK(err)
	}
	id := pos[0]
	if !jobs.ValidID(id) {
		return "", nil, nil, notDead(id)
	}
	svc, closeFn, err := openAdmin(ctx, "dlq", *c.config, getenv, stderr)
	if err != nil {
		return "", nil, nil, err
	}
	return id, svc, closeFn, nil
}

func dlqShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLIFlags("dlq show", dlqUsage, stderr, true)
	id, svc, closeFn, err := oneJob(ctx, c, args, "job ID (asyncgw dlq show ID)", getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	d, err := svc.DeadLetter(ctx, id)
	if err != nil {
		return dlqError(id, err)
	}
	if c.jsonOut() {
		return writeJSON(stdout, d)
	}
	return writeDeadLetter(stdout, d)
}

// maxShownBody is how much of a result body "dlq show" prints.
const maxShownBody = 2000

// writeDeadLetter prints one dead letter for a reader.
func writeDeadLetter(w io.Writer, d *status.DeadLetter) error {
	j := d.Job
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) {
		lines := strings.Split(v, "\n")
		fmt.Fprintf(tw, "%s:\t%s\n", k, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t%s\n", l)
		}
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	line("id", j.ID)
	line("tenant", d.Tenant)
	line("queue", j.Queue)
	line("type", j.Type)
	line("state", string(j.State))
	line("attempts", fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts))
	line("dead at", d.DeadAt.UTC().Format(time.RFC3339))
	line("created at", ts(&j.CreatedAt))
	line("started at", ts(j.StartedAt))
	line("finished at", ts(j.FinishedAt))
	if j.Replays > 0 {
		line("replays", fmt.Sprintf("%d (last at %s)", j.Replays, ts(j.ReplayedAt)))
	}
	line("error", printable(j.Error))
	if r := j.Result; r != nil {
		res := strconv.Itoa(r.Status)
		if t := http.StatusText(r.Status); t != "" {
			res += " " + t
		}
		if ct := r.Headers["Content-Type"]; ct != "" {
			res += " (" + ct + ")"
		}
		line("result", res)
		switch {
		case len(r.Body) > 0:
			var b bytes.Buffer
			body := string(r.Body)
			if json.Compact(&b, r.Body) == nil {
				body = b.String()
			}
			body = printable(body)
			if len(body) > maxShownBody {
				body = body[:maxShownBody] + "… (cut; --json shows it all)"
			}
			line("body", body)
		case r.BodyBase64 != "":
			line("body", fmt.Sprintf("%d bytes, not text (--json shows it in base64)", len(r.BodyBase64)*3/4))
		}
	}
	if len(j.Precheck) > 0 {
		line("precheck", printable(string(j.Precheck)))
	}
	return tw.Flush()
}

func dlqReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLIFlags("dlq replay", dlqUsage, stderr, true)
	all := c.fs.Bool("all", false, "replay every dead job that matches the filters")
	ff := c.filterFlags()
	rate := c.fs.Float64("rate", 0, "jobs per second (default 50)")
	limit := c.fs.Int("limit", 0, "replay at most this many (default and most 10000)")
	dryRun := c.fs.Bool("dry-run", false, "only count and sample what would be replayed")
	pos, err := c.parse(args)
	if err != nil {
		return helpOK(err)
	}
	bulkOnly := append(append([]string{}, filterNames...), "rate", "limit", "dry-run")
	switch {
	case len(pos) > 1:
		return fmt.Errorf("%s: unexpected argument %q (one job ID, or --all)", c.name, pos[1])
	case len(pos) == 1 && *all:
		return fmt.Errorf("%s: give a job ID or --all, not both", c.name)
	case len(pos) == 0 && !*all:
		return fmt.Errorf("%s: missing job ID: give one, or --all to replay every dead job that matches the filters (try --all --dry-run first)", c.name)
	case len(pos) == 1:
		for _, n := range bulkOnly {
			if c.set(n) {
				return fmt.Errorf("%s: --%s goes with --all, not with a job ID", c.name, n)
			}
		}
		return replayOne(ctx, c, pos[0], getenv, stdout, stderr)
	}
	f, err := ff.filter(c.name)
	if err != nil {
		return err
	}
	if *rate < 0 || *rate > 100000 || math.IsNaN(*rate) {
		return fmt.Errorf("%s: --rate %v: must be a number of jobs per second from 0 (the default, %v) to 100000", c.name, *rate, admin.DefaultRate)
	}
	if c.set("limit") && (*limit < 1 || *limit > admin.MaxBulk) {
		return fmt.Errorf("%s: --limit %d: must be from 1 to %d", c.name, *limit, admin.MaxBulk)
	}
	svc, closeFn, err := openAdmin(ctx, "dlq", *c.config, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := svc.ReplayMatching(ctx, admin.BulkReplay{Filter: f, DryRun: *dryRun, Rate: *rate, Limit: *limit})
	if err != nil {
		return err
	}
	if c.jsonOut() {
		return writeJSON(stdout, res)
	}
	return writeBulkResult(stdout, res)
}

func replayOne(ctx context.Context, c *cliFlags, id string, getenv func(string) string, stdout, stderr io.Writer) error {
	if !jobs.ValidID(id) {
		return notDead(id)
	}
	svc, closeFn, err := openAdmin(ctx, "dlq", *c.config, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	j, err := svc.Replay(ctx, id)
	if err != nil {
		return dlqError(id, err)
	}
	if c.jsonOut() {
		return writeJSON(stdout, j)
	}
	state := string(j.State)
	if j.State == jobs.StateScheduled && j.NextAttemptAt != nil {
		state += " for " + j.NextAttemptAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "job %s: %s on queue %s (replay %d)\n", j.ID, state, j.Queue, j.Replays)
	return nil
}

// writeBulkResult prints what a bulk replay did.
func writeBulkResult(w io.Writer, res *admin.BulkResult) error {
	if res.DryRun {
		fmt.Fprintln(w, "dry run: nothing was replayed")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "matched:\t%d\n", res.Matched)
	if !res.DryRun {
		fmt.Fprintf(tw, "replayed:\t%d\n", res.Replayed)
		if res.Skipped > 0 {
			fmt.Fprintf(tw, "skipped:\t%d\t(left the dead-letter queue meanwhile)\n", res.Skipped)
		} else {
			fmt.Fprintf(tw, "skipped:\t%d\n", res.Skipped)
		}
		fmt.Fprintf(tw, "failed:\t%d\n", res.FailedCount)
		if res.Remaining > 0 {
			fmt.Fprintf(tw, "remaining:\t%d\t(over --limit; run again for the rest)\n", res.Remaining)
		} else {
			fmt.Fprintf(tw, "remaining:\t%d\n", res.Remaining)
		}
		rate := strconv.FormatFloat(res.Rate, 'f', -1, 64) + " per second"
		if res.LastDueAt != nil {
			rate += ", the last due at " + res.LastDueAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "rate:\t%s\n", rate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Sample) > 0 {
		fmt.Fprintf(w, "\nsample (the first %d of %d matched, oldest first):\n", len(res.Sample), res.Matched)
		if err := writeDeadLetters(w, res.Sample); err != nil {
			return err
		}
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(w, "\nfailed (%d of %d shown):\n", len(res.Failed), res.FailedCount)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tERROR")
		for _, f := range res.Failed {
			fmt.Fprintf(tw, "%s\t%s\n", f.ID, oneLine(f.Error, 120))
		}
		return tw.Flush()
	}
	return nil
}

func dlqDelete(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLIFlags("dlq delete", dlqUsage, stderr, false)
	id, svc, closeFn, err := oneJob(ctx, c, args, "job ID (asyncgw dlq delete ID)", getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := svc.Delete(ctx, id); err != nil {
		return dlqError(id, err)
	}
	fmt.Fprintf(stdout, "job %s: deleted from the dead-letter queue\n", id)
	return nil
}
