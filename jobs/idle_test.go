package jobs_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// idleBudget is the most Redis commands per second an idle worker process
// may cost, with 16 shards and the default queues and concurrency.
const idleBudget = 1000

// idleWindow is how long the idle cost is counted: long enough to take
// in the periodic work (heartbeats every 5s, janitors every 8s).
const idleWindow = 10 * time.Second

// commandStats reads the calls of every command from INFO commandstats,
// and total_commands_processed from INFO stats.
func commandStats(t testing.TB, rdb *redis.Client) (total int64, calls map[string]int64) {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats", "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	calls = map[string]int64{}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			total, _ = strconv.ParseInt(v, 10, 64)
		}
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		calls[name], _ = strconv.ParseInt(n, 10, 64)
	}
	return total, calls
}

// idleCost starts a worker with the default queues and concurrency on a
// Redis server of its own with shards shards, lets it settle, and counts
// the commands Redis processes over idleWindow: per second in all, and by
// command (script calls count once for the EVALSHA and once for each
// command the script runs, as Redis counts them).
func idleCost(t *testing.T, shards int) (perSec float64, byCmd string) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store, err := status.New(status.Config{Prefix: redistest.Prefix(t), Shards: shards}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	w, err := jobs.NewWorker(jobs.WorkerConfig{ShutdownTimeout: 2 * time.Second}, rdb, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	// Start-up (queue registration, script loads, the first recovery) is
	// not idle cost.
	settle := time.NewTimer(time.Second)
	<-settle.C
	total0, calls0 := commandStats(t, rdb)
	start := time.Now()
	window := time.NewTimer(idleWindow)
	<-window.C
	total1, calls1 := commandStats(t, rdb)
	elapsed := time.Since(start).Seconds()
	// One INFO of ours is counted in the window.
	perSec = float64(total1-total0-1) / elapsed
	type row struct {
		name string
		n    int64
	}
	var rows []row
	for name, n := range calls1 {
		if d := n - calls0[name]; d > 0 && name != "info" {
			rows = append(rows, row{name, d})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, " %s %.0f/s", r.name, float64(r.n)/elapsed)
	}
	return perSec, b.String()
}

// TestIdleWorkerCost: an idle worker process with 16 shards × 3 priorities
// (48 asynq queues, 3 fetch loops) costs Redis at most idleBudget commands
// per second in all, counted by the Redis process; one shard is logged
// beside it.
func TestIdleWorkerCost(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 16} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) {
			t.Parallel()
			perSec, byCmd := idleCost(t, shards)
			t.Logf("idle worker, %d shards: %.0f commands/s:%s", shards, perSec, byCmd)
			if shards == 16 && perSec > idleBudget {
				t.Errorf("idle worker with 16 shards costs %.0f Redis commands/s, want at most %d:%s", perSec, idleBudget, byCmd)
			}
		})
	}
}
