package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// post sends a JSON POST with an API key ("" for none) and returns the
// status, or the error of a request that got no answer.
func post(client *http.Client, url, key, body string, header ...string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// TestSIGHUPReload changes the configuration file of a running all-in-one
// process and sends SIGHUP: new routes, keys and upstream headers apply to
// the requests that follow, a removed key is refused, an open event stream
// goes on, and an invalid file is logged in one line while the running
// configuration serves on.
func TestSIGHUPReload(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	tokens := map[string]string{} // job ID → the X-Token the upstream got
	up := newUpstream(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens[r.Header.Get("Idempotency-Key")] = r.Header.Get("X-Token")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	srv := redistest.Shared(t)
	prefix, queue := redistest.Prefix(t), redistest.Queue(t, "default")
	stays, staysDigest := gateway.NewKey()
	goes, goesDigest := gateway.NewKey()
	comes, comesDigest := gateway.NewKey()
	file := func(keys, token, extraRoute string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
redis: {url: %s, prefix: %s}
queues: {%s: 1}
gateway: {drain_delay: 0s}
auth:
  enabled: true
  tenants:
    - name: acme
      keys: [%s]
routes:
  - name: work
    path: /v1/work
    upstream: %s/work
    queue: %s
    headers: {X-Token: %s}
%s`, srv.URL(), prefix, queue, keys, up.URL, queue, token, extraRoute)
	}
	config := writeFile(t, "asyncgw.yaml", file(fmt.Sprintf("{sha256: %s}, {sha256: %s}", staysDigest, goesDigest), "one", ""))
	p := startAsyncgw(t, nil, "--config", config)
	base := p.baseURL(t)

	events := openEvents(t, base+"/v1/events", stays)
	if code, err := post(httpClient, base+"/v1/work", goes, `{}`); code != http.StatusAccepted {
		t.Fatalf("before the reload: %d (%v), want 202", code, err)
	}
	if code, _ := post(httpClient, base+"/v1/more", stays, `{}`); code != http.StatusNotFound {
		t.Fatalf("/v1/more before the reload: %d, want 404", code)
	}
	if ev := events.next(t, 10*time.Second); ev.Event != "queued" {
		t.Fatalf("first tenant event %q, want queued", ev.Event)
	}

	more := fmt.Sprintf("  - name: more\n    path: /v1/more\n    upstream: %s/more\n    queue: %s\n", up.URL, queue)
	if err := os.WriteFile(config, []byte(file(fmt.Sprintf("{sha256: %s}, {sha256: %s}", staysDigest, comesDigest), "two", more)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Under load: writes with a key that stays are all accepted across
	// the reload, on connections that stay open.
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	var loadErr atomic.Value
	var loaded atomic.Int64
	for range 4 {
		load.Go(func() {
			for loadCtx.Err() == nil {
				if code, err := post(httpClient, base+"/v1/work", stays, `{}`); code != http.StatusAccepted {
					loadErr.Store(fmt.Sprintf("%d (%v)", code, err))
					return
				}
				loaded.Add(1)
			}
		})
	}
	testutil.WaitForWhy(t, 10*time.Second, "load", func() (bool, string) { return loaded.Load() > 20, "" })
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, `msg="config reloaded"`, 10*time.Second)
	n := loaded.Load()
	testutil.WaitForWhy(t, 10*time.Second, "load after the reload", func() (bool, string) { return loaded.Load() > n+20, "" })
	stopLoad()
	load.Wait()
	if e := loadErr.Load(); e != nil {
		t.Errorf("a write during the reload: %v, want 202", e)
	}

	if code, _ := post(httpClient, base+"/v1/work", goes, `{}`); code != http.StatusUnauthorized {
		t.Errorf("a removed key after the reload: %d, want 401", code)
	}
	if code, err := post(httpClient, base+"/v1/more", comes, `{}`); code != http.StatusAccepted {
		t.Errorf("a new route with a new key after the reload: %d (%v), want 202", code, err)
	}
	if doc := get(t, base+"/openapi.json"); !strings.Contains(doc, `"/v1/more"`) {
		t.Errorf("the OpenAPI document after the reload does not describe the new route")
	}
	id := submitAs(t, base+"/v1/work", stays)
	waitFor := func(id string) string {
		var got string
		testutil.WaitForWhy(t, 30*time.Second, "the upstream call of "+id, func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			got = tokens[id]
			return got != "", "not called yet"
		})
		return got
	}
	if got := waitFor(id); got != "two" {
		t.Errorf("after the reload the upstream got X-Token %q, want the new %q", got, "two")
	}
	// The stream opened before the reload carries the jobs after it.
	seen := map[string]bool{}
	for len(seen) < 3 {
		ev := events.next(t, 30*time.Second)
		seen[ev.Event] = true
	}

	// An invalid file: one line in the log, and the running
	// configuration serves on.
	if err := os.WriteFile(config, []byte(file(fmt.Sprintf("{sha256: %s}", comesDigest), "three", "  - name: broken\n    path: no-slash\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	log := p.waitLog(t, "config reload failed", 10*time.Second)
	if n := strings.Count(log, "config reload failed"); n != 1 {
		t.Errorf("the failed reload was logged in %d lines, want 1", n)
	}
	if code, err := post(httpClient, base+"/v1/work", stays, `{}`); code != http.StatusAccepted {
		t.Errorf("after a failed reload the running key was refused: %d (%v)", code, err)
	}
	if p.exited() {
		t.Fatal("asyncgw exited on SIGHUP")
	}
}

// get reads url, requiring a 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d (%v)", url, resp.StatusCode, err)
	}
	return string(b)
}

// submitAs POSTs {} with an API key, requires a 202 and returns the job ID.
func submitAs(t *testing.T, url, key string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return acceptedID(t, req)
}

// TestShutdownDrains sends SIGTERM to a gateway under load: /readyz turns
// 503 at once while writes are still accepted for gateway.drain_delay,
// every request in flight at the signal gets an answer (Prefer: wait ones
// their 202 early), and the process exits 0.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var held atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/held") {
			held.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	appendFile(t, s.config, fmt.Sprintf(`  - name: held
    path: /v1/held
    upstream: %s/held
    queue: %s
`, up.URL, s.queue))
	// The file's gateway section is replaced through the environment.
	p := startAsyncgw(t, map[string]string{"ASYNCGW_GATEWAY_DRAIN_DELAY": "2s"}, "--config", s.config)
	base := p.baseURL(t)

	// Load: clients on keep-alive connections, each request noted with
	// whether it was sent before the signal and what came of it.
	type outcome struct {
		before bool
		code   int
		err    error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		signaled bool
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				before := !signaled
				mu.Unlock()
				code, err := post(client, base+"/v1/work", "", `{}`)
				mu.Lock()
				outcomes = append(outcomes, outcome{before, code, err})
				mu.Unlock()
				if err != nil && !before {
					return // the listener is closed
				}
			}
		})
	}
	// Writes that wait for jobs held by the upstream.
	waits := make(chan outcome, 4)
	for range cap(waits) {
		go func() {
			code, err := post(client, base+"/v1/held", "", `{}`, "Prefer", "wait=20")
			waits <- outcome{true, code, err}
		}()
	}
	testutil.WaitForWhy(t, 10*time.Second, "load and held jobs to start", func() (bool, string) {
		mu.Lock()
		n := len(outcomes)
		mu.Unlock()
		return n >= 50 && held.Load() >= int64(cap(waits)), fmt.Sprintf("%d requests done, %d held", n, held.Load())
	})

	mu.Lock()
	signaled = true
	mu.Unlock()
	p.signal(t, syscall.SIGTERM)

	// Not ready at once, but still serving.
	code, body, err := readyz(base)
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["reasons"]), "shutting down") {
		testutil.WaitForWhy(t, time.Second, "/readyz to say shutting down", func() (bool, string) {
			code, body, err = readyz(base)
			return code == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(body["reasons"]), "shutting down"),
				fmt.Sprintf("%d %v (%v)", code, body, err)
		})
	}
	// Still serving, and each answer closes its connection so that the
	// client's next request goes through the balancer.
	resp, err := httpClient.Post(base+"/v1/work", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("a write during the drain: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !resp.Close {
		t.Errorf("a write during the drain: %d, connection closed %v; want 202 and the connection closed", resp.StatusCode, resp.Close)
	}

	for range cap(waits) {
		w := <-waits
		if w.err != nil || w.code != http.StatusAccepted {
			t.Errorf("a Prefer: wait request in flight at SIGTERM: %d (%v), want its 202", w.code, w.err)
		}
	}
	releaseOnce.Do(func() { close(release) })
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	stopLoad()
	wg.Wait()

	var before, answered int
	for _, o := range outcomes {
		if !o.before {
			continue
		}
		before++
		if o.err != nil {
			t.Errorf("a request sent before SIGTERM got no answer: %v", o.err)
			continue
		}
		answered++
		if o.code != http.StatusAccepted {
			t.Errorf("a request sent before SIGTERM: status %d, want 202", o.code)
		}
	}
	t.Logf("%d requests before SIGTERM, %d answered; %d in all", before, answered, len(outcomes))
	if before == 0 {
		t.Fatal("no load before the signal")
	}
}
