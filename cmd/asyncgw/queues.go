package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/asyncgw/asyncgw/admin"
)

const queuesUsage = `usage: asyncgw queues [--json]        every queue: pending, scheduled, retry, active and
                                     dead jobs, latency, and whether it is paused
       asyncgw queues pause QUEUE    workers take no more jobs from QUEUE (it still accepts them)
       asyncgw queues resume QUEUE   workers take jobs from QUEUE again

Every command takes --config FILE (or ASYNCGW_CONFIG) and --json;
ASYNCGW_REDIS_URL overrides the file's redis.url, which is required.
`

// queuesCommand runs "asyncgw queues", "asyncgw queues pause Q" and
// "asyncgw queues resume Q".
func queuesCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := newCLIFlags("queues", queuesUsage, stderr, true)
	pos, err := c.parse(args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) == 0 {
		svc, closeFn, err := openAdmin(ctx, "queues", *c.config, getenv, stderr)
		if err != nil {
			return err
		}
		defer closeFn()
		qs, err := svc.Queues(ctx)
		if err != nil {
			return err
		}
		if c.jsonOut() {
			return writeJSON(stdout, map[string]any{"queues": qs})
		}
		return writeQueues(stdout, qs)
	}
	sub := pos[0]
	if sub != "pause" && sub != "resume" {
		fmt.Fprint(stderr, queuesUsage)
		return fmt.Errorf("queues: unknown command %q: want pause or resume", sub)
	}
	c.name = "queues " + sub
	switch {
	case len(pos) < 2:
		return fmt.Errorf("%s: missing queue name (asyncgw queues %s QUEUE)", c.name, sub)
	case len(pos) > 2:
		return fmt.Errorf("%s: unexpected argument %q", c.name, pos[2])
	}
	name := pos[1]
	svc, closeFn, err := openAdmin(ctx, "queues", *c.config, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	q, err := svc.SetPaused(ctx, name, sub == "pause")
	if errors.Is(err, admin.ErrUnknownQueue) {
		return fmt.Errorf("%s: no such queue %q", c.name, name)
	}
	if err != nil {
		return err
	}
	if c.jsonOut() {
		return writeJSON(stdout, q)
	}
	if sub == "pause" {
		fmt.Fprintf(stdout, "queue %s: paused\n", name)
	} else {
		fmt.Fprintf(stdout, "queue %s: resumed\n", name)
	}
	return nil
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
	return tw.Flush()
}
