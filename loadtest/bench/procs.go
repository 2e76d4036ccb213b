package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process of the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{}
}

// logDir is where children's output goes: memory when /dev/shm is there,
// so that a disk's writeback never stalls a child's logging.
func logDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// tail keeps the last bytes a process wrote, for error messages: in buf,
// or in file when the process writes to one.
type tail struct {
	mu   sync.Mutex
	buf  []byte
	file *os.File
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	if t.file != nil {
		fi, err := t.file.Stat()
		if err != nil {
			return err.Error()
		}
		off := max(0, fi.Size()-8<<10)
		b := make([]byte, fi.Size()-off)
		n, _ := t.file.ReadAt(b, off)
		return string(b[:n])
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// start runs a child. Its output goes to an unlinked temporary file, which
// it writes directly: a pipe would make the harness copy every log line
// (taking CPU from the processes measured) and would stall the child's
// logging whenever the harness is slow to read.
func start(name string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.CreateTemp(logDir(), "asyncgw-bench-*.log")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &tail{file: f}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// startListening runs a child that prints "listening on <addr>" and returns
// the address.
func startListening(name, bin string, args ...string) (*proc, string, error) {
	pr, pw := io.Pipe()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &tail{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = io.MultiWriter(pw, p.out), p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); pw.Close(); close(p.done) }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		return p, a, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited: %s", name, p.out)
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, "", fmt.Errorf("%s did not start: %s", name, p.out)
	}
}

// stop asks the process to end, and kills it after a grace period.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// rss is the process's resident set size in bytes.
func (p *proc) rss() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startRedis runs a redis-server without persistence on a free port.
func startRedis(dir string) (*proc, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", errors.New("redis-server not found: run ./scripts/ensure-redis.sh (make bench does)")
	}
	for range 5 {
		addr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		_, port, _ := net.SplitHostPort(addr)
		p, err := start("redis", nil, bin, "--port", port, "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--protected-mode", "no", "--maxclients", "20000")
		if err != nil {
			return nil, "", err
		}
		if waitTCP(addr, p, 5*time.Second) == nil {
			return p, addr, nil
		}
		p.stop()
	}
	return nil, "", errors.New("redis-server did not start")
}

// waitTCP waits until addr accepts connections.
func waitTCP(addr string, p *proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not reachable after %s", p.name, addr, d)
}

// waitReady waits until GET url answers 200.
func waitReady(url string, p *proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.name, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not ready after %s: %s", p.name, url, d, p.out)
}

// buildAsyncgw compiles the gateway from this module into dir.
func buildAsyncgw(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "asyncgw")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/asyncgw")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/asyncgw: %w\n%s", err, out)
	}
	return bin, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := string(bytes.TrimSpace(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the harness from inside the asyncgw module")
	}
	return filepath.Dir(mod), nil
}

// cpuTime is the CPU time a process has used so far (user and system).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}

// cpuMeter measures how busy the server under test, Redis and the harness
// itself are over a window.
type cpuMeter struct {
	groups [3][]int // server, Redis, harness
	start  [3]time.Duration
	t0     time.Time
}

func (b *bench) meter(server ...int) *cpuMeter {
	m := &cpuMeter{groups: [3][]int{server, {b.redisProc.cmd.Process.Pid}, {os.Getpid()}}, t0: time.Now()}
	m.start = m.sample()
	return m
}

func (m *cpuMeter) sample() (out [3]time.Duration) {
	for i, pids := range m.groups {
		for _, pid := range pids {
			out[i] += cpuTime(pid)
		}
	}
	return out
}

// stop says how busy each was, in cores (1.00: one core all the time).
func (m *cpuMeter) stop() string {
	end, wall := m.sample(), time.Since(m.t0)
	cores := func(i int) float64 { return float64(end[i]-m.start[i]) / float64(wall) }
	return fmt.Sprintf("server %.2f · Redis %.2f · harness %.2f", cores(0), cores(1), cores(2))
}

// pids are the process IDs of a gateway's processes.
func (g *gateway) pids() []int {
	var out []int
	for _, p := range g.procs {
		out = append(out, p.cmd.Process.Pid)
	}
	return out
}
