package status

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// testBundle is what most tests of this package work with: a Store under a
// key prefix of its own on the shared Redis server.
type testBundle struct {
	rdb   *redis.Client
	store *Store
}

// setup returns a Store on the shared server with a fresh key prefix. cfg's
// Prefix is filled in.
func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	return setupOn(t, redistest.Shared(t).Client(t), cfg)
}

func setupOn(t *testing.T, rdb *redis.Client, cfg Config) *testBundle {
	t.Helper()
	cfg.Prefix = redistest.Prefix(t)
	s, err := New(cfg, rdb)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testBundle{rdb: rdb, store: s}
}

// testContext is a context that ends with the test or after waitTimeout.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testTime is a fixed instant, so that records compare equal after a round
// trip through JSON.
var testTime = time.Date(2026, 11, 21, 10, 30, 0, 123456789, time.UTC)

// newJob returns a queued job of tenant with a fresh ID.
func newJob(tenant string) *jobs.Job {
	return &jobs.Job{
		ID: jobs.NewID(), Type: "orders", State: jobs.StateQueued, Queue: "default",
		MaxAttempts: 3, CreatedAt: testTime, UpdatedAt: testTime, Tenant: tenant,
	}
}

// create stores a new queued job of tenant and returns it.
func (b *testBundle) create(t *testing.T, tenant string) *jobs.Job {
	t.Helper()
	j := newJob(tenant)
	if err := b.store.Create(testContext(t), j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return j
}

// setState moves a job to state s.
func (b *testBundle) setState(t *testing.T, j *jobs.Job, s jobs.State) *jobs.Job {
	t.Helper()
	got, err := b.store.Update(testContext(t), j.Tenant, j.ID, func(j *jobs.Job) error {
		j.State = s
		return nil
	})
	if err != nil {
		t.Fatalf("Update to %s: %v", s, err)
	}
	return got
}
