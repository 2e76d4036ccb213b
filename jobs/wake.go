package jobs

import (
	"context"
	"strings"
)

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

// QueuedEvent reads a published event (status.Hub's Wake is the WakeSource
// of a process that runs a hub) ("tenant\nid\nseq\nstreamID\nstate\ndoc",
// doc the job resource as AppendJobJSON writes it): ok when the job is
// now queued, with its ID and priority (its queue).
func QueuedEvent(payload string) (id, priority string, ok bool) {
	_, rest, _ := strings.Cut(payload, "\n")
	id, rest, _ = strings.Cut(rest, "\n")
	_, rest, _ = strings.Cut(rest, "\n") // seq
	_, rest, _ = strings.Cut(rest, "\n") // stream ID
	state, doc, found := strings.Cut(rest, "\n")
	if !found || State(state) != StateQueued || id == "" {
		return "", "", false
	}
	// The queue follows id, type and state, none of which can hold a
	// quote, so the first "queue" member is the job's.
	const member = `,"queue":"`
	i := strings.Index(doc, member)
	if i < 0 {
		return id, "", true
	}
	priority, _, found = strings.Cut(doc[i+len(member):], `"`)
	if !found {
		return id, "", true
	}
	return id, priority, true
}
