package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the results table. Met is nil for a line that has
// no target.
type row struct {
	scenario, measure, asyncgw, baseline, target string
	met                                          *bool
}

type report struct {
	rows []row
}

func (r *report) add(x row) { r.rows = append(r.rows, x) }

func met(ok bool) *bool { return &ok }

func (x row) verdict() string {
	switch {
	case x.met == nil:
		return ""
	case *x.met:
		return "met"
	}
	return "MISSED"
}

// missed counts the targets not met.
func (r *report) missed() int {
	n := 0
	for _, x := range r.rows {
		if x.met != nil && !*x.met {
			n++
		}
	}
	return n
}

// text prints the table for a terminal.
func (r *report) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMEASURE\tASYNCGW\tBASELINE\tTARGET\t")
	for _, x := range r.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.scenario, x.measure, x.asyncgw, x.baseline, x.target, x.verdict())
	}
	_ = tw.Flush()
}

// markdown writes the table with a header that says where and when it
// was measured.
func (r *report) markdown(w io.Writer, cmdline string, took time.Duration) {
	fmt.Fprintf(w, "Measured %s on %s/%s, %d CPUs, %s, in %s: `%s`\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		runtime.Version(), took.Round(time.Second), cmdline)
	fmt.Fprintln(w, "| Scenario | Measure | asyncgw | Baseline | Target | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, x := range r.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", esc(x.scenario), esc(x.measure), esc(x.asyncgw),
			esc(x.baseline), esc(x.target), x.verdict())
	}
}

func fmtRate(r float64) string { return fmt.Sprintf("%.0f/s", r) }

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtLat(r *result) string { return ms(r.pct(0.5)) + " / " + ms(r.pct(0.99)) }
