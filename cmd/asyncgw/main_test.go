package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/sse"
)

// testVersion is the version stamped into the binary the tests build.
const testVersion = "v0.0.0-test"

// asyncgwBin is the path of the asyncgw binary built by TestMain.
var asyncgwBin string

// TestMain builds the binary once for the process tests (with the race
// detector when the tests have it), then runs the tests through redistest.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "asyncgw-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "asyncgw test:", err)
		os.Exit(1)
	}
	asyncgwBin = filepath.Join(dir, "asyncgw")
	if err := build(asyncgwBin); err != nil {
		fmt.Fprintln(os.Stderr, "asyncgw test:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := redistest.Run(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles this package to out.
func build(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", out, "-ldflags", "-X main.version=" + testVersion}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// proc is an asyncgw process run by a test. It is killed when the test ends,
// and its output is logged if the test failed.
type proc struct {
	cmd    *exec.Cmd
	stdout testutil.SyncBuffer
	stderr testutil.SyncBuffer
	done   chan struct{} // closed once the process has exited
	state  *os.ProcessState
}

// startAsyncgw runs the built binary with args, in an environment without
// any ASYNCGW_ variable of the test's own, plus env.
func startAsyncgw(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(asyncgwBin, args...), done: make(chan struct{})}
	p.cmd.Env = childEnv(env)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start asyncgw %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("asyncgw %s: data race", strings.Join(args, " "))
		}
		if t.Failed() {
			t.Logf("asyncgw %s (pid %d) stderr:\n%s", strings.Join(args, " "), p.cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

// childEnv is the test's environment without ASYNCGW_ variables, plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ASYNCGW_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the process to exit and returns its exit
// code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("asyncgw (pid %d) still running after %v", p.cmd.Process.Pid, timeout)
		return -1
	}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// kill kills the process with SIGKILL and waits for it to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	<-p.done
}

// waitLog waits until the process has written want to stderr and returns
// everything it wrote so far. It fails t if the process exits first.
func (p *proc) waitLog(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	var out string
	testutil.WaitForWhy(t, timeout, fmt.Sprintf("asyncgw to log %q", want), func() (bool, string) {
		out = p.stderr.String()
		if strings.Contains(out, want) {
			return true, ""
		}
		if p.exited() {
			t.Fatalf("asyncgw exited (%v) before logging %q; stderr:\n%s", p.state, want, out)
		}
		return false, "not logged yet"
	})
	return out
}

var listening = regexp.MustCompile(`msg="gateway listening" addr=(http://\S+)`)

// baseURL waits until the gateway of the process listens and answers
// /healthz, and returns its URL (such as http://127.0.0.1:40123).
func (p *proc) baseURL(t *testing.T) string {
	t.Helper()
	m := listening.FindStringSubmatch(p.waitLog(t, `msg="gateway listening"`, 30*time.Second))
	if m == nil {
		t.Fatalf("no address in the listening line:\n%s", p.stderr.String())
	}
	base := m[1]
	testutil.WaitForWhy(t, 10*time.Second, "GET /healthz to answer 200", func() (bool, string) {
		resp, err := httpClient.Get(base + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return base
}

// httpClient is the client of the tests' plain requests.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// postJob POSTs body as JSON to url and expects 202; it returns the job ID.
func postJob(t *testing.T, url, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return acceptedID(t, req)
}

// acceptedID sends req, expects 202 and returns the job ID.
func acceptedID(t *testing.T, req *http.Request) string {
	t.Helper()
	url := req.URL.String()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %s, want 202 Accepted; body: %s", url, resp.Status, b)
	}
	var acc struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(b, &acc); err != nil || !jobs.ValidID(acc.ID) || acc.State != "queued" {
		t.Fatalf("POST %s: body %s (err %v), want a queued job with an ID", url, b, err)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/jobs/"+acc.ID {
		t.Errorf("POST %s: Location %q, want /v1/jobs/%s", url, loc, acc.ID)
	}
	return acc.ID
}

// getJob reads GET /v1/jobs/{id}.
func getJob(t *testing.T, base, id string) jobs.Job {
	t.Helper()
	resp, err := httpClient.Get(base + "/v1/jobs/" + id)
	if err != nil {
		t.Fatalf("GET job: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/jobs/%s: %s; body: %s", id, resp.Status, b)
	}
	var j jobs.Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("GET /v1/jobs/%s: %v; body: %s", id, err, b)
	}
	return j
}

// stream is an open event stream.
type stream struct {
	events chan sse.Event
	err    chan error // the error that ended the stream (io.EOF: a clean end)
}

// openEvents opens GET url as an event stream, with an API key when one
// is given, and reads it in the background until it ends or the test does.
func openEvents(t *testing.T, url string, key ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for _, k := range key {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %s %s; body: %s", url, resp.Status, resp.Header.Get("Content-Type"), b)
	}
	s := &stream{events: make(chan sse.Event, 100), err: make(chan error, 1)}
	go func() {
		defer resp.Body.Close()
		r := sse.NewReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				s.err <- err
				close(s.events)
				return
			}
			s.events <- ev
		}
	}()
	return s
}

// next returns the next event, failing t if none comes in time or the
// stream ends.
func (s *stream) next(t *testing.T, timeout time.Duration) sse.Event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("event stream ended: %v", <-s.err)
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %v", timeout)
	}
	return sse.Event{}
}

// rest reads the stream to its end and returns the events and the error
// that ended it.
func (s *stream) rest(t *testing.T, timeout time.Duration) ([]sse.Event, error) {
	t.Helper()
	var evs []sse.Event
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return evs, <-s.err
			}
			evs = append(evs, ev)
		case <-deadline:
			t.Fatalf("event stream still open after %v; got %d events", timeout, len(evs))
		}
	}
}

// kinds lists the event types of evs.
func kinds(evs []sse.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Event)
	}
	return out
}

// writeFile writes content to name in a fresh temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
