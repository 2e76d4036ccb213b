package redistest_test

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestStart(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)

	if s.Pid() <= 0 {
		t.Errorf("Pid() = %d, want > 0", s.Pid())
	}
	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Errorf("Addr() = %q, want 127.0.0.1:<port>", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}

	c := s.Client(t)
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	// Nothing is persisted by default.
	cfg, err := c.ConfigGet(t.Context(), "appendonly").Result()
	if err != nil {
		t.Fatalf("CONFIG GET appendonly: %v", err)
	}
	if cfg["appendonly"] != "no" {
		t.Errorf("appendonly = %q, want no", cfg["appendonly"])
	}
}

func TestStartGivesEachTestItsOwnServer(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr() == b.Addr() || a.Pid() == b.Pid() {
		t.Fatalf("two servers share %s (pids %d, %d)", a.Addr(), a.Pid(), b.Pid())
	}
	if err := a.Client(t).Set(t.Context(), "k", "a", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if n := b.Client(t).Exists(t.Context(), "k").Val(); n != 0 {
		t.Errorf("key written to one server exists on the other")
	}
}

func TestWithArgs(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t, redistest.WithArgs("--maxmemory", "1mb"))
	cfg, err := s.Client(t).ConfigGet(t.Context(), "maxmemory").Result()
	if err != nil {
		t.Fatalf("CONFIG GET maxmemory: %v", err)
	}
	if cfg["maxmemory"] != "1048576" {
		t.Errorf("maxmemory = %q, want 1048576", cfg["maxmemory"])
	}
}

func TestKillRestartKeepsAOFData(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t, redistest.WithAOF())
	c := s.Client(t)
	for i := range 100 {
		if err := c.Set(t.Context(), fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
	}
	addr, pid := s.Addr(), s.Pid()

	s.Kill()
	if s.Pid() != 0 {
		t.Errorf("Pid() after Kill = %d, want 0", s.Pid())
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("server accepts connections after Kill")
	}
	s.Kill() // killing a dead server is harmless

	s.Restart(t)
	if s.Addr() != addr {
		t.Errorf("Addr() after Restart = %q, want %q", s.Addr(), addr)
	}
	if s.Pid() == 0 || s.Pid() == pid {
		t.Errorf("Pid() after Restart = %d, want a new process (was %d)", s.Pid(), pid)
	}
	for i := range 100 {
		got, err := c.Get(t.Context(), fmt.Sprint("k", i)).Int()
		if err != nil || got != i {
			t.Fatalf("GET k%d after Restart = %d, %v; want %d", i, got, err, i)
		}
	}
}

func TestStopRestartWithoutPersistence(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	c := s.Client(t)
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Stop()
	if s.Pid() != 0 {
		t.Errorf("Pid() after Stop = %d, want 0", s.Pid())
	}
	s.Restart(t)
	if n, err := c.Exists(t.Context(), "k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS k after Restart = %d, %v; want 0 (nothing is persisted by default)", n, err)
	}
}

func TestRestartStopsARunningServer(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	pid := s.Pid()
	s.Restart(t)
	if s.Pid() == pid {
		t.Errorf("Pid() after Restart = %d, want a new process", s.Pid())
	}
	if err := s.Client(t).Ping(t.Context()).Err(); err != nil {
		t.Errorf("PING after Restart: %v", err)
	}
}

func TestServerIsKilledWhenTestEnds(t *testing.T) {
	t.Parallel()
	var addr string
	t.Run("inner", func(t *testing.T) {
		addr = redistest.Start(t).Addr()
	})
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after its test ended", addr)
	}
}

func TestShared(t *testing.T) {
	t.Parallel()
	first := redistest.Shared(t)
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			s := redistest.Shared(t)
			if s != first {
				t.Fatalf("Shared returned %p, then %p", first, s)
			}
			c := s.Client(t)
			key := redistest.Prefix(t) + ":counter"
			for range 10 {
				if err := c.Incr(t.Context(), key).Err(); err != nil {
					t.Fatalf("INCR: %v", err)
				}
			}
			if n, err := c.Get(t.Context(), key).Int(); err != nil || n != 10 {
				t.Errorf("GET %s = %d, %v; want 10", key, n, err)
			}
		})
	}
}

func TestPrefixAndQueueAreUnique(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		p := redistest.Prefix(t)
		q := redistest.Queue(t, "default")
		if !strings.HasPrefix(p, "t") {
			t.Fatalf("Prefix() = %q, want it to start with t", p)
		}
		if !strings.HasPrefix(q, "default_") {
			t.Fatalf(`Queue("default") = %q, want it to start with default_`, q)
		}
		if seen[p] || seen[q] {
			t.Fatalf("duplicate name %q or %q", p, q)
		}
		seen[p], seen[q] = true, true
	}
}

// recordingTB stops the test it stands in for on Fatal or Skip and records
// which happened.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Skip(args ...any) {
	r.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) SkipNow() {
	r.skip = "SkipNow"
	runtime.Goexit()
}

func TestStartFailsWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		redistest.Start(r)
	}()
	<-done

	if r.skip != "" {
		t.Fatalf("Start skipped (%q); it must fail", r.skip)
	}
	if r.fatal == "" {
		t.Fatal("Start did not fail without redis-server on PATH")
	}
	if !strings.Contains(r.fatal, "make test") {
		t.Errorf("failure message %q does not mention make test", r.fatal)
	}
}

// TestParseMonitorLine reads MONITOR's lines and undoes Redis' escapes.
func TestParseMonitorLine(t *testing.T) {
	for _, tc := range []struct {
		line       string
		args       []string
		fromScript bool
		ok         bool
	}{
		{`+1796555885.895080 [0 127.0.0.1:37100] "evalsha" "x" "1" "k"`, []string{"evalsha", "x", "1", "k"}, false, true},
		{"+1796555885.895080 [0 127.0.0.1:37100] \"get\" \"k\"\r\n", []string{"get", "k"}, false, true}, // as read off the wire
		{`1796555885.895144 [0 lua] "SET" "a\"b\\c\n\r\t\x41" "x"`, []string{"SET", "a\"b\\c\n\r\tA", "x"}, true, true},
		{`1796555885.895144 [0 lua] "GET" "unterminated`, []string{"GET", "unterminated"}, true, true},
		{`OK`, nil, false, false},
		{`1 [0 c] none`, nil, false, false},
	} {
		args, fromScript, ok := redistest.ParseMonitorLine(tc.line)
		if ok != tc.ok || fromScript != tc.fromScript || !slices.Equal(args, tc.args) {
			t.Errorf("ParseMonitorLine(%q) = %q, %v, %v; want %q, %v, %v", tc.line, args, fromScript, ok, tc.args, tc.fromScript, tc.ok)
		}
	}
}
