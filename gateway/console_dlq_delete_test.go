package gateway

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// deletingAdmin is fakeAdmin with a dead-letter queue of three jobs that
// records every bulk delete asked of it.
type deletingAdmin struct {
	fakeAdmin
	mu    sync.Mutex
	calls []admin.BulkDelete
}

func (a *deletingAdmin) DeadLetters(context.Context, status.DLQFilter, string, int) ([]status.DeadLetter, string, error) {
	return nil, "", nil
}

func (a *deletingAdmin) DeleteMatching(_ context.Context, b admin.BulkDelete) (*admin.BulkDeleteResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, b)
	res := &admin.BulkDeleteResult{Matched: 3, DryRun: b.DryRun, Failed: []admin.Failure{}, Sample: []status.DeadLetter{
		{Tenant: "acme", Job: &jobs.Job{ID: "aaaaaaaaaaaaaaaaaaaaaaaaaa", Type: "orders", Error: "boom"}},
	}}
	if !b.DryRun {
		res.Deleted = 3
	}
	return res, nil
}

func (a *deletingAdmin) last(t *testing.T) admin.BulkDelete {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		t.Fatal("no bulk delete was asked for")
	}
	return a.calls[len(a.calls)-1]
}

func (a *deletingAdmin) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// TestConsoleDeleteAllMatches: the dead-letter page previews deleting
// every match (a dry run), and deletes only once confirmed, only the jobs
// that were dead at the dry run, with the page's filter.
func TestConsoleDeleteAllMatches(t *testing.T) {
	t.Parallel()
	fa := &deletingAdmin{}
	g, err := New(authCfg(), Deps{Jobs: &recordingJobs{}, Store: emptyStore{}, Hub: quietFeed{}, Admin: fa})
	if err != nil {
		t.Fatal(err)
	}
	b := &consoleBundle{g: g, cfg: authCfg()}
	c := b.signIn(t, "key-ops")

	w := b.do(http.MethodGet, "/ui/dlq?type=orders&until=2030-01-01T00:00:00Z&preview=delete", nil, c, nil)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, `id="delete-preview"`) || !strings.Contains(body, `<span id="delete-matched">3</span>`) ||
		!strings.Contains(body, `action="/ui/dlq/delete"`) || !strings.Contains(body, "aaaaaaaaaaaaaaaaaaaaaaaaaa") {
		t.Fatalf("preview: %d %s", w.Code, body)
	}
	dry := fa.last(t)
	if !dry.DryRun || dry.Filter.Type != "orders" || dry.Filter.Until.IsZero() || dry.Filter.Until.After(time.Now()) {
		t.Fatalf("preview asked for %+v, want a dry run of type orders until now", dry)
	}
	m := regexp.MustCompile(`name="asof" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the confirmation carries no dry-run time")
	}
	asOf, err := time.Parse(time.RFC3339Nano, html.UnescapeString(m[1]))
	if err != nil || !asOf.Equal(dry.Filter.Until) {
		t.Fatalf("asof %q (%v), want the dry run's bound %v", m[1], err, dry.Filter.Until)
	}
	token := csrfInput.FindStringSubmatch(body)[1]
	form := url.Values{"csrf": {token}, "type": {"orders"}, "asof": {asOf.Format(time.RFC3339Nano)}}

	// Not confirmed, or without the dry run's time: nothing is deleted.
	calls := fa.count()
	if w := b.do(http.MethodPost, "/ui/dlq/delete", form, c, nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "confirm") {
		t.Fatalf("unconfirmed: %d %s", w.Code, w.Body)
	}
	noAsOf := url.Values{"csrf": {token}, "type": {"orders"}, "confirm": {"yes"}, "asof": {"yesterday"}}
	if w := b.do(http.MethodPost, "/ui/dlq/delete", noAsOf, c, nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "asof") {
		t.Fatalf("without the dry run's time: %d %s", w.Code, w.Body)
	}
	if fa.count() != calls {
		t.Fatal("an unconfirmed delete reached the admin service")
	}
	// A tenant cannot.
	tc := b.signIn(t, "key-a")
	ttok := csrfInput.FindStringSubmatch(b.do(http.MethodGet, "/ui/jobs", nil, tc, nil).Body.String())[1]
	if w := b.do(http.MethodPost, "/ui/dlq/delete", url.Values{"csrf": {ttok}, "confirm": {"yes"}, "asof": {form.Get("asof")}}, tc, nil); w.Code < 400 || fa.count() != calls {
		t.Fatalf("a tenant's bulk delete: %d", w.Code)
	}

	form.Set("confirm", "yes")
	w = b.do(http.MethodPost, "/ui/dlq/delete", form, c, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<span id="deleted">3</span>`) {
		t.Fatalf("confirmed: %d %s", w.Code, w.Body)
	}
	got := fa.last(t)
	if got.DryRun || got.Filter.Type != "orders" || !got.Filter.Until.Equal(asOf) {
		t.Fatalf("confirmed delete asked for %+v, want type orders until the dry run (%v)", got, asOf)
	}
	// An earlier until of the filter stays.
	early := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	form.Set("until", early.Format(time.RFC3339))
	if w := b.do(http.MethodPost, "/ui/dlq/delete", form, c, nil); w.Code != http.StatusOK || !fa.last(t).Filter.Until.Equal(early) {
		t.Fatalf("with an earlier until: %d, asked until %v", w.Code, fa.last(t).Filter.Until)
	}
}
