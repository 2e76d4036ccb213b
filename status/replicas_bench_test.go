package status

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

// BenchmarkAcceptReplicaAck measures concurrent Accepts on a master with
// one replica (both on this machine): without waiting for it (ack=0, the
// baseline) and with min_replicas_ack 1 (ack=1). It reports the WAITs the
// master ran per accept and the accept latency (p50, p99). Run it with
//
//	go test -run '^$' -bench 'BenchmarkAcceptReplicaAck' -benchtime 5000x ./status
//
// The baseline and the measured case share one master and one replica,
// in the same run.
func BenchmarkAcceptReplicaAck(b *testing.B) {
	master := redistest.Start(b)
	redistest.StartReplica(b, master)
	rdb := master.Client(b)
	for _, n := range []int{0, 1} {
		b.Run("ack="+strconv.Itoa(n), func(b *testing.B) {
			s, err := New(Config{Prefix: redistest.Prefix(b), MinReplicasAck: n}, rdb)
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			req := &jobs.Request{URL: "http://127.0.0.1/x"}
			var mu sync.Mutex
			var lat []time.Duration
			waits := master.CommandCalls(b, "wait")
			b.ResetTimer()
			b.SetParallelism(16) // 16 × GOMAXPROCS clients, as a busy gateway has
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if err := s.Accept(ctx, newJob("acme"), req, nil); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			waits = master.CommandCalls(b, "wait") - waits
			b.ReportMetric(float64(waits)/float64(b.N), "waits/op")
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
