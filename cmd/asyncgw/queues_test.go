package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestQueuesJSONIsAdminAPI runs a gateway process on the operator
// commands' Redis and configuration: "queues --json" prints what
// GET /admin/v1/queues answers, byte for byte, and "queues pause Q --json"
// what POST /admin/v1/queues/Q/pause answers.
func TestQueuesJSONIsAdminAPI(t *testing.T) {
	t.Parallel()
	// A server of its own: asynq lists every queue it holds.
	e := newOpsEnv(t, redistest.Start(t))
	e.config = e.writeConfig(t, "listen: 127.0.0.1:0\nredis:\n  url: "+e.srv.URL()+"\n  prefix: "+e.prefix+"\n")
	gw := startAsyncgw(t, nil, "gateway", "--config", e.config)
	base := gw.baseURL(t)

	// A dead job, a job scheduled for later (no latency that moves
	// between the two reads), a paused queue.
	e.kill("acme", e.q, "orders", "boom", dlqT0)
	later := &jobs.Job{ID: jobs.NewID(), Type: "orders", State: jobs.StateScheduled, Queue: e.low, MaxAttempts: 3,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), Tenant: "acme"}
	if err := e.client.Submit(e.ctx(), later, &jobs.Request{Method: "POST", URL: "http://127.0.0.1:9/x"}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.ok("queues", "pause", e.hooks)

	api := func(method, path string) string {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s %s (%v)", method, path, resp.Status, body, err)
		}
		return string(body)
	}
	want := api("GET", "/admin/v1/queues")
	if got := e.ok("queues", "--json"); got != want {
		t.Errorf("queues --json:\n got %s\nwant %s", got, want)
	}
	// Pausing twice is the same answer: the API's, then the command's.
	want = api("POST", "/admin/v1/queues/"+e.low+"/pause")
	if got := e.ok("queues", "pause", e.low, "--json"); got != want {
		t.Errorf("queues pause --json:\n got %s\nwant %s", got, want)
	}
	want = api("POST", "/admin/v1/queues/"+e.low+"/resume")
	if got := e.ok("queues", "--json", "resume", e.low); got != want {
		t.Errorf("queues resume --json:\n got %s\nwant %s", got, want)
	}
}
