package gateway

import (
	"context"
	"errors"

	"github.com/asyncgw/asyncgw/breaker"
)

// Readiness says why the gateway cannot take writes now (none: it can):
// it is shutting down, Redis does not answer (Deps.Ping) or is not a
// master, its event subscription is down, or its Redis breaker is open. GET /readyz answers
// with it, and the process checks it on its own to keep asyncgw_ready
// current.
func (g *Gateway) Readiness(ctx context.Context) []string {
	var reasons []string
	select {
	case <-g.draining:
		reasons = append(reasons, "shutting down")
	default:
	}
	if g.deps.Ping != nil {
		if err := g.deps.Ping(ctx); err != nil {
			reasons = append(reasons, RedisReason(err))
		}
	}
	if !g.deps.Hub.Ready() {
		reasons = append(reasons, "event subscription down")
	}
	if g.redis.State() == breaker.Open {
		// Writes are refused at once while it is open. Half-open is not
		// a reason: it needs requests to close, and a balancer that took
		// the gateway out would send none.
		reasons = append(reasons, "redis circuit breaker open: writes are refused until it closes")
	}
	return reasons
}

// RedisReason is the readiness reason for err, what a Redis check
// returned: the error's own Reason() when it has one (such as "redis is
// not a master (role slave)"), else "redis unreachable: " and the error.
func RedisReason(err error) string {
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		return r.Reason()
	}
	return "redis unreachable: " + err.Error()
}
