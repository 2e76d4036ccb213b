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

// TestParseTaskPayload: the hand-written reader agrees with encoding/json
// on what newTaskPayload writes and on anything else: the same payload, or
// an error from both.
func TestParseTaskPayload(t *testing.T) {
	now := time.UnixMilli(1_790_000_000_123)
	inputs := []string{
		string(newTaskPayload(&Job{Tenant: "acme", ID: NewID()}, now, 0)),
		string(newTaskPayload(&Job{Tenant: "acme.eu_1-x", ID: NewID()}, now, 7)),
		string(newTaskPayload(&Job{Tenant: `we"ird<&>`, ID: "id\\\n\u00e9"}, now, 2)),
		`{"t":"a","id":"b","c":0}`,
		`{"t":"a","id":"b","c":-0}`,
		`{"t":"a","id":"b","c":-12,"r":3}`,
		`{"t":"a","id":"b","c":12,"r":0}`,
		`{"t":"a","id":"b","c":012}`,
		`{"t":"a","id":"b","c":1.5}`,
		`{"t":"a","id":"b","c":1e3}`,
		`{"t":"a","id":"b","c":99999999999999999999}`,
		`{"t":"a","id":"b","c":123456789012345678}`,
		`{"t":"a","id":"b","c":1234567890123456789}`,
		`{"t":"a","id":"b","c":}`,
		`{"t":"a","id":"b","c":1`,
		`{"t":"a","id":"b","c":1}x`,
		`{"t":"a","id":"b","c":1} `,
		`{ "t":"a","id":"b","c":1}`,
		`{"id":"b","t":"a","c":1}`,
		`{"t":"a\u0062","id":"b","c":1}`,
		`{"t":"a<b","id":"b","c":1}`,
		`{"t":"a","id":"b","c":1,"x":2}`,
		`{"t":"a","id":"b","c":1,"r":2,"r":3}`,
		`{"t":"a","id":"b","c":"1"}`,
		`{"t":"a","id":"b"}`,
		`{"t":"a","id":"b","c":1,"r":}`,
		`{"t":"a","id":"b","c":1,"r":-1}`,
		`{"t":"","id":"","c":1}`,
		`{"t":"a`,
		`null`,
		``,
		`[]`,
	}
	for _, in := range inputs {
		var want taskPayload
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := parseTaskPayload([]byte(in))
		switch {
		case (err != nil) != (wantErr != nil):
			t.Errorf("%s: error %v, encoding/json says %v", in, err, wantErr)
		case err == nil && got != want:
			t.Errorf("%s: %+v, encoding/json reads %+v", in, got, want)
		}
	}
}

func FuzzParseTaskPayload(f *testing.F) {
	f.Add([]byte(`{"t":"acme","id":"abc","c":1790000000123}`))
	f.Add([]byte(`{"t":"acme","id":"abc","c":1790000000123,"r":2}`))
	f.Add([]byte(`{"t":"a\"b","id":"abc","c":-1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var want taskPayload
		wantErr := json.Unmarshal(in, &want)
		got, err := parseTaskPayload(in)
		if (err != nil) != (wantErr != nil) || err == nil && got != want {
			t.Fatalf("%q: %+v, %v; encoding/json: %+v, %v", in, got, err, want, wantErr)
		}
	})
}
