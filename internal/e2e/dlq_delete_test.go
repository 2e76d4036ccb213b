package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestDeadLetterBulkDelete: POST /admin/v1/dlq/delete counts the matches
// on a dry run without touching them, deletes at most limit of them,
// oldest first, leaves the others and the jobs that do not match, and
// deletes the rest on the next call.
func TestDeadLetterBulkDelete(t *testing.T) {
	t.Parallel()
	h := Start(t, Options{
		Routes: []gateway.Route{
			{Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 1},
			{Name: "refunds", Path: "/v1/refunds", Upstream: "/refunds", MaxAttempts: 1},
		},
		Breaker: breaker.Config{ConsecutiveFailures: 1000, MinRequests: 1000},
	})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"no"}`))
	})
	var orders []string
	for range 3 {
		id := h.Submit(t, "/v1/orders", `{}`)
		h.WaitState(t, id, jobs.StateDead)
		orders = append(orders, id)
	}
	refund := h.Submit(t, "/v1/refunds", `{}`)
	h.WaitState(t, refund, jobs.StateDead)

	del := func(body string) admin.BulkDeleteResult {
		t.Helper()
		r := h.PostJSON(t, "/admin/v1/dlq/delete", body)
		if r.Status != http.StatusOK {
			t.Fatalf("bulk delete %s: status %d, body %s", body, r.Status, r.Body)
		}
		var res admin.BulkDeleteResult
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}

	res := del(`{"type":"orders","dry_run":true}`)
	if res.Matched != 3 || !res.DryRun || res.Deleted != 0 || len(res.Sample) != 3 || res.Sample[0].Job.ID != orders[0] {
		t.Fatalf("dry run answered %+v", res)
	}
	if got := deadIDs(t, h.Server, url.Values{}, 10); len(got) != 4 {
		t.Fatalf("a dry run changed the dead-letter queue: %v", got)
	}

	res = del(`{"type":"orders","limit":2}`)
	if res.Matched != 3 || res.Deleted != 2 || res.Remaining != 1 || res.Skipped != 0 || res.FailedCount != 0 {
		t.Fatalf("limited delete answered %+v", res)
	}
	if got := deadIDs(t, h.Server, url.Values{}, 10); !slices.Equal(got, []string{orders[2], refund}) {
		t.Fatalf("after deleting 2 of the orders: %v, want [%s %s] (oldest deleted first)", got, orders[2], refund)
	}
	// A deleted job's record stays readable, as dead.
	if j := h.WaitState(t, orders[0], jobs.StateDead); j.ID != orders[0] {
		t.Fatalf("deleted job's record: %+v", j)
	}

	res = del(`{"type":"orders"}`)
	if res.Matched != 1 || res.Deleted != 1 || res.Remaining != 0 {
		t.Fatalf("second delete answered %+v", res)
	}
	if got := deadIDs(t, h.Server, url.Values{}, 10); !slices.Equal(got, []string{refund}) {
		t.Fatalf("after deleting every order: %v, want only the refund %s", got, refund)
	}
	if res := del(`{"type":"orders"}`); res.Matched != 0 || res.Deleted != 0 {
		t.Fatalf("delete of nothing answered %+v", res)
	}
}
