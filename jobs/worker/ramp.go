package worker

import "sync"

// ramp paces an upstream that has just come back: when its breaker closes
// after an outage, the jobs held back meanwhile would all call it at once.
// The ramp caps the calls in flight to the host, starting at the breaker's
// probe count and growing by one with each success (so the cap doubles
// about once per round trip while the upstream keeps up) and halving on a
// failure, until it reaches the worker's concurrency and lets go.
type ramp struct {
	mu       sync.Mutex
	active   bool
	limit    int
	inflight int
	ceiling  int
}

// start begins a ramp at limit calls in flight, up to ceiling.
func (r *ramp) start(limit, ceiling int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active, r.limit, r.ceiling = true, max(limit, 1), ceiling
}

// acquire reports whether a call may be made now. A caller that got true
// must call release once the call is over.
func (r *ramp) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.active {
		r.inflight++
		return true
	}
	if r.inflight >= r.limit {
		return false
	}
	r.inflight++
	return true
}

// drop gives back an acquired call that was not made.
func (r *ramp) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
}

// release ends a call made after acquire; ok says whether the upstream
// answered well.
func (r *ramp) release(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight--
	if !r.active {
		return
	}
	if ok {
		r.limit++
	} else {
		r.limit = max(r.limit/2, 1)
	}
	if r.limit >= r.ceiling {
		r.active = false
	}
}
