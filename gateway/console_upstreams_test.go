package gateway

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/upstream"
)

// fakeAdmin answers the overview's reads; every other Admin method is
// left to the embedded nil interface (a test calling one fails loudly).
type fakeAdmin struct {
	Admin
	upstreams []upstream.Usage
}

func (fakeAdmin) Queues(context.Context) ([]admin.Queue, error) { return []admin.Queue{}, nil }

func (fakeAdmin) DisabledEndpoints(context.Context, string) ([]status.DisabledEndpoint, error) {
	return nil, nil
}

func (a fakeAdmin) Upstreams(context.Context) ([]upstream.Usage, error) { return a.upstreams, nil }

func TestConsoleOverviewUpstreams(t *testing.T) {
	t.Parallel()
	until := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	fa := fakeAdmin{upstreams: []upstream.Usage{
		{Host: "api.limited.test", Limit: upstream.Limit{Concurrency: 8, Rate: 20, Burst: 40, Adaptive: true},
			EffectiveConcurrency: 3, InUse: 2, Held: 17, PausedUntil: &until},
		{Host: "rate.test", Limit: upstream.Limit{Rate: 5, Burst: 5}, InUse: 0, Held: 4},
	}}
	g, err := New(authCfg(), Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}, Admin: fa,
		Upstreams: func() map[string]breaker.State {
			return map[string]breaker.State{"api.limited.test": breaker.Open, "plain.test": breaker.Closed}
		}})
	if err != nil {
		t.Fatal(err)
	}
	b := &consoleBundle{g: g, cfg: authCfg()}
	w := b.do(http.MethodGet, "/ui/overview", nil, b.signIn(t, "key-ops"), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("overview: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	row := func(host string) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<tr data-host="` + regexp.QuoteMeta(host) + `">(.*?)</tr>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no row for %s in %s", host, body)
		}
		return m[1]
	}
	field := func(r, name string) string {
		t.Helper()
		m := regexp.MustCompile(`<td data-field="` + name + `">(.*?)</td>`).FindStringSubmatch(r)
		if m == nil {
			t.Fatalf("no %s in %s", name, r)
		}
		return m[1]
	}
	r := row("api.limited.test")
	if !strings.Contains(r, "breaker-open") {
		t.Errorf("api.limited.test: breaker state missing: %s", r)
	}
	for name, want := range map[string]string{
		"concurrency": "3 of 8 (adaptive)", "rate": "20 (40)", "in-use": "2", "held": "17",
	} {
		if got := field(r, name); got != want {
			t.Errorf("api.limited.test %s = %q, want %q", name, got, want)
		}
	}
	if got := field(r, "pause"); !strings.Contains(got, "paused until 2030-01-02 03:04:05Z") {
		t.Errorf("api.limited.test pause = %q", got)
	}
	r = row("rate.test")
	for name, want := range map[string]string{"concurrency": "–", "rate": "5 (5)", "in-use": "0", "held": "4"} {
		if got := field(r, name); got != want {
			t.Errorf("rate.test %s = %q, want %q", name, got, want)
		}
	}
	if got := field(r, "pause"); strings.Contains(got, "paused") {
		t.Errorf("rate.test is shown paused: %q", got)
	}
	if r := row("plain.test"); !strings.Contains(r, "breaker-closed") || !strings.Contains(r, "no limits") {
		t.Errorf("plain.test (breaker only): %s", r)
	}
	if i, j, k := strings.Index(body, `data-host="api.limited.test"`), strings.Index(body, `data-host="plain.test"`), strings.Index(body, `data-host="rate.test"`); !(i < j && j < k) {
		t.Error("upstreams are not sorted by host")
	}
}
