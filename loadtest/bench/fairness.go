package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/loadtest/child"
	"github.com/asyncgw/asyncgw/status"
)

// fairConcurrency is the workers' concurrency in scenario (j), as in the
// drains.
const fairConcurrency = 50

// fairWaitBound is how long tenant B's job is waited for after the
// resume; past it, its wait is reported as "> bound" (the drain is still
// waited for, as long as it moves).
const fairWaitBound = time.Minute

// fairRun is what scenario (j) measured on one gateway, with the fair
// lines on or off.
type fairRun struct {
	// wait is B's one job's wait from the resume to its call, behind A's
	// backlog; late, when it had not come within fairWaitBound.
	wait time.Duration
	late bool
	// ahead is how many of A's jobs were called before B's.
	ahead int
	// shareB is how many of B's jobs were among the first fairShare
	// called, when A and B had fairShare jobs each.
	shareB int
	// backlogRate and shareRate are the two drains' jobs/s, between the
	// first and the last call.
	backlogRate, shareRate float64
	// redisPerJob is Redis's CPU time per job over both drains, from the
	// resume to the last call.
	redisPerJob time.Duration
	// cpu is how busy the gateway's process (gateway and workers), Redis
	// and the harness were during the second drain.
	cpu string
}

// fairness (j) measures how the workers share a queue among tenants, with
// the fair lines on and then, as the baseline, off (fairness.enabled:
// false): how long a new tenant's one job waits behind another's backlog
// of fairBacklog jobs; which jobs start first when both have fairShare
// waiting; and what the fair line costs the drain.
func (b *bench) fairness(ctx context.Context) error {
	fair, err := b.fairnessRun(ctx, false)
	if err != nil {
		return fmt.Errorf("fairness on: %w", err)
	}
	off, err := b.fairnessRun(ctx, true)
	if err != nil {
		return fmt.Errorf("fairness off: %w", err)
	}
	// Which jobs go first is the fair lines' whole point, not a speed:
	// B's one job is in the first takes whatever A's backlog, and B gets
	// about half of the first fairShare (the workers' concurrency blurs
	// the order of calls only by a take or two).
	if fair.ahead < 0 || fair.ahead > 2*fairConcurrency {
		b.wrong = append(b.wrong, fmt.Sprintf("fairness: %d of A's jobs were called before B's one job, want at most %d", fair.ahead, 2*fairConcurrency))
	}
	if s := float64(fair.shareB) / float64(b.opt.fairShare); s < 0.35 || s > 0.65 {
		b.wrong = append(b.wrong, fmt.Sprintf("fairness: B had %d of the first %d jobs called, want about half", fair.shareB, b.opt.fairShare))
	}
	const scen = "(j) fairness"
	offNote := func(s string) string { return s + " (fairness off)" }
	waitText := func(r *fairRun) string {
		if r.late {
			return "> " + fairWaitBound.String()
		}
		return ms(r.wait)
	}
	backlog, share := b.opt.fairBacklog, b.opt.fairShare
	b.report.add(row{scen, fmt.Sprintf("B's one job: resume → its call, behind A's backlog of %d (queue paused while both submit; concurrency %d)", backlog, fairConcurrency),
		waitText(fair), offNote(waitText(off)),
		"≤ 1 s: " + waitText(fair), met(!fair.late && fair.wait <= time.Second)})
	b.report.add(row{scen, "A's jobs called before B's job (upstream's order of first calls)",
		fmt.Sprint(fair.ahead), offNote(fmt.Sprint(off.ahead)), "", nil})
	pct := func(n int) string { return fmt.Sprintf("%d (%.0f%%)", n, 100*float64(n)/float64(share)) }
	b.report.add(row{scen, fmt.Sprintf("B's jobs among the first %d called, A then B submitting %d each while paused", share, share),
		pct(fair.shareB), offNote(pct(off.shareB)), "", nil})
	change := func(on, off float64) string { return fmt.Sprintf("%+.0f%%", (on/off-1)*100) }
	b.report.add(row{scen, fmt.Sprintf("jobs/s draining A's %d and B's 1 (first to last call)", backlog),
		fmtRate(fair.backlogRate), offNote(fmtRate(off.backlogRate)), change(fair.backlogRate, off.backlogRate), nil})
	b.report.add(row{scen, fmt.Sprintf("jobs/s draining A's %d and B's %d", share, share),
		fmtRate(fair.shareRate), offNote(fmtRate(off.shareRate)), change(fair.shareRate, off.shareRate), nil})
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }
	b.report.add(row{scen, "Redis CPU per job, both drains (resume → last call)",
		us(fair.redisPerJob), offNote(us(off.redisPerJob)), change(float64(fair.redisPerJob), float64(off.redisPerJob)), nil})
	b.report.add(row{scen, "CPU in cores during the second drain (server: gateway and workers)", fair.cpu, offNote(off.cpu), "", nil})
	return nil
}

// fairnessRun runs both measures on a gateway with its workers in one
// process (the fair lines off when fifo), tenants A and B, and an operator
// who pauses and resumes the queue through the admin API.
func (b *bench) fairnessRun(ctx context.Context, fifo bool) (*fairRun, error) {
	calls := newCallLog()
	url, closeUp, err := listenUpstream(calls)
	if err != nil {
		return nil, err
	}
	defer closeUp()
	a, bt, op := newTenant("tenant-a", false), newTenant("tenant-b", false), newTenant("ops", true)
	name := "fair"
	if fifo {
		name = "fifo"
	}
	gw, err := b.startGateway(gwConfig{name: name, upstream: url + "/work", concurrency: fairConcurrency,
		tenants: []apiTenant{a, bt, op}, fifo: fifo}, "")
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	tgtA, tgtB := b.tenantTarget(gw, a), b.tenantTarget(gw, bt)
	run := &fairRun{}
	var redisCPU time.Duration
	var drained int

	// 1. A's backlog, then B's one job.
	if err := b.setPaused(ctx, gw, op, true); err != nil {
		return nil, err
	}
	backlogA, err := submitN(ctx, tgtA, b.opt.fairBacklog, b.opt.conns)
	if err != nil {
		return nil, fmt.Errorf("submit A's backlog: %w", err)
	}
	oneB, err := submitN(ctx, tgtB, 1, 1)
	if err != nil {
		return nil, fmt.Errorf("submit B's job: %w", err)
	}
	want := map[string]int{}
	if !fifo {
		want = map[string]int{a.name: len(backlogA), bt.name: 1}
	}
	if err := b.checkFairBacklog(ctx, gw, op, want); err != nil {
		return nil, err
	}
	arrived := calls.await(oneB[0])
	cpu0 := child.CPUTime(b.redisProc.Pid())
	resumed := time.Now()
	if err := b.setPaused(ctx, gw, op, false); err != nil {
		return nil, err
	}
	select {
	case at := <-arrived:
		run.wait = at.Sub(resumed)
	case <-time.After(fairWaitBound - time.Since(resumed)):
		run.late = true
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n1 := len(backlogA) + 1
	if !b.awaitCalls(ctx, calls, n1) {
		return nil, fmt.Errorf("%d of %d jobs called within a minute of the last progress", calls.count(), n1)
	}
	redisCPU += child.CPUTime(b.redisProc.Pid()) - cpu0
	drained += n1
	run.ahead = calls.index(oneB[0])
	run.backlogRate = drainRate(calls.from(0))

	// 2. A's share, then B's.
	if err := b.setPaused(ctx, gw, op, true); err != nil {
		return nil, err
	}
	shareA, err := submitN(ctx, tgtA, b.opt.fairShare, b.opt.conns)
	if err != nil {
		return nil, fmt.Errorf("submit A's jobs: %w", err)
	}
	shareB, err := submitN(ctx, tgtB, b.opt.fairShare, b.opt.conns)
	if err != nil {
		return nil, fmt.Errorf("submit B's jobs: %w", err)
	}
	m := b.meter(gw.pids()...)
	cpu0 = child.CPUTime(b.redisProc.Pid())
	if err := b.setPaused(ctx, gw, op, false); err != nil {
		return nil, err
	}
	if !b.awaitCalls(ctx, calls, n1+len(shareA)+len(shareB)) {
		return nil, fmt.Errorf("%d of %d jobs called within a minute of the last progress", calls.count()-n1, len(shareA)+len(shareB))
	}
	redisCPU += child.CPUTime(b.redisProc.Pid()) - cpu0
	run.cpu = m.stop()
	drained += len(shareA) + len(shareB)
	isB := map[string]bool{}
	for _, id := range shareB {
		isB[id] = true
	}
	second := calls.from(n1)
	for _, c := range second[:b.opt.fairShare] {
		if isB[c.id] {
			run.shareB++
		}
	}
	run.shareRate = drainRate(second)
	run.redisPerJob = redisCPU / time.Duration(drained)

	st, err := b.store(gw.prefix)
	if err != nil {
		return nil, err
	}
	b.checkSucceeded(ctx, st, name, map[string][]string{
		a.name: append(backlogA, shareA...), bt.name: append(oneB, shareB...)})
	return run, nil
}

// tenantTarget is the gateway's route with t's API key.
func (b *bench) tenantTarget(g *gateway, t apiTenant) *target {
	tgt := b.gatewayTarget(g)
	tgt.header = http.Header{"Authorization": {"Bearer " + t.key}}
	return tgt
}

// adminCall sends an admin API request with op's key and decodes a 200
// answer into out.
func (b *bench) adminCall(ctx context.Context, g *gateway, op apiTenant, method, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+op.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

// setPaused pauses or resumes the gateway's queue through the admin API.
func (b *bench) setPaused(ctx context.Context, g *gateway, op apiTenant, paused bool) error {
	action := "resume"
	if paused {
		action = "pause"
	}
	var q admin.Queue
	if err := b.adminCall(ctx, g, op, http.MethodPost, "/admin/v1/queues/"+g.queue+"/"+action, &q); err != nil {
		return err
	}
	if q.Paused != paused {
		return fmt.Errorf("%s queue %s: answered paused: %t", action, g.queue, q.Paused)
	}
	return nil
}

// checkFairBacklog notes as wrong a queue whose fair lines, as the admin
// API counts them (pending_by_tenant), do not hold want: every new job
// with the fair lines on, none with them off.
func (b *bench) checkFairBacklog(ctx context.Context, g *gateway, op apiTenant, want map[string]int) error {
	var got struct {
		Queues []admin.Queue `json:"queues"`
	}
	if err := b.adminCall(ctx, g, op, http.MethodGet, "/admin/v1/queues", &got); err != nil {
		return err
	}
	for _, q := range got.Queues {
		if q.Name != g.queue {
			continue
		}
		if !maps.Equal(q.PendingByTenant, want) && !(len(q.PendingByTenant) == 0 && len(want) == 0) {
			b.wrong = append(b.wrong, fmt.Sprintf("fairness: queue %s has pending_by_tenant %v, want %v", g.queue, q.PendingByTenant, want))
		}
		return nil
	}
	return fmt.Errorf("GET /admin/v1/queues: no queue %s", g.queue)
}

// awaitCalls waits until n jobs have called, as long as calls keep coming
// (a minute after the last progress at most); it reports whether they did.
func (b *bench) awaitCalls(ctx context.Context, calls *callLog, n int) bool {
	last, lastAt := 0, time.Now()
	for ctx.Err() == nil && time.Since(lastAt) < time.Minute {
		got := calls.count()
		if got >= n {
			return true
		}
		if got > last {
			last, lastAt = got, time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	return calls.count() >= n
}

// drainRate is calls per second between the first and the last of cs.
func drainRate(cs []call) float64 {
	if len(cs) < 2 {
		return 0
	}
	span := cs[len(cs)-1].at.Sub(cs[0].at)
	if span <= 0 {
		return 0
	}
	return float64(len(cs)-1) / span.Seconds()
}

// tenantJobs reads one tenant's job records (for readJobs).
type tenantJobs struct {
	st     *status.Store
	tenant string
}

func (t tenantJobs) Get(ctx context.Context, _, id string) (*jobs.Job, error) {
	return t.st.Get(ctx, t.tenant, id)
}

// checkSucceeded notes as wrong the jobs (tenant → IDs) that have not
// succeeded within 30 s; their records may trail their calls a little.
func (b *bench) checkSucceeded(ctx context.Context, st *status.Store, what string, ids map[string][]string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := map[string][]string{}
		n := 0
		for t, list := range ids {
			for i, j := range b.readJobs(ctx, tenantJobs{st, t}, list) {
				if j == nil || j.State != jobs.StateSucceeded {
					left[t] = append(left[t], list[i])
					n++
				}
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b.wrong = append(b.wrong, fmt.Sprintf("fairness %s: %d jobs did not succeed", what, n))
			return
		}
		ids = left
		time.Sleep(200 * time.Millisecond)
	}
}
