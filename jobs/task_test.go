package jobs

import (
	"encoding/json"
	"fmt"
	"reflect"
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
		want, _ := json.Marshal(TaskPayload{Tenant: tc.tenant, ID: tc.id, Created: now.UnixMilli(), Cycle: tc.cycle})
		if got := NewTaskPayload(j, now, tc.cycle); string(got) != string(want) {
			t.Errorf("payload %s, want %s", got, want)
		}
	}
}

// TestParseTaskPayload: the hand-written reader agrees with encoding/json
// on what NewTaskPayload writes and on anything else: the same payload, or
// an error from both.
func TestParseTaskPayload(t *testing.T) {
	now := time.UnixMilli(1_790_000_000_123)
	inputs := []string{
		string(NewTaskPayload(&Job{Tenant: "acme", ID: NewID()}, now, 0)),
		string(NewTaskPayload(&Job{Tenant: "acme.eu_1-x", ID: NewID()}, now, 7)),
		string(NewTaskPayload(&Job{Tenant: `we"ird<&>`, ID: "id\\\n\u00e9"}, now, 2)),
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
		`{"t":"a","id":"b","c":1,"n":[2,2],"d":{},"q":{}}`,
		`{"t":"a","id":"b","c":1,"r":2,"n":[2,2],"d":{},"q":{}}`,
		`{"t":"a","id":"b","c":1,"n":[7,2],"d":{"a":1},"q":{}}`,
		`{"t":"a","id":"b","c":1,"n":[3,2],"d":{"a":1},"q":{}}`,
		`{"t":"a","id":"b","c":1,"n":[6,3],"d":{"x":1,"q":{}}}`,
		`{"t":"a","id":"b","c":1,"n":[3,2],"d": {},"q":{}}`,
		`{"t":"a","id":"b","c":1,"n":[0,2],"d":,"q":{}}`,
		`{"t":"a","id":"b","c":1,"n":[2,2],"d":{},"q":{}`,
		`{"t":"a","id":"b","c":1,"n":[2,9],"d":{},"q":{}}`,
		`{"t":"a","id":"b","c":1,"n":[2,2],"d":{},"q":{},"x":1}`,
		`{"t":"a","id":"b","c":1,"d":{},"q":{}}`,
		`null`,
		``,
		`[]`,
	}
	for _, in := range inputs {
		if err := parsesAsJSON([]byte(in)); err != nil {
			t.Error(err)
		}
	}
}

// parsesAsJSON checks ParseTaskPayload against encoding/json on in: the
// same payload, or an error from both.
func parsesAsJSON(in []byte) error {
	var want TaskPayload
	wantErr := json.Unmarshal(in, &want)
	got, err := ParseTaskPayload(in)
	switch {
	case (err != nil) != (wantErr != nil):
		return fmt.Errorf("%s: error %v, encoding/json says %v", in, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		return fmt.Errorf("%s: %+v, encoding/json reads %+v", in, got, want)
	}
	return nil
}

func FuzzParseTaskPayload(f *testing.F) {
	f.Add([]byte(`{"t":"acme","id":"abc","c":1790000000123}`))
	f.Add([]byte(`{"t":"acme","id":"abc","c":1790000000123,"r":2}`))
	f.Add([]byte(`{"t":"a\"b","id":"abc","c":-1}`))
	f.Add([]byte(`{"t":"acme","id":"abc","c":1,"n":[12,2],"d":{"id":"abc"},"q":{}}`))
	f.Add([]byte(`{"t":"acme","id":"abc","c":1,"n":[6,3],"d":{"x":1,"q":{}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := parsesAsJSON(in); err != nil {
			t.Fatal(err)
		}
	})
}
