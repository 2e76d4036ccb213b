package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/asyncgw/asyncgw/admin"
)

// queuesCmd is "asyncgw queues": every queue's figures; its subcommands
// pause and resume one.
func (c *cli) queuesCmd() *cobra.Command {
	queues := &cobra.Command{
		Use:   "queues",
		Short: "The queues' depths; pause or resume one",
		Long: `Every queue: its pending, scheduled, retry, active and dead jobs, the
latency of its oldest pending job, and whether it is paused; then every
upstream host with limits (upstreams in the configuration): its limits, the
calls in flight to it across every worker, the jobs its limits hold back,
and a pause its Retry-After asked for. --json prints what GET
/admin/v1/queues answers, plus "upstreams" as GET /admin/v1/upstreams
answers it when any host has limits.
` + operatorNote,
		Example: `  asyncgw queues
  asyncgw queues --json
  asyncgw queues pause low`,
		Args:              subcommandArgs("pause or resume"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, closeFn, err := c.openAdmin(ctx, "queues")
			if err != nil {
				return err
			}
			defer closeFn()
			qs, err := svc.Queues(ctx)
			if err != nil {
				return err
			}
			us, err := svc.Upstreams(ctx)
			if err != nil {
				return err
			}
			if c.jsonOut && len(us) > 0 {
				return writeJSON(c.stdout, map[string]any{"queues": qs, "upstreams": us})
			}
			if c.jsonOut {
				return writeJSON(c.stdout, map[string]any{"queues": qs})
			}
			if err := writeQueues(c.stdout, qs); err != nil {
				return err
			}
			return writeUpstreams(c.stdout, us)
		},
	}
	queues.PersistentFlags().BoolVar(&c.jsonOut, "json", false, "print the admin API's JSON answer")
	queues.AddCommand(
		c.pauseCmd("pause", "Workers take no more jobs from QUEUE (it still accepts them)",
			"Workers take no more jobs from QUEUE; the gateways still accept jobs into it.", true),
		c.pauseCmd("resume", "Workers take jobs from QUEUE again", "Workers take jobs from QUEUE again.", false),
	)
	return queues
}

// pauseCmd is "asyncgw queues pause QUEUE" (paused) or "asyncgw queues
// resume QUEUE".
func (c *cli) pauseCmd(name, short, long string, paused bool) *cobra.Command {
	return &cobra.Command{
		Use:   name + " QUEUE",
		Short: short,
		Long: long + ` It is idempotent: a queue already
` + name + `d stays so. --json prints what POST /admin/v1/queues/{queue}/` + name + `
answers.
` + operatorNote,
		Args:              oneArg("queue name (asyncgw queues " + name + " QUEUE)"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			queue := args[0]
			ctx := cmd.Context()
			svc, closeFn, err := c.openAdmin(ctx, "queues")
			if err != nil {
				return err
			}
			defer closeFn()
			q, err := svc.SetPaused(ctx, queue, paused)
			if errors.Is(err, admin.ErrUnknownQueue) {
				return fmt.Errorf("queues %s: no such queue %q", name, queue)
			}
			if err != nil {
				return err
			}
			if c.jsonOut {
				return writeJSON(c.stdout, q)
			}
			fmt.Fprintf(c.stdout, "queue %s: %sd\n", queue, name)
			return nil
		},
	}
}

// writeQueues prints the queues as a table.
func writeQueues(w io.Writer, qs []admin.Queue) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPENDING\tSCHEDULED\tRETRY\tACTIVE\tDEAD\tLATENCY\tPAUSED")
	for _, q := range qs {
		paused := "no"
		if q.Paused {
			paused = "yes"
		}
		latency := time.Duration(q.LatencySeconds * float64(time.Second)).Round(time.Millisecond)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", q.Name, q.Pending, q.Scheduled, q.Retry, q.Active,
			strconv.FormatInt(q.Dead, 10), latency, paused)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeTenantShares(w, qs)
}

// writeTenantShares prints, under the table, each queue's new jobs
// waiting in its fair lines by tenant, most first ("" when none waits).
func writeTenantShares(w io.Writer, qs []admin.Queue) error {
	for _, q := range qs {
		if len(q.PendingByTenant) == 0 {
			continue
		}
		tenants := slices.Collect(maps.Keys(q.PendingByTenant))
		slices.SortFunc(tenants, func(a, b string) int {
			return cmp.Or(cmp.Compare(q.PendingByTenant[b], q.PendingByTenant[a]), cmp.Compare(a, b))
		})
		parts := make([]string, len(tenants))
		for i, t := range tenants {
			parts[i] = fmt.Sprintf("%s %d", t, q.PendingByTenant[t])
		}
		if _, err := fmt.Fprintf(w, "\nqueue %s: pending by tenant (taken in turn): %s\n", q.Name, strings.Join(parts, ", ")); err != nil {
			return err
		}
	}
	return nil
}
