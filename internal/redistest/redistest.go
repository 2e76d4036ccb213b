// Package redistest runs real redis-server processes for tests.
//
// Start gives a test its own server, on a free port of 127.0.0.1 and with its
// data directory under t.TempDir(). The server is killed when the test ends.
// It can be killed, stopped and restarted on the same port and directory, so
// tests can exercise Redis outages and, with WithAOF, data that survives a
// crash.
//
// Shared gives every test of a test binary the same server, started on first
// use. Tests that use it isolate themselves with Prefix and Queue, so they can
// run in parallel. A package that calls Shared must run its tests through
// Main (or Run, when its TestMain has more to do):
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// If ASYNCGW_TEST_REDIS_URL is set, Shared uses that server instead of
// starting one.
//
// StartCluster gives a test its own Redis Cluster (masters, their replicas,
// slot migrations and failovers), and SharedCluster gives every test of a
// binary the same one, removed by Main as Shared's server is. RunCluster
// starts the same cluster for a program that is not a test (the bench
// harness), which stops it with Close.
//
// Tests that need Redis fail, never skip, when redis-server cannot be found
// or started; `make test` installs it.
package redistest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/testutil"
)

// EnvURL is the environment variable that points Shared at an existing Redis
// server (for example redis://127.0.0.1:6379/0) instead of starting one.
const EnvURL = "ASYNCGW_TEST_REDIS_URL"

const (
	binary = "redis-server"

	// startAttempts bounds how often Start picks a new port after losing a
	// race for the one it picked.
	startAttempts = 5
	// readyTimeout bounds how long a server may take to answer PING.
	readyTimeout = 5 * time.Second
	// stopTimeout bounds how long Stop waits after SIGTERM before it kills.
	stopTimeout = 10 * time.Second
	// logTail is how much of the server's output an error message shows.
	logTail = 4 << 10
)

// errAddrInUse reports that redis-server could not listen on its port.
var errAddrInUse = errors.New("address already in use")

// Option configures a server started by Start.
type Option func(*config)

type config struct {
	args []string
	// replica holds arguments for one replica of a Sentinel deployment
	// only (see OnReplica), by its index.
	replica map[int][]string
	// masters and replicas shape a cluster (StartCluster only): masters,
	// and replicas of each (nil: the default).
	masters  int
	replicas *int
}

// WithAOF turns on the append-only file with appendfsync always, so every
// acknowledged write survives Kill and is there again after Restart.
func WithAOF() Option {
	return WithArgs("--appendonly", "yes", "--appendfsync", "always")
}

// WithArgs appends command-line arguments for redis-server, such as
// "--maxmemory", "1mb". They come after the defaults, so they override them.
func WithArgs(args ...string) Option {
	return func(c *config) {
		c.args = append(c.args, args...)
	}
}

// Server is a Redis server for tests: one started by Start or Shared, or the
// external one named by ASYNCGW_TEST_REDIS_URL. Its methods are safe for
// concurrent use.
type Server struct {
	addr string
	url  string

	// Set only for servers this package runs.
	bin  string
	port int
	dir  string
	conf string // a configuration file to read first ("" for none)
	args []string

	mu   sync.Mutex
	proc *process // nil when not running or external
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	out  *testutil.SyncBuffer
}

// Start starts a fresh redis-server for t and waits until it answers PING.
// The server listens on a free port of 127.0.0.1, keeps its files in a
// directory from t.TempDir and, by default, persists nothing:
//
//	--save "" --appendonly no --dir <dir> --bind 127.0.0.1 --protected-mode no
//
// It is killed when t and its subtests have finished. If redis-server is not
// on PATH or does not start, Start fails t.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := lookPath(t)
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	s, err := start(bin, t.TempDir(), c.args)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// lookPath finds redis-server or fails t with a hint on how to get it.
func lookPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath(binary)
	if err != nil {
		t.Fatalf("redistest: %v\n"+
			"\tThese tests need a real Redis. Run `make test`, which installs redis-server\n"+
			"\t(scripts/ensure-redis.sh), or install it yourself (apt-get install redis-server).", err)
	}
	return bin
}

// start runs redis-server in dir on a free port, picking another port if it
// loses a race for the one it picked.
func start(bin, dir string, extra []string) (*Server, error) {
	args := []string{
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
	}
	return startConf(bin, dir, "", append(args, extra...))
}

// startConf runs bin with the configuration file conf (none if "") and
// args on a free port, picking another port if it loses a race for the one
// it picked.
func startConf(bin, dir, conf string, args []string) (*Server, error) {
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, conf: conf, args: args}
		s.setPort(port)
		err = s.launch()
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free port after %d attempts: %w", startAttempts, lastErr)
}

// freePort asks the kernel for a port of 127.0.0.1 that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) setPort(port int) {
	s.port = port
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.url = "redis://" + s.addr + "/0"
}

// launch runs redis-server on s.port and waits until it answers PING.
func (s *Server) launch() error {
	var args []string
	if s.conf != "" {
		args = append(args, s.conf) // the file must come first
	}
	args = append(args, "--port", strconv.Itoa(s.port))
	cmd := exec.Command(s.bin, append(args, s.args...)...)
	out := new(testutil.SyncBuffer)
	cmd.Stdout = out
	cmd.Stderr = out
	// A forked child (such as an AOF rewrite) may hold the output pipe
	// after the server has died; do not let that block Wait.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()

	if err := waitReady(s.addr, p); err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady polls addr with PING until it answers, p exits or readyTimeout
// passes. In the last case it kills p.
func waitReady(addr string, p *process) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.done:
			log := tail(p.out.String(), logTail)
			err := fmt.Errorf("redis-server on %s exited before it was ready (%v); output:\n%s",
				addr, p.cmd.ProcessState, log)
			if strings.Contains(log, "Address already in use") ||
				strings.Contains(log, "Failed listening on port") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		default:
		}
		pingErr := ping(addr)
		if pingErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %v (last error: %v); output:\n%s",
				addr, readyTimeout, pingErr, tail(p.out.String(), logTail))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends one inline PING to addr and expects +PONG. A server that is
// still loading its data answers -LOADING, which counts as not ready.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the server's URL, such as redis://127.0.0.1:6379/0.
func (s *Server) URL() string { return s.url }

// Pid returns the process ID of the running redis-server, or 0 if it is not
// running or the server is external.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	select {
	case <-s.proc.done:
		return 0
	default:
		return s.proc.cmd.Process.Pid
	}
}

// Client returns a new go-redis client for the server, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.url)
	if err != nil {
		t.Fatalf("redistest: parse %q: %v", s.url, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill kills the server with SIGKILL and waits for it to exit. Writes that
// were not persisted are lost. Kill does nothing if the server is not
// running or is external.
func (s *Server) Kill() {
	if p := s.take(); p != nil {
		p.kill()
	}
}

// Stop asks the server to shut down with SIGTERM and waits for it to exit,
// killing it if it has not exited after 10 seconds. Stop does nothing if the
// server is not running or is external.
func (s *Server) Stop() {
	p := s.take()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.kill()
	}
}

// Restart starts the server again on the same port and with the same data
// directory and arguments, and waits until it answers PING; with WithAOF the
// data written before Kill or Stop is back. A running server is stopped
// first. Restart fails t if the server cannot be started again or is
// external.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatalf("redistest: cannot restart external server %s", s.url)
	}
	s.Stop()
	// The port was free until a moment ago; retry briefly in case something
	// still holds it.
	var err error
	for range startAttempts {
		if err = s.launch(); err == nil || !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("redistest: restart on %s: %v", s.addr, err)
	}
}

// take detaches the current process from s and returns it, or nil.
func (s *Server) take() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}

// kill sends SIGKILL to p and waits for it to exit.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// The server shared by the tests of one binary.
var shared struct {
	once    sync.Once
	srv     *Server
	dir     string // temporary directory to remove, if any
	err     error
	mainRan bool
}

// Shared returns the Redis server shared by all tests of the test binary,
// starting it on first use. Tests must not Kill, Stop or Restart it, and
// should confine themselves to keys under Prefix and queues from Queue.
//
// If ASYNCGW_TEST_REDIS_URL is set, Shared returns that server instead of
// starting one. The package's TestMain must call Main (or Run), which removes the
// server when the tests are done; Shared fails t otherwise.
func Shared(t testing.TB) *Server {
	t.Helper()
	if !shared.mainRan {
		t.Fatalf("redistest: Shared needs the package's tests to run through redistest.Main; add\n" +
			"\tfunc TestMain(m *testing.M) { redistest.Main(m) }")
	}
	shared.once.Do(func() {
		if url := os.Getenv(EnvURL); url != "" {
			shared.srv, shared.err = external(url)
			return
		}
		bin, err := exec.LookPath(binary)
		if err != nil {
			shared.err = err
			return
		}
		dir, err := os.MkdirTemp("", "redistest-shared-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		shared.srv, shared.err = start(bin, dir, nil)
	})
	if shared.err != nil {
		if errors.Is(shared.err, exec.ErrNotFound) {
			lookPath(t)
		}
		t.Fatalf("redistest: shared server: %v", shared.err)
	}
	return shared.srv
}

// external checks that the server at url answers PING and returns it.
func external(url string) (*Server, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("%s=%s: PING: %w", EnvURL, url, err)
	}
	return &Server{addr: opt.Addr, url: url}, nil
}

// Main runs the tests of m and then removes the server started by Shared and
// the cluster started by SharedCluster, if any, and exits with the tests'
// status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it runs the tests of m, removes the server
// started by Shared and the cluster started by SharedCluster, if any, and
// returns the tests' exit code. Use it from a TestMain that has cleanup of
// its own to do:
//
//	func TestMain(m *testing.M) {
//		setup()
//		code := redistest.Run(m)
//		teardown()
//		os.Exit(code)
//	}
func Run(m *testing.M) int {
	shared.mainRan = true
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Kill()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	removeSharedCluster()
	return code
}

// Prefix returns a key prefix unique to this call, such as "t3f9a2c1b7e4d",
// for tests that share a server. Callers add their own separator.
func Prefix(t testing.TB) string {
	t.Helper()
	return "t" + randomHex()
}

// Queue returns a queue name unique to this call, made of name and a random
// suffix, such as "default_3f9a2c1b7e4d".
func Queue(t testing.TB, name string) string {
	t.Helper()
	return name + "_" + randomHex()
}

// randomHex returns 12 random hexadecimal digits.
func randomHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
