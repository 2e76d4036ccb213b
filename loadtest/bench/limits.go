package main

import (
	"context"
	"fmt"
	"time"
)

// limitsCost (g2) measures what the upstream limits cost a job: a backlog
// drained by a worker process as in (g), with no limits, then with the
// upstream's host under limits that never bind (concurrency and rate far
// above what the workers reach), so that the difference is the limiter's
// work alone — one round trip to take a slot and one to give it back.
func (b *bench) limitsCost(ctx context.Context) error {
	const concurrency = 50
	n := b.opt.drain
	none, noneCPU, err := b.drainGateway(ctx, n, gwConfig{name: "limits-none", concurrency: concurrency})
	if err != nil {
		return err
	}
	with, withCPU, err := b.drainGateway(ctx, n, gwConfig{name: "limits", concurrency: concurrency,
		upstreams: "  \"UPSTREAM\": {concurrency: 100000, rate: 1000000}\n"})
	if err != nil {
		return err
	}
	if none == 0 || with == 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("limits: drain %.0f/s with limits, %.0f/s without", with, none))
		return nil
	}
	// The cost of a job is the time the worker process spends per job,
	// with limits less without.
	cost := time.Duration(float64(time.Second) * (1/with - 1/none))
	scen := "(g2) upstream limits"
	b.report.add(row{scen, fmt.Sprintf("jobs/s taking a backlog of %d, the host under limits that never bind (concurrency %d)", n, concurrency),
		fmtRate(with), fmtRate(none) + " (no limits)", fmt.Sprintf("%.2f×", with/none), nil})
	b.report.add(row{scen, "cost per job of the limiter (time per job, with less without)", cost.Round(time.Microsecond).String(), "", "", nil})
	b.report.add(row{scen, "CPU in cores while draining", withCPU, noneCPU + " (no limits)", "", nil})
	return nil
}
