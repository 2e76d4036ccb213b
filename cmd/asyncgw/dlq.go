package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// operatorNote ends the help of the commands that work on Redis directly.
const operatorNote = `
These commands work on Redis directly, not through a gateway. They read the
server's configuration (--config FILE or ASYNCGW_CONFIG; ASYNCGW_REDIS_URL
overrides its redis.url, which is required: the embedded Redis of a demo
asyncgw cannot be reached from another process). --json prints what the
admin API answers instead of a table.`

// dlqCmd is "asyncgw dlq": the dead-letter queue, straight in Redis
// through admin.Service.
func (c *cli) dlqCmd() *cobra.Command {
	const want = "list, show, replay or delete"
	dlq := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay or delete dead jobs",
		Long: `The dead-letter queue: jobs whose attempts are used up stay there until
they are replayed or deleted.
` + operatorNote,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun(want),
	}
	dlq.PersistentFlags().BoolVar(&c.jsonOut, "json", false, "print the admin API's JSON answer")
	dlq.AddCommand(c.dlqListCmd(), c.dlqShowCmd(), c.dlqReplayCmd(), c.dlqDeleteCmd())
	return dlq
}

// filterFlags are the dead-letter filters of list and replay --all, checked
// as the admin API checks them.
type filterFlags struct {
	queue, typ, tenant, errText, since, until string
}

func (f *filterFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.queue, "queue", "", "only jobs of this `QUEUE`")
	fs.StringVar(&f.typ, "type", "", "only jobs of this `TYPE` (route name)")
	fs.StringVar(&f.tenant, "tenant", "", "only jobs of this `TENANT`")
	fs.StringVar(&f.errText, "error", "", "only jobs whose last error contains this `TEXT` (any case)")
	fs.StringVar(&f.since, "since", "", "only jobs that died at or after this `TIME` (RFC 3339)")
	fs.StringVar(&f.until, "until", "", "only jobs that died before this `TIME` (RFC 3339)")
}

// filterNames are the flags of filterFlags.
var filterNames = []string{"queue", "type", "tenant", "error", "since", "until"}

// filter returns the filter, or a usage error of cmd naming every bad flag.
func (f *filterFlags) filter(cmd *cobra.Command) (status.DLQFilter, error) {
	out, problems := admin.ParseFilter(admin.FilterInput{
		Queue: f.queue, Type: f.typ, Tenant: f.tenant, Error: f.errText, Since: f.since, Until: f.until,
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
	return out, usagef(cmd, "%s", strings.Join(bad, "; "))
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

func (c *cli) dlqListCmd() *cobra.Command {
	var (
		ff     filterFlags
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "A page of the dead-letter queue, oldest first",
		Long: `A page of the dead-letter queue, oldest death first, as a table: ID, tenant,
queue, type, attempts, time of death and the last error. The filters are
those of GET /admin/v1/dlq. When there is more, the last line is
"more: --cursor C": give it for the next page.
` + operatorNote,
		Example: `  asyncgw dlq list --queue default --since 2026-11-21T00:00:00Z --limit 20
  asyncgw dlq list --error 503 --json`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := ff.filter(cmd)
			if err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return usagef(cmd, "--limit %d: must be a whole number from 1 to 1000", limit)
			}
			ctx := cmd.Context()
			svc, closeFn, err := c.openAdmin(ctx, "dlq")
			if err != nil {
				return err
			}
			defer closeFn()
			items, next, err := svc.DeadLetters(ctx, f, cursor, limit)
			if errors.Is(err, status.ErrBadCursor) {
				return usagef(cmd, "--cursor: is not a cursor that asyncgw handed out")
			}
			if err != nil {
				return err
			}
			if items == nil {
				items = []status.DeadLetter{}
			}
			if c.jsonOut {
				return writeJSON(c.stdout, map[string]any{"items": items, "next_cursor": next})
			}
			switch {
			case len(items) > 0:
				if err := writeDeadLetters(c.stdout, items); err != nil {
					return err
				}
			case next != "":
				fmt.Fprintln(c.stdout, "no matches among the dead letters looked at so far")
			case f != (status.DLQFilter{}) || cursor != "":
				fmt.Fprintln(c.stdout, "no dead letters match")
			default:
				fmt.Fprintln(c.stdout, "the dead-letter queue is empty")
			}
			if next != "" {
				fmt.Fprintf(c.stdout, "more: --cursor %s\n", next)
			}
			return nil
		},
	}
	ff.add(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 100, "page size, 1-1000")
	cmd.Flags().StringVar(&cursor, "cursor", "", "the page after this cursor (printed as \"more: --cursor C\")")
	return cmd
}

// jobID checks a job ID argument: a malformed one is not in the
// dead-letter queue.
func jobID(id string) error {
	if !jobs.ValidID(id) {
		return notDead(id)
	}
	return nil
}

func (c *cli) dlqShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "One dead job: every field, the whole error, the upstream's last answer",
		Long: `One dead job: every field, the whole last error, and the upstream's last
answer (its body cut at 2000 characters; --json shows it all).
` + operatorNote,
		Args:              oneArg("job ID (asyncgw dlq show ID)"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.onDeadLetter(cmd, args[0], func(ctx context.Context, svc *admin.Service, id string) error {
				d, err := svc.DeadLetter(ctx, id)
				if err != nil {
					return dlqError(id, err)
				}
				if c.jsonOut {
					return writeJSON(c.stdout, d)
				}
				return writeDeadLetter(c.stdout, d)
			})
		},
	}
}

func (c *cli) dlqReplayCmd() *cobra.Command {
	var (
		all, dryRun bool
		ff          filterFlags
		rate        float64
		limit       int
	)
	cmd := &cobra.Command{
		Use:   "replay ID | --all [filters]",
		Short: "Put one dead job, or every one matching filters, back on its queue",
		Long: `Put one dead job back on its queue now, or with --all every dead job that
matches the filters (those of dlq list), oldest first, at most --rate a
second (default 50; up to 100000). --limit caps one call (1-10000, default
10000): run it again for the rest. --dry-run only counts and samples.

replay refuses to run with neither an ID nor --all, so that nothing is
replayed wholesale by accident.
` + operatorNote,
		Example: `  asyncgw dlq replay gqarwptdkwnyl7czi4lvhicj2m
  asyncgw dlq replay --all --error 503 --dry-run
  asyncgw dlq replay --all --error 503 --rate 20`,
		ValidArgsFunction: cobra.NoFileCompletions,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 1:
				return usagef(cmd, "unexpected argument %q (one job ID, or --all)", args[1])
			case len(args) == 1 && all:
				return usagef(cmd, "give a job ID or --all, not both")
			case len(args) == 0 && !all:
				return usagef(cmd, "missing job ID: give one, or --all to replay every dead job that matches the filters (try --all --dry-run first)")
			case len(args) == 1:
				for _, n := range append(append([]string{}, filterNames...), "rate", "limit", "dry-run") {
					if cmd.Flags().Changed(n) {
						return usagef(cmd, "--%s goes with --all, not with a job ID", n)
					}
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return c.replayOne(cmd, args[0])
			}
			f, err := ff.filter(cmd)
			if err != nil {
				return err
			}
			if rate < 0 || rate > 100000 || math.IsNaN(rate) {
				return usagef(cmd, "--rate %v: must be a number of jobs per second from 0 (the default, %v) to 100000", rate, admin.DefaultRate)
			}
			if cmd.Flags().Changed("limit") && (limit < 1 || limit > admin.MaxBulk) {
				return usagef(cmd, "--limit %d: must be from 1 to %d", limit, admin.MaxBulk)
			}
			ctx := cmd.Context()
			svc, closeFn, err := c.openAdmin(ctx, "dlq")
			if err != nil {
				return err
			}
			defer closeFn()
			res, err := svc.ReplayMatching(ctx, admin.BulkReplay{Filter: f, DryRun: dryRun, Rate: rate, Limit: limit})
			if err != nil {
				return err
			}
			if c.jsonOut {
				return writeJSON(c.stdout, res)
			}
			return writeBulkResult(c.stdout, res)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&all, "all", false, "replay every dead job that matches the filters")
	ff.add(fs)
	fs.Float64Var(&rate, "rate", 0, "jobs per second (default 50)")
	fs.IntVar(&limit, "limit", 0, "replay at most this many (default and most 10000)")
	fs.BoolVar(&dryRun, "dry-run", false, "only count and sample what would be replayed")
	return cmd
}

// replayOne is "asyncgw dlq replay ID".
func (c *cli) replayOne(cmd *cobra.Command, id string) error {
	return c.onDeadLetter(cmd, id, func(ctx context.Context, svc *admin.Service, id string) error {
		j, err := svc.Replay(ctx, id)
		if err != nil {
			return dlqError(id, err)
		}
		if c.jsonOut {
			return writeJSON(c.stdout, j)
		}
		state := string(j.State)
		if j.State == jobs.StateScheduled && j.NextAttemptAt != nil {
			state += " for " + j.NextAttemptAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(c.stdout, "job %s: %s on queue %s (replay %d)\n", j.ID, state, j.Queue, j.Replays)
		return nil
	})
}

// onDeadLetter checks that id is a job ID, opens the admin service and
// runs fn with it: the common part of the commands on one dead job.
func (c *cli) onDeadLetter(cmd *cobra.Command, id string, fn func(ctx context.Context, svc *admin.Service, id string) error) error {
	if err := jobID(id); err != nil {
		return err
	}
	ctx := cmd.Context()
	svc, closeFn, err := c.openAdmin(ctx, "dlq")
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(ctx, svc, id)
}

func (c *cli) dlqDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Take a dead job out of the dead-letter queue for good",
		Long: `Take a dead job out of the dead-letter queue for good. Its record stays
readable, as dead, for records.retention. It prints one line; there is no
--json (the admin API answers 204 with no body).
` + operatorNote,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("json") {
				return usagef(cmd, "--json: delete has no JSON to print (the admin API answers 204 with no body)")
			}
			return oneArg("job ID (asyncgw dlq delete ID)")(cmd, args)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.onDeadLetter(cmd, args[0], func(ctx context.Context, svc *admin.Service, id string) error {
				if err := svc.Delete(ctx, id); err != nil {
					return dlqError(id, err)
				}
				fmt.Fprintf(c.stdout, "job %s: deleted from the dead-letter queue\n", id)
				return nil
			})
		},
	}
}
