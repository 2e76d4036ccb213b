package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/loadtest/child"
	"github.com/asyncgw/asyncgw/status"
)

// options size a run.
type options struct {
	// measure is how long each measurement lasts; warm how long each
	// server is loaded before it is measured.
	measure, warm time.Duration
	// conns is the closed-loop concurrency of the accept comparison.
	conns int
	// rounds of the accept comparison, alternating glue and gateway.
	rounds int
	// rates of the open-loop accept latency runs.
	rates []float64
	// proxyConns is the concurrency of the synchronous-proxy comparison.
	proxyConns int
	// e2eRates are the submit rates of the end-to-end runs (the last is
	// the target's), e2eMeasure their length.
	e2eRates   []float64
	e2eMeasure time.Duration
	// sse is the number of event-stream subscribers.
	sse int
	// drain is how many jobs wait for the workers in the drain scenario.
	drain int
	// costRate is the submit rate of the Redis cost comparison (h),
	// costWarm and costMeasure its warm-up and measured window on each
	// deployment, and idle how long the idle processes' commands are
	// counted after it.
	costRate                    float64
	costWarm, costMeasure, idle time.Duration
	// fairBacklog is tenant A's backlog ahead of tenant B's one job in
	// the fairness scenario (j), fairShare how many jobs each tenant
	// submits when both have backlogs.
	fairBacklog, fairShare int
	// only runs the named scenarios (accept, latency, proxy, e2e, sse,
	// drain, limits, cluster, ordering, fairness).
	only map[string]bool
	// profiles, when set, is where CPU profiles of the gateway under load
	// are written.
	profiles string
}

func fullOptions() options {
	return options{
		measure: 10 * time.Second, warm: 2 * time.Second, conns: 50, rounds: 2,
		rates: []float64{1000, 2500, 5000}, proxyConns: 256,
		e2eRates: []float64{1500, 3000}, e2eMeasure: 20 * time.Second, drain: 30000, sse: 10000,
		costRate: 1500, costWarm: 3 * time.Second, costMeasure: 10 * time.Second, idle: 5 * time.Second,
		fairBacklog: 20000, fairShare: 10000,
	}
}

// quickOptions keep every scenario to seconds: the test suite runs them
// for correctness, not speed.
func quickOptions() options {
	return options{
		measure: time.Second, warm: 200 * time.Millisecond, conns: 8, rounds: 1,
		rates: []float64{200}, proxyConns: 16,
		e2eRates: []float64{200}, e2eMeasure: 2 * time.Second, drain: 300, sse: 100,
		costRate: 300, costWarm: 600 * time.Millisecond, costMeasure: 2 * time.Second, idle: time.Second,
		fairBacklog: 500, fairShare: 200,
	}
}

func (o options) runs(name string) bool { return len(o.only) == 0 || o.only[name] }

// bench is one run of the harness: its Redis, its binaries, its findings.
type bench struct {
	opt   options
	dir   string
	redis string // host:port
	// redisProc is the Redis server's process.
	redisProc *proc
	rdb       *redis.Client
	asyncgw   string // path of the gateway binary
	self      string // path of this binary, for the glue and proxy servers
	key       string // the bench tenant's API key
	digest    string
	report    *report
	seq       int
	// wrong collects what was incorrect (not slow): lost jobs, errors.
	wrong []string
}

const tenant = "bench"

func newBench(ctx context.Context, opt options, dir string) (*bench, func(), error) {
	b := &bench{opt: opt, dir: dir, report: &report{}}
	var cleanup []func()
	done := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, done, err
	}
	b.self = self
	if b.asyncgw, err = child.BuildAsyncgw(ctx, dir); err != nil {
		return nil, done, err
	}
	rp, addr, err := startRedis(dir)
	if err != nil {
		return nil, done, err
	}
	cleanup = append(cleanup, rp.Stop)
	b.redis, b.redisProc = addr, rp
	b.rdb = redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32})
	cleanup = append(cleanup, func() { b.rdb.Close() })
	b.key, b.digest = newAPIKey()
	return b, done, nil
}

// newAPIKey makes a fresh API key and its SHA-256 digest, as the
// configuration's auth.tenants[].keys[].sha256 holds it.
func newAPIKey() (key, digest string) {
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	key = "agw_bench_" + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(key))
	return key, hex.EncodeToString(sum[:])
}

// apiTenant is a tenant the gateway knows besides the bench's own.
type apiTenant struct {
	name, key, digest string
	// admin gives the tenant the admin role (the admin API).
	admin bool
}

// newTenant makes a tenant with a fresh API key.
func newTenant(name string, admin bool) apiTenant {
	key, digest := newAPIKey()
	return apiTenant{name: name, key: key, digest: digest, admin: admin}
}

// gwConfig is one gateway's setup: its queue and prefix are its own, so
// scenarios never read each other's jobs.
type gwConfig struct {
	name        string
	upstream    string
	concurrency int
	// debug serves the profiler even without -profiles.
	debug bool
	// publicAPI keeps asyncgw to asynq's public API (redis.asynq_direct:
	// false), to measure what the direct path buys.
	publicAPI bool
	// cluster, when set, is redis.cluster.addrs: the gateway runs on that
	// Redis Cluster rather than on the harness's redis-server.
	cluster []string
	// shards is redis.shards (1 when 0).
	shards int
	// upstreams is the upstreams section's body ("" for none): the
	// upstream hosts' limits.
	upstreams string
	// orderingKeys, when positive, is how many ordering keys the jobs a
	// drain submits take in turn.
	orderingKeys int
	// tenants are more tenants, after the bench's own.
	tenants []apiTenant
	// fifo turns the fair lines off (fairness.enabled: false): new jobs
	// wait in accept order whatever their tenant.
	fifo bool
	// upstreamDelay and upstreamServes make a drain's upstream answer
	// after that long, serving that many calls at once (0: any number).
	upstreamDelay  time.Duration
	upstreamServes int
}

// gateway starts asyncgw (role: "" for gateway and workers, "gateway",
// or "worker") with a fresh configuration and waits until it is ready.
type gateway struct {
	url, queue, prefix string
	procs              []*proc
	// first is the configuration of the first process, with the metrics
	// and profiler listener (debug, with -profiles); config is that of
	// every other process.
	first, config string
	debug         string
}

func (g *gateway) stop() {
	for _, p := range g.procs {
		p.Stop()
	}
}

// startGateway runs the roles given (each its own process) on one
// configuration.
func (b *bench) startGateway(c gwConfig, roles ...string) (*gateway, error) {
	b.seq++
	g := &gateway{queue: fmt.Sprintf("bench_%s_%d", c.name, b.seq), prefix: fmt.Sprintf("bench%d", b.seq)}
	addr, err := child.FreeAddr()
	if err != nil {
		return nil, err
	}
	g.url = "http://" + addr
	metrics := ""
	if b.opt.profiles != "" || c.debug {
		if g.debug, err = child.FreeAddr(); err != nil {
			return nil, err
		}
		metrics = fmt.Sprintf("metrics: {listen: %q, pprof: true}\n", g.debug)
	}
	direct := "true"
	if c.publicAPI {
		direct = "false"
	}
	more := ""
	for _, t := range c.tenants {
		more += fmt.Sprintf("    - name: %s\n      admin: %t\n      keys:\n        - sha256: %q\n", t.name, t.admin, t.digest)
	}
	conn := fmt.Sprintf("url: redis://%s/0", b.redis)
	if len(c.cluster) > 0 {
		conn = fmt.Sprintf("cluster: {addrs: [%s]}", strings.Join(c.cluster, ", "))
	}
	cfg := fmt.Sprintf(`listen: %s
redis:
  %s
  prefix: %s
  shards: %d
  asynq_direct: %s
queues: {%s: 1}
worker:
  concurrency: %d
  poll_interval: 10ms
gateway:
  shutdown_timeout: 5s
  drain_delay: "0"
auth:
  enabled: true
  tenants:
    - name: %s
      keys:
        - sha256: %q
%slog:
  level: info
routes:
  - name: work
    path: /v1/work
    upstream: %s
    queue: %s
    timeout: 30s
    max_attempts: 3
    backoff: {base: 100ms, max: 1s}
`, addr, conn, g.prefix, max(c.shards, 1), direct, g.queue, max(c.concurrency, 1), tenant, b.digest, more, c.upstream, g.queue)
	if c.upstreams != "" {
		cfg += "upstreams:\n" + c.upstreams
	}
	if c.fifo {
		cfg += "fairness: {enabled: false}\n"
	}
	// Only the first process serves the profiler (each would need a port
	// of its own).
	first, rest := filepath.Join(b.dir, g.prefix+".yaml"), filepath.Join(b.dir, g.prefix+"-more.yaml")
	if err := os.WriteFile(first, []byte(metrics+cfg), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(rest, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	g.first, g.config = first, rest
	for i, role := range roles {
		path := first
		if i > 0 {
			path = rest
		}
		if err := b.startRole(g, role, path); err != nil {
			g.stop()
			return nil, err
		}
	}
	return g, nil
}

// startRole adds a process of role, with the configuration at path, to g.
func (b *bench) startRole(g *gateway, role, path string) error {
	args := []string{"--config", path}
	if role != "" {
		args = append([]string{role}, args...)
	}
	p, err := child.Start("asyncgw "+cmp.Or(role, "gateway+worker"), nil, b.asyncgw, args...)
	if err != nil {
		return err
	}
	g.procs = append(g.procs, p)
	if role != "worker" {
		return child.WaitReady(g.url+"/readyz", p, 15*time.Second)
	}
	return nil
}

// profile saves a CPU profile of the gateway's process that serves the
// profiler (the first, by default) over d, in the background; wait for the
// returned channel.
func (b *bench) profile(g *gateway, name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if b.opt.profiles == "" || g.debug == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		b.saveProfile(g, fmt.Sprintf("profile?seconds=%d", max(1, int(d.Seconds()))), name+".cpu.pprof")
	}()
	return done
}

// memStats reads the Go memory statistics of the gateway's first process
// after a garbage collection (it needs the profiler: gwConfig.debug).
func (b *bench) memStats(g *gateway) (map[string]int64, error) {
	resp, err := http.Get("http://" + g.debug + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.Lines(string(body)) {
		name, val, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if !ok || !strings.HasPrefix(line, "# ") {
			continue
		}
		val, _, _ = strings.Cut(strings.TrimSpace(val), " ")
		if n, err := strconv.ParseInt(val, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out, nil
}

// saveProfile fetches /debug/pprof/<what> from the gateway's first
// process into the profiles directory.
func (b *bench) saveProfile(g *gateway, what, file string) {
	if b.opt.profiles == "" || g.debug == "" {
		return
	}
	resp, err := http.Get("http://" + g.debug + "/debug/pprof/" + what)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile %s: %v\n", file, err)
		return
	}
	defer resp.Body.Close()
	path := filepath.Join(b.opt.profiles, file)
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile %s: %v\n", file, err)
		return
	}
	fmt.Fprintf(os.Stderr, "profile: go tool pprof -top %s\n", path)
}

// work is the request the load sends: a small JSON order.
var workBody = []byte(`{"order_id":"A-1042","customer":"c-77","items":[{"sku":"X1","qty":2},{"sku":"Y9","qty":1}],"total":"59.90"}`)

func (b *bench) gatewayTarget(g *gateway) *target {
	return &target{
		url: g.url + "/v1/work", body: workBody, idempotency: true,
		header: http.Header{"Authorization": {"Bearer " + b.key}},
	}
}

// glue starts the baseline server, with extra flags, and returns its
// queue.
func (b *bench) glue(extra ...string) (*proc, *target, string, error) {
	b.seq++
	return b.glueOn(fmt.Sprintf("bench_glue_%d", b.seq), extra...)
}

// glueOn starts the baseline server on queue.
func (b *bench) glueOn(queue string, extra ...string) (*proc, *target, string, error) {
	args := append([]string{"glue", "-listen", "127.0.0.1:0", "-redis", "redis://" + b.redis + "/0", "-queue", queue}, extra...)
	p, addr, err := child.StartListening("glue", b.self, args...)
	if err != nil {
		return nil, nil, "", err
	}
	return p, &target{url: "http://" + addr + "/v1/work", body: workBody}, queue, nil
}

// checkRun notes what a load run got wrong: transport errors and answers
// other than 202.
func (b *bench) checkRun(what string, r *result) {
	var bad []string
	for code, n := range r.statuses {
		if code != http.StatusAccepted {
			bad = append(bad, fmt.Sprintf("%d×%d", n, code))
		}
	}
	if r.errors > 0 {
		bad = append(bad, fmt.Sprintf("%d transport errors (first: %s)", r.errors, r.firstErr))
	}
	if r.ok == 0 {
		bad = append(bad, "nothing accepted")
	}
	if len(bad) > 0 {
		b.wrong = append(b.wrong, what+": "+strings.Join(bad, ", "))
	}
}

// queueBacklog is what waits or runs on an asynq queue.
func (b *bench) queueBacklog(insp *asynq.Inspector, queue string) int {
	info, err := insp.GetQueueInfo(queue)
	if err != nil {
		return 0 // a queue not seen yet holds nothing
	}
	return info.Pending + info.Active + info.Scheduled + info.Retry
}

func (b *bench) store(prefix string) (*status.Store, error) {
	return status.New(status.Config{Prefix: prefix}, b.rdb)
}

// run runs every selected scenario in turn.
func (b *bench) run(ctx context.Context) error {
	type scenario struct {
		name string
		fn   func(context.Context) error
	}
	for _, s := range []scenario{
		{"accept", b.acceptVsGlue},
		{"latency", b.openLoopLatency},
		{"proxy", b.versusProxy},
		{"e2e", b.endToEnd},
		{"sse", b.subscribers},
		{"drain", b.drain},
		{"limits", b.limitsCost},
		{"cluster", b.clusterCost},
		{"ordering", b.orderingCost},
		{"fairness", b.fairness},
	} {
		if !b.opt.runs(s.name) {
			continue
		}
		if err := b.emptyRedis(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(b.wrong) > 0 {
		return errors.New("incorrect results:\n  " + strings.Join(b.wrong, "\n  "))
	}
	return nil
}

// emptyRedis deletes what earlier scenarios left in Redis (their records,
// events and the tasks still queued, hundreds of thousands of keys after
// the accept runs), so that each scenario starts from an empty Redis, as
// it does when run alone.
func (b *bench) emptyRedis(ctx context.Context) error {
	n, err := b.rdb.DBSize(ctx).Result()
	if err != nil || n == 0 {
		return err
	}
	fmt.Fprintf(os.Stderr, "redis: emptying %d keys left by the scenarios before\n", n)
	return b.rdb.FlushAll(ctx).Err()
}
