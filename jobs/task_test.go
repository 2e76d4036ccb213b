package jobs

import (
	"encoding/json"
	"testing"
	"time"
)

// TestTaskPayloadEncoding: the hand-written payload is what encoding/json
// writes, for plain names and for ones that need escapes.
func TestTaskPayloadEncoding(t *testing.T) {
	now := time.UnixMilli(1_790_000_000_123)
	for _, tc := range []struct {
		tenant, id string
		cycle      int
	}{
		{"acme", NewID(), 0},
		{"acme.eu_1-x", NewID(), 3},
		{`we"ird<&>`, "id\\\n\u00e9", 1},
	} {
		j := &Job{Tenant: tc.tenant, ID: tc.id}
		want, _ := json.Marshal(taskPayload{Tenant: tc.tenant, ID: tc.id, Created: now.UnixMilli(), Cycle: tc.cycle})
		if got := newTaskPayload(j, now, tc.cycle); string(got) != string(want) {
			t.Errorf("payload %s, want %s", got, want)
		}
	}
}
