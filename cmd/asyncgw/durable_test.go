package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// The problems durabilityProblems reports, word for word.
const (
	problemNoAOF    = "appendonly is no: an accepted job is lost if Redis restarts; use appendonly yes with appendfsync always"
	problemEverysec = "appendfsync is everysec: up to 1 s of accepted jobs can be lost in a crash; use always"
	problemFsyncNo  = "appendfsync is no: accepted jobs not yet written to disk by the OS (often 30 s of them) can be lost in a crash; use always"
	problemLRU      = "maxmemory-policy is allkeys-lru: Redis may evict queued jobs; use noeviction"
	problemVolatile = "maxmemory-policy is volatile-ttl: Redis may evict queued jobs; use noeviction"
)

// durable is what a durable Redis runs with, then extra: redistest.WithAOF
// sets appendonly yes and appendfsync always; noeviction is Redis' default,
// made explicit here.
func durable(extra ...redistest.Option) []redistest.Option {
	return append([]redistest.Option{redistest.WithAOF(), redistest.WithArgs("--maxmemory-policy", "noeviction")}, extra...)
}

func TestDurabilityProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []redistest.Option
		want []string
		// wantPrefix, when set, is what the one problem starts with.
		wantPrefix string
	}{
		{name: "durable", opts: durable()},
		{name: "no AOF", opts: nil, want: []string{problemNoAOF}},
		{name: "no AOF, appendfsync always", opts: []redistest.Option{redistest.WithArgs("--appendfsync", "always")}, want: []string{problemNoAOF}},
		{name: "everysec", opts: durable(redistest.WithArgs("--appendfsync", "everysec")), want: []string{problemEverysec}},
		{name: "appendfsync no", opts: durable(redistest.WithArgs("--appendfsync", "no")), want: []string{problemFsyncNo}},
		{name: "allkeys-lru", opts: durable(redistest.WithArgs("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")), want: []string{problemLRU}},
		{name: "everything wrong", opts: []redistest.Option{redistest.WithArgs("--maxmemory-policy", "volatile-ttl")}, want: []string{problemNoAOF, problemVolatile}},
		{name: "CONFIG renamed", opts: durable(redistest.WithArgs("--rename-command", "CONFIG", "")),
			wantPrefix: "cannot check: CONFIG GET appendonly failed (ERR unknown command 'config'"},
		{name: "CONFIG denied by ACL", opts: durable(redistest.WithArgs("--user", "default", "on", "nopass", "~*", "&*", "+@all", "-config")),
			wantPrefix: "cannot check: CONFIG GET appendonly failed (NOPERM "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t, tt.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := durabilityProblems(ctx, srv.Client(t))
			if tt.wantPrefix != "" {
				if len(got) != 1 || !strings.HasPrefix(got[0], tt.wantPrefix) {
					t.Fatalf("problems %q, want one starting with %q", got, tt.wantPrefix)
				}
				if want := "; make sure Redis runs with appendonly yes, appendfsync always and maxmemory-policy noeviction"; !strings.HasSuffix(got[0], want) {
					t.Errorf("problem %q does not end with %q", got[0], want)
				}
				return
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("problems:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

// TestDurabilityConfig checks redis.require_durable as read from the file.
// Its errors are in TestBadConfig.
func TestDurabilityConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want bool
	}{
		{name: "absent", yaml: "redis:\n  url: redis://127.0.0.1:6379/0\n", want: false},
		{name: "true", yaml: "redis:\n  url: redis://127.0.0.1:6379/0\n  require_durable: true\n", want: true},
		{name: "url from the environment", yaml: "redis:\n  require_durable: true\n", env: map[string]string{"ASYNCGW_REDIS_URL": "redis://127.0.0.1:6379/0"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(writeFile(t, "asyncgw.yaml", tt.yaml), env(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.RequireDurable != tt.want {
				t.Errorf("RequireDurable %v, want %v", cfg.RequireDurable, tt.want)
			}
		})
	}

	cfg, err := loadConfig("../../configs/asyncgw.yaml", env(nil))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if cfg.RequireDurable {
		t.Errorf("the example config requires a durable Redis; it is meant to run against a plain local redis-server")
	}
}

// durabilityWarning matches one warning line of the text log and captures
// the problem.
var durabilityWarning = regexp.MustCompile(`(?m)^time=\S+ level=WARN msg="REDIS MAY NOT BE DURABLE: [^"]*redis.require_durable: true[^"]*" redis_durability="((?:[^"\\]|\\.)*)"$`)

// running is a call of run in the background.
type running struct {
	stderr testutil.SyncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed once run has returned
	err    error         // what run returned, once done is closed
}

// startRun calls run with args and getenv in the background; it is stopped
// when the test ends at the latest.
func startRun(t *testing.T, getenv func(string) string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var stdout bytes.Buffer
		r.err = run(ctx, args, getenv, &stdout, &r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return within 30s of its context ending")
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", r.stderr.String())
		}
	})
	return r
}

// waitListening waits until run has logged that its gateway listens,
// failing t if run returns first. It returns the log so far.
func (r *running) waitListening(t *testing.T) string {
	t.Helper()
	var out string
	testutil.WaitForWhy(t, 30*time.Second, "the gateway to listen", func() (bool, string) {
		select {
		case <-r.done:
			t.Fatalf("run returned %v before the gateway listened", r.err)
		default:
		}
		out = r.stderr.String()
		return strings.Contains(out, `msg="gateway listening"`), "not yet"
	})
	return out
}

// stop ends run's context and expects a clean return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("run after shutdown: %v, want nil", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return within 30s of its context ending")
	}
}

func TestDurabilityAtStartup(t *testing.T) {
	t.Parallel()
	listen := env(map[string]string{"ASYNCGW_LISTEN": "127.0.0.1:0"})
	config := func(t *testing.T, srv *redistest.Server, require bool) string {
		return writeFile(t, "asyncgw.yaml", fmt.Sprintf("redis:\n  url: %s\n  require_durable: %v\nworker:\n  concurrency: 2\n", srv.URL(), require))
	}

	t.Run("required, not durable", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			opts []redistest.Option
			want string // after "fails the durability check: "
		}{
			{name: "one problem", opts: nil, want: problemNoAOF},
			{name: "two problems", opts: []redistest.Option{redistest.WithArgs("--maxmemory-policy", "volatile-ttl")},
				want: "1) " + problemNoAOF + " 2) " + problemVolatile},
			{name: "cannot check", opts: durable(redistest.WithArgs("--rename-command", "CONFIG", "")),
				want: "cannot check: CONFIG GET appendonly failed"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				srv := redistest.Start(t, tt.opts...)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var stdout, stderr bytes.Buffer
				err := run(ctx, []string{"--config", config(t, srv, true)}, listen, &stdout, &stderr)
				if err == nil {
					t.Fatal("run: no error, want redis.require_durable to stop it")
				}
				prefix := "redis.require_durable: Redis at " + srv.Addr() + " fails the durability check: " + tt.want
				if msg := err.Error(); !strings.HasPrefix(msg, prefix) || strings.ContainsAny(msg, "\r\n") {
					t.Errorf("run: %q, want one line starting with %q", msg, prefix)
				}
				if stdout.Len() > 0 || stderr.Len() > 0 {
					t.Errorf("run wrote before failing:\nstdout: %s\nstderr: %s", &stdout, &stderr)
				}
			})
		}
	})

	t.Run("required, durable", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, durable()...)
		r := startRun(t, listen, "--config", config(t, srv, true))
		out := r.waitListening(t)
		if strings.Contains(out, "redis_durability") {
			t.Errorf("durability warnings for a durable Redis:\n%s", out)
		}
		r.stop(t)
	})

	t.Run("not required, not durable", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.WithArgs("--maxmemory-policy", "allkeys-lru"))
		r := startRun(t, listen, "--config", config(t, srv, false))
		out := r.waitListening(t)
		var got []string
		for _, m := range durabilityWarning.FindAllStringSubmatch(out, -1) {
			got = append(got, m[1])
		}
		if want := []string{problemNoAOF, problemLRU}; fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("durability warnings %q, want %q", got, want)
		}
		if n := strings.Count(out, "redis_durability="); n != 2 {
			t.Errorf("%d lines with redis_durability, want 2", n)
		}
		// It keeps running: the gateway answers.
		m := listening.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no address in the listening line")
		}
		resp, err := httpClient.Get(m[1] + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET /readyz: %s, want 200", resp.Status)
		}
		r.stop(t)
	})

	t.Run("not required, cannot check", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t, redistest.WithArgs("--rename-command", "CONFIG", ""))
		r := startRun(t, listen, "--config", config(t, srv, false))
		out := r.waitListening(t)
		ms := durabilityWarning.FindAllStringSubmatch(out, -1)
		if len(ms) != 1 || !strings.HasPrefix(ms[0][1], "cannot check: CONFIG GET appendonly failed") {
			t.Errorf("durability warnings %q, want one saying it cannot check", ms)
		}
		r.stop(t)
	})

	t.Run("embedded Redis", func(t *testing.T) {
		t.Parallel()
		r := startRun(t, listen)
		out := r.waitListening(t)
		if !strings.Contains(out, "NO REDIS CONFIGURED") {
			t.Errorf("no warning about the embedded Redis")
		}
		if strings.Contains(out, "redis_durability") {
			t.Errorf("the embedded Redis was checked for durability:\n%s", out)
		}
		r.stop(t)
	})
}

// TestDurabilityBinaryExit is what a supervisor sees when
// redis.require_durable stops asyncgw: exit code 1 and one line.
func TestDurabilityBinaryExit(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.WithAOF(), redistest.WithArgs("--appendfsync", "everysec"))
	path := writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:0\nredis:\n  url: "+srv.URL()+"\n  require_durable: true\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, asyncgwBin, "--config", path)
	cmd.Env = childEnv(nil)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("run asyncgw: %v", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	want := "asyncgw: redis.require_durable: Redis at " + srv.Addr() + " fails the durability check: " + problemEverysec + "\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%q\nwant:\n%q", &stderr, want)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout %q, want nothing", &stdout)
	}
}
