package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
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
// same payload, or an error from both. The one exception is the record and
// request a payload carries, which the reader cuts out by their stated
// lengths without looking inside. Where what it cuts out is not JSON,
// encoding/json may read the payload otherwise or not at all; then the
// task's copy must not be used.
func parsesAsJSON(in []byte) error {
	var want taskPayload
	wantErr := json.Unmarshal(in, &want)
	got, err := parseTaskPayload(in)
	if err == nil && got.Doc != nil && (!json.Valid(got.Doc) || !json.Valid(got.Req)) {
		if _, _, ok := got.snapshot(); ok {
			return fmt.Errorf("%s: the copy it carries is not JSON, but is used", in)
		}
		return nil
	}
	switch {
	case (err != nil) != (wantErr != nil):
		return fmt.Errorf("%s: error %v, encoding/json says %v", in, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		return fmt.Errorf("%s: %+v, encoding/json reads %+v", in, got, want)
	}
	return nil
}

// TestTaskCarriesRecord: a job's first task carries its record and request
// as the store writes them, and a worker reads the job back from it as
// from the record; a job too big to carry twice is only pointed at.
func TestTaskCarriesRecord(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := &Job{
		ID: NewID(), Tenant: "acme", Type: "orders", State: StateQueued, Queue: "default",
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now,
	}
	req := &Request{Method: "POST", URL: "http://upstream.test/orders", Body: []byte(`{"n":1}`)}
	tw := newTaskWrite(j, req, time.Time{})
	if !bytes.Equal(tw.Doc, AppendJobJSON(nil, j)) || !bytes.Equal(tw.Req, AppendRequestJSON(nil, req)) {
		t.Fatalf("task write's record %s and request %s are not the job's", tw.Doc, tw.Req)
	}
	p, err := parseTaskPayload(taskPayloadOf(t, tw.Msg))
	if err != nil {
		t.Fatalf("parse payload: %v", err)
	}
	if !bytes.Equal(p.Doc, tw.Doc) || !bytes.Equal(p.Req, tw.Req) {
		t.Fatalf("payload carries %s and %s, want %s and %s", p.Doc, p.Req, tw.Doc, tw.Req)
	}
	gotJob, gotReq, ok := p.snapshot()
	if !ok {
		t.Fatal("the task's copy is not used")
	}
	want := *j
	want.Version = "1"
	if !reflect.DeepEqual(*gotJob, want) || !reflect.DeepEqual(gotReq, req) {
		t.Errorf("read back %+v and %+v, want %+v and %+v", gotJob, gotReq, want, req)
	}
	if err := parsesAsJSON(taskPayloadOf(t, tw.Msg)); err != nil {
		t.Error(err)
	}
	// A worker of the version before reads it as it read its own tasks.
	var before struct {
		Tenant  string `json:"t"`
		ID      string `json:"id"`
		Created int64  `json:"c"`
		Cycle   int    `json:"r,omitempty"`
	}
	if err := json.Unmarshal(taskPayloadOf(t, tw.Msg), &before); err != nil || before.Tenant != j.Tenant || before.ID != j.ID || before.Created != p.Created {
		t.Errorf("the previous version's reader gets %+v, %v", before, err)
	}

	big := &Request{Method: "POST", URL: req.URL, Body: bytes.Repeat([]byte("x"), snapshotMax)}
	tw = newTaskWrite(j, big, time.Time{})
	p, err = parseTaskPayload(taskPayloadOf(t, tw.Msg))
	if err != nil || p.Doc != nil || p.Req != nil || p.ID != j.ID {
		t.Errorf("a big job's payload: %+v, %v; want only where its record is", p, err)
	}
	if tw.Doc == nil || tw.Req == nil {
		t.Error("a big job's task write lost its encoded record")
	}

	// A replay's task never carries one: the record was written before.
	p, _ = parseTaskPayload(newTaskPayload(j, now, 1))
	if _, _, ok := p.snapshot(); ok {
		t.Error("a replay's task has a copy of the record")
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
		if num == fieldPayload && typ == protowire.BytesType {
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
