// Package child runs the processes of a load or chaos harness: servers
// built from this module (asyncgw, the harness's own helpers) and
// redis-server, each a child of the harness that dies with it.
//
// A child's output goes to an unlinked temporary file that it writes
// directly: a pipe would make the harness copy every log line (taking CPU
// from the processes measured) and would stall the child's logging
// whenever the harness is slow to read. Output returns the end of it.
package child

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

// stopGrace is how long Stop waits after SIGTERM before it kills.
const stopGrace = 15 * time.Second

// Process is a child process of the harness. Its methods are safe for
// concurrent use.
type Process struct {
	// Name says what the process is, in error messages.
	Name string
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

// all is everything written to the file, or the buffer's bytes.
func (t *tail) all() string {
	if t.file == nil {
		return t.String()
	}
	fi, err := t.file.Stat()
	if err != nil {
		return err.Error()
	}
	b := make([]byte, fi.Size())
	n, _ := t.file.ReadAt(b, 0)
	return string(b[:n])
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

// Start runs bin with args, with env added to the harness's environment.
// The process is killed if the harness dies.
func Start(name string, env []string, bin string, args ...string) (*Process, error) {
	f, err := os.CreateTemp(logDir(), "asyncgw-child-*.log")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	p := &Process{Name: name, cmd: exec.Command(bin, args...), out: &tail{file: f}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The file stays open after the exit, for Output; it is closed when
	// the Process is garbage.
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// StartListening runs a child that prints "listening on <addr>" once it
// accepts connections, and returns that address.
func StartListening(name, bin string, args ...string) (*Process, string, error) {
	pr, pw := io.Pipe()
	p := &Process{Name: name, cmd: exec.Command(bin, args...), out: &tail{}, done: make(chan struct{})}
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
		p.Stop()
		return nil, "", fmt.Errorf("%s did not start: %s", name, p.out)
	}
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns the last few kilobytes the process wrote.
func (p *Process) Output() string { return p.out.String() }

// Lines returns the first n lines of everything the process wrote that
// contain substr (of the last few kilobytes only, for a process that
// does not write to a file).
func (p *Process) Lines(substr string, n int) []string {
	var out []string
	for line := range strings.Lines(p.out.all()) {
		if len(out) == n {
			break
		}
		if strings.Contains(line, substr) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return out
}

// Stop asks the process to end with SIGTERM, and kills it if it has not
// ended after a grace period. A nil Process is already stopped.
func (p *Process) Stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.Kill()
	}
}

// Kill kills the process with SIGKILL (kill -9) and waits until it is
// gone. A nil Process is already gone.
func (p *Process) Kill() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// RSS is the process's resident set size in bytes.
func (p *Process) RSS() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/status")
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

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitTCP waits up to d until addr accepts connections, or p exits.
func WaitTCP(addr string, p *Process, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.Name, p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not reachable after %s", p.Name, addr, d)
}

// readyClient asks readiness questions: each must be answered quickly.
var readyClient = &http.Client{Timeout: time.Second}

// WaitReady waits up to d until GET url answers 200, or p exits.
func WaitReady(url string, p *Process, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := readyClient.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", p.Name, p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not ready after %s: %s", p.Name, url, d, p.out)
}

// WaitOutput waits up to d until the end of the process's output holds
// want, or p exits.
func WaitOutput(p *Process, want string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(p.out.String(), want) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it wrote %q: %s", p.Name, want, p.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not write %q within %s: %s", p.Name, want, d, p.out)
}

// BuildAsyncgw compiles cmd/asyncgw of this module into dir and returns
// the binary's path.
func BuildAsyncgw(ctx context.Context, dir string) (string, error) {
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

// CPUTime is the CPU time a process has used so far (user and system).
func CPUTime(pid int) time.Duration {
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
