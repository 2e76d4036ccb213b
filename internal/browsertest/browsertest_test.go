package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPage: a real browser loads a page, runs its script, and the page
// reports the console error and the off-loopback request it made.
func TestPage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><title>t</title><p id="p">before</p>
<script>document.getElementById("p").textContent = "after"; console.error("boom");
fetch("http://example.invalid/x").catch(() => {});</script>`)
	}))
	defer srv.Close()
	p := New(t, Options{})
	p.Do(t, 30*time.Second, chromedp.Navigate(srv.URL))
	text := Get(t, p, 10*time.Second, chromedp.Text(chromedp.CSS("#p")))
	if text != "after" {
		t.Fatalf("text = %q, want the script's", text)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !hasProblem(p.Problems(), "boom") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !hasProblem(p.Problems(), "boom") {
		t.Fatalf("problems = %v, want the console error", p.Problems())
	}
	off := false
	for _, r := range p.Requests() {
		off = off || strings.Contains(r, "example.invalid")
	}
	if !off {
		t.Fatalf("requests = %v, want the one to example.invalid", p.Requests())
	}
}

func hasProblem(ps []string, s string) bool {
	for _, p := range ps {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}
