package client_test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/asyncgw/asyncgw/client"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/browsertest"
	"github.com/asyncgw/asyncgw/internal/e2e"
)

// followPage is a page of a web app on its own origin that follows a job
// with EventSource, given the gateway's URL, the job ID and a stream token
// in its query: it never holds an API key.
const followPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>order</title><link rel="icon" href="data:,"></head>
<body><p id="state">connecting</p><ol id="log"></ol>
<script>
const q = new URLSearchParams(location.search);
const es = new EventSource(q.get("gw") + "/v1/jobs/" + q.get("job") + "/events?token=" + encodeURIComponent(q.get("token")));
const state = document.getElementById("state");
const terminal = ["succeeded", "failed", "dead", "canceled"];
for (const kind of ["queued", "scheduled", "running", "retrying", "progress", ...terminal]) {
  es.addEventListener(kind, (e) => {
    const job = JSON.parse(e.data);
    const li = document.createElement("li");
    li.textContent = kind;
    document.getElementById("log").append(li);
    state.textContent = job.state;
    if (terminal.includes(job.state)) es.close();
  });
}
es.onerror = () => { if (es.readyState === EventSource.CLOSED) state.textContent = "closed"; };
</script></body></html>`

// servePage serves followPage on a loopback port of its own: another
// origin than the gateway's.
func servePage(t *testing.T) (origin string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, followPage)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestBrowserFollowsJob: a page on another origin, given only a stream
// token that a backend made with the Go client, follows a job live in a
// real Chromium to its end; a page on an origin the gateway does not
// allow cannot read the stream.
func TestBrowserFollowsJob(t *testing.T) {
	t.Parallel()
	app, stranger := servePage(t), servePage(t)
	key, digest := gateway.NewKey()
	h := e2e.Start(t, e2e.Options{
		Routes: []gateway.Route{ordersRoute},
		Auth:   gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{{Name: "acme", KeySHA256: []string{digest}}}},
		CORS:   gateway.CORSConfig{AllowedOrigins: []string{app}},
	})
	release := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c e2e.Call) {
		select {
		case <-release:
		case <-h.Upstream.Released():
		}
		okOrder(w, r, c)
	})
	ctx := testContext(t)
	backend := newClient(t, h.URL, key)
	acc, err := backend.Submit(ctx, "/v1/orders", `{"sku":"B-7"}`)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := backend.StreamToken(ctx, acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	pageURL := func(origin string) string {
		return origin + "/?" + url.Values{"gw": {h.URL}, "job": {acc.ID}, "token": {tok.Token}}.Encode()
	}

	p := browsertest.New(t, browsertest.Options{})
	p.Do(t, 30*time.Second, chromedp.Navigate(pageURL(app)))
	// The page follows the job live: it sees it running, then its end.
	browsertest.Get(t, p, 30*time.Second, chromedp.Poll[bool](
		`document.getElementById("log").textContent.includes("running")`, chromedp.WithPollingTimeout(25*time.Second)))
	close(release)
	browsertest.Get(t, p, 30*time.Second, chromedp.Poll[bool](
		`document.getElementById("state").textContent === "succeeded"`, chromedp.WithPollingTimeout(25*time.Second)))
	log := browsertest.Get(t, p, 10*time.Second, chromedp.Text(chromedp.CSS("#log")))
	if got := strings.Fields(log); strings.Join(got, ",") != "queued,running,succeeded" {
		t.Errorf("the page saw %v, want queued, running, succeeded", got)
	}
	p.CheckClean(t)
	for _, r := range p.Requests() {
		if strings.Contains(r, key) {
			t.Errorf("the page sent the API key: %s", r)
		}
	}
	if j, err := backend.Get(ctx, acc.ID); err != nil || j.State != client.Succeeded {
		t.Errorf("the job: %+v, %v", j, err)
	}

	// The same page on an origin the gateway does not allow: the
	// browser refuses it the stream.
	q := browsertest.New(t, browsertest.Options{})
	q.Do(t, 30*time.Second, chromedp.Navigate(pageURL(stranger)))
	browsertest.Get(t, q, 30*time.Second, chromedp.Poll[bool](
		`document.getElementById("state").textContent === "closed"`, chromedp.WithPollingTimeout(25*time.Second)))
	if log := browsertest.Get(t, q, 10*time.Second, chromedp.Text(chromedp.CSS("#log"))); strings.TrimSpace(log) != "" {
		t.Errorf("a page of a disallowed origin read events: %q", log)
	}
}
