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
	return b.limitsBinding(ctx)
}

// limitsBinding (g2) measures how much of a fragile upstream's capacity a
// limit that binds leaves in use: the host answers in 50ms and serves 4
// calls at once (the rest wait in it). Without limits, the workers' 50
// slots call it all at once and it serves at its capacity, 80 calls/s;
// with {concurrency: 4}, no more than 4 calls are in flight, and the jobs
// held back must come back in time to take each slot as it frees.
func (b *bench) limitsBinding(ctx context.Context) error {
	const concurrency, serves, delay = 50, 4, 50 * time.Millisecond
	n := max(b.opt.drain/30, 100)
	cfg := gwConfig{concurrency: concurrency, upstreamDelay: delay, upstreamServes: serves}
	cfg.name = "limits-slow-none"
	none, _, err := b.drainGateway(ctx, n, cfg)
	if err != nil {
		return err
	}
	cfg.name = "limits-slow"
	cfg.upstreams = fmt.Sprintf("  \"UPSTREAM\": {concurrency: %d}\n", serves)
	with, withCPU, err := b.drainGateway(ctx, n, cfg)
	if err != nil {
		return err
	}
	if none == 0 || with == 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("limits that bind: drain %.0f/s with limits, %.0f/s without", with, none))
		return nil
	}
	scen := "(g2) upstream limits"
	b.report.add(row{scen, fmt.Sprintf("calls/s to a host that serves %d at once in %v, %d jobs, with {concurrency: %d}", serves, delay, n, serves),
		fmtRate(with), fmtRate(none) + " (no limits: the host's own pace)", fmt.Sprintf("%.2f×", with/none), nil})
	b.report.add(row{scen, "CPU in cores while draining, the limit binding", withCPU, "", "", nil})
	return nil
}
