package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// jobPage is the answer of GET /v1/jobs; tenantJobPage of the admin's.
type jobPage struct {
	Items      []jobs.Job `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

type tenantJobPage struct {
	Items []struct {
		Tenant string   `json:"tenant"`
		Job    jobs.Job `json:"job"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// listAll pages through path (a listing with its query) and returns the
// IDs served, in order, with their tenants when the answer has them.
func listAll(t *testing.T, s *Server, path string, admin bool) (ids, tenants []string) {
	t.Helper()
	cursor := ""
	for range 1000 {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := s.Do(t, http.MethodGet, p, nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
		}
		if admin {
			var pg tenantJobPage
			if err := json.Unmarshal(r.Body, &pg); err != nil {
				t.Fatal(err)
			}
			for _, it := range pg.Items {
				ids, tenants = append(ids, it.Job.ID), append(tenants, it.Tenant)
			}
			cursor = pg.NextCursor
		} else {
			var pg jobPage
			if err := json.Unmarshal(r.Body, &pg); err != nil {
				t.Fatal(err)
			}
			for _, j := range pg.Items {
				ids = append(ids, j.ID)
			}
			cursor = pg.NextCursor
		}
		if cursor == "" {
			return ids, tenants
		}
	}
	t.Fatalf("GET %s: paging did not end", path)
	return nil, nil
}

// TestListJobs: GET /v1/jobs lists the caller's own jobs, newest first,
// filtered and cursor-paged over every shard; GET /admin/v1/jobs lists
// every tenant's; bad filters are precise 400s.
func TestListJobs(t *testing.T) {
	t.Parallel()
	keyA, digestA := gateway.NewKey()
	keyB, digestB := gateway.NewKey()
	keyOps, digestOps := gateway.NewKey()
	h := Start(t, Options{
		Shards: 4,
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digestA}},
			{Name: "globex", KeySHA256: []string{digestB}},
			{Name: "ops", Admin: true, KeySHA256: []string{digestOps}},
		}},
		Routes: []gateway.Route{
			{Name: "fine", Path: "/v1/fine", Upstream: "/fine"},
			{Name: "other", Path: "/v1/other", Upstream: "/fine"},
		},
	})
	a, b, ops := h.As(keyA), h.As(keyB), h.As(keyOps)
	start := time.Now().Add(-time.Second)
	var acme []string // newest first
	for i := range 12 {
		path := "/v1/fine"
		if i%3 == 0 {
			path = "/v1/other"
		}
		acme = slices.Insert(acme, 0, a.Submit(t, path, `{}`))
	}
	globex := b.Submit(t, "/v1/fine", `{}`)
	for _, id := range acme {
		a.WaitState(t, id, jobs.StateSucceeded)
	}

	got, _ := listAll(t, a, "/v1/jobs?limit=5", false)
	if !slices.Equal(got, acme) {
		// Jobs accepted in one millisecond may list in either order.
		s1, s2 := slices.Clone(got), slices.Clone(acme)
		slices.Sort(s1)
		slices.Sort(s2)
		if !slices.Equal(s1, s2) {
			t.Fatalf("acme lists %v, want %v", got, acme)
		}
	}
	if slices.Contains(got, globex) {
		t.Fatalf("acme's listing holds globex's job")
	}
	others, _ := listAll(t, a, "/v1/jobs?type=other&state=succeeded&since="+url.QueryEscape(start.Format(time.RFC3339Nano)), false)
	if len(others) != 4 {
		t.Errorf("type=other&state=succeeded: %d jobs, want 4", len(others))
	}
	if none, _ := listAll(t, a, "/v1/jobs?state=dead", false); len(none) != 0 {
		t.Errorf("state=dead: %d jobs, want 0", len(none))
	}

	all, tenants := listAll(t, ops, "/admin/v1/jobs?limit=4", true)
	if len(all) != 13 || !slices.Contains(all, globex) {
		t.Errorf("admin lists %d jobs (globex's among them: %v), want 13", len(all), slices.Contains(all, globex))
	}
	if i := slices.Index(all, globex); i >= 0 && tenants[i] != "globex" {
		t.Errorf("admin lists globex's job as %q's", tenants[i])
	}
	if only, _ := listAll(t, ops, "/admin/v1/jobs?tenant=globex", true); !slices.Equal(only, []string{globex}) {
		t.Errorf("admin tenant=globex: %v, want [%s]", only, globex)
	}
	requireProblem(t, "admin listing with a tenant key", a.Do(t, http.MethodGet, "/admin/v1/jobs", nil, nil), http.StatusForbidden)

	for _, q := range []struct{ query, param string }{
		{"state=done", "state"},
		{"type=a%20b", "type"},
		{"since=yesterday", "since"},
		{"since=2026-11-21T10:00:00Z&until=2026-11-20T10:00:00Z", "until"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"cursor=nope", "cursor"},
		{"tenant=globex", "tenant"},
		{"limit=1&limit=2", "limit"},
	} {
		r := a.Do(t, http.MethodGet, "/v1/jobs?"+q.query, nil, nil)
		p := requireProblem(t, q.query, r, http.StatusBadRequest)
		var body struct {
			Errors []struct {
				Parameter string `json:"parameter"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(r.Body, &body)
		if len(body.Errors) == 0 || body.Errors[0].Parameter != q.param {
			t.Errorf("%s: problem %+v names no parameter %q (%s)", q.query, p, q.param, r.Body)
		}
	}
}
