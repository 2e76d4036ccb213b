// Package browsertest runs a real headless Chromium for tests, driven with
// chromedp: the console's and the browser clients' tests open pages of a
// gateway they started and act as a user would.
//
// The browser is found on PATH (or at $ASYNCGW_TEST_CHROMIUM), installed
// by scripts/ensure-chromium.sh when missing. A test that needs it fails,
// never skips, when there is none: a green run proves a browser ran.
//
// Each Page is a browser process of its own, with its own profile, so
// tests run in parallel and share no cookies. A page records what went
// wrong in it — console errors, uncaught exceptions, failed loads and
// requests to hosts other than the loopback — for the test to check.
package browsertest

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var (
	findOnce sync.Once
	found    string
	findErr  string
)

// Browser returns the path of the Chromium the tests run, installing it
// with scripts/ensure-chromium.sh when it is missing; the test fails when
// there is none.
func Browser(t testing.TB) string {
	t.Helper()
	findOnce.Do(func() {
		if p := os.Getenv("ASYNCGW_TEST_CHROMIUM"); p != "" {
			found = p
			return
		}
		_, file, _, _ := goruntime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "ensure-chromium.sh")
		out, err := exec.Command(script).Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			findErr = "browsertest: no Chromium (" + script + "): " + msg
			return
		}
		found = strings.TrimSpace(string(out))
	})
	if found == "" {
		t.Fatal(findErr)
	}
	return found
}

// Page is one headless browser with one tab.
type Page struct {
	// Ctx runs chromedp actions in the tab; it ends with the test.
	Ctx context.Context

	mu       sync.Mutex
	problems []string
	requests []string
}

// Options change how a page's browser starts.
type Options struct {
	// Width and Height are the window's size (1280×800 when 0).
	Width, Height int
	// Mobile emulates a phone (a 390 px wide touch screen).
	Mobile bool
}

// New starts a browser for t and opens an empty tab. The browser is
// stopped when the test ends.
func New(t testing.TB, opt Options) *Page {
	t.Helper()
	bin := Browser(t)
	w, h := opt.Width, opt.Height
	if w == 0 {
		w, h = 1280, 800
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
		chromedp.NoSandbox, // tests may run as root, where Chromium's sandbox refuses to start
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	p := &Page{}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(p.listen))
	p.Ctx = ctx
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	var actions []chromedp.Action[chromedp.Void]
	if opt.Mobile {
		actions = append(actions, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
	}
	// The first action starts the browser; it is given the page's own
	// context, whose life is the target's (a shorter one would end it).
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, actions...) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browsertest: starting %s: %v", bin, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("browsertest: %s did not start within 60 s", bin)
	}
	return p
}

// listen records console errors, exceptions, failed loads and every
// request's URL. It runs in the tab's message loop: it only appends.
func (p *Page) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == "error" || ev.Type == "assert" {
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			p.problems = append(p.problems, "console."+string(ev.Type)+": "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		msg := ""
		if d := ev.ExceptionDetails; d != nil {
			msg = d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
		}
		p.problems = append(p.problems, "exception: "+msg)
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, ev.Request.URL)
	case *network.EventLoadingFailed:
		if !ev.Canceled {
			p.problems = append(p.problems, "load failed: "+ev.ErrorText)
		}
	}
}

// Problems returns what went wrong in the page so far.
func (p *Page) Problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// Requests returns the URL of every request the page made so far.
func (p *Page) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// CheckClean fails t if the page had console errors, exceptions or failed
// loads, or asked any host but the loopback for anything (data: and
// blob: URLs aside).
func (p *Page) CheckClean(t testing.TB) {
	t.Helper()
	for _, s := range p.Problems() {
		t.Errorf("browser: %s", s)
	}
	for _, r := range p.Requests() {
		u, err := url.Parse(r)
		if err != nil {
			t.Errorf("browser requested %q", r)
			continue
		}
		switch u.Scheme {
		case "data", "blob", "about":
			continue
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
			t.Errorf("browser requested %s, off the loopback", r)
		}
	}
}

// Do runs actions in the page, failing t if they fail or take longer
// than d.
func (p *Page) Do(t testing.TB, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (problems so far: %v)", err, p.Problems())
	}
}

// Get runs one action that returns a value, failing t if it fails or
// takes longer than d.
func Get[T any](t testing.TB, p *Page, d time.Duration, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, d)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("browser: %v (problems so far: %v)", err, p.Problems())
	}
	return v
}
