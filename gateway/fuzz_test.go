package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/asyncgw/asyncgw/internal/jsonx"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// recordingJobs is a Submitter that keeps what it was given and stores
// nothing. It is enough to test how requests are decoded.
type recordingJobs struct {
	mu        sync.Mutex
	submitted []*jobs.Job
}

func (r *recordingJobs) Submit(_ context.Context, j *jobs.Job, _ *jobs.Request, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.submitted = append(r.submitted, j)
	return nil
}

func (r *recordingJobs) NewID(string, string) string { return jobs.NewID() }

func (r *recordingJobs) Cancel(context.Context, string, string) (*jobs.Job, error) {
	return nil, jobs.ErrNotFound
}

func (r *recordingJobs) last() *jobs.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.submitted) == 0 {
		return nil
	}
	return r.submitted[len(r.submitted)-1]
}

// emptyStore is a Reader and Idempotency that knows no job and grants
// every Idempotency-Key.
type emptyStore struct{}

func (emptyStore) Get(context.Context, string, string) (*jobs.Job, error) {
	return nil, jobs.ErrNotFound
}

func (emptyStore) Events(context.Context, string, string, int64) ([]jobs.Event, error) {
	return nil, nil
}

func (emptyStore) TenantEvents(context.Context, string, string, int64) ([]jobs.Event, error) {
	return nil, nil
}

func (emptyStore) TenantTail(context.Context, string) (string, error) { return "0-0", nil }

func (emptyStore) ParseCursor(v string) (*status.Cursor, error) { return oneShard.ParseCursor(v) }

// oneShard reads cursors as a store of one shard does.
var oneShard = func() *status.Store {
	s, err := status.New(status.Config{}, nil)
	if err != nil {
		panic(err)
	}
	return s
}()

func (emptyStore) ResultBody(context.Context, string, string) ([]byte, error) {
	return nil, jobs.ErrNotFound
}
func (emptyStore) Deliveries(context.Context, string, string) ([]*jobs.Job, error) {
	return nil, jobs.ErrNotFound
}

// quietFeed is a Feed without events.
type quietFeed struct{}

func (quietFeed) SubscribeJob(string, string) *status.Subscription { return nil }
func (quietFeed) SubscribeTenant(string) *status.Subscription      { return nil }
func (quietFeed) Ready() bool                                      { return true }

// FuzzSubmitGeneric posts arbitrary bytes to POST /v1/jobs. Whatever the
// body, the gateway never fails (no 5xx, no panic), answers every refusal
// with problem+json, and accepts (202) only a body that means one thing
// (UTF-8, no member named twice) and names a known job type, submitting a
// job of that type. The seed corpus is in
// testdata/fuzz/FuzzSubmitGeneric.
func FuzzSubmitGeneric(f *testing.F) {
	schema := filepath.Join(f.TempDir(), "order.json")
	if err := os.WriteFile(schema, []byte(orderSchema), 0o600); err != nil {
		f.Fatal(err)
	}
	sub := &recordingJobs{}
	g, err := New(Config{
		MaxBody: 4 << 10,
		Routes: []Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "http://127.0.0.1:9/orders", Schema: schema},
			{Name: "notes", Path: "/v1/notes", Upstream: "http://127.0.0.1:9/notes", Priorities: []string{"low"}},
			{Name: "items", Path: "/v1/orders/:id/items", Upstream: "http://127.0.0.1:9/orders/:id/items"},
			{Name: "strict", Path: "/v1/strict", Upstream: "http://127.0.0.1:9/strict", Idempotency: "required"},
		},
		Types: []Type{{Name: "resize"}},
	}, Deps{Jobs: sub, Store: emptyStore{}, Hub: quietFeed{}})
	if err != nil {
		f.Fatal(err)
	}
	known := map[string]bool{"orders": true, "notes": true, "resize": true}

	f.Fuzz(func(t *testing.T, body []byte) {
		before := sub.last()
		req := httptest.NewRequest(http.MethodPost, "/v1/jobs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)

		code := rec.Code
		if code >= 500 {
			t.Fatalf("status %d for %q; body %s", code, body, rec.Body)
		}
		if code != http.StatusAccepted {
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("status %d with Content-Type %q for %q", code, ct, body)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != code || p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Fatalf("status %d with a bad problem %s (%v) for %q", code, rec.Body, err, body)
			}
			if sub.last() != before {
				t.Fatalf("status %d, but a job was submitted for %q", code, body)
			}
			return
		}
		// Nothing that means two things is taken: text that is not
		// UTF-8, names given twice, unpaired surrogates.
		if !utf8.Valid(body) {
			t.Fatalf("202 for %q, which is not UTF-8", body)
		}
		if err := jsonx.Check(body); err != nil {
			t.Fatalf("202 for %q: %v", body, err)
		}
		var in struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(body, &in); err != nil || !known[in.Type] {
			t.Fatalf("202 for %q, which does not name a known type (%v)", body, err)
		}
		j := sub.last()
		if j == nil || j == before || j.Type != in.Type {
			t.Fatalf("202 for %q, but the submitted job is %+v", body, j)
		}
		var a Accepted
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.ID != j.ID {
			t.Fatalf("202 body %s for job %s", rec.Body, j.ID)
		}
	})
}
