package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	ups "github.com/asyncgw/asyncgw/upstream"
)

// upstreamConfig is one host's entry under upstreams: what the workers may
// ask of it. Pointers tell a key left out (no such limit) from a bad 0.
type upstreamConfig struct {
	// Concurrency caps the calls in flight to the host, across every
	// worker process. Defaults to no cap.
	Concurrency *int `yaml:"concurrency"`
	// Rate caps the calls started per second, across every worker
	// process. Defaults to no cap.
	Rate *float64 `yaml:"rate"`
	// Burst is how many calls may start at once after a quiet spell.
	// Defaults to max(1, rate).
	Burst *int `yaml:"burst"`
	// Adaptive lets the concurrency follow the host's latency and
	// overloads, within concurrency. Defaults to false.
	Adaptive bool `yaml:"adaptive"`
}

// resolveUpstreams checks the upstreams section, naming the bad key as
// upstreams."payments.internal:8443".concurrency.
func resolveUpstreams(in map[string]upstreamConfig) (map[string]ups.Limit, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]ups.Limit, len(in))
	for _, host := range slices.Sorted(maps.Keys(in)) {
		c := in[host]
		at := fmt.Sprintf("upstreams.%q", host)
		if err := ups.ValidateHost(host); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		var l ups.Limit
		if c.Concurrency != nil {
			if *c.Concurrency < 1 || *c.Concurrency > 100000 {
				return nil, fmt.Errorf("%s.concurrency: %d must be between 1 and 100000", at, *c.Concurrency)
			}
			l.Concurrency = *c.Concurrency
		}
		if c.Rate != nil {
			if r := *c.Rate; !(r > 0) || math.IsInf(r, 0) || r > 1e6 {
				return nil, fmt.Errorf("%s.rate: %v must be above 0 and at most 1000000 calls per second", at, r)
			}
			l.Rate = *c.Rate
		}
		if c.Burst != nil {
			if c.Rate == nil {
				return nil, fmt.Errorf("%s.burst: needs rate", at)
			}
			if *c.Burst < 1 || *c.Burst > 1000000 {
				return nil, fmt.Errorf("%s.burst: %d must be between 1 and 1000000", at, *c.Burst)
			}
			l.Burst = *c.Burst
		}
		l.Adaptive = c.Adaptive
		if l.Adaptive && l.Concurrency == 0 {
			return nil, fmt.Errorf("%s.adaptive: needs concurrency (the most it adapts up to)", at)
		}
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("%s.%w", at, err)
		}
		out[host] = l
	}
	return out, nil
}

// writeUpstreams prints the limited upstream hosts as a table after a
// blank line; nothing when no host has limits.
func writeUpstreams(w io.Writer, us []ups.Usage) error {
	if len(us) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tIN USE\tCONCURRENCY\tRATE\tBURST\tHELD\tLATENCY\tPAUSED")
	for _, u := range us {
		conc, rate, burst := "-", "-", "-"
		if c := u.Limit.Concurrency; c > 0 {
			conc = strconv.Itoa(c)
			if u.Limit.Adaptive {
				conc = fmt.Sprintf("%d (adaptive, at most %d)", u.EffectiveConcurrency, c)
			}
		}
		if u.Limit.Rate > 0 {
			rate = strconv.FormatFloat(u.Limit.Rate, 'g', -1, 64) + "/s"
			burst = strconv.Itoa(u.Limit.Burst)
		}
		paused := "no"
		if u.PausedUntil != nil {
			paused = "until " + u.PausedUntil.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", u.Host, u.InUse, conc, rate, burst, u.Held,
			(time.Duration(u.LatencyMS) * time.Millisecond).String(), paused)
	}
	return tw.Flush()
}
