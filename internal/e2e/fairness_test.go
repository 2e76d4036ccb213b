package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs/submit"
)

// TestFairShareBetweenTenants: with the queue paused, tenant a puts 120
// jobs on it and then tenant b 20; once it is resumed, the workers take
// the two tenants in turn on every shard: on each shard, b's last job is
// called with at most as many of a's before it as b has there (and a take's
// blur), not behind all of a's. On the cluster pass of the suite it runs
// on 6 shards, whose queues resume at different moments: the turns are per
// shard.
func TestFairShareBetweenTenants(t *testing.T) {
	t.Parallel()
	digest := func(key string) string { sum := sha256.Sum256([]byte(key)); return hex.EncodeToString(sum[:]) }
	h := Start(t, Options{
		Routes:      []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders"}},
		Concurrency: 2,
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "a", KeySHA256: []string{digest("key-a")}},
			{Name: "b", KeySHA256: []string{digest("key-b")}},
		}},
	})
	q := h.Queues.Default
	pauseQueues(t, h, q)
	tenantOf := map[string]string{}
	for i := range 120 {
		tenantOf[h.As("key-a").Submit(t, "/v1/orders", fmt.Sprintf(`{"n":%d}`, i))] = "a"
	}
	for i := range 20 {
		tenantOf[h.As("key-b").Submit(t, "/v1/orders", fmt.Sprintf(`{"n":%d}`, i))] = "b"
	}
	if err := submit.New(h.Redis, h.Store, nil).SetPaused(t.Context(), q, false); err != nil {
		t.Fatal(err)
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		n := len(h.Upstream.AllCalls())
		return n >= len(tenantOf), fmt.Sprintf("%d calls of %d jobs so far", n, len(tenantOf))
	})
	// Each shard's jobs in the order of their first calls.
	ks := h.Store.Space()
	byShard := map[int][]string{}
	seen := map[string]bool{}
	for _, c := range h.Upstream.AllCalls() {
		if c.Method != http.MethodPost || seen[c.JobID] || tenantOf[c.JobID] == "" {
			continue
		}
		seen[c.JobID] = true
		byShard[ks.ShardOf(c.JobID)] = append(byShard[ks.ShardOf(c.JobID)], tenantOf[c.JobID])
	}
	checked := 0
	for shard, order := range byShard {
		bs, as := 0, 0
		aBeforeLastB := 0
		for _, tenant := range order {
			if tenant == "b" {
				bs++
				aBeforeLastB = as
			} else {
				as++
			}
		}
		if bs == 0 || as <= bs+4 {
			continue // too few of either for turns to show
		}
		checked++
		t.Logf("shard %d: %d of a's jobs called before b's last of %d (a has %d there)", shard, aBeforeLastB, bs, as)
		if aBeforeLastB > bs+3 {
			t.Errorf("shard %d: %d of a's jobs were called before b's last (b has %d there, a %d): want the tenants in turn, at most %d", shard, aBeforeLastB, bs, as, bs+3)
		}
	}
	if checked == 0 {
		t.Fatalf("no shard had enough of both tenants' jobs: %v", byShard)
	}
}
