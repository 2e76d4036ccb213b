package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/status"
)

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
