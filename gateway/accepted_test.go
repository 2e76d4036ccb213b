package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/asyncgw/asyncgw/jobs"
)

// TestAppendAccepted: the hand-written 202 body is byte for byte what the
// JSON encoder writes for Accepted.
func TestAppendAccepted(t *testing.T) {
	for _, state := range []jobs.State{jobs.StateQueued, jobs.StateScheduled} {
		id := jobs.NewID()
		loc := "/v1/jobs/" + id
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(Accepted{ID: id, State: state, StatusURL: loc, EventsURL: loc + "/events"}); err != nil {
			t.Fatal(err)
		}
		if got := appendAccepted(nil, id, state); string(got) != want.String() {
			t.Errorf("appendAccepted = %s, want %s", got, want.String())
		}
	}
}
