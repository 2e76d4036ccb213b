package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs/submit"
)

// TestFairShareBetweenTenants: with the queue paused, tenant a puts 60
// jobs on it and then tenant b 20; once it is resumed, the workers take
// the two tenants in turn on every shard, so that b's jobs are among the
// first called rather than behind a's 60. On the cluster pass of the
// suite it runs on 6 shards.
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
	for i := range 60 {
		h.As("key-a").Submit(t, "/v1/orders", fmt.Sprintf(`{"n":%d}`, i))
	}
	var bs []string
	for i := range 20 {
		bs = append(bs, h.As("key-b").Submit(t, "/v1/orders", fmt.Sprintf(`{"n":%d}`, i)))
	}
	if err := submit.New(h.Redis, h.Store, nil).SetPaused(t.Context(), q, false); err != nil {
		t.Fatal(err)
	}
	const first = 40
	Eventually(t, WaitTimeout, func() (bool, string) {
		n := len(h.Upstream.AllCalls())
		return n >= first, fmt.Sprintf("%d calls so far", n)
	})
	var seen []string
	b := 0
	for _, c := range h.Upstream.AllCalls() {
		if len(seen) == first {
			break
		}
		if c.Method != http.MethodPost || slices.Contains(seen, c.JobID) {
			continue
		}
		seen = append(seen, c.JobID)
		if slices.Contains(bs, c.JobID) {
			b++
		}
	}
	t.Logf("b's jobs among the first %d called: %d of its 20", first, b)
	// In turn, b's 20 would be about half of the first 40; behind a's
	// backlog, none. The workers' batches blur the turns a little.
	if b < 12 {
		t.Errorf("b's jobs among the first %d called: %d, want at least 12 of its 20 (tenants in turn)", first, b)
	}
}
