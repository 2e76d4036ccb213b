package chaos

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// TestWhereIs: the diagnosis of a job that did not end says where its
// record and its task stand: waiting in the fair line, then taken by a
// worker (active and leased).
func TestWhereIs(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := t.Context()
	st, err := status.New(status.Config{Prefix: redistest.Prefix(t)}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	queue := redistest.Queue(t, "soak")
	now := time.Now().UTC()
	j := &jobs.Job{ID: jobs.NewID(), Type: "work", State: jobs.StateQueued, Queue: queue, MaxAttempts: 1,
		CreatedAt: now, UpdatedAt: now, Tenant: tenant}
	if err := submit.New(rdb, st, nil).Submit(ctx, j, &jobs.Request{Method: http.MethodPost}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := whereIs(ctx, rdb, st, queue, j.ID); !strings.Contains(got, "record: state queued, seq 1") || !strings.Contains(got, "task: state pending, in the fair line") {
		t.Errorf("waiting job: %q", got)
	}
	ks := st.Space()
	q := keyspace.AsynqQueue(ks.Queue(0, queue))
	fair := ks.Fair(0, queue)
	if err := keyspace.Take.Run(ctx, rdb, []string{q.Pending, q.Paused, q.Active, q.Lease, fair.Line, fair.State}, now.Add(time.Minute).Unix(), 1).Err(); err != nil {
		t.Fatal(err)
	}
	if got := whereIs(ctx, rdb, st, queue, j.ID); !strings.Contains(got, "active (position 0), leased until ") || strings.Contains(got, "fair line") {
		t.Errorf("taken job: %q", got)
	}
}
