package telemetry

import (
	"context"
	"time"
)

// poll runs fn at once and then every interval, in a goroutine of its
// own, until ctx is done; then it runs stopped, if given.
func poll(ctx context.Context, every time.Duration, fn func(), stopped func()) {
	fn()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if stopped != nil {
					stopped()
				}
				return
			case <-t.C:
				fn()
			}
		}
	}()
}
