package submit

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestTaskPointsAtRecord: a job's task carries only where its record is,
// however big the job; a task written by an earlier version, which
// carried a copy of the record and request, is read as pointing at it.
func TestTaskPointsAtRecord(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := &jobs.Job{
		ID: jobs.NewID(), Tenant: "acme", Type: "orders", State: jobs.StateQueued, Queue: "default",
		MaxAttempts: 3, CreatedAt: now, UpdatedAt: now,
	}
	ks, err := keyspace.New("asyncgw", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{[]byte(`{"n":1}`), bytes.Repeat([]byte("x"), 64<<10)} {
		req := &jobs.Request{Method: "POST", URL: "http://upstream.test/orders", Body: body}
		tw := newTaskWrite(ks, j, req, time.Time{}, 0)
		payload := taskPayloadOf(t, tw.Msg)
		p, err := jobs.ParseTaskPayload(payload)
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
	p, err := jobs.ParseTaskPayload([]byte(old))
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
