package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/webhook"
)

// TestDeliveriesFromEveryShard runs webhooks as a worker process does —
// a dispatcher draining the outboxes into delivery jobs, a worker sending
// them, signed, over real HTTP — with the keys spread over shards, on one
// Redis and on a cluster of three masters: every job on every shard that
// ends is reported to its callback once, and the outboxes are left empty.
func TestDeliveriesFromEveryShard(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		shards int
		rdb    func(t *testing.T) redis.UniversalClient
	}{
		{"one node", 4, func(t *testing.T) redis.UniversalClient { return redistest.Start(t).Client(t) }},
		{"cluster", 6, func(t *testing.T) redis.UniversalClient {
			return redistest.StartCluster(t, redistest.WithMasters(3), redistest.WithReplicas(0)).Client(t)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testDeliveriesFromEveryShard(t, tt.rdb(t), tt.shards)
		})
	}
}

func testDeliveriesFromEveryShard(t *testing.T, rdb redis.UniversalClient, shards int) {
	const perShard = 3
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// The receiver notes which jobs it heard of, and how often.
	var mu sync.Mutex
	heard := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		var doc jobs.Job
		if json.Unmarshal(body, &p) != nil || json.Unmarshal(p.Data, &doc) != nil || p.Type != "job.succeeded" ||
			r.Header.Get("webhook-signature") == "" {
			http.Error(w, "unexpected delivery", http.StatusBadRequest)
			return
		}
		mu.Lock()
		heard[doc.ID]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)

	queue := redistest.Queue(t, "webhooks")
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: shards}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := webhook.New(webhook.Config{
		Policy:       webhook.Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		Secrets:      []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		Queue:        queue,
		Schedule:     []time.Duration{50 * time.Millisecond},
		PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	worker, err := worker.New(worker.Config{
		Queues:          map[string]int{queue: 1},
		Concurrency:     4,
		ShutdownTimeout: 5 * time.Second,
		Senders:         map[string]worker.Sender{webhook.Kind: webhook.NewSender(wh, store, nil, nil)},
	}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		testutil.Within(t, 15*time.Second, "worker stop", func() { _ = worker.Stop(context.Background()) })
	})
	d := webhook.NewDispatcher(wh, store, submit.New(rdb, store, nil), nil)
	_ = d.Start(ctx)
	t.Cleanup(func() {
		testutil.Within(t, 10*time.Second, "dispatcher stop", func() { _ = d.Stop(context.Background()) })
	})

	// Jobs on every shard end; each one's callback hears of it.
	space := store.Space()
	var ids []string
	for shard := range shards {
		for range perShard {
			now := time.Now().UTC()
			j := &jobs.Job{
				ID: space.PlaceID(jobs.NewID(), shard), Type: "orders", State: jobs.StateQueued, Queue: "default",
				MaxAttempts: 1, CreatedAt: now, UpdatedAt: now, Tenant: "acme",
				CallbackURL: receiver.URL + "/hooks", CallbackEvents: []jobs.State{jobs.StateSucceeded},
			}
			if err := store.Create(ctx, j, &jobs.Request{URL: "http://127.0.0.1/x"}); err != nil {
				t.Fatalf("Create on shard %d: %v", shard, err)
			}
			if _, err := store.Update(ctx, "acme", j.ID, func(j *jobs.Job) error {
				j.State = jobs.StateSucceeded
				return nil
			}); err != nil {
				t.Fatalf("Update on shard %d: %v", shard, err)
			}
			ids = append(ids, j.ID)
		}
	}
	testutil.WaitForWhy(t, 20*time.Second, "a delivery for every job", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if heard[id] == 0 {
				return false, fmt.Sprintf("no delivery yet for job %s (shard %d); %d of %d jobs heard of", id, space.ShardOf(id), len(heard), len(ids))
			}
		}
		return true, ""
	})
	testutil.WaitForWhy(t, 10*time.Second, "the outboxes to empty", func() (bool, string) {
		n, err := store.OutboxSize(ctx, "acme")
		return err == nil && n == 0, fmt.Sprintf("OutboxSize = %d, %v", n, err)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if heard[id] != 1 {
			t.Errorf("job %s (shard %d): %d deliveries, want 1", id, space.ShardOf(id), heard[id])
		}
	}
	if len(heard) != len(ids) {
		t.Errorf("the receiver heard of %d jobs, want %d", len(heard), len(ids))
	}
}
