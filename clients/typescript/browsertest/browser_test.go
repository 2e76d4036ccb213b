//go:build tsbrowser

// Package browsertest runs the TypeScript client, as built into
// clients/typescript/dist, in a real headless Chromium: a page of a web
// app on another origin than the gateway's submits a write with the
// client and waits for the job's end. scripts/test-typescript.sh runs it
// (make test, make test-ts) after building dist, with ASYNCGW_TS_DIST set;
// it carries a build tag so that go test ./... leaves it to that script.
package browsertest

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/browsertest"
	"github.com/asyncgw/asyncgw/internal/e2e"
)

// page is the web app's page: it imports the client from /dist, submits
// an order to the gateway named in its query with the key in it, waits
// for the job's end (the event stream, over fetch), and shows the state.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title><link rel="icon" href="data:,"></head>
<body><p id="state">starting</p><p id="events"></p><p id="error"></p>
<script type="module" src="/app.js"></script></body></html>`

const app = `import { Client } from "/dist/index.js";
const q = new URLSearchParams(location.search);
const client = new Client({ baseUrl: q.get("gw"), apiKey: q.get("key") });
const state = document.getElementById("state");
try {
  const acc = await client.submit("/v1/orders", { sku: "B-7" });
  state.textContent = "submitted " + acc.id;
  const seen = [];
  const job = await client.wait(acc.id, { onEvent: (e) => { seen.push(e.event); document.getElementById("events").textContent = seen.join(","); } });
  state.textContent = job.state;
} catch (e) {
  document.getElementById("error").textContent = String(e);
  state.textContent = "error";
}
`

// serveApp serves the page, its script and the built client on a
// loopback port of its own: another origin than the gateway's.
func serveApp(t *testing.T, dist string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	files := http.StripPrefix("/dist/", http.FileServer(http.Dir(dist)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, page)
		case r.URL.Path == "/app.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, app)
		case strings.HasPrefix(r.URL.Path, "/dist/"):
			if strings.HasSuffix(r.URL.Path, ".js") {
				w.Header().Set("Content-Type", "text/javascript")
			}
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestClientInBrowser: the built client runs in Chromium on another
// origin, through the gateway's CORS, to the job's end.
func TestClientInBrowser(t *testing.T) {
	dist := os.Getenv("ASYNCGW_TS_DIST")
	if dist == "" {
		t.Fatal("ASYNCGW_TS_DIST is not set: run this test through scripts/test-typescript.sh, which builds the client")
	}
	if _, err := os.Stat(filepath.Join(dist, "index.js")); err != nil {
		t.Fatalf("the built client: %v", err)
	}
	origin := serveApp(t, dist)
	key, digest := gateway.NewKey()
	h := e2e.Start(t, e2e.Options{
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
		Auth:   gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{{Name: "acme", KeySHA256: []string{digest}}}},
		CORS:   gateway.CORSConfig{AllowedOrigins: []string{origin}},
	})
	p := browsertest.New(t, browsertest.Options{})
	p.Do(t, 30*time.Second, chromedp.Navigate(origin+"/?"+url.Values{"gw": {h.URL}, "key": {key}}.Encode()))
	browsertest.Get(t, p, 40*time.Second, chromedp.Poll[bool](
		`["succeeded", "error"].includes(document.getElementById("state").textContent)`, chromedp.WithPollingTimeout(35*time.Second)))
	state := browsertest.Get(t, p, 10*time.Second, chromedp.Text(chromedp.CSS("#state")))
	errText := browsertest.Get(t, p, 10*time.Second, chromedp.Text(chromedp.CSS("#error")))
	if state != "succeeded" {
		t.Fatalf("the page ended %q: %s", state, errText)
	}
	events := browsertest.Get(t, p, 10*time.Second, chromedp.Text(chromedp.CSS("#events")))
	if !strings.HasPrefix(events, "queued") || !strings.HasSuffix(events, "succeeded") {
		t.Errorf("the page saw the events %q, want queued … succeeded", events)
	}
	p.CheckClean(t)
	if n := len(h.Upstream.AllCalls()); n != 1 {
		t.Errorf("the upstream was called %d times, want once", n)
	}
}
