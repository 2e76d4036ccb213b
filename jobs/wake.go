package jobs

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
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

// EventWake is the WakeSource of a deployment whose accepts and replays
// publish their events on ks.Channel() + ":" + tenant
// ("tenant\nid\nseq\nstreamID\nstate\ndoc"): it listens to all of them
// (PSUBSCRIBE) on rdb and wakes the shard and priority of each job whose
// event says queued. On a Redis Cluster a PUBLISH reaches every node, so
// one subscription on any node hears them all.
func EventWake(rdb redis.UniversalClient, ks *keyspace.Space) WakeSource {
	return eventWake{rdb: rdb, ks: ks, pattern: ks.Channel() + ":*"}
}

type eventWake struct {
	rdb     redis.UniversalClient
	ks      *keyspace.Space
	pattern string
}

var _ WakeSource = eventWake{}

// Listen implements WakeSource.
func (e eventWake) Listen(ctx context.Context, wake func(shard int, priority string)) {
	ps := e.rdb.PSubscribe(ctx, e.pattern)
	defer ps.Close()
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// (Re)subscribed: events published in between were missed.
			wake(-1, "")
		case *redis.Message:
			if id, priority, ok := queuedEvent(m.Payload); ok {
				wake(e.ks.ShardOf(id), priority)
			}
		}
		if err != nil {
			// go-redis subscribes again on the next Receive.
			pause := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				pause.Stop()
				return
			case <-pause.C:
			}
		}
	}
}

// queuedEvent reads a published event ("tenant\nid\nseq\nstreamID\nstate\ndoc",
// doc the job resource as AppendJobJSON writes it): ok when the job is
// now queued, with its ID and priority (its queue).
func queuedEvent(payload string) (id, priority string, ok bool) {
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
