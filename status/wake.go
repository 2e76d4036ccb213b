package status

import (
	"context"
	"sync/atomic"

	"github.com/asyncgw/asyncgw/jobs"
)

// Wake returns the wake source of a worker (worker.Config.Wake): it hears
// through h of the jobs queued (accepted or replayed), and names their
// shard and queue, so that an idle worker looks at once at a queue it
// found empty.
// A worker process runs a Hub for it, as a gateway does for its event
// streams; one process running both shares one Hub. Call it before
// h.Start, once.
func (h *Hub) Wake() *Wake {
	w := &Wake{h: h}
	h.tap = w.heard
	return w
}

// Wake tells a worker of the jobs queued (see Hub.Wake).
type Wake struct {
	h  *Hub
	fn atomic.Pointer[func(shard int, priority string)]
}

// heard takes one event's payload, or "" for a (re)subscription.
func (w *Wake) heard(payload string) {
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

// Listen calls wake with the shard and priority of each job queued until
// ctx ends, and with (-1, "") when it starts and each time the hub
// subscribes again after a break (what was queued meanwhile is unknown).
func (w *Wake) Listen(ctx context.Context, wake func(shard int, priority string)) {
	w.fn.Store(&wake)
	wake(-1, "")
	<-ctx.Done()
	w.fn.Store(nil)
}
