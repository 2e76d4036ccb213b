package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/browsertest"
	"github.com/asyncgw/asyncgw/jobs"
)

// browserWait bounds each step a test takes in the browser.
const browserWait = 20 * time.Second

// consoleUser is a browser signed in to the console of a gateway.
type consoleUser struct {
	t    *testing.T
	page *browsertest.Page
	base string
}

// openConsole starts a browser and signs in to the console of s with key
// ("" when authentication is off).
func openConsole(t *testing.T, s *Server, key string, opt browsertest.Options) *consoleUser {
	t.Helper()
	u := &consoleUser{t: t, page: browsertest.New(t, opt), base: s.URL + "/ui/"}
	if key == "" {
		u.do(chromedp.Navigate(u.base), chromedp.WaitVisible(chromedp.ID("main")))
		return u
	}
	// With the keyboard: the field has the focus, Enter sends the form.
	u.do(
		chromedp.Navigate(u.base),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.KeyEvent(key+"\r"),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
	return u
}

func (u *consoleUser) do(actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	u.page.Do(u.t, browserWait, actions...)
}

// open navigates to a console path and waits for its content.
func (u *consoleUser) open(path string) {
	u.t.Helper()
	u.do(chromedp.Navigate(u.base+path), chromedp.WaitVisible(chromedp.ID("main")))
}

// text is the text of the element with id.
func (u *consoleUser) text(id string) string {
	u.t.Helper()
	return strings.TrimSpace(browsertest.Get(u.t, u.page, browserWait, chromedp.Text(chromedp.ID(id))))
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](u *consoleUser, js string) T {
	u.t.Helper()
	return browsertest.Get(u.t, u.page, browserWait, chromedp.Evaluate[T](js))
}

// until waits until a JavaScript expression is true in the page.
func (u *consoleUser) until(what, js string) {
	u.t.Helper()
	_, err := chromedp.Run(u.page.Ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(browserWait), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		html, _ := chromedp.Run(u.page.Ctx, chromedp.Evaluate[string](`document.getElementById("main") ? document.getElementById("main").innerText : document.body.innerText`))
		u.t.Fatalf("browser: waiting for %s: %v\npage: %s\nproblems: %v", what, err, html, u.page.Problems())
	}
}

// rowState is the JavaScript for the state shown in job id's row.
func rowState(id string) string {
	return `(function(){var e=document.querySelector('tr[data-job="` + id + `"] [data-state]');return e?e.textContent:""})()`
}

// screenshot writes a PNG of the page to docs/img/name when
// ASYNCGW_UPDATE_SCREENSHOTS is set.
func (u *consoleUser) screenshot(name string) {
	u.t.Helper()
	if os.Getenv("ASYNCGW_UPDATE_SCREENSHOTS") == "" {
		return
	}
	png := browsertest.Get(u.t, u.page, browserWait, chromedp.FullScreenshot(100))
	// Quality 100 is a PNG (below it, a JPEG).
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", name), png, 0o644); err != nil {
		u.t.Fatalf("write screenshot: %v", err)
	}
}

// TestConsoleLiveJobs: a tenant signs in, sees a job submitted through
// the API appear on its jobs page and end there without reloading, finds
// it by ID, follows its page, and cannot open another tenant's job; an
// admin's overview and jobs read well at phone width. No page logs an
// error or asks anything of a host off the loopback.
func TestConsoleLiveJobs(t *testing.T) {
	t.Parallel()
	keyA, digestA := gateway.NewKey()
	keyB, digestB := gateway.NewKey()
	keyOps, digestOps := gateway.NewKey()
	h := Start(t, Options{
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digestA}},
			{Name: "globex", KeySHA256: []string{digestB}},
			{Name: "ops", Admin: true, KeySHA256: []string{digestOps}},
		}},
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders", Timeout: time.Minute}},
	})
	proceed := make(chan struct{})
	arrived := make(chan struct{}, 1)
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		if !hold(h.Upstream, r, proceed) {
			return
		}
		okJSON(w, r, c)
	})
	a, b := h.As(keyA), h.As(keyB)
	theirs := b.Submit(t, "/v1/orders", `{"customer":"globex"}`)

	u := openConsole(t, h.Server, keyA, browsertest.Options{})
	u.open("jobs")
	u.until("the page to go live", `document.getElementById("live-state").textContent === "live"`)
	if got := u.text("who"); got != "acme" {
		t.Fatalf("signed in as %q, want acme", got)
	}
	// A mark that a reload would wipe: the list must change in place.
	eval[chromedp.Void](u, `window.stillHere = true`)

	id := a.Submit(t, "/v1/orders", `{"customer":"acme"}`)
	u.until("the new job to appear", rowState(id)+` !== ""`)
	recv(t, arrived, "the upstream call")
	u.until("the job to run", rowState(id)+` === "running"`)
	close(proceed)
	u.until("the job to succeed", rowState(id)+` === "succeeded"`)
	if !eval[bool](u, `window.stillHere === true`) {
		t.Fatal("the jobs page reloaded instead of updating in place")
	}
	if eval[bool](u, `document.querySelector('tr[data-job="`+theirs+`"]') !== null`) {
		t.Fatal("acme's jobs page lists globex's job")
	}
	u.screenshot("console-jobs.png")

	// Find the job by ID, as from a customer's ticket.
	u.do(
		chromedp.SendKeys(chromedp.ID("find-id"), id+"\r"),
		chromedp.WaitVisible(chromedp.ID("job-id")),
	)
	if got := u.text("job-id"); got != id {
		t.Fatalf("the job page shows %q, want %s", got, id)
	}
	if got := u.text("job-state"); got != "succeeded" {
		t.Fatalf("the job page shows state %q, want succeeded", got)
	}
	if n := eval[int](u, `document.querySelectorAll("#timeline tbody tr").length`); n != 3 {
		t.Errorf("the timeline has %d events, want 3 (queued, running, succeeded)", n)
	}
	if got := u.text("result-status"); got != "200" {
		t.Errorf("the upstream answer shows status %q, want 200", got)
	}
	u.screenshot("console-job.png")

	// Another tenant's job is not found, exactly like one that does not
	// exist.
	nobody := jobs.NewID()
	u.open("jobs/" + nobody)
	missing := u.text("error-message")
	u.open("jobs/" + theirs)
	if got := u.text("error-message"); strings.Replace(got, theirs, nobody, 1) != missing {
		t.Fatalf("globex's job shows %q to acme, want what a missing job shows (%q)", got, missing)
	}
	for _, path := range []string{"jobs/" + theirs, "jobs/" + theirs + "/live"} {
		if got, want := consoleGet(t, u, path), consoleGet(t, u, strings.Replace(path, theirs, nobody, 1)); got != want || got != http.StatusNotFound {
			t.Fatalf("acme's session: GET %s answers %d, a missing job %d; want 404 for both", path, got, want)
		}
	}
	u.page.CheckClean(t)

	// An admin at phone width: the overview and the jobs of every tenant,
	// with nothing wider than the screen. Jobs wait on a paused queue: the
	// overview shows each tenant's.
	pauseQueues(t, h, h.Queues.Default)
	for range 2 {
		a.Submit(t, "/v1/orders", `{"customer":"acme"}`)
	}
	b.Submit(t, "/v1/orders", `{"customer":"globex"}`)
	ops := openConsole(t, h.Server, keyOps, browsertest.Options{Mobile: true})
	ops.until("the overview", `document.getElementById("queues") !== null`)
	ops.until("the page to go live", `document.getElementById("live-state").textContent === "live"`)
	byTenant := `document.querySelector('tr[data-queue="` + h.Queues.Default + `"] td[data-field="by-tenant"]').textContent`
	ops.until("each tenant's waiting jobs", byTenant+`.includes("acme 2") && `+byTenant+`.includes("globex 1")`)
	if eval[bool](ops, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Errorf("the overview is %d px wide on a %d px screen", eval[int](ops, `document.documentElement.scrollWidth`), eval[int](ops, `window.innerWidth`))
	}
	ops.screenshot("console-overview-phone.png")
	ops.open("jobs")
	ops.until("both tenants' jobs", rowState(id)+` !== "" && `+rowState(theirs)+` !== ""`)
	if eval[bool](ops, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Errorf("the jobs page is wider than the screen")
	}
	ops.page.CheckClean(t)
}

// consoleGet fetches a console path from inside the page (with its
// session) and returns the status.
func consoleGet(t *testing.T, u *consoleUser, path string) int {
	t.Helper()
	return browsertest.Get(t, u.page, browserWait, chromedp.Evaluate[int](
		`fetch("`+u.base+path+`", {credentials: "same-origin"}).then(function(r){ return r.status })`,
		chromedp.EvalAwaitPromise))
}

// consoleFetch signs in with key over plain HTTP and returns the page at
// path.
func consoleFetch(t *testing.T, s *Server, key, path string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: RequestTimeout}
	r, err := c.PostForm(s.URL+"/ui/signin", url.Values{"key": {key}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	r, err = c.Get(s.URL + "/ui/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/%s: %d %s", path, r.StatusCode, b)
	}
	return string(b)
}

// TestConsoleDeadLetters: an admin filters the dead-letter queue by error
// text, previews the replay of every match (count and sample), replays
// them at a rate after confirming, and replays one more selected by hand;
// the replayed jobs run again and succeed.
func TestConsoleDeadLetters(t *testing.T) {
	t.Parallel()
	keyOps, digestOps := gateway.NewKey()
	keyA, digestA := gateway.NewKey()
	h := Start(t, Options{
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "ops", Admin: true, KeySHA256: []string{digestOps}},
			{Name: "acme", KeySHA256: []string{digestA}},
		}},
		Routes: []gateway.Route{
			{Name: "refunds", Path: "/v1/refunds", Upstream: "/refunds", MaxAttempts: 1},
			{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 1},
		},
	})
	var healed atomic.Bool
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		switch {
		case healed.Load():
			okJSON(w, r, c)
		case c.Path == "/refunds":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	s := h.As(keyOps)
	var refunds, orders []string
	for range 5 {
		refunds = append(refunds, s.Submit(t, "/v1/refunds", `{}`))
	}
	for range 3 {
		orders = append(orders, s.Submit(t, "/v1/orders", `{}`))
	}
	acme := h.As(keyA)
	acmes := acme.Submit(t, "/v1/orders", `{}`)
	acme.WaitState(t, acmes, jobs.StateDead)
	for _, id := range append(append([]string{}, refunds...), orders...) {
		s.WaitState(t, id, jobs.StateDead)
	}

	// A tenant's dead-letter page lists its own dead letters only, and
	// offers no bulk action.
	page := consoleFetch(t, h.Server, keyA, "dlq")
	if !strings.Contains(page, acmes) || strings.Contains(page, refunds[0]) || strings.Contains(page, `id="replay-selected"`) {
		t.Fatalf("acme's dead-letter page: own job listed %v, ops' listed %v, bulk actions %v; want true, false, false",
			strings.Contains(page, acmes), strings.Contains(page, refunds[0]), strings.Contains(page, `id="replay-selected"`))
	}
	if err := h.Store.DeleteDeadLetter(t.Context(), "acme", h.Queues.Default, acmes); err != nil {
		t.Fatal(err)
	}

	u := openConsole(t, h.Server, keyOps, browsertest.Options{})
	u.open("dlq")
	if n := eval[int](u, `document.querySelectorAll("#dlq tbody tr[data-job]").length`); n != 8 {
		t.Fatalf("the dead-letter page lists %d jobs, want 8", n)
	}
	// Dry run first: the refunds' 502s only.
	u.do(
		chromedp.SendKeys(chromedp.ID("filter-error"), "502"),
		chromedp.Click(chromedp.ID("preview")),
		chromedp.WaitVisible(chromedp.ID("preview-result")),
	)
	if got := u.text("matched"); got != "5" {
		t.Fatalf("the dry run matched %s, want 5", got)
	}
	if n := eval[int](u, `document.querySelectorAll("#dlq tbody tr[data-job]").length`); n != 5 {
		t.Fatalf("the filtered list has %d jobs, want 5", n)
	}
	if n := eval[int](u, `document.querySelectorAll(".sample li").length`); n != 5 {
		t.Errorf("the dry run samples %d jobs, want 5", n)
	}
	for _, id := range orders {
		if eval[bool](u, `document.querySelector('tr[data-job="`+id+`"]') !== null`) {
			t.Fatalf("the filter by error 502 lists order %s (a 500)", id)
		}
	}
	// The dry run replayed nothing.
	for _, id := range refunds {
		if j, _ := s.Job(t, id); j.State != jobs.StateDead {
			t.Fatalf("the dry run changed job %s to %s", id, j.State)
		}
	}
	u.screenshot("console-dlq.png")

	healed.Store(true)
	u.do(
		chromedp.SendKeys(chromedp.ID("rate"), "100"),
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("replay-all")),
		chromedp.WaitVisible(chromedp.ID("replay-result")),
	)
	if got := u.text("replayed"); got != "5" {
		t.Fatalf("the bulk replay replayed %s, want 5", got)
	}
	for _, id := range refunds {
		s.WaitState(t, id, jobs.StateSucceeded)
	}

	// One more, selected by hand.
	u.open("dlq")
	if n := eval[int](u, `document.querySelectorAll("#dlq tbody tr[data-job]").length`); n != 3 {
		t.Fatalf("after the replay the dead-letter page lists %d jobs, want 3", n)
	}
	u.do(
		chromedp.Click(chromedp.CSS(`input[name="id"][value="`+orders[0]+`"]`)),
		chromedp.Click(chromedp.ID("replay-selected")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if got := u.text("flash"); !strings.HasPrefix(got, "Replayed 1 of 1") {
		t.Fatalf("the page says %q after replaying one selected job", got)
	}
	s.WaitState(t, orders[0], jobs.StateSucceeded)
	if n := eval[int](u, `document.querySelectorAll("#dlq tbody tr[data-job]").length`); n != 2 {
		t.Fatalf("the dead-letter page lists %d jobs after replaying one, want 2", n)
	}
	u.page.CheckClean(t)
}

// TestConsoleBadInput: bad filters, cursors and forms get a 4xx page or
// problem naming what is wrong, never a 5xx.
func TestConsoleBadInput(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	c := &http.Client{Timeout: RequestTimeout}
	for _, tt := range []struct {
		method, path string
		form         url.Values
		status       int
		says         string
	}{
		{"GET", "jobs?state=done", nil, 400, "state must be one of"},
		{"GET", "jobs?since=yesterday", nil, 400, "since must be an RFC 3339 time"},
		{"GET", "jobs?cursor=zzz", nil, 400, "cursor is not a cursor"},
		{"GET", "jobs?colour=red", nil, 400, "colour unknown parameter"},
		{"GET", "jobs/not-an-id", nil, 404, "No such job"},
		{"GET", "dlq?since=2026-11-21T10:00:00Z&until=2026-11-20T10:00:00Z", nil, 400, "until must be after since"},
		{"GET", "dlq?cursor=zzz", nil, 400, "cursor is not a cursor"},
		{"GET", "live?tenant=a%20b", nil, 400, "tenant"},
		{"GET", "jobs/" + jobs.NewID() + "/live", nil, 404, "no such job"},
		{"POST", "dlq/replay", url.Values{}, 403, "did not come from the console"},
		{"POST", "queues/nope/pause", url.Values{}, 403, "did not come from the console"},
	} {
		var r *http.Response
		var err error
		if tt.method == "POST" {
			r, err = c.PostForm(h.URL+"/ui/"+tt.path, tt.form)
		} else {
			r, err = c.Get(h.URL + "/ui/" + tt.path)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != tt.status || !strings.Contains(string(b), tt.says) {
			t.Errorf("%s /ui/%s: %d, want %d saying %q; got %.300s", tt.method, tt.path, r.StatusCode, tt.status, tt.says, b)
		}
	}
	// With the session's token, a bad form is still a 4xx: an unknown
	// queue, a bulk replay without its confirmation or with a bad rate.
	page := consoleFetchAnon(t, c, h.URL+"/ui/dlq")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF field on the dead-letter page")
	}
	for _, tt := range []struct {
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"queues/nope/pause", url.Values{"csrf": {m[1]}}, 404, "No such queue"},
		{"queues/nope/explode", url.Values{"csrf": {m[1]}}, 404, "No such action"},
		{"dlq/replay", url.Values{"csrf": {m[1]}}, 400, "confirm tick the box"},
		{"dlq/replay", url.Values{"csrf": {m[1]}, "confirm": {"yes"}, "rate": {"fast"}}, 400, "rate must be a number"},
		{"dlq/selected", url.Values{"csrf": {m[1]}, "id": {"x"}, "action": {"explode"}}, 400, "Choose replay or delete"},
	} {
		r, err := c.PostForm(h.URL+"/ui/"+tt.path, tt.form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != tt.status || !strings.Contains(string(b), tt.says) {
			t.Errorf("POST /ui/%s: %d, want %d saying %q; got %.300s", tt.path, r.StatusCode, tt.status, tt.says, b)
		}
	}
}

func consoleFetchAnon(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	r, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}
