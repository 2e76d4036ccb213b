package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/asyncgw/asyncgw/internal/keyspace"
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

// parsesAsJSON checks parseTaskPayload against encoding/json on in: the
// same payload, or an error from both.
func parsesAsJSON(in []byte) error {
	var want taskPayload
	wantErr := json.Unmarshal(in, &want)
	got, err := parseTaskPayload(in)
	switch {
	case (err != nil) != (wantErr != nil):
		return fmt.Errorf("%s: error %v, encoding/json says %v", in, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		return fmt.Errorf("%s: %+v, encoding/json reads %+v", in, got, want)
	}
	return nil
}

// TestTaskPointsAtRecord: a job's task carries only where its record is,
// however big the job; a task written by an earlier version, which
// carried a copy of the record and request, is read as pointing at it.
func TestTaskPointsAtRecord(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := &Job{
		ID: NewID(), Tenant: "acme", Type: "orders", State: StateQueued, Queue: "default",
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now,
	}
	ks, err := keyspace.New("asyncgw", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{[]byte(`{"n":1}`), bytes.Repeat([]byte("x"), 64<<10)} {
		req := &Request{Method: "POST", URL: "http://upstream.test/orders", Body: body}
		tw := newTaskWrite(ks, j, req, time.Time{})
		payload := taskPayloadOf(t, tw.Msg)
		p, err := parseTaskPayload(payload)
		if err != nil || p.Tenant != j.Tenant || p.ID != j.ID || p.Cycle != 0 {
			t.Errorf("payload %s reads as %+v, %v", payload, p, err)
		}
		if len(payload) > 80 {
			t.Errorf("payload of %d bytes (%s): want only where the record is", len(payload), payload)
		}
		if tw.Key != "asynq:{s0}default}:t:"+j.ID {
			t.Errorf("task hash %s", tw.Key)
		}
	}
	old := `{"t":"acme","id":"` + j.ID + `","c":1790000000123,"n":[2,2],"d":{},"q":{}}`
	p, err := parseTaskPayload([]byte(old))
	if err != nil || p.Tenant != "acme" || p.ID != j.ID || p.Created != 1790000000123 {
		t.Errorf("earlier version's payload reads as %+v, %v", p, err)
	}
}

// taskPayloadOf is the payload field of an encoded task message.
func taskPayloadOf(t *testing.T, msg []byte) []byte {
	t.Helper()
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			t.Fatalf("task message: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		if num == 2 /* TaskMessage.payload */ && typ == protowire.BytesType {
			b, n := protowire.ConsumeBytes(msg)
			if n < 0 {
				t.Fatalf("task payload: %v", protowire.ParseError(n))
			}
			return b
		}
		n = protowire.ConsumeFieldValue(num, typ, msg)
		if n < 0 {
			t.Fatalf("task message: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
	}
	t.Fatal("task message has no payload")
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
