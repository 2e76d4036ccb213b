package jobs

import "testing"

// TestQueuedEvent: of the events published, only those of a job now
// queued wake its queue, named by the job's queue member.
func TestQueuedEvent(t *testing.T) {
	t.Parallel()
	doc := func(state, queue string) string {
		return `{"id":"abc","type":"t","state":"` + state + `","queue":"` + queue + `","metadata":{"queue":"x"}}`
	}
	for _, tc := range []struct {
		name, payload string
		id, priority  string
		ok            bool
	}{
		{"accept", "acme\nabc\n1\n1-0\nqueued\n" + doc("queued", "critical"), "abc", "critical", true},
		{"replay", "acme\nabc\n7\n9-0\nqueued\n" + doc("queued", "low"), "abc", "low", true},
		{"scheduled", "acme\nabc\n1\n1-0\nscheduled\n" + doc("scheduled", "low"), "", "", false},
		{"running", "acme\nabc\n2\n2-0\nrunning\n" + doc("running", "low"), "", "", false},
		{"no queue member", "acme\nabc\n1\n1-0\nqueued\n{}", "abc", "", true},
		{"truncated", "acme\nabc\n1", "", "", false},
		{"empty", "", "", "", false},
	} {
		id, priority, ok := QueuedEvent(tc.payload)
		if id != tc.id || priority != tc.priority || ok != tc.ok {
			t.Errorf("%s: queuedEvent = %q, %q, %v; want %q, %q, %v", tc.name, id, priority, ok, tc.id, tc.priority, tc.ok)
		}
	}
}
