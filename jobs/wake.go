package jobs

import "strings"

// QueuedEvent reads a published event (status.Hub's Wake, a worker's
// wake source, hears them) ("tenant\nid\nseq\nstreamID\nstate\ndoc",
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
