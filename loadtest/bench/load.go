package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is what the load is aimed at: one POST endpoint.
type target struct {
	url    string
	header http.Header
	body   []byte
	// idempotency, when set, gives every request its own Idempotency-Key.
	idempotency bool
	// orderingKeys, when positive, gives every request one of that many
	// ordering keys (X-Ordering-Key), in turn.
	orderingKeys int
	// accepted, when set, is told the job ID of each 202 and when it came.
	accepted func(id string, at time.Time)
}

// result is what one load run measured.
type result struct {
	sent, ok  int
	statuses  map[int]int
	errors    int
	firstErr  string
	elapsed   time.Duration
	latencies []time.Duration
}

func (r *result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// pct returns the q-quantile (0..1) of the latencies.
func (r *result) pct(q float64) time.Duration { return quantile(r.latencies, q) }

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// recorder gathers latencies and outcomes from many goroutines.
type recorder struct {
	mu  sync.Mutex
	res result
}

func newRecorder() *recorder { return &recorder{res: result{statuses: map[int]int{}}} }

func (rec *recorder) add(status int, d time.Duration, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.res.sent++
	if err != nil {
		rec.res.errors++
		if rec.res.firstErr == "" {
			rec.res.firstErr = err.Error()
		}
		return
	}
	rec.res.statuses[status]++
	if status == http.StatusAccepted || status == http.StatusOK {
		rec.res.ok++
		rec.res.latencies = append(rec.res.latencies, d)
	}
}

func (rec *recorder) done(elapsed time.Duration) *result {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.res.elapsed = elapsed
	slices.Sort(rec.res.latencies)
	return &rec.res
}

// newClient returns an HTTP client that keeps up to conns connections.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
		Timeout: 30 * time.Second,
	}
}

var keySeq, orderingSeq atomic.Uint64

// send makes one request and reports its status and, for a 202, the job ID.
func (t *target) send(ctx context.Context, c *http.Client) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.body))
	if err != nil {
		return 0, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if t.idempotency {
		req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatUint(keySeq.Add(1), 36)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	if t.orderingKeys > 0 {
		req.Header.Set("X-Ordering-Key", "key-"+strconv.FormatUint(orderingSeq.Add(1)%uint64(t.orderingKeys), 10))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted && t.accepted != nil {
		var a struct {
			ID string `json:"id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return resp.StatusCode, fmt.Errorf("202 body: %w", err)
		}
		t.accepted(a.ID, time.Now())
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// closedLoop runs conns clients that each send the next request as soon as
// the last is answered, for d. It measures the most the server takes at that
// concurrency.
func closedLoop(ctx context.Context, t *target, conns int, d time.Duration) *result {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				status, err := t.send(ctx, c)
				if ctx.Err() != nil {
					return // cut off by the end of the run: not counted
				}
				rec.add(status, time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	return rec.done(time.Since(start))
}

// openLoop sends rate requests per second for d, each at its scheduled time
// whether or not earlier ones were answered, and measures each latency from
// the time it was due: a stall shows up in the latencies of every request it
// delays (no coordinated omission). At most maxInFlight are outstanding; a
// request that finds them all busy waits, and its wait counts.
func openLoop(ctx context.Context, t *target, rate float64, d time.Duration, maxInFlight int) *result {
	c := newClient(maxInFlight)
	defer c.CloseIdleConnections()
	rec := newRecorder()
	slots := make(chan struct{}, maxInFlight)
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			status, err := t.send(ctx, c)
			rec.add(status, time.Since(due), err)
		})
	}
	wg.Wait()
	return rec.done(time.Since(start))
}
