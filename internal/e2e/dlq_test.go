package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// dlqPage is the answer of GET /admin/v1/dlq.
type dlqPage struct {
	Items      []status.DeadLetter `json:"items"`
	NextCursor string              `json:"next_cursor"`
}

// getJSON GETs path, requires status want and decodes the body into v.
func getJSON(t *testing.T, s *Server, path string, want int, v any) *Response {
	t.Helper()
	r := s.Do(t, http.MethodGet, path, nil, nil)
	if r.Status != want {
		t.Fatalf("GET %s: status %d, want %d; body %s", path, r.Status, want, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("GET %s: decode %s: %v", path, r.Body, err)
		}
	}
	return r
}

// deadIDs lists the whole dead-letter queue through the admin API, page by
// page, with the query q.
func deadIDs(t *testing.T, s *Server, q url.Values, limit int) []string {
	t.Helper()
	var ids []string
	q.Set("limit", fmt.Sprint(limit))
	for range 1000 {
		var p dlqPage
		getJSON(t, s, "/admin/v1/dlq?"+q.Encode(), http.StatusOK, &p)
		for _, d := range p.Items {
			ids = append(ids, d.Job.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		q.Set("cursor", p.NextCursor)
	}
	t.Fatal("dead-letter paging did not end")
	return nil
}

// TestDeadLetterQueue: jobs whose attempts are used up land in the
// dead-letter queue with what an operator needs; they can be listed by
// filter, looked at, replayed (one, or many at a set rate), and deleted. A
// replayed job that dies again goes back, once.
func TestDeadLetterQueue(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{
		Routes: []gateway.Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 2},
			{Name: "refunds", Path: "/v1/refunds", Upstream: "/refunds", MaxAttempts: 1},
		},
		// Every failure here should use up an attempt: keep the breaker shut.
		Breaker: breaker.Config{ConsecutiveFailures: 1000, MinRequests: 1000},
	})
	var healthy atomic.Bool
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if healthy.Load() {
			okJSON(w, r, c)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"down"}`))
	})

	var orders []string
	for range 4 {
		orders = append(orders, h.Submit(t, "/v1/orders", `{}`))
	}
	refund := h.Submit(t, "/v1/refunds", `{}`)
	for _, id := range append(slices.Clone(orders), refund) {
		h.WaitState(t, id, jobs.StateDead)
	}

	all := deadIDs(t, h.Server, url.Values{}, 2)
	if len(all) != 5 {
		t.Fatalf("dead-letter queue holds %d jobs, want 5: %v", len(all), all)
	}
	if got := deadIDs(t, h.Server, url.Values{"type": {"refunds"}}, 10); !slices.Equal(got, []string{refund}) {
		t.Fatalf("filter by type: %v, want [%s]", got, refund)
	}
	if got := deadIDs(t, h.Server, url.Values{"error": {"503 SERVICE"}, "queue": {h.Queues.Default}, "tenant": {"default"}}, 10); len(got) != 5 {
		t.Fatalf("filter by error, queue and tenant: %d jobs, want 5", len(got))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := deadIDs(t, h.Server, url.Values{"since": {future}}, 10); len(got) != 0 {
		t.Fatalf("filter by since: %v, want none", got)
	}

	// One dead letter, whole.
	var d status.DeadLetter
	getJSON(t, h.Server, "/admin/v1/dlq/"+orders[0], http.StatusOK, &d)
	if d.Tenant != "default" || d.Job.State != jobs.StateDead || d.Job.Attempt != 2 || d.Job.Queue != h.Queues.Default ||
		d.Job.Type != "orders" || !strings.Contains(d.Job.Error, "503") || d.Job.FinishedAt == nil || d.DeadAt.IsZero() {
		t.Fatalf("dead letter = %+v, job %+v", d, d.Job)
	}

	// Replay one while the upstream is still down: it dies again after
	// its attempts, and is back in the queue, once, with its replay noted.
	callsBefore := len(h.Upstream.Calls(orders[0]))
	r := h.Do(t, http.MethodPost, "/admin/v1/dlq/"+orders[0]+"/replay", nil, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("replay: status %d, body %s", r.Status, r.Body)
	}
	if j := decodeJob(t, r.Body); j.State != jobs.StateQueued || j.Replays != 1 || j.Attempt != 0 || j.ReplayedAt == nil || j.Error != "" {
		t.Fatalf("replay answered %s", r.Body)
	}
	j := h.WaitState(t, orders[0], jobs.StateDead)
	if j.Replays != 1 || j.Attempt != 2 {
		t.Fatalf("replayed job died again as %+v, want replays 1, attempt 2", j)
	}
	if n := len(h.Upstream.Calls(orders[0])) - callsBefore; n != 2 {
		t.Fatalf("the replayed job called the upstream %d times, want 2 (its attempts, no loop)", n)
	}
	if got := deadIDs(t, h.Server, url.Values{}, 10); len(got) != 5 || got[4] != orders[0] {
		t.Fatalf("after dying again: %v, want 5 with %s last", got, orders[0])
	}
	evs := h.Events(t, "/v1/jobs/"+orders[0]+"/events", "")
	var kinds []string
	for deaths := 0; deaths < 2; {
		ev := evs.Next(t)
		kinds = append(kinds, ev.Event)
		if ev.Event == string(jobs.StateDead) {
			deaths++
		}
	}
	evs.Close()
	if i := slices.Index(kinds, "dead"); i < 0 || i+1 >= len(kinds) || kinds[i+1] != "queued" {
		t.Fatalf("events %v: want dead, then queued (the replay)", kinds)
	}

	// Delete one: out of the queue, still readable by its client.
	if r := h.Do(t, http.MethodDelete, "/admin/v1/dlq/"+orders[1], nil, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: status %d, body %s", r.Status, r.Body)
	}
	getJSON(t, h.Server, "/admin/v1/dlq/"+orders[1], http.StatusNotFound, nil)
	if r := h.Do(t, http.MethodDelete, "/admin/v1/dlq/"+orders[1], nil, nil); r.Status != http.StatusNotFound {
		t.Fatalf("second delete: status %d, want 404", r.Status)
	}
	if j, _ := h.Job(t, orders[1]); j.State != jobs.StateDead {
		t.Fatalf("deleted dead letter reads %s, want dead", j.State)
	}

	// Bulk: a dry run counts and samples, and changes nothing.
	var res admin.BulkResult
	bulk := func(body string) *admin.BulkResult {
		t.Helper()
		r := h.PostJSON(t, "/admin/v1/dlq/replay", body)
		if r.Status != http.StatusOK {
			t.Fatalf("bulk replay %s: status %d, body %s", body, r.Status, r.Body)
		}
		res = admin.BulkResult{}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatal(err)
		}
		return &res
	}
	if res := bulk(`{"type":"orders","dry_run":true}`); res.Matched != 3 || len(res.Sample) != 3 || res.Replayed != 0 {
		t.Fatalf("dry run = %+v, want 3 matched and sampled, none replayed", res)
	}
	if got := deadIDs(t, h.Server, url.Values{}, 10); len(got) != 4 {
		t.Fatalf("after the dry run: %d dead, want 4", len(got))
	}

	// Bulk replay at 2 per second once the upstream is back: two are due at
	// once, the third a second later; all come home.
	healthy.Store(true)
	res2 := bulk(`{"type":"orders","rate":2}`)
	if res2.Matched != 3 || res2.Replayed != 3 || res2.FailedCount != 0 || res2.Rate != 2 {
		t.Fatalf("bulk replay = %+v", res2)
	}
	// Read from each job's events, not its state: on a busy machine the
	// scheduled one may already be due by the time it is read.
	var queued, scheduled int
	for _, id := range []string{orders[0], orders[2], orders[3]} {
		evs, err := h.Store.Events(t.Context(), gateway.DefaultTenant, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		var replay []string // the kinds of the events since the job died
		for _, ev := range evs {
			replay = append(replay, ev.Kind)
			if ev.Kind == string(jobs.StateDead) {
				replay = nil
			}
		}
		switch {
		case len(replay) > 0 && replay[0] == string(jobs.StateScheduled):
			scheduled++
		case len(replay) > 0 && replay[0] == string(jobs.StateQueued):
			queued++
		}
	}
	if scheduled != 1 || queued != 2 {
		t.Fatalf("after a bulk replay at 2/s: %d due at once, %d scheduled; want 2 and 1", queued, scheduled)
	}
	for _, id := range []string{orders[0], orders[2], orders[3]} {
		h.WaitState(t, id, jobs.StateSucceeded)
	}
	if got := deadIDs(t, h.Server, url.Values{}, 10); !slices.Equal(got, []string{refund}) {
		t.Fatalf("after the bulk replay: %v, want only the refund", got)
	}

	// The queue view counts what is dead.
	var qs struct {
		Queues []admin.Queue `json:"queues"`
	}
	getJSON(t, h.Server, "/admin/v1/queues", http.StatusOK, &qs)
	i := slices.IndexFunc(qs.Queues, func(q admin.Queue) bool { return q.Name == h.Queues.Default })
	if i < 0 || qs.Queues[i].Dead != 1 || qs.Queues[i].Paused {
		t.Fatalf("queues = %+v, want %s with 1 dead", qs.Queues, h.Queues.Default)
	}
}

// TestPauseQueue: a paused queue takes jobs but runs none until resumed.
func TestPauseQueue(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}}})
	// The queue exists for asynq once a job went through it.
	h.WaitState(t, h.Submit(t, "/v1/orders", `{}`), jobs.StateSucceeded)

	for range 2 { // pausing twice is fine
		r := h.Do(t, http.MethodPost, "/admin/v1/queues/"+h.Queues.Default+"/pause", nil, nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"paused":true`) {
			t.Fatalf("pause: status %d, body %s", r.Status, r.Body)
		}
	}
	id := h.Submit(t, "/v1/orders", `{}`)
	var qs struct {
		Queues []admin.Queue `json:"queues"`
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		getJSON(t, h.Server, "/admin/v1/queues", http.StatusOK, &qs)
		i := slices.IndexFunc(qs.Queues, func(q admin.Queue) bool { return q.Name == h.Queues.Default })
		return i >= 0 && qs.Queues[i].Paused && qs.Queues[i].Pending == 1, fmt.Sprintf("queues %+v", qs.Queues)
	})
	if j, _ := h.Job(t, id); j.State != jobs.StateQueued {
		t.Fatalf("job in a paused queue is %s, want queued", j.State)
	}
	r := h.Do(t, http.MethodPost, "/admin/v1/queues/"+h.Queues.Default+"/resume", nil, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"paused":false`) {
		t.Fatalf("resume: status %d, body %s", r.Status, r.Body)
	}
	h.WaitState(t, id, jobs.StateSucceeded)
	// A configured queue that never held a job can be paused too, and says so.
	for _, op := range []struct{ path, want string }{{"pause", `"paused":true`}, {"resume", `"paused":false`}} {
		r := h.Do(t, http.MethodPost, "/admin/v1/queues/"+h.Queues.Low+"/"+op.path, nil, nil)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), op.want) {
			t.Fatalf("%s of an unused queue: status %d, body %s", op.path, r.Status, r.Body)
		}
	}
	if r := h.Do(t, http.MethodPost, "/admin/v1/queues/no-such-queue/pause", nil, nil); r.Status != http.StatusNotFound {
		t.Fatalf("pause of an unknown queue: status %d, want 404", r.Status)
	}
}

// TestAdminAuthAndBadInput: the admin API needs an admin key, and answers
// bad input with a problem that says what was wrong, never a 5xx.
func TestAdminAuthAndBadInput(t *testing.T) {
	t.Parallel()
	adminKey, adminDigest := gateway.NewKey()
	userKey, userDigest := gateway.NewKey()
	h := Start(t, Options{Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
		{Name: "ops", Admin: true, KeySHA256: []string{adminDigest}},
		{Name: "acme", KeySHA256: []string{userDigest}},
	}}})
	paths := []struct{ method, path string }{
		{http.MethodGet, "/admin/v1/queues"},
		{http.MethodPost, "/admin/v1/queues/x/pause"},
		{http.MethodPost, "/admin/v1/queues/x/resume"},
		{http.MethodGet, "/admin/v1/dlq"},
		{http.MethodPost, "/admin/v1/dlq/replay"},
		{http.MethodPost, "/admin/v1/dlq/delete"},
		{http.MethodGet, "/admin/v1/dlq/" + jobs.NewID()},
		{http.MethodPost, "/admin/v1/dlq/" + jobs.NewID() + "/replay"},
		{http.MethodDelete, "/admin/v1/dlq/" + jobs.NewID()},
	}
	for _, p := range paths {
		if r := h.As("").Do(t, p.method, p.path, nil, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d, want 401", p.method, p.path, r.Status)
		}
		if r := h.As(userKey).Do(t, p.method, p.path, nil, nil); r.Status != http.StatusForbidden {
			t.Errorf("%s %s with a tenant key: %d, want 403", p.method, p.path, r.Status)
		}
	}

	a := h.As(adminKey)
	bad := []struct {
		method, path, body string
		status             int
		where              string
	}{
		{http.MethodGet, "/admin/v1/dlq?since=yesterday", "", 400, `"parameter":"since"`},
		{http.MethodGet, "/admin/v1/dlq?since=2026-11-21T10:00:00Z&until=2026-11-21T09:00:00Z", "", 400, `"parameter":"until"`},
		{http.MethodGet, "/admin/v1/dlq?limit=0", "", 400, `"parameter":"limit"`},
		{http.MethodGet, "/admin/v1/dlq?limit=lots", "", 400, `"parameter":"limit"`},
		{http.MethodGet, "/admin/v1/dlq?colour=red", "", 400, `"parameter":"colour"`},
		{http.MethodGet, "/admin/v1/dlq?queue=a&queue=b", "", 400, `"parameter":"queue"`},
		{http.MethodGet, "/admin/v1/dlq?queue=%7Bbad%7D", "", 400, `"parameter":"queue"`},
		{http.MethodGet, "/admin/v1/dlq?cursor=not-a-cursor", "", 400, `"parameter":"cursor"`},
		{http.MethodGet, "/admin/v1/dlq/short", "", 404, "dead-letter"},
		{http.MethodGet, "/admin/v1/dlq/" + jobs.NewID(), "", 404, "dead-letter"},
		{http.MethodPost, "/admin/v1/dlq/" + jobs.NewID() + "/replay", "", 404, "dead-letter"},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"rate":-1}`, 400, `"pointer":"/rate"`},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"limit":100000}`, 400, `"pointer":"/limit"`},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"since":"soon"}`, 400, `"pointer":"/since"`},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"dry_run":"yes"}`, 400, `"pointer":"/dry_run"`},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"colour":"red"}`, 400, `"pointer":"/colour"`},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"Rate":5}`, 400, `"pointer":"/Rate"`},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"rate":1}{}`, 400, "after the JSON value"},
		{http.MethodPost, "/admin/v1/dlq/replay", `{"rate":`, 400, "ends too early"},
		{http.MethodPost, "/admin/v1/dlq/delete", `{"limit":-1}`, 400, `"pointer":"/limit"`},
		{http.MethodPost, "/admin/v1/dlq/delete", `{"until":"later"}`, 400, `"pointer":"/until"`},
		{http.MethodPost, "/admin/v1/dlq/delete", `{"rate":5}`, 400, `"pointer":"/rate"`},
		{http.MethodPost, "/admin/v1/dlq/delete", `{"dry_run":1}`, 400, `"pointer":"/dry_run"`},
		{http.MethodPost, "/admin/v1/queues/nope/pause", "", 404, "no such queue"},
	}
	for _, b := range bad {
		var body []byte
		var hdr http.Header
		if b.body != "" {
			body, hdr = []byte(b.body), http.Header{"Content-Type": {"application/json"}}
		}
		r := a.Do(t, b.method, b.path, body, hdr)
		if r.Status != b.status || !strings.Contains(string(r.Body), b.where) ||
			!strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s %s %s: status %d, body %s; want %d mentioning %s", b.method, b.path, b.body, r.Status, r.Body, b.status, b.where)
		}
	}
	// An empty dead-letter queue, and a bulk replay with nothing to do.
	var p dlqPage
	getJSON(t, a, "/admin/v1/dlq", http.StatusOK, &p)
	if p.Items == nil || len(p.Items) != 0 || p.NextCursor != "" {
		t.Fatalf("empty dead-letter queue answered %+v", p)
	}
	r := a.PostJSON(t, "/admin/v1/dlq/replay", `{}`)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"matched":0`) {
		t.Fatalf("bulk replay of nothing: %d %s", r.Status, r.Body)
	}
}
