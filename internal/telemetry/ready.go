package telemetry

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// ReadyCheck says why the process is not ready (none: ready). It is given
// a context that ends after one interval.
type ReadyCheck func(ctx context.Context) (reasons []string)

// WatchReady keeps asyncgw_ready current: it runs check every interval
// until ctx is done, whether or not anyone asks /readyz, and logs each
// change. The first check is made before it returns, so that the first
// scrape tells the truth; once ctx is done the gauge says not ready.
func (m *Metrics) WatchReady(ctx context.Context, check ReadyCheck, every time.Duration, log *slog.Logger) {
	was := ""
	run := func() {
		cctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		reasons := check(cctx)
		if ctx.Err() != nil {
			return // shutting down: the result says nothing of Redis
		}
		m.Ready(len(reasons) == 0)
		now := strings.Join(reasons, "; ")
		if now == was {
			return
		}
		if now == "" {
			log.Info("ready")
		} else {
			log.Warn("not ready", "reasons", now)
		}
		was = now
	}
	poll(ctx, every, run, func() { m.Ready(false) })
}
