// Package chaos is a soak harness with a ledger: it runs real asyncgw
// processes (the binary built from this module, a gateway and a worker)
// against a real Redis, sends writes at a steady rate while it kills
// processes with SIGKILL, keeps a ledger of every answer, and at the end
// checks that every write a client was told was accepted (202) exists,
// ran and ended exactly once, and that nothing was stored that no client
// was told about.
//
// Run does one soak and returns its Report; the test of this package runs
// a short one (go test) and, with ASYNCGW_SOAK=long, the long one that
// `make soak` runs. Redis sits behind the Redis interface, so the same
// soak runs against a single node (Single), Redis Sentinel (Sentinel) or
// a Redis Cluster (Cluster).
package chaos

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/loadtest/child"
	"github.com/asyncgw/asyncgw/status"
)

// Options configures a soak.
type Options struct {
	// Rate is how many writes are sent per second. Defaults to 20.
	Rate int
	// Duration is how long writes are sent. Defaults to 20s.
	Duration time.Duration
	// Faults are the kills during the load, in any order.
	Faults []Fault
	// Redis is the deployment to run against. Defaults to NewSingle(t).
	Redis Redis
	// Concurrency is the worker's worker.concurrency. Defaults to 20.
	Concurrency int
	// UpstreamDelay is how long the upstream takes to answer, so that
	// jobs are running when the worker is killed. Defaults to 20ms.
	UpstreamDelay time.Duration
	// RetryFor is how long a client keeps trying a write that gets no
	// answer or a 5xx, from its first try. Defaults to 60s.
	RetryFor time.Duration
	// Settle bounds how long, after the load, the soak waits for every
	// accepted job to end. Defaults to 3m: after a worker's kill -9
	// asynq hands its jobs back 60–120 s later.
	Settle time.Duration
}

func (o Options) withDefaults(t testing.TB) Options {
	o.Rate = cmp.Or(o.Rate, 20)
	o.Duration = cmp.Or(o.Duration, 20*time.Second)
	o.Concurrency = cmp.Or(o.Concurrency, 20)
	o.UpstreamDelay = cmp.Or(o.UpstreamDelay, 20*time.Millisecond)
	o.RetryFor = cmp.Or(o.RetryFor, time.Minute)
	o.Settle = cmp.Or(o.Settle, 3*time.Minute)
	if o.Redis == nil {
		o.Redis = NewSingle(t)
	}
	o.Faults = slices.Clone(o.Faults)
	for i := range o.Faults {
		o.Faults[i].Down = cmp.Or(o.Faults[i].Down, time.Second)
	}
	slices.SortFunc(o.Faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })
	return o
}

// soak is one run.
type soak struct {
	t     testing.TB
	opt   Options
	redis Redis
	dep   *deployment
	// prefix starts the deployment's Redis keys and the writes' keys;
	// queue is the route's queue.
	prefix, queue string
	up            *Upstream
	http          *http.Client
	// logf logs progress.
	logf func(format string, args ...any)
}

// Run does one soak for t: it starts Redis (unless given), an upstream,
// a gateway and a worker process, sends the writes while the faults
// happen, waits for every accepted job to end and checks them. It fails t
// when the soak cannot run (a process that does not start); what the
// soak found is in the Report, for the caller to judge (Report.Check).
func Run(t testing.TB, opt Options) *Report {
	t.Helper()
	opt = opt.withDefaults(t)
	ctx := t.Context()
	s := &soak{t: t, opt: opt, redis: opt.Redis, http: &http.Client{Timeout: 5 * time.Second}, logf: t.Logf}
	s.up = NewUpstream(opt.UpstreamDelay)
	t.Cleanup(s.up.Close)

	addr, err := child.FreeAddr()
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	prefix := redistest.Prefix(t)
	s.prefix, s.queue = prefix, redistest.Queue(t, "soak")
	cfg := deploymentConfig{
		addr: addr, redis: s.redis.Section(), prefix: prefix, queue: s.queue,
		upstream: s.up.URL(), concurrency: opt.Concurrency,
	}
	config, err := cfg.write(t.TempDir())
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	s.dep = &deployment{bin: asyncgwBinary(t), config: config, addr: addr}
	rep := &Report{Options: opt}
	t.Cleanup(func() { s.dep.stop() })
	if err := s.dep.startGateway(); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	if err := s.dep.startWorker(true); err != nil {
		t.Fatalf("chaos: %v", err)
	}

	// The load runs on its own; the faults run here, on the test's
	// goroutine, so that they may fail t.
	ledger := &Ledger{}
	c := &client{
		url: s.dep.baseURL() + "/v1/work", ledger: ledger, retryFor: opt.RetryFor,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
	}
	began := time.Now()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		c.run(ctx, prefix, opt.Rate, opt.Duration)
	}()
	for _, f := range opt.Faults {
		if wait := time.Until(began.Add(f.At)); wait > 0 {
			time.Sleep(wait) // the fault's schedule, not a wait for an event
		}
		rep.Faults = append(rep.Faults, s.apply(f))
	}
	loadEnd := began.Add(opt.Duration)
	<-loadDone // bounded: writes stop being sent at Duration, retried for RetryFor
	answered := time.Now()
	s.logf("load over: %d writes, the last final answer %s after the load ended",
		len(ledger.Entries()), max(0, answered.Sub(loadEnd)).Round(time.Millisecond))

	s.check(ctx, rep, ledger)
	rep.Settled = time.Since(answered)
	// After the check: jobs interrupted by a fault may run again only
	// while the soak waits for every job to end.
	tries := ledger.Tries()
	for i := range rep.Faults {
		var next time.Time
		if i+1 < len(rep.Faults) {
			next = rep.Faults[i+1].Killed
		}
		s.measure(&rep.Faults[i], tries, loadEnd, next)
	}
	rep.Exited = s.dep.stop()
	return rep
}

// check waits for every accepted job to end, then fills in the report
// from the ledger, the gateway, Redis and the upstream.
func (s *soak) check(ctx context.Context, rep *Report, ledger *Ledger) {
	t := s.t
	entries := ledger.Entries()
	var ids []string
	told := map[string]bool{}
	rep.Codes = map[string]int{}
	for _, t := range ledger.Tries() {
		rep.Codes[t.answer()]++
	}
	for _, e := range entries {
		rep.Writes++
		switch {
		case e.Accepted():
			rep.Accepted++
			if e.Replayed {
				rep.Replayed++
			}
			if !told[e.JobID] {
				ids = append(ids, e.JobID)
			} else {
				rep.problem("job %s was accepted for two writes (key %s)", e.JobID, e.Key)
			}
			told[e.JobID] = true
		case e.GaveUp:
			rep.GaveUp++
		default:
			rep.Refused++
			rep.problem("write %s refused for good: answers %v", e.Key, e.Codes)
		}
	}

	s.logf("waiting up to %s for %d accepted jobs to end", s.opt.Settle, len(ids))
	seen := s.settle(ctx, ids, s.opt.Settle)
	st, err := status.New(status.Config{Prefix: s.prefix}, s.redis.Client(t))
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	cen, err := takeCensus(ctx, st)
	if err != nil {
		t.Fatalf("chaos: read the event stream: %v", err)
	}
	calls := s.up.Jobs()
	for _, id := range ids {
		l, ok := seen[id]
		switch {
		case !ok:
			rep.Unread++
			rep.problem("job %s could not be read", id)
		case l.missing:
			rep.Lost++
			rep.problem("job %s was accepted and is gone (404)", id)
		case !l.state.Terminal():
			rep.Live++
			rep.problem("job %s still %s after %s", id, l.state, s.opt.Settle)
			if rep.Live <= 3 {
				s.logf("job %s, still %s: %s; upstream calls: %d\n%s", id, l.state,
					whereIs(ctx, s.redis.Client(t), st, s.queue, id), s.up.Jobs()[id], s.dep.grep(id))
			}
		default:
			rep.Terminal++
			if l.state == "succeeded" {
				rep.Succeeded++
			} else {
				rep.problem("job %s ended %s", id, l.state)
			}
		}
		if n := cen.terminal(id); ok && l.state.Terminal() && n != 1 {
			rep.EndedTwice++
			rep.problem("job %s has %d terminal events (%v)", id, n, cen[id])
		}
		if n := calls[id]; n > 1 {
			rep.Duplicated++
			rep.ExtraCalls += n - 1
		} else if n == 0 && ok && l.state == "succeeded" {
			rep.problem("job %s succeeded without an upstream call", id)
		}
	}
	for id, n := range calls {
		rep.UpstreamCalls += n
		if !told[id] {
			rep.Unknown++
			rep.problem("the upstream was called for job %s, which no client was told about", id)
		}
	}
	for id := range cen {
		if !told[id] {
			if _, called := calls[id]; !called {
				rep.Unknown++
				rep.problem("job %s is stored, and no client was told about it", id)
			}
		}
	}
	if n := s.up.Mismatched(); n > 0 {
		rep.problem("%d upstream calls with an Idempotency-Key other than their X-Asyncgw-Job-Id", n)
	}
}
