package e2e

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/upstream"
)

// TestUpstreamLimitHandsSlotsToHeldJobs: a host under {concurrency: 2}
// whose calls take 100ms, and 30 jobs for it on a worker of 8 slots. There
// are never more than 2 calls in flight, every job succeeds with one
// attempt (the holds use none), and slots given back are taken by held
// jobs brought forward from asynq's retry set rather than left empty
// until the next second. On the suite's cluster pass this runs on a Redis
// Cluster with 6 shards: the limits' keys and the tasks' keys are in
// different slots.
func TestUpstreamLimitHandsSlotsToHeldJobs(t *testing.T) {
	t.Parallel()
	var log testutil.SyncBuffer
	h := Start(t, Options{
		Routes:        []gateway.Route{{Name: "pay", Path: "/v1/pay", Upstream: "/pay"}},
		Concurrency:   8,
		UpstreamLimit: &upstream.Limit{Concurrency: 2},
		WorkerLog:     slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	var mu sync.Mutex
	inFlight, most := 0, 0
	h.Upstream.Handle(func(w http.ResponseWriter, _ *http.Request, _ Call) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	var ids []string
	for i := range 30 {
		ids = append(ids, h.Submit(t, "/v1/pay", fmt.Sprintf(`{"n":%d}`, i)))
	}
	for _, id := range ids {
		j := h.WaitState(t, id, jobs.StateSucceeded)
		if j.Attempt != 1 {
			t.Errorf("job %s succeeded after %d attempts, want 1", id, j.Attempt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 2 {
		t.Errorf("%d calls in flight at once, want at most 2", most)
	}
	// Each hold, logged with its delay, against the job's next call: one
	// brought forward is called before the time its hold gave (without,
	// asynq hands it over at that whole second, not before).
	holds, early := 0, 0
	for line := range strings.Lines(log.String()) {
		if !strings.Contains(line, `msg="job held back"`) {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, logField(line, "time"))
		delay, derr := time.ParseDuration(logField(line, "delay"))
		if err != nil || derr != nil {
			t.Fatalf("log line without time or delay: %s", line)
		}
		holds++
		for _, c := range h.Upstream.Calls(logField(line, "job_id")) {
			if c.At.After(at) {
				if c.At.Before(at.Add(delay - 100*time.Millisecond)) {
					early++
				}
				break
			}
		}
	}
	t.Logf("%d holds; %d jobs called before the time their hold gave", holds, early)
	if holds == 0 || early == 0 {
		t.Errorf("%d holds, %d jobs called before the time their hold gave: want held jobs brought forward to freed slots", holds, early)
	}
}

// logField is the value of key in a line of slog's text format.
func logField(line, key string) string {
	_, rest, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		_, rest, ok = strings.Cut(line, key+"=")
		if !ok || !strings.HasPrefix(line, key+"=") {
			return ""
		}
	}
	v, _, _ := strings.Cut(rest, " ")
	return strings.TrimSpace(v)
}
