package main

import (
	"context"
	"fmt"
)

// orderingKeys is how many ordering keys the ordered runs spread their
// jobs over: many more than the workers' concurrency, so that the lines
// do not hold the workers back and what is measured is what a line costs.
const orderingKeys = 1000

// orderingCost (i): the accept path and a drain with an X-Ordering-Key on
// every job (orderingKeys keys in turn) against the same without, in the
// same run: requests/s, jobs/s and the CPU of the server and of Redis.
func (b *bench) orderingCost(ctx context.Context) error {
	gw, err := b.startGateway(gwConfig{name: "ordering", upstream: "http://127.0.0.1:9/work"}, "gateway")
	if err != nil {
		return err
	}
	defer gw.stop()
	plain := b.gatewayTarget(gw)
	ordered := b.gatewayTarget(gw)
	ordered.orderingKeys = orderingKeys
	var plainRuns, orderedRuns []*result
	var plainCPU, orderedCPU string
	for range b.opt.rounds {
		for _, run := range []struct {
			t    *target
			runs *[]*result
			cpu  *string
			name string
		}{{plain, &plainRuns, &plainCPU, "accept without ordering keys"}, {ordered, &orderedRuns, &orderedCPU, "accept with ordering keys"}} {
			closedLoop(ctx, run.t, b.opt.conns, b.opt.warm)
			m := b.meter(gw.pids()...)
			r := closedLoop(ctx, run.t, b.opt.conns, b.opt.measure)
			*run.cpu = m.stop()
			b.checkRun(run.name, r)
			*run.runs = append(*run.runs, r)
		}
	}
	plainRate, plainAll := merge(plainRuns)
	orderedRate, orderedAll := merge(orderedRuns)
	const scen = "(i) ordering keys"
	b.report.add(row{scen, fmt.Sprintf("accepts/s at %d connections, %d keys", b.opt.conns, orderingKeys),
		fmtRate(orderedRate), fmtRate(plainRate) + " (no key)", fmt.Sprintf("%+.0f%%", (orderedRate/plainRate-1)*100), nil})
	b.report.add(row{scen, "accept latency p50 / p99", fmtLat(orderedAll), fmtLat(plainAll) + " (no key)", "", nil})
	b.report.add(row{scen, "CPU in cores while accepting (last round)", orderedCPU, plainCPU + " (no key)", "", nil})
	gw.stop()

	const concurrency = 50
	n := b.opt.drain
	plainDrain, plainDrainCPU, err := b.drainGateway(ctx, n, gwConfig{name: "drain", concurrency: concurrency})
	if err != nil {
		return err
	}
	orderedDrain, orderedDrainCPU, err := b.drainGateway(ctx, n, gwConfig{name: "drain-ordered", concurrency: concurrency, orderingKeys: orderingKeys})
	if err != nil {
		return err
	}
	if plainDrain == 0 || orderedDrain == 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("ordering: drain %.0f/s with keys, %.0f/s without", orderedDrain, plainDrain))
	}
	b.report.add(row{scen, fmt.Sprintf("jobs/s draining %d (concurrency %d, %d keys)", n, concurrency, orderingKeys),
		fmtRate(orderedDrain), fmtRate(plainDrain) + " (no key)", fmt.Sprintf("%+.0f%%", (orderedDrain/plainDrain-1)*100), nil})
	b.report.add(row{scen, "CPU in cores while draining (server: the workers' process)", orderedDrainCPU, plainDrainCPU + " (no key)", "", nil})
	return nil
}
