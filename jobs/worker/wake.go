package worker

import "context"

// A WakeSource tells a worker that jobs were queued, so that its fetch
// loops look again at queues they found empty (see queueWatch). Without
// one, a job queued on an idle worker waits for the watch's poll, up to
// DelayedTaskCheckInterval.
type WakeSource interface {
	// Listen calls wake for jobs queued (their shard and priority; a
	// negative shard or "" priority for all) until ctx ends, and
	// wake(-1, "") each time it starts listening again after a break, as
	// what was queued meanwhile is unknown.
	Listen(ctx context.Context, wake func(shard int, priority string))
}
