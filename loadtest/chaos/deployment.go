package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/loadtest/child"
)

// startTimeout bounds how long an asyncgw process may take to be ready.
const startTimeout = 30 * time.Second

// deployment is asyncgw as the soak runs it: one gateway process and one
// worker process (asyncgw gateway, asyncgw worker) of the built binary on
// one configuration, the gateway always on the same address, so that a
// restarted one is where clients look.
type deployment struct {
	bin, config string
	addr        string // the gateway's host:port

	mu      sync.Mutex
	gateway *child.Process
	worker  *child.Process
	// exited lists processes that were not killed by the harness but
	// exited anyway, with the end of their output.
	exited []string
	// all is every process started, killed ones included, for lines
	// about a job (grep).
	all []*child.Process
}

// deploymentConfig is what asyncgw's configuration is made of.
type deploymentConfig struct {
	addr, redis, prefix, queue, upstream string
	concurrency                          int
}

// write writes asyncgw's configuration file into dir.
func (c deploymentConfig) write(dir string) (string, error) {
	var redis strings.Builder
	for line := range strings.Lines(c.redis) {
		redis.WriteString("  " + line)
	}
	cfg := fmt.Sprintf(`listen: %s
redis:
%s
  prefix: %s
queues: {%s: 1}
worker:
  concurrency: %d
  poll_interval: 10ms
  shutdown_timeout: 5s
gateway:
  shutdown_timeout: 5s
  drain_delay: 0s
auth:
  enabled: false
records:
  # Every event of the run stays in the tenant's stream, for the census.
  stream_max_len: 100000000
log:
  level: info
routes:
  - name: work
    method: POST
    path: /v1/work
    upstream: %s/work
    queue: %s
    timeout: 10s
    max_attempts: 5
    backoff: {base: 100ms, max: 1s}
`, c.addr, strings.TrimRight(redis.String(), "\n"), c.prefix, c.queue, c.concurrency, c.upstream, c.queue)
	path := filepath.Join(dir, "asyncgw.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// baseURL is the gateway's URL.
func (d *deployment) baseURL() string { return "http://" + d.addr }

// startGateway starts the gateway process and waits until it is ready.
func (d *deployment) startGateway() error {
	p, err := child.Start("asyncgw gateway", nil, d.bin, "gateway", "--config", d.config)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.gateway = p
	d.all = append(d.all, p)
	d.mu.Unlock()
	return child.WaitReady(d.baseURL()+"/readyz", p, startTimeout)
}

// startWorker starts the worker process; with wait, it waits until the
// process has started its workers.
func (d *deployment) startWorker(wait bool) error {
	p, err := child.Start("asyncgw worker", nil, d.bin, "worker", "--config", d.config)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.worker = p
	d.all = append(d.all, p)
	d.mu.Unlock()
	if !wait {
		return nil
	}
	return child.WaitOutput(p, "workers started", startTimeout)
}

// killGateway kills the gateway process with SIGKILL.
func (d *deployment) killGateway() { d.kill(&d.gateway) }

// killWorker kills the worker process with SIGKILL.
func (d *deployment) killWorker() { d.kill(&d.worker) }

func (d *deployment) kill(pp **child.Process) {
	d.mu.Lock()
	p := *pp
	*pp = nil
	d.mu.Unlock()
	d.noteExited(p)
	p.Kill()
}

// noteExited records p if it has exited although nobody killed it.
func (d *deployment) noteExited(p *child.Process) {
	if p == nil || !p.Exited() {
		return
	}
	d.mu.Lock()
	d.exited = append(d.exited, fmt.Sprintf("%s (pid %d) exited by itself: %s", p.Name, p.Pid(), p.Output()))
	d.mu.Unlock()
}

// stop stops both processes and returns what exited by itself.
func (d *deployment) stop() []string {
	d.mu.Lock()
	ps := []*child.Process{d.gateway, d.worker}
	d.gateway, d.worker = nil, nil
	d.mu.Unlock()
	for _, p := range ps {
		d.noteExited(p)
		p.Stop()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exited
}

// output returns the end of each running process's output, for a
// failure message.
func (d *deployment) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, p := range []*child.Process{d.gateway, d.worker} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s (pid %d):\n%s\n", p.Name, p.Pid(), p.Output())
		}
	}
	return b.String()
}

// grep returns the lines that mention s in the output of every process
// the deployment started, a few per process.
func (d *deployment) grep(s string) string {
	d.mu.Lock()
	all := slices.Clone(d.all)
	d.mu.Unlock()
	var b strings.Builder
	for _, p := range all {
		if lines := p.Lines(s, 20); len(lines) > 0 {
			fmt.Fprintf(&b, "--- %s (pid %d):\n%s\n", p.Name, p.Pid(), strings.Join(lines, "\n"))
		}
	}
	return b.String()
}

// asyncgwBinary builds asyncgw from this module into a directory of
// t.TempDir and returns its path.
func asyncgwBinary(t testing.TB) string {
	t.Helper()
	bin, err := child.BuildAsyncgw(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	return bin
}
