package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// transitions records breaker state changes.
type transitions struct {
	mu  sync.Mutex
	log []string
}

func (tr *transitions) record(host string, from, to breaker.State) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.log = append(tr.log, fmt.Sprintf("%s %s>%s", host, from, to))
}

func (tr *transitions) seen(s string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.ContainsFunc(tr.log, func(l string) bool { return strings.HasSuffix(l, s) })
}

// checkAttempts fails t unless every upstream call of job j used up an
// attempt, except failed probes of a half-open breaker, which use none:
// holding back never burns an attempt, and nothing is counted twice.
func checkAttempts(t *testing.T, h *Harness, j *jobs.Job) {
	t.Helper()
	evs, err := h.Store.Events(context.Background(), "default", j.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	probes := 0
	for _, ev := range evs {
		if ev.Kind == string(jobs.StateRetrying) && strings.Contains(string(ev.Data), "probe failed") {
			probes++
		}
	}
	if calls := len(h.Upstream.Calls(j.ID)); j.Attempt+probes != calls {
		t.Errorf("job %s: attempt %d and %d failed probes after %d upstream calls", j.ID, j.Attempt, probes, calls)
	}
}

// TestUpstreamBreaker: while one upstream is down its breaker opens; its
// jobs wait without using attempts and without calling it (but for one
// probe per open period), jobs for another upstream run meanwhile, and
// when it is back every job succeeds with one attempt per call made.
func TestUpstreamBreaker(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(other.Close)
	var tr transitions
	h := Start(t, Options{
		Routes: []gateway.Route{
			{Name: "down", Path: "/v1/down", Upstream: "/down", MaxAttempts: 6},
			{Name: "other", Path: "/v1/other", Upstream: other.URL + "/other"},
		},
		Breaker:     breaker.Config{ConsecutiveFailures: 3, MinRequests: 1000, OpenTimeout: time.Second},
		WorkerHooks: worker.Hooks{BreakerChanged: tr.record},
	})
	var healthy atomic.Bool
	var callsWhileDown atomic.Int64
	h.Upstream.Handle(func(w http.ResponseWriter, r *http.Request, c Call) {
		if healthy.Load() {
			okJSON(w, r, c)
			return
		}
		callsWhileDown.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})

	const n = 8
	var ids []string
	for range n {
		ids = append(ids, h.Submit(t, "/v1/down", `{}`))
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		return tr.seen("closed>open"), "the breaker to open"
	})
	opened := time.Now()
	// Another upstream is not held up.
	for range 3 {
		h.WaitState(t, h.Submit(t, "/v1/other", `{}`), jobs.StateSucceeded)
	}
	// Long enough for a job to use up all six attempts twice over without
	// a breaker (backoff is 10-50ms), and for two or three probes.
	time.Sleep(2500 * time.Millisecond)
	heldBack := 0
	for _, id := range ids {
		j, _ := h.Job(t, id)
		if j.State.Terminal() {
			t.Fatalf("job %s ended %s (attempt %d, %q) while its upstream's breaker was open", id, j.State, j.Attempt, j.Error)
		}
		if strings.Contains(j.Error, "circuit breaker open") {
			heldBack++
		}
	}
	if heldBack == 0 {
		t.Fatal("no job says it is held back by the open breaker")
	}
	down := callsWhileDown.Load()
	open := time.Since(opened)
	if !tr.seen("open>half-open") {
		t.Fatalf("the breaker never let a probe through: %v", tr.log)
	}
	// n first attempts, then at most one probe per open period (1s) since
	// it opened (a little before the test saw it), and one more.
	most := int64(n + 2 + int(math.Ceil(open.Seconds())))
	if down > most {
		t.Fatalf("the down upstream got %d calls in the %v since its breaker opened, want at most %d: the breaker did not hold jobs back", down, open.Round(time.Millisecond), most)
	}

	healthy.Store(true)
	for _, id := range ids {
		checkAttempts(t, h, h.WaitState(t, id, jobs.StateSucceeded))
	}
	Eventually(t, WaitTimeout, func() (bool, string) {
		return tr.seen("half-open>closed"), fmt.Sprintf("the breaker to close: %v", tr.log)
	})

	// A held-back job says so in its events, as a retry.
	var reason string
	for _, id := range ids {
		evs, err := h.Store.Events(context.Background(), "default", id, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == string(jobs.StateRetrying) && strings.Contains(string(ev.Data), "circuit breaker open") {
				reason = string(ev.Data)
			}
		}
	}
	if reason == "" {
		t.Fatal("no retrying event carries the breaker as its reason")
	}
}

// TestDeadLetterQueueHasNoCap: asynq's own archive keeps at most 10,000
// tasks per queue; asyncgw's dead-letter queue keeps every dead job. More
// than that die here, and every one is found.
func TestDeadLetterQueueHasNoCap(t *testing.T) {
	t.Parallel()
	const n = 10050 // asynq's maxArchiveSize is 10,000
	h := Start(t, Options{
		Types: []gateway.Type{{Name: "doomed", MaxAttempts: 1}},
		Handlers: map[string]worker.HandlerFunc{"doomed": func(context.Context, *jobs.Job, []byte) (json.RawMessage, error) {
			return nil, errors.New("always fails")
		}},
		Concurrency: 50,
	})
	client := submit.New(h.Redis, h.Store, nil)
	want := make(map[string]bool, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, 1)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				now := time.Now().UTC()
				j := &jobs.Job{
					ID: jobs.NewID(), Type: "doomed", State: jobs.StateQueued, Queue: h.Queues.Default,
					MaxAttempts: 1, CreatedAt: now, UpdatedAt: now, Tenant: "default",
				}
				if err := client.Submit(ctx, j, &jobs.Request{Body: []byte(`{}`), Timeout: jobs.Duration(time.Second)}, time.Time{}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				mu.Lock()
				want[j.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("submit: %v", err)
	default:
	}
	Eventually(t, 2*time.Minute, func() (bool, string) {
		counts, err := h.Store.DeadLetterCounts(ctx)
		if err != nil {
			return false, err.Error()
		}
		return counts[h.Queues.Default] == n, fmt.Sprintf("%d of %d dead", counts[h.Queues.Default], n)
	})

	got := 0
	cursor := ""
	for {
		page, next, err := h.Store.DeadLetters(ctx, status.DLQFilter{Queue: h.Queues.Default}, cursor, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if !want[d.Job.ID] {
				t.Fatalf("dead letter %s was not submitted, or is listed twice", d.Job.ID)
			}
			delete(want, d.Job.ID)
			got++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if got != n || len(want) != 0 {
		t.Fatalf("listed %d dead letters, want %d; %d missing", got, n, len(want))
	}
	info, err := client.Inspector().GetQueueInfo(h.Store.Space().Queue(0, h.Queues.Default))
	if err != nil {
		t.Fatal(err)
	}
	if info.Archived != 0 {
		t.Fatalf("asynq archived %d tasks; asyncgw keeps dead jobs itself", info.Archived)
	}
}
