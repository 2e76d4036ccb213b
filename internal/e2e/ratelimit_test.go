package e2e

import (
	"testing"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/ratelimit"
)

// TestSharedRateLimit: with the Redis limiter, gateways share one budget
// per tenant and route; tenants have budgets of their own.
func TestSharedRateLimit(t *testing.T) {
	t.Parallel()
	keyA, digestA := gateway.NewKey()
	keyB, digestB := gateway.NewKey()
	limiter, err := ratelimit.NewRedis(redistest.Shared(t).Client(t), ratelimit.RedisConfig{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	h := Start(t, Options{
		Limiter: limiter,
		Auth: gateway.AuthConfig{Enabled: true, Tenants: []gateway.Tenant{
			{Name: "acme", KeySHA256: []string{digestA}},
			{Name: "globex", KeySHA256: []string{digestB}},
		}},
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: "/orders",
			RateLimit: &ratelimit.Limit{Rate: 0.01, Burst: 2}}},
	})
	pauseQueues(t, h, h.Queues.Default)
	second := h.StartGateway(t)
	gws := []*Server{h.As(keyA), second.As(keyA)}

	for i, want := range []string{"1", "0"} {
		r := gws[i].PostJSON(t, "/v1/orders", `{}`)
		requireAccepted(t, "within the burst", r)
		if r.Header.Get("RateLimit-Limit") != "2" || r.Header.Get("RateLimit-Remaining") != want {
			t.Errorf("request %d: RateLimit-Limit %q, RateLimit-Remaining %q, want 2 and %s",
				i+1, r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Remaining"), want)
		}
	}
	before := h.Keys(t)
	for i, gw := range gws {
		r := gw.PostJSON(t, "/v1/orders", `{}`)
		requireExactProblem(t, "over the shared limit", r, wantProblem{429, "rate-limited",
			"tenant acme is over the rate limit of route orders (0.01/s, burst 2)", nil})
		headerInRange(t, "429", r.Header, "Retry-After", 97, 100)
		if r.Header.Get("RateLimit-Remaining") != "0" {
			t.Errorf("gateway %d: RateLimit-Remaining %q, want 0", i+1, r.Header.Get("RateLimit-Remaining"))
		}
	}
	requireUnchanged(t, h, "a rate-limited request", before)
	// Another tenant is not limited by acme's use.
	requireAccepted(t, "another tenant", second.As(keyB).PostJSON(t, "/v1/orders", `{}`))
	if n := len(h.JobIDs(t, "acme")); n != 2 {
		t.Errorf("acme has %d jobs, want 2", n)
	}
}
