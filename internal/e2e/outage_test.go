package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
)

// outageLength is how long TestUpstreamOutageUnderLoad keeps the upstream
// down: a few seconds in the suite, a minute or more with `make chaos`
// (ASYNCGW_OUTAGE=60s).
func outageLength(t *testing.T) time.Duration {
	v := os.Getenv("ASYNCGW_OUTAGE")
	if v == "" {
		return 4 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 30*time.Minute {
		t.Fatalf("ASYNCGW_OUTAGE=%q: want a duration up to 30m", v)
	}
	return d
}

// TestUpstreamOutageUnderLoad takes an upstream down while writes keep
// coming. The gateway keeps accepting; the breaker opens; no attempt is
// used up while it is open and the upstream gets only probes; when the
// upstream returns every good job succeeds. Writes the upstream can never
// take (poison) all end in the dead-letter queue, are found by filter, and
// a bulk replay at a set rate brings them home once they are fixed.
func TestUpstreamOutageUnderLoad(t *testing.T) {
	t.Parallel()
	outage := outageLength(t)
	const (
		rate       = 40 // writes per second
		openFor    = 500 * time.Millisecond
		poisonEach = 20 // one write in poisonEach is poison
	)
	var tr transitions
	// Attempts enough that no job can die of the outage: up to the breaker's
	// consecutive failures may be counted before it opens, and afterwards a
	// job picked as the probe twice in one attempt uses that attempt up.
	h := Start(t, Options{
		Routes: []gateway.Route{{
			Name: "orders", Path: "/v1/orders", Upstream: "/orders", MaxAttempts: 8,
			Backoff: jobs.Backoff{Base: jobs.Duration(20 * time.Millisecond), Max: jobs.Duration(100 * time.Millisecond)},
		}},
		Breaker:     breaker.Config{ConsecutiveFailures: 5, MinRequests: 20, OpenTimeout: openFor},
		WorkerHooks: worker.Hooks{BreakerChanged: tr.record},
		Concurrency: 20,
	})
	var down, poisonFixed, poisonOn atomic.Bool
	poisonOn.Store(true)
	var callsDown atomic.Int64
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		switch {
		case down.Load():
			callsDown.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.Contains(string(c.Body), "poison") && !poisonFixed.Load():
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"cannot digest"}`))
		default:
			okJSON(w, r, c)
		}
	})

	// The load: rate writes per second for the whole run, from several
	// clients; every answer must be a 202.
	var mu sync.Mutex
	var good, poison []string
	var statuses = map[int]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		var n atomic.Int64
		var inner sync.WaitGroup
		defer inner.Wait()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			i := n.Add(1)
			inner.Go(func() {
				isPoison := i%poisonEach == 0 && poisonOn.Load()
				body := fmt.Sprintf(`{"n":%d}`, i)
				if isPoison {
					body = fmt.Sprintf(`{"n":%d,"poison":true}`, i)
				}
				r, err := h.Send(http.MethodPost, "/v1/orders", []byte(body), http.Header{"Content-Type": {"application/json"}})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					statuses[0]++
					return
				}
				statuses[r.Status]++
				var a gateway.Accepted
				if r.Status == http.StatusAccepted && json.Unmarshal(r.Body, &a) == nil {
					if isPoison {
						poison = append(poison, a.ID)
					} else {
						good = append(good, a.ID)
					}
				}
			})
		}
	})

	time.Sleep(time.Second)
	down.Store(true)
	t.Logf("upstream down for %s", outage)
	time.Sleep(outage)
	if !tr.seen("closed>open") {
		t.Errorf("the breaker did not open during the outage: %v", tr.log)
	}
	callsDuring := callsDown.Load()
	back := time.Now()
	down.Store(false)
	poisonOn.Store(false)
	// The writes go on while the poison ones use up their attempts: a host
	// that only ever fails keeps its breaker open, and then its jobs wait
	// (one probe per open period) instead of dying fast.
	mu.Lock()
	doomed := slices.Clone(poison)
	mu.Unlock()
	Eventually(t, 2*time.Minute, func() (bool, string) {
		for _, id := range doomed {
			if j, _ := h.Job(t, id); j.State != jobs.StateDead {
				return false, fmt.Sprintf("poison job %s is %s (attempt %d, %q)", id, j.State, j.Attempt, j.Error)
			}
		}
		return true, ""
	})
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	total := len(good) + len(poison)
	if statuses[http.StatusAccepted] != total || total == 0 || len(statuses) != 1 {
		t.Fatalf("answers by status %v: the gateway must accept every write during the outage", statuses)
	}
	// Without the breaker each job would call a down upstream three times;
	// with it, most of them wait. The bound leaves room for the calls in
	// flight when it opened and one probe per open period.
	maxCalls := int64(rate*openFor.Seconds()*3) + int64(outage/openFor)*2 + 20
	t.Logf("%d writes accepted (%d poison); %d calls to the down upstream (bound %d); breaker: %v",
		total, len(poison), callsDuring, maxCalls, tr.log)
	if callsDuring > maxCalls {
		t.Errorf("the down upstream got %d calls, want at most %d", callsDuring, maxCalls)
	}

	for _, id := range good {
		checkAttempts(t, h, h.WaitState(t, id, jobs.StateSucceeded))
	}
	for _, id := range poison {
		h.WaitState(t, id, jobs.StateDead)
	}
	// How hard the upstream was hit once back: the busiest second, against
	// the steady write rate.
	var after []time.Time
	for _, c := range h.Upstream.AllCalls() {
		if c.At.After(back) {
			after = append(after, c.At)
		}
	}
	busiest := 0
	for i := range after {
		n := 0
		for j := i; j < len(after) && after[j].Sub(after[i]) < time.Second; j++ {
			n++
		}
		busiest = max(busiest, n)
	}
	t.Logf("after the outage: %d calls, at most %d in one second (steady rate %d/s)", len(after), busiest, rate)

	// Every poison write is in the dead-letter queue, found by its error.
	dead := deadIDs(t, h.Server, url.Values{"error": {"500 internal"}, "type": {"orders"}}, 100)
	if len(dead) != len(poison) {
		t.Fatalf("dead-letter queue has %d jobs matching the filter, want the %d poison writes", len(dead), len(poison))
	}
	if other := deadIDs(t, h.Server, url.Values{"error": {"503"}}, 100); len(other) != 0 {
		t.Fatalf("%d jobs died of the outage itself", len(other))
	}

	// Fixed, they are replayed at 10 per second and all come home.
	poisonFixed.Store(true)
	r := h.PostJSON(t, "/admin/v1/dlq/replay", `{"error":"500 internal","rate":10}`)
	var res admin.BulkResult
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &res) != nil || res.Replayed != len(poison) {
		t.Fatalf("bulk replay: %d %s", r.Status, r.Body)
	}
	for _, id := range poison {
		if j := h.WaitState(t, id, jobs.StateSucceeded); j.Replays != 1 {
			t.Errorf("job %s: replays %d, want 1", id, j.Replays)
		}
	}
	if left := deadIDs(t, h.Server, url.Values{}, 100); len(left) != 0 {
		t.Fatalf("%d jobs left in the dead-letter queue", len(left))
	}
}
