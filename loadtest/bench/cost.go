package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// costShards is redis.shards on the cluster: the documented count for a
// 3-master cluster, with which each master takes its share of commands.
const costShards = 16

// deployment is a Redis the cost comparison (h) runs asyncgw on.
type deployment struct {
	// nodes are the redis-servers whose cost is counted: masters only
	// (the cluster has no replica), in slot order.
	nodes []*redisNode
	// cluster is redis.cluster.addrs (nil: the harness's redis-server).
	cluster []string
	shards  int
	// rdb reads the jobs' records after the run.
	rdb redis.UniversalClient
}

// costRun is what a job cost one deployment.
type costRun struct {
	// shards is redis.shards as run; note says why, if not as asked.
	shards int
	note   string
	// jobs ended (upstream answered) in the window, which runs from the
	// end of the warm-up until every job submitted has ended.
	jobs   int
	window time.Duration
	// nodes are each node's counts over the window, masters' first.
	nodes []nodeCount
	// scripts are the scripts clients ran in a MONITOR sample after the
	// window, at the same rate, by name.
	scripts map[string]int
	// idle is each node's counts over idleFor with the processes idle,
	// after the window.
	idle    []nodeCount
	idleFor time.Duration
}

// clusterCost (h): what a job costs Redis on one node and on a 3-master
// Redis Cluster, in one run. On each, asyncgw (a gateway and a worker
// process) takes jobs at a fixed rate for a window and until they have
// all ended; Redis CPU (/proc/<pid>/stat of every redis-server), commands
// (INFO stats) and commands by kind (INFO commandstats) are counted over
// the window, then the idle processes' commands. The cluster runs with
// costShards shards.
func (b *bench) clusterCost(ctx context.Context) error {
	one := &deployment{shards: 1, rdb: b.rdb}
	node := newRedisNode(b.redis, b.redisProc.Pid())
	defer node.close()
	one.nodes = []*redisNode{node}
	single, err := b.costOf(ctx, "one node", one)
	if err != nil {
		return fmt.Errorf("one node: %w", err)
	}
	glue, err := b.glueCost(ctx, node)
	if err != nil {
		return fmt.Errorf("glue: %w", err)
	}

	// The cluster starts only now, so that its nodes do not share the
	// cores while the single node is measured.
	fmt.Fprintln(os.Stderr, "cluster: starting 3 masters")
	dir, err := os.MkdirTemp(b.dir, "cluster-")
	if err != nil {
		return err
	}
	d, err := redistest.RunCluster(dir, redistest.WithMasters(3), redistest.WithReplicas(0))
	if err != nil {
		return err
	}
	defer d.Close()
	cl := &deployment{cluster: d.Addrs(), shards: costShards}
	for _, m := range d.Masters() {
		n := newRedisNode(m.Addr(), m.Pid())
		defer n.close()
		cl.nodes = append(cl.nodes, n)
	}
	crdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: d.Addrs(), ClusterStateReloadInterval: time.Second, PoolSize: 32})
	defer crdb.Close()
	cl.rdb = crdb
	cluster, err := b.costOf(ctx, "cluster", cl)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	b.reportCost(single, cluster, glue)
	return nil
}

// costOf runs asyncgw on dep at the cost rate and counts what it cost.
func (b *bench) costOf(ctx context.Context, name string, dep *deployment) (*costRun, error) {
	const concurrency = 50
	run := &costRun{}
	up := newJobUpstream(false)
	url, closeUp, err := listenUpstream(up)
	if err != nil {
		return nil, err
	}
	defer closeUp()
	c := gwConfig{name: "cost", upstream: url + "/work", concurrency: concurrency, cluster: dep.cluster, shards: dep.shards}
	gw, err := b.startGateway(c, "gateway", "worker")
	if err != nil && c.shards > 1 && strings.Contains(err.Error(), "more than one shard is not supported") {
		run.note = fmt.Sprintf("this build refuses redis.shards: %d at serve start; ran 1", c.shards)
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, run.note)
		c.shards = 1
		gw, err = b.startGateway(c, "gateway", "worker")
	}
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	run.shards = max(c.shards, 1)
	fmt.Fprintf(os.Stderr, "%s: asyncgw, redis.shards %d, %.0f jobs/s\n", name, run.shards, b.opt.costRate)

	tgt := b.gatewayTarget(gw)
	var mu sync.Mutex // guards ids
	var ids []string
	tgt.accepted = func(id string, _ time.Time) {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	}
	warm := openLoop(ctx, tgt, b.opt.costRate, b.opt.costWarm, 2000)
	b.checkRun(name+" warm-up", warm)

	before, err := countAll(ctx, dep.nodes)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r := openLoop(ctx, tgt, b.opt.costRate, b.opt.costMeasure, 2000)
	b.checkRun(name+" submit", r)
	mu.Lock()
	accepted := len(ids)
	mu.Unlock()
	if err := awaitAnswered(ctx, up, accepted); err != nil {
		b.wrong = append(b.wrong, fmt.Sprintf("%s: %v", name, err))
	}
	after, err := countAll(ctx, dep.nodes)
	if err != nil {
		return nil, err
	}
	end := time.Now()
	_, run.jobs = up.jobs(start, end)
	run.window = end.Sub(start)
	run.nodes = subAll(after, before)

	// Idle: nothing submitted, every job ended.
	if before, err = countAll(ctx, dep.nodes); err != nil {
		return nil, err
	}
	idleStart := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(b.opt.idle):
	}
	if after, err = countAll(ctx, dep.nodes); err != nil {
		return nil, err
	}
	run.idle, run.idleFor = subAll(after, before), time.Since(idleStart)

	// The scripts clients run, by name: MONITOR (which costs Redis time
	// of its own, so not in the window) in the second half of another
	// warm-up long run at the rate, once the workers have caught up.
	var sampleErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
			sampleErr = ctx.Err()
			return
		case <-time.After(b.opt.costWarm / 2):
		}
		run.scripts, sampleErr = sampleScripts(ctx, dep.nodes, b.opt.costWarm/2)
	})
	sample := openLoop(ctx, tgt, b.opt.costRate, b.opt.costWarm, 2000)
	wg.Wait()
	b.checkRun(name+" sample", sample)
	if sampleErr != nil {
		return nil, sampleErr
	}
	mu.Lock()
	accepted = len(ids)
	mu.Unlock()
	if err := awaitAnswered(ctx, up, accepted); err != nil {
		b.wrong = append(b.wrong, fmt.Sprintf("%s: %v", name, err))
	}

	// Every job accepted must have succeeded, on the cluster as on one
	// node.
	st, err := status.New(status.Config{Prefix: gw.prefix, Shards: run.shards}, dep.rdb)
	if err != nil {
		return nil, err
	}
	notDone := 0
	for _, j := range b.readJobs(ctx, st, ids) {
		if j == nil || j.State != jobs.StateSucceeded {
			notDone++
		}
	}
	if notDone > 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("%s: %d of %d accepted jobs did not succeed", name, notDone, len(ids)))
	}
	return run, nil
}

// glueCost runs the hand-written glue (bare asynq: enqueue, take, done;
// no record, events or notifications) with its workers on node at the
// cost rate, and counts what a job cost Redis over a window as costOf
// does: the floor any gateway built on asynq starts from, measured in the
// same run.
func (b *bench) glueCost(ctx context.Context, node *redisNode) (*costRun, error) {
	const concurrency = 50
	b.seq++
	gp, glue, _, up, closeUp, err := b.glueWorking(fmt.Sprintf("bench_glue_cost_%d", b.seq), concurrency)
	if err != nil {
		return nil, err
	}
	defer closeUp()
	defer gp.Stop()
	fmt.Fprintf(os.Stderr, "glue: bare asynq, %.0f jobs/s\n", b.opt.costRate)
	warm := openLoop(ctx, glue, b.opt.costRate, b.opt.costWarm, 2000)
	b.checkRun("glue cost warm-up", warm)
	before, err := node.count(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r := openLoop(ctx, glue, b.opt.costRate, b.opt.costMeasure, 2000)
	b.checkRun("glue cost submit", r)
	if err := awaitAnswered(ctx, up, warm.ok+r.ok); err != nil {
		b.wrong = append(b.wrong, fmt.Sprintf("glue cost: %v", err))
	}
	after, err := node.count(ctx)
	if err != nil {
		return nil, err
	}
	end := time.Now()
	run := &costRun{shards: 1, window: end.Sub(start), nodes: []nodeCount{after.sub(before)}}
	_, run.jobs = up.jobs(start, end)
	return run, nil
}

// awaitAnswered waits until up has answered n jobs, or for a minute after
// its last progress.
func awaitAnswered(ctx context.Context, up *jobUpstream, n int) error {
	last, lastAt := -1, time.Now()
	for ctx.Err() == nil {
		all, _ := up.jobs(time.Time{}, time.Time{})
		if all >= n {
			return nil
		}
		if all > last {
			last, lastAt = all, time.Now()
		}
		if time.Since(lastAt) > time.Minute {
			return fmt.Errorf("%d of %d accepted jobs not called upstream a minute after the last progress", n-all, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ctx.Err()
}

// cpuPerJob is the node's Redis CPU per job ended.
func (r *costRun) cpuPerJob(n nodeCount) time.Duration {
	return n.cpu / time.Duration(max(r.jobs, 1))
}

// idleCommands is commands per second, all nodes, with the processes
// idle.
func (r *costRun) idleCommands() float64 {
	return float64(sum(r.idle).commands) / r.idleFor.Seconds()
}

// total sums the nodes' counts over the window.
func (r *costRun) total() nodeCount { return sum(r.nodes) }

// sum adds up counts.
func sum(counts []nodeCount) nodeCount {
	t := nodeCount{calls: map[string]int64{}}
	for _, n := range counts {
		t.cpu += n.cpu
		t.commands += n.commands
		for k, v := range n.calls {
			t.calls[k] += v
		}
	}
	return t
}

// perJob is count per job ended.
func (r *costRun) perJob(count int64) float64 { return float64(count) / float64(max(r.jobs, 1)) }

// masterShares are each master's share of the commands, and how far the
// furthest is from an even share (0.1: 10% above or below).
func (r *costRun) masterShares() (shares []float64, worst float64) {
	var sum int64
	for _, n := range r.nodes {
		sum += n.commands
	}
	for _, n := range r.nodes {
		s := float64(n.commands) / float64(max(sum, 1))
		shares = append(shares, s)
		if dev := s*float64(len(r.nodes)) - 1; abs(dev) > abs(worst) {
			worst = dev
		}
	}
	return shares, worst
}

func abs(f float64) float64 { return max(f, -f) }

// scriptsPerJob is how often each script ran per job in the MONITOR
// sample: per run of the accept script, which runs once for every job.
func (r *costRun) scriptsPerJob() map[string]float64 {
	accepts := r.scripts["accept"] + r.scripts["eval accept"]
	out := map[string]float64{}
	for name, n := range r.scripts {
		out[name] = float64(n) / float64(max(accepts, 1))
	}
	return out
}

// top lists the names of the largest values of both maps together, at
// most n, largest first.
func top[V int64 | float64](a, b map[string]V, n int) []string {
	sum := map[string]float64{}
	for k, v := range a {
		sum[k] += float64(v)
	}
	for k, v := range b {
		sum[k] += float64(v)
	}
	names := make([]string, 0, len(sum))
	for k := range sum {
		names = append(names, k)
	}
	slices.SortFunc(names, func(x, y string) int {
		if sum[x] != sum[y] {
			if sum[x] > sum[y] {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	return names[:min(n, len(names))]
}

// joinEach formats each of vs with f, joined by " · ".
func joinEach[T any](vs []T, f func(T) string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = f(v)
	}
	return strings.Join(parts, " · ")
}

func µs(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

// ratio says how a cluster value compares with the single node's.
func ratio(cluster, single float64) string {
	if single == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f× one node", cluster/single)
}

// reportCost adds the rows of (h): the cluster as asyncgw, the single
// node as the baseline, and the glue's cost on the single node beside it.
func (b *bench) reportCost(one, cl, glue *costRun) {
	const scen = "(h) Redis cost per job"
	ot, ct := one.total(), cl.total()
	add := func(measure, cluster, single, target string, ok *bool) {
		b.report.add(row{scen, measure, cluster, single, target, ok})
	}
	shards := fmt.Sprintf("redis.shards %d", cl.shards)
	if cl.note != "" {
		shards += " (" + cl.note + ")"
	}
	add(fmt.Sprintf("jobs ended in the window at %.0f/s (asyncgw: 3-master cluster, %s; baseline: one node)", b.opt.costRate, shards),
		fmt.Sprintf("%d in %.1f s", cl.jobs, cl.window.Seconds()), fmt.Sprintf("%d in %.1f s", one.jobs, one.window.Seconds()), "", nil)

	oCPU, cCPU := one.cpuPerJob(ot), cl.cpuPerJob(ct)
	add("Redis CPU per job, all nodes (user+sys)", µs(cCPU), µs(oCPU),
		fmt.Sprintf("one node ≤ 120 µs: %s; cluster %s", µs(oCPU), ratio(float64(cCPU), float64(oCPU))), met(oCPU <= 120*time.Microsecond))
	gt := glue.total()
	gCPU := glue.cpuPerJob(gt)
	add(fmt.Sprintf("bare asynq (the glue: enqueue, take, done) on the one node, %d jobs in %.1f s: Redis CPU and commands per job", glue.jobs, glue.window.Seconds()),
		"", fmt.Sprintf("%s, %.1f commands (glue)", µs(gCPU), glue.perJob(gt.commands)),
		fmt.Sprintf("asyncgw on one node: %.2f× the glue", float64(oCPU)/float64(max(gCPU, 1))), nil)
	add("Redis CPU per job on each master", joinEach(cl.nodes, func(n nodeCount) string { return µs(cl.cpuPerJob(n)) }), µs(oCPU), "", nil)
	cores := func(r *costRun) func(nodeCount) string {
		return func(n nodeCount) string { return fmt.Sprintf("%.2f", n.cpu.Seconds()/r.window.Seconds()) }
	}
	add("Redis cores busy, each master", joinEach(cl.nodes, cores(cl)), joinEach(one.nodes, cores(one)), "", nil)

	shares, worst := cl.masterShares()
	target, ok := fmt.Sprintf("each within ±15%% of even: worst %+.0f%%", worst*100), met(abs(worst) <= 0.15)
	if cl.shards != costShards {
		target, ok = fmt.Sprintf("n/a: the target holds with %d shards (worst %+.0f%%)", costShards, worst*100), nil
	}
	add("each master's share of commands", joinEach(shares, func(s float64) string { return fmt.Sprintf("%.0f%%", s*100) }), "100%", target, ok)

	add("Redis commands per job, all nodes (scripts' own commands included)",
		fmt.Sprintf("%.1f", cl.perJob(ct.commands)), fmt.Sprintf("%.1f", one.perJob(ot.commands)),
		ratio(cl.perJob(ct.commands), one.perJob(ot.commands)), nil)
	kinds := top(ct.calls, ot.calls, 8)
	calls := func(r *costRun, t nodeCount) string {
		return joinEach(kinds, func(k string) string { return fmt.Sprintf("%s %.2f", k, r.perJob(t.calls[k])) })
	}
	add("commands per job by kind (top 8, INFO commandstats)", calls(cl, ct), calls(one, ot), "", nil)
	cs, ss := cl.scriptsPerJob(), one.scriptsPerJob()
	names := top(cs, ss, 8)
	scripts := func(m map[string]float64) string {
		return joinEach(names, func(k string) string { return fmt.Sprintf("%s %.2f", k, m[k]) })
	}
	add("scripts per job (clients' EVALSHA and EVAL per accept, in a MONITOR sample at the same rate)", scripts(cs), scripts(ss), "", nil)
	idleCores := func(r *costRun) string {
		return joinEach(r.idle, func(n nodeCount) string { return fmt.Sprintf("%.3f", n.cpu.Seconds()/r.idleFor.Seconds()) })
	}
	add(fmt.Sprintf("idle commands/s, all nodes (a gateway and a worker process, no load, %s)", b.opt.idle),
		fmtRate(cl.idleCommands()), fmtRate(one.idleCommands()), ratio(cl.idleCommands(), one.idleCommands()), nil)
	add("idle Redis cores, each master", idleCores(cl), idleCores(one), "", nil)
}
