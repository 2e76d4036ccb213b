package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// replicaAckTimeout is the replica timeout of these tests: long enough for
// a busy machine's replica to confirm, short enough to wait out.
const replicaAckTimeout = time.Second

// replicaAckProblem is the answer to an accept its replicas did not
// confirm.
var replicaAckProblem = wantProblem{503, "replica-ack-timeout",
	"the write was made but Redis replicas did not confirm it in time, so it may or may not be kept; " +
		"retry with the same Idempotency-Key, which answers with the original job if it was kept (without a key, a retry may store the job twice)", nil}

// TestReplicaAckedAccepts, with redis.min_replicas_ack 1 on a master with
// one replica: a 202 comes once the job is on the replica; with the
// replica down the accept answers 503 replica-ack-timeout after about the
// timeout; once it is back, the same Idempotency-Key answers the original
// 202, and the job runs. Concurrent accepts share WAITs.
func TestReplicaAckedAccepts(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	h := Start(t, Options{
		Redis:          master,
		Routes:         []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
		MinReplicasAck: 1, ReplicaAckTimeout: replicaAckTimeout,
	})
	h.Upstream.Handle(okJSON)
	onReplica := replica.Client(t)
	recordOnReplica := func(id string) bool {
		n, err := onReplica.Exists(t.Context(), h.Store.Space().Record(id)).Result()
		if err != nil {
			t.Fatalf("read replica: %v", err)
		}
		return n == 1
	}
	post := func(key string, n int) *Response {
		header := http.Header{"Content-Type": {"application/json"}}
		if key != "" {
			header.Set("Idempotency-Key", key)
		}
		return h.Do(t, http.MethodPost, "/v1/orders", []byte(fmt.Sprintf(`{"n":%d}`, n)), header)
	}

	for i := range 5 {
		id := h.Submit(t, "/v1/orders", fmt.Sprintf(`{"n":%d}`, i))
		if !recordOnReplica(id) {
			t.Fatalf("job %s is not on the replica when its 202 arrives", id)
		}
		h.WaitState(t, id, jobs.StateSucceeded)
	}

	// Concurrent accepts share WAITs: count them on the master.
	before := master.CommandCalls(t, "wait")
	const concurrent = 40
	var wg sync.WaitGroup
	codes := make(chan int, concurrent)
	for i := range concurrent {
		wg.Go(func() {
			r, err := h.Send(http.MethodPost, "/v1/orders", []byte(fmt.Sprintf(`{"c":%d}`, i)), http.Header{"Content-Type": {"application/json"}})
			if err != nil {
				t.Error(err)
				return
			}
			codes <- r.Status
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("concurrent accept: status %d", c)
		}
	}
	// The worker's state changes of the jobs accepted so far wait too.
	waits := master.CommandCalls(t, "wait") - before
	if waits >= concurrent*3 {
		t.Errorf("%d concurrent accepts (and their runs) took %d WAITs: not shared", concurrent, waits)
	}
	t.Logf("%d concurrent accepts and the runs under way meanwhile: %d WAITs", concurrent, waits)

	replica.Stop()
	start := time.Now()
	r := post("order-77", 77)
	took := time.Since(start)
	requireExactProblem(t, "accept with the replica down", r, replicaAckProblem)
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want a number of seconds", r.Header.Get("Retry-After"))
	}
	if took < replicaAckTimeout || took > replicaAckTimeout+2*time.Second {
		t.Errorf("answered after %s, want about %s", took, replicaAckTimeout)
	}
	// Without a replica, every accept answers so: none gets a 202.
	requireExactProblem(t, "second accept with the replica down", post("", 78), replicaAckProblem)

	replica.Restart(t)
	replica.WaitLinkUp(t)
	r = post("order-77", 77)
	if r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry with the same Idempotency-Key: status %d, Idempotent-Replayed %q; body %s",
			r.Status, r.Header.Get("Idempotent-Replayed"), r.Body)
	}
	var a gateway.Accepted
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.JobIDs(t, "default"), a.ID) || !recordOnReplica(a.ID) {
		t.Fatalf("the replayed job %s is not the one stored during the outage", a.ID)
	}
	h.WaitState(t, a.ID, jobs.StateSucceeded)
	if calls := h.Upstream.Calls(a.ID); len(calls) != 1 {
		t.Errorf("the upstream was called %d times for the job, want 1", len(calls))
	}
}

// TestReplicaAckedEnd: a job whose end the replicas do not confirm (the
// replica is stopped while its upstream call is under way) still ends
// once, with one upstream call, and its record reaches the replica once it
// is back.
func TestReplicaAckedEnd(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	h := Start(t, Options{
		Redis:          master,
		Routes:         []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
		MinReplicasAck: 1, ReplicaAckTimeout: 300 * time.Millisecond,
	})
	release := make(chan struct{})
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		<-release
		okJSON(w, r, c)
	})
	id := h.Submit(t, "/v1/orders", `{"n":1}`)
	h.WaitState(t, id, jobs.StateRunning)
	replica.Stop()
	close(release)
	h.WaitState(t, id, jobs.StateSucceeded)
	replica.Restart(t)
	replica.WaitLinkUp(t)
	onReplica := replica.Client(t)
	state, err := onReplica.HGet(t.Context(), h.Store.Space().Record(id), "state").Result()
	if err != nil || state != string(jobs.StateSucceeded) {
		t.Fatalf("replica has the job as %q (%v), want succeeded", state, err)
	}
	if calls := h.Upstream.Calls(id); len(calls) != 1 {
		t.Errorf("the upstream was called %d times, want 1", len(calls))
	}
}
