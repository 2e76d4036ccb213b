package status

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// fanOutTenant owns the job whose events the fan-out benchmarks publish.
const fanOutTenant = "acme"

// fanOutMessage is what the stores publish for an event of job id: the
// job, running its second attempt, as its resource.
func fanOutMessage(b *testing.B, id string) string {
	b.Helper()
	started := testTime.Add(2 * time.Second)
	j := &jobs.Job{
		ID: id, Type: "orders", State: jobs.StateRunning, Queue: "default",
		Attempt: 2, MaxAttempts: 8, CreatedAt: testTime, UpdatedAt: started, StartedAt: &started,
		Error: "upstream answered 503",
	}
	doc, err := json.Marshal(j)
	if err != nil {
		b.Fatal(err)
	}
	return fanOutTenant + "\n" + id + "\n3\n1763721002123-0\nrunning\n" + string(doc)
}

// fanOutHub returns a Hub that is never started: the benchmarks hand it
// messages as its loop would, without Redis. Its subscriptions are closed
// when b ends.
func fanOutHub(b *testing.B) *Hub {
	b.Helper()
	s, err := New(Config{Prefix: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := NewHub(nil, s, nil)
	b.Cleanup(func() { _ = h.Stop(context.Background()) })
	return h
}

// subscribeSpread subscribes n subscribers to h: some to the job id of
// fanOutTenant (at least one), some to the whole tenant, and the rest to
// jobs of their own, of fanOutTenant and of nine other tenants. It returns
// the subscriptions that an event of job id reaches.
func subscribeSpread(h *Hub, id string, n int) []*Subscription {
	onJob := max(1, n/50)
	onTenant := n / 100
	var reached []*Subscription
	for range onJob {
		reached = append(reached, h.SubscribeJob(fanOutTenant, id))
	}
	for range onTenant {
		reached = append(reached, h.SubscribeTenant(fanOutTenant))
	}
	for i := range n - onJob - onTenant {
		tenant := fanOutTenant
		if i%10 != 0 {
			tenant = "tenant" + strconv.Itoa(i%10)
		}
		h.SubscribeJob(tenant, jobs.NewID())
	}
	return reached
}

// BenchmarkFanOut measures handing one published event to the
// subscribers it concerns.
//
// subscribers=N: what the Hub's loop does with one message from Redis
// (parseMessage, then dispatch to N subscribers, of which
// deliveries/op are concerned), with every subscriber taking its event at
// once. "inline": the benchmark takes each event right after the
// dispatch, so no goroutine is involved; "parked": each concerned
// subscriber is a goroutine waiting on its channel, as an event stream's
// handler is, and an operation lasts until every one of them has woken up
// and taken the event.
//
// e2e: a Store update, its PUBLISH, the Hub's subscription on a real
// Redis, and a job subscriber and a tenant subscriber receiving the event.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d/inline", n), func(b *testing.B) {
			h := fanOutHub(b)
			id := jobs.NewID()
			reached := subscribeSpread(h, id, n)
			msg := fanOutMessage(b, id)
			b.ReportAllocs()
			for b.Loop() {
				ev, ok := parseMessage(msg)
				if !ok {
					b.Fatal("parseMessage refused the message")
				}
				h.dispatch(ev)
				for _, sub := range reached {
					select {
					case <-sub.C:
					default:
						b.Fatal("a subscriber did not receive the event")
					}
				}
			}
			b.ReportMetric(float64(len(reached)), "deliveries/op")
		})
		b.Run(fmt.Sprintf("subscribers=%d/parked", n), func(b *testing.B) {
			h := fanOutHub(b)
			id := jobs.NewID()
			reached := subscribeSpread(h, id, n)
			msg := fanOutMessage(b, id)
			// Each concerned subscriber is a goroutine that acknowledges
			// every event it takes; the next event is published once all
			// have taken the last, so none falls behind.
			var running, taken sync.WaitGroup
			for _, sub := range reached {
				running.Go(func() {
					for range sub.C {
						taken.Done()
					}
				})
			}
			b.Cleanup(func() {
				// Closing the subscriptions ends the goroutines.
				for _, sub := range reached {
					sub.Close()
				}
				running.Wait()
			})
			b.ReportAllocs()
			for b.Loop() {
				ev, ok := parseMessage(msg)
				if !ok {
					b.Fatal("parseMessage refused the message")
				}
				taken.Add(len(reached))
				h.dispatch(ev)
				taken.Wait()
			}
			b.ReportMetric(float64(len(reached)), "deliveries/op")
		})
	}
	b.Run("e2e", benchmarkFanOutRedis)
}

// benchmarkFanOutRedis is BenchmarkFanOut/e2e.
func benchmarkFanOutRedis(b *testing.B) {
	rdb := redistest.Shared(b).Client(b)
	prefix := redistest.Prefix(b)
	store, err := New(Config{Prefix: prefix}, rdb)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Unlink(ctx, iter.Val()).Err()
		}
	})
	h := NewHub(rdb, store, nil)
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	// Registered after the key clean-up, so it runs first.
	b.Cleanup(func() { _ = h.Stop(context.Background()) })

	j := newJob(fanOutTenant)
	onJob, onTenant := h.SubscribeJob(fanOutTenant, j.ID), h.SubscribeTenant(fanOutTenant)
	for _, sub := range []*Subscription{onJob, onTenant} {
		if err := sub.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.Create(ctx, j, &jobs.Request{Method: "POST", URL: "http://127.0.0.1:9/orders", Body: json.RawMessage(`{"sku":"A-1042"}`)}); err != nil {
		b.Fatal(err)
	}
	timeout := time.NewTimer(time.Hour)
	defer timeout.Stop()
	receive := func(sub *Subscription, seq int64) {
		timeout.Reset(10 * time.Second)
		select {
		case ev, ok := <-sub.C:
			if !ok || ev.Seq != seq {
				b.Fatalf("received event %d (open %v), want %d", ev.Seq, ok, seq)
			}
		case <-sub.Resync:
			b.Fatal("the subscriber was told to resync")
		case <-timeout.C:
			b.Fatal("no event within 10s")
		}
	}
	states := [2]jobs.State{jobs.StateRunning, jobs.StateRetrying}
	seq := int64(1) // the event of Create
	receive(onJob, seq)
	receive(onTenant, seq)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		_, err := store.Update(ctx, j.Tenant, j.ID, func(j *jobs.Job) error {
			j.State = states[seq%2]
			j.Attempt = int(seq / 2)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		receive(onJob, seq)
		receive(onTenant, seq)
	}
}
