package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/loadtest/child"
)

// merge pools several runs of one server: rates are averaged, latencies
// pooled.
func merge(rs []*result) (rate float64, all *result) {
	all = &result{statuses: map[int]int{}}
	for _, r := range rs {
		rate += r.rate()
		all.ok += r.ok
		all.latencies = append(all.latencies, r.latencies...)
	}
	slices.Sort(all.latencies)
	return rate / float64(len(rs)), all
}

// acceptVsGlue (a): the full accept path against the hand-written glue, at
// the same closed-loop concurrency, in alternating rounds.
func (b *bench) acceptVsGlue(ctx context.Context) error {
	gp, glue, _, err := b.glue()
	if err != nil {
		return err
	}
	defer gp.Stop()
	// Gateway only: the glue has no workers either.
	gw, err := b.startGateway(gwConfig{name: "accept", upstream: "http://127.0.0.1:9/work"}, "gateway")
	if err != nil {
		return err
	}
	defer gw.stop()
	full := b.gatewayTarget(gw)
	var glueRuns, gwRuns []*result
	var glueCPU, gwCPU string
	for i := range b.opt.rounds {
		closedLoop(ctx, glue, b.opt.conns, b.opt.warm)
		m := b.meter(gp.Pid())
		r := closedLoop(ctx, glue, b.opt.conns, b.opt.measure)
		glueCPU = m.stop()
		b.checkRun("glue", r)
		glueRuns = append(glueRuns, r)
		closedLoop(ctx, full, b.opt.conns, b.opt.warm)
		var profiled <-chan struct{}
		if i == 0 {
			profiled = b.profile(gw, "accept", b.opt.measure)
		}
		m = b.meter(gw.pids()...)
		r = closedLoop(ctx, full, b.opt.conns, b.opt.measure)
		gwCPU = m.stop()
		if profiled != nil {
			<-profiled
		}
		b.checkRun("gateway accept", r)
		gwRuns = append(gwRuns, r)
	}
	glueRate, glueAll := merge(glueRuns)
	gwRate, gwAll := merge(gwRuns)
	ratio := gwRate / glueRate
	const scen = "(a) accept, closed loop"
	b.report.add(row{scen, fmt.Sprintf("requests/s at %d connections", b.opt.conns),
		fmtRate(gwRate), fmtRate(glueRate) + " (glue)",
		fmt.Sprintf("≥ 0.80× glue: %.2f×", ratio), met(ratio >= 0.8)})
	b.report.add(row{scen, "latency p50 / p99", fmtLat(gwAll), fmtLat(glueAll) + " (glue)", "", nil})
	b.report.add(row{scen, "CPU in cores (last round)", gwCPU, glueCPU, "", nil})

	// The same gateway on asynq's public API only: its accept enqueues
	// with asynq's client, then writes the record.
	gw.stop()
	pub, err := b.startGateway(gwConfig{name: "accept-public", upstream: "http://127.0.0.1:9/work", publicAPI: true}, "gateway")
	if err != nil {
		return err
	}
	defer pub.stop()
	pubTarget := b.gatewayTarget(pub)
	closedLoop(ctx, pubTarget, b.opt.conns, b.opt.warm)
	m := b.meter(pub.pids()...)
	r := closedLoop(ctx, pubTarget, b.opt.conns, b.opt.measure)
	pubCPU := m.stop()
	b.checkRun("gateway accept, public API", r)
	pubRate := r.rate()
	b.report.add(row{scen, "requests/s, asynq's public API only (redis.asynq_direct: false)", fmtRate(pubRate), fmtRate(gwRate) + " (direct)",
		fmt.Sprintf("direct buys %+.0f%%", (gwRate/pubRate-1)*100), nil})
	b.report.add(row{scen, "CPU in cores, public API only", pubCPU, gwCPU + " (direct)", "", nil})
	return nil
}

// openLoopLatency (b): accept latency at fixed arrival rates, from each
// request's due time.
func (b *bench) openLoopLatency(ctx context.Context) error {
	gw, err := b.startGateway(gwConfig{name: "latency", upstream: "http://127.0.0.1:9/work"}, "gateway")
	if err != nil {
		return err
	}
	defer gw.stop()
	full := b.gatewayTarget(gw)
	const scen = "(b) accept, open loop"
	top := b.opt.rates[len(b.opt.rates)-1]
	for _, rate := range b.opt.rates {
		openLoop(ctx, full, rate, b.opt.warm, 2000)
		r := openLoop(ctx, full, rate, b.opt.measure, 2000)
		b.checkRun(fmt.Sprintf("open loop %.0f/s", rate), r)
		target, ok := "", (*bool)(nil)
		if rate == top {
			p99 := r.pct(0.99)
			target, ok = fmt.Sprintf("p99 ≤ 10 ms: %s", ms(p99)), met(p99 <= 10*time.Millisecond)
		}
		b.report.add(row{scen, fmt.Sprintf("p50 / p99 / p99.9 at %.0f/s (got %.0f/s)", rate, r.rate()),
			fmt.Sprintf("%s / %s / %s", ms(r.pct(0.5)), ms(r.pct(0.99)), ms(r.pct(0.999))), "", target, ok})
	}
	gw.stop()
	gp, glue, _, err := b.glue()
	if err != nil {
		return err
	}
	defer gp.Stop()
	openLoop(ctx, glue, top, b.opt.warm, 2000)
	r := openLoop(ctx, glue, top, b.opt.measure, 2000)
	b.checkRun("glue open loop", r)
	b.report.add(row{scen, fmt.Sprintf("glue p50 / p99 / p99.9 at %.0f/s", top), "",
		fmt.Sprintf("%s / %s / %s", ms(r.pct(0.5)), ms(r.pct(0.99)), ms(r.pct(0.999))), "", nil})
	return nil
}

// listenUpstream serves u on a free port of 127.0.0.1.
func listenUpstream(u http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// versusProxy (c): a synchronous reverse proxy and the gateway, both in
// front of an upstream that takes 200 ms and serves 64 requests at a time.
func (b *bench) versusProxy(ctx context.Context) error {
	slow, closeSlow, err := listenUpstream(newUpstream(200*time.Millisecond, 64))
	if err != nil {
		return err
	}
	defer closeSlow()
	pp, addr, err := child.StartListening("proxy", b.self, "proxy", "-listen", "127.0.0.1:0", "-upstream", slow)
	if err != nil {
		return err
	}
	defer pp.Stop()
	proxy := &target{url: "http://" + addr + "/work", body: workBody}
	closedLoop(ctx, proxy, b.opt.proxyConns, b.opt.warm)
	pr := closedLoop(ctx, proxy, b.opt.proxyConns, b.opt.measure)
	b.checkRunStatus("proxy", pr, http.StatusOK)
	pp.Stop()
	// The gateway runs its workers too, draining into the slow upstream
	// at 64 at a time while it accepts.
	gw, err := b.startGateway(gwConfig{name: "proxy", upstream: slow + "/work", concurrency: 64}, "")
	if err != nil {
		return err
	}
	defer gw.stop()
	full := b.gatewayTarget(gw)
	closedLoop(ctx, full, b.opt.proxyConns, b.opt.warm)
	gr := closedLoop(ctx, full, b.opt.proxyConns, b.opt.measure)
	b.checkRun("gateway before slow upstream", gr)
	ratio := gr.rate() / pr.rate()
	const scen = "(c) vs synchronous proxy"
	b.report.add(row{scen, fmt.Sprintf("answered requests/s at %d connections (upstream 200 ms, 64 at a time)", b.opt.proxyConns),
		fmtRate(gr.rate()), fmtRate(pr.rate()) + " (proxy)",
		fmt.Sprintf("≥ 40×: %.0f×", ratio), met(ratio >= 40)})
	b.report.add(row{scen, "latency p50 / p99", fmtLat(gr), fmtLat(pr) + " (proxy)", "", nil})
	return nil
}

// checkRunStatus is checkRun for a server whose success is another status.
func (b *bench) checkRunStatus(what string, r *result, want int) {
	r2 := *r
	r2.statuses = map[int]int{}
	for code, n := range r.statuses {
		if code == want {
			code = http.StatusAccepted
		}
		r2.statuses[code] += n
	}
	b.checkRun(what, &r2)
}

// endToEnd (d, e): jobs submitted at fixed rates to a gateway with its
// workers and a fast HTTP upstream: how soon each starts, how many end per
// second, and whether the backlog grows.
func (b *bench) endToEnd(ctx context.Context) error {
	for _, rate := range b.opt.e2eRates {
		if err := b.endToEndAt(ctx, rate); err != nil {
			return err
		}
	}
	return nil
}

// endToEndRun is what one end-to-end run at a fixed rate measured.
type endToEndRun struct {
	r   *result
	cpu string
	// ids are the accepted jobs (the glue's: tasks), answered or not.
	ids []string
	// unanswered counts ids whose upstream call was not answered within a
	// minute of the last submit.
	unanswered int
	// done is upstream answers per second inside the measured window.
	done float64
	// backlog samples: first, highest, last.
	first, peak, last int
}

// driveEndToEnd submits to tgt at rate, first for the warm-up, then for the
// measured window while it samples queue's backlog, and waits (up to a
// minute) for every accepted job's call to reach up. profile, if not nil,
// is started with the window and waited for.
func (b *bench) driveEndToEnd(ctx context.Context, tgt *target, up *jobUpstream, queue string, pids []int, rate float64, profile func() <-chan struct{}) *endToEndRun {
	run := &endToEndRun{}
	var mu sync.Mutex // guards run.ids
	tgt.accepted = func(id string, _ time.Time) {
		mu.Lock()
		run.ids = append(run.ids, id)
		mu.Unlock()
	}
	insp := asynq.NewInspectorFromRedisClient(b.rdb)
	openLoop(ctx, tgt, rate, b.opt.warm, 2000)

	var samples []int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(b.opt.e2eMeasure / 20)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				samples = append(samples, b.queueBacklog(insp, queue))
			}
		}
	})
	var profiled <-chan struct{}
	if profile != nil {
		profiled = profile()
	}
	m := b.meter(pids...)
	run.r = openLoop(ctx, tgt, rate, b.opt.e2eMeasure, 2000)
	run.cpu = m.stop()
	end := time.Now()
	close(stop)
	wg.Wait()
	if profiled != nil {
		<-profiled
	}

	deadline := time.Now().Add(time.Minute)
	for {
		n, _ := up.jobs(time.Time{}, time.Time{})
		mu.Lock()
		run.unanswered = max(0, len(run.ids)-n)
		mu.Unlock()
		if run.unanswered == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, inWindow := up.jobs(start, end)
	run.done = float64(inWindow) / end.Sub(start).Seconds()
	if len(samples) > 0 {
		run.first, run.last = samples[0], samples[len(samples)-1]
	}
	for _, n := range samples {
		run.peak = max(run.peak, n)
	}
	return run
}

// endToEndAt runs the glue with its workers, then the gateway with its
// workers, at rate, each with an upstream that answers at once.
func (b *bench) endToEndAt(ctx context.Context, rate float64) error {
	const concurrency = 50
	b.seq++
	gp, glue, glueQueue, glueUp, closeGlueUp, err := b.glueWorking(fmt.Sprintf("bench_glue_%d", b.seq), concurrency)
	if err != nil {
		return err
	}
	base := b.driveEndToEnd(ctx, glue, glueUp, glueQueue, []int{gp.Pid()}, rate, nil)
	gp.Stop()
	closeGlueUp()
	b.checkRun("glue end-to-end submit", base.r)

	up := newJobUpstream(false)
	url, closeUp, err := listenUpstream(up)
	if err != nil {
		return err
	}
	defer closeUp()
	gw, err := b.startGateway(gwConfig{name: "e2e", upstream: url + "/work", concurrency: concurrency}, "")
	if err != nil {
		return err
	}
	defer gw.stop()
	full := b.gatewayTarget(gw)
	// asyncgw runs one shard: its queue is asynq's "s0}<queue>".
	run := b.driveEndToEnd(ctx, full, up, "s0}"+gw.queue, gw.pids(), rate, func() <-chan struct{} {
		return b.profile(gw, fmt.Sprintf("e2e-%.0f", rate), b.opt.e2eMeasure)
	})
	b.checkRun("end-to-end submit", run.r)

	st, err := b.store(gw.prefix)
	if err != nil {
		return err
	}
	// Each job's wait from enqueue to start; and how many have not
	// succeeded. Polled twice, for stragglers still recording their end.
	var starts []time.Duration
	notDone := 0
	for try := range 2 {
		if try > 0 {
			if notDone == 0 {
				break
			}
			time.Sleep(2 * time.Second)
		}
		notDone, starts = 0, starts[:0]
		for _, j := range b.readJobs(ctx, st, run.ids) {
			if j == nil || j.State != jobs.StateSucceeded || j.StartedAt == nil {
				notDone++
				continue
			}
			starts = append(starts, j.StartedAt.Sub(j.CreatedAt))
		}
	}
	if notDone > 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("end to end: %d of %d accepted jobs did not succeed within a minute", notDone, len(run.ids)))
	}
	slices.Sort(starts)

	// No growth: the backlog at the end is under a second of arrivals.
	noGrowth := float64(run.last) <= rate
	p99 := quantile(starts, 0.99)
	// The targets are set at the last (highest) rate; the others show
	// the same measures where the machine keeps up.
	atTarget := rate == b.opt.e2eRates[len(b.opt.e2eRates)-1]
	target := func(text string, ok bool) (string, *bool) {
		if !atTarget {
			return "", nil
		}
		return text, met(ok)
	}
	backlog := func(r *endToEndRun) string { return fmt.Sprintf("%d / %d / %d", r.first, r.peak, r.last) }
	glueNote := func(v string) string { return v + " (glue)" }
	done := fmtRate(base.done)
	if base.unanswered > 0 {
		done += fmt.Sprintf(", %d of %d unanswered after a minute", base.unanswered, len(base.ids))
	}
	scen, scen2 := "(d) enqueue → start", "(e) end to end"
	at := fmt.Sprintf(" at %.0f/s", rate)
	t, ok := target(fmt.Sprintf("p99 ≤ 50 ms: %s", ms(p99)), p99 <= 50*time.Millisecond && notDone == 0)
	b.report.add(row{scen, fmt.Sprintf("p50 / p99 / max%s (%d jobs)", at, len(starts)),
		fmt.Sprintf("%s / %s / %s", ms(quantile(starts, 0.5)), ms(p99), ms(quantile(starts, 1))), "", t, ok})
	t, ok = target(fmt.Sprintf("≥ %.0f/s: %.0f/s", rate, run.done), run.done >= 0.97*rate && notDone == 0)
	b.report.add(row{scen2, "jobs/s done while" + at + " arrive", fmtRate(run.done), glueNote(done), t, ok})
	t, ok = target("no growth (last < 1 s of arrivals)", noGrowth)
	b.report.add(row{scen2, "backlog first / peak / last sample" + at, backlog(run), glueNote(backlog(base)), t, ok})
	b.report.add(row{scen2, "accept p50 / p99 with workers running" + at, fmtLat(run.r), glueNote(fmtLat(base.r)), "", nil})
	b.report.add(row{scen2, "CPU in cores" + at, run.cpu, base.cpu, "", nil})
	return nil
}

// readJobs reads the records of ids (nil where one is missing), eight at a
// time.
func (b *bench) readJobs(ctx context.Context, st interface {
	Get(context.Context, string, string) (*jobs.Job, error)
}, ids []string) []*jobs.Job {
	out := make([]*jobs.Job, len(ids))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if j, err := st.Get(ctx, tenant, ids[i]); err == nil {
					out[i] = j
				}
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// drain (g) measures the workers alone: n jobs are accepted while no
// worker runs, then workers start and take the backlog, first the glue's
// (asynq, same concurrency and fetch loops, each task POSTed to the
// upstream), then the gateway's (a worker process of its own). The rate is
// counted between the first and the last upstream answer, so that neither
// side's start-up counts.
func (b *bench) drain(ctx context.Context) error {
	const concurrency = 50
	n := b.opt.drain

	// The glue: its server accepts, then stops; another on the same queue
	// runs the workers.
	gp, glue, queue, err := b.glue()
	if err != nil {
		return err
	}
	_, err = submitN(ctx, glue, n, b.opt.conns)
	gp.Stop()
	if err != nil {
		return fmt.Errorf("glue: submit: %w", err)
	}
	gp, _, _, glueUp, closeGlueUp, err := b.glueWorking(queue, concurrency)
	if err != nil {
		return err
	}
	defer closeGlueUp()
	base, baseCPU := b.awaitDrain(ctx, glueUp, n, gp.Pid())
	gp.Stop()

	rate, cpu, err := b.drainGateway(ctx, n, gwConfig{name: "drain", concurrency: concurrency})
	if err != nil {
		return err
	}
	// The same on asynq's public API only: what the direct path buys.
	pubRate, pubCPU, err := b.drainGateway(ctx, n, gwConfig{name: "drain-public", concurrency: concurrency, publicAPI: true})
	if err != nil {
		return err
	}
	if rate == 0 || base == 0 || pubRate == 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("drain: gateway %.0f/s (public API %.0f/s), glue %.0f/s", rate, pubRate, base))
	}
	scen := "(g) drain"
	b.report.add(row{scen, fmt.Sprintf("jobs/s taking a backlog of %d (workers only, concurrency %d)", n, concurrency),
		fmtRate(rate), fmtRate(base) + " (glue)", "", nil})
	b.report.add(row{scen, "CPU in cores while draining (server: the workers' process)", cpu, baseCPU, "", nil})
	b.report.add(row{scen, "jobs/s, asynq's public API only (redis.asynq_direct: false)", fmtRate(pubRate), fmtRate(rate) + " (direct)",
		fmt.Sprintf("direct buys %+.0f%%", (rate/pubRate-1)*100), nil})
	b.report.add(row{scen, "CPU in cores, public API only", pubCPU, cpu + " (direct)", "", nil})
	return nil
}

// drainGateway has a gateway process set up as c (its upstream is made
// here; in c.upstreams, UPSTREAM stands for its host:port) accept n jobs
// and then a worker process run them, and returns the worker's drain rate
// and CPU (with c.orderingKeys ordering keys in turn, when positive).
// Every job must succeed.
func (b *bench) drainGateway(ctx context.Context, n int, c gwConfig) (float64, string, error) {
	name := c.name
	// The gateway: a gateway process accepts, then a worker process runs;
	// the worker is the one that serves the profiler.
	up := newJobUpstream(false)
	up.delay = c.upstreamDelay
	if c.upstreamServes > 0 {
		up.slots = make(chan struct{}, c.upstreamServes)
	}
	url, closeUp, err := listenUpstream(up)
	if err != nil {
		return 0, "", err
	}
	defer closeUp()
	c.upstream = url + "/work"
	c.upstreams = strings.ReplaceAll(c.upstreams, "UPSTREAM", strings.TrimPrefix(url, "http://"))
	gw, err := b.startGateway(c)
	if err != nil {
		return 0, "", err
	}
	defer gw.stop()
	if err := b.startRole(gw, "gateway", gw.config); err != nil {
		return 0, "", err
	}
	tgt := b.gatewayTarget(gw)
	tgt.orderingKeys = c.orderingKeys
	ids, err := submitN(ctx, tgt, n, b.opt.conns)
	if err != nil {
		return 0, "", fmt.Errorf("gateway: submit: %w", err)
	}
	if err := b.startRole(gw, "worker", gw.first); err != nil {
		return 0, "", err
	}
	worker := gw.procs[len(gw.procs)-1].Pid()
	// A profile of the workers' second to sixth second (the backlog
	// lasts about ten).
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		if b.opt.profiles != "" && n >= 10000 {
			time.Sleep(time.Second)
			<-b.profile(gw, name, 5*time.Second)
		}
	}()
	rate, cpu := b.awaitDrain(ctx, up, n, worker)
	<-profiled

	st, err := b.store(gw.prefix)
	if err != nil {
		return 0, "", err
	}
	notDone := 0
	for _, j := range b.readJobs(ctx, st, ids) {
		if j == nil || j.State != jobs.StateSucceeded {
			notDone++
		}
	}
	if notDone > 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("%s: %d of %d jobs did not succeed", name, notDone, n))
	}
	return rate, cpu, nil
}

// glueWorking starts the glue with workers on queue: the gateway's
// concurrency and as many fetch loops as the gateway's default
// (worker.fetchers), each task POSTed to an upstream of its own; stop the
// upstream with the returned func once the glue has stopped.
func (b *bench) glueWorking(queue string, concurrency int) (*proc, *target, string, *jobUpstream, func(), error) {
	up := newJobUpstream(false)
	url, closeUp, err := listenUpstream(up)
	if err != nil {
		return nil, nil, "", nil, nil, err
	}
	p, t, q, err := b.glueOn(queue, "-upstream", url+"/work",
		"-concurrency", strconv.Itoa(concurrency), "-fetchers", strconv.Itoa(worker.DefaultFetchers(concurrency)))
	if err != nil {
		closeUp()
		return nil, nil, "", nil, nil, err
	}
	return p, t, q, up, closeUp, nil
}

// awaitDrain waits (up to a minute after the last progress) until up has
// answered n jobs, and returns the rate between its first and last answer
// and how busy the workers' process (pid), Redis and the harness were.
func (b *bench) awaitDrain(ctx context.Context, up *jobUpstream, n, pid int) (float64, string) {
	m := b.meter(pid)
	last, lastAt := 0, time.Now()
	for ctx.Err() == nil && time.Since(lastAt) < time.Minute {
		all, _ := up.jobs(time.Time{}, time.Time{})
		if all >= n {
			break
		}
		if all > last {
			last, lastAt = all, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu := m.stop()
	first, end := up.span()
	if all, _ := up.jobs(time.Time{}, time.Time{}); all < n || !end.After(first) {
		return 0, cpu
	}
	return float64(n-1) / end.Sub(first).Seconds(), cpu
}
