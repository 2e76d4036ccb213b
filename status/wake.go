package status

import (
	"context"
	"sync/atomic"

	"github.com/asyncgw/asyncgw/jobs"
)

// Wake returns a jobs.WakeSource that hears through h of the jobs queued
// (accepted or replayed), and names their shard and queue, so that an idle
// worker looks at once at a queue it found empty (jobs.WorkerConfig.Wake).
// A worker process runs a Hub for it, as a gateway does for its event
// streams; one process running both shares one Hub. Call it before
// h.Start, once.
func (h *Hub) Wake() jobs.WakeSource {
	w := &hubWake{h: h}
	h.tap = w.heard
	return w
}

type hubWake struct {
	h  *Hub
	fn atomic.Pointer[func(shard int, priority string)]
}

var _ jobs.WakeSource = (*hubWake)(nil)

// heard takes one event's payload, or "" for a (re)subscription.
func (w *hubWake) heard(payload string) {
	fn := w.fn.Load()
	if fn == nil {
		return
	}
	if payload == "" {
		(*fn)(-1, "") // events may have been missed: look everywhere
		return
	}
	if id, priority, ok := jobs.QueuedEvent(payload); ok {
		(*fn)(w.h.ks.ShardOf(id), priority)
	}
}

// Listen implements jobs.WakeSource.
func (w *hubWake) Listen(ctx context.Context, wake func(shard int, priority string)) {
	w.fn.Store(&wake)
	wake(-1, "")
	<-ctx.Done()
	w.fn.Store(nil)
}
