package jobs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/asyncgw/asyncgw/internal/jsonx"
)

// TaskWrite is a job's asynq task, ready to be written by the script that
// stores the job's record, so that a job is accepted in one step: task,
// record, first event and Idempotency-Key mapping together, or nothing.
//
// It writes what asynq's own client writes (asynq v0.26): the task hash
// "asynq:{<queue>}:t:<id>" with msg, state and pending_since, the task ID
// on the queue's pending list (or on its scheduled set, scored by the
// due time in unix seconds), and the queue in "asynq:queues". The message
// is asynq's TaskMessage in protobuf; TestTaskWriteMatchesAsynq checks
// that asynq reads back what it would have written itself.
type TaskWrite struct {
	// Key is the task hash; List the pending list or the scheduled set;
	// Queues the set of every queue.
	Key, List, Queues string
	Queue, ID         string
	// Msg is the encoded task message.
	Msg []byte
	// Scheduled: List is the scheduled set and Score the due time (unix
	// seconds). Otherwise PendingSince is now (unix ns).
	Scheduled    bool
	Score        int64
	PendingSince int64
	// Doc and Req are the job's record and request, encoded once for the
	// task and the record both: the store writes these bytes.
	Doc, Req []byte
}

// snapshotMax bounds the record and request a task carries (their encoded
// length together). A larger job's task only points at its record, so that
// a big body is not held twice in Redis while it waits.
const snapshotMax = 8 << 10

// asynq's TaskMessage field numbers (internal/proto/asynq.proto).
const (
	fieldType    = 1
	fieldPayload = 2
	fieldID      = 3
	fieldQueue   = 4
	fieldRetry   = 5
	fieldTimeout = 8
)

// newTaskWrite builds the task of j: its payload points at the record, and
// its options are those enqueue gives.
func newTaskWrite(j *Job, req *Request, processAt time.Time) *TaskWrite {
	now := time.Now()
	doc, rq := AppendJobJSON(nil, j), AppendRequestJSON(nil, req)
	payload := newTaskPayload(j, now, 0)
	size := len(payload)
	carry := len(doc)+len(rq) <= snapshotMax
	if carry {
		size = snapshotLen(payload, doc, rq)
	}
	// As in asynq's client: the wire form of a TaskMessage with a
	// timeout and no deadline, fields in number order, zero values left
	// out.
	msg := make([]byte, 0, 64+size+len(j.ID)+len(j.Queue))
	msg = protowire.AppendTag(msg, fieldType, protowire.BytesType)
	msg = protowire.AppendString(msg, TaskType)
	msg = protowire.AppendTag(msg, fieldPayload, protowire.BytesType)
	msg = protowire.AppendVarint(msg, uint64(size))
	if carry {
		msg = appendSnapshot(msg, payload, doc, rq)
	} else {
		msg = append(msg, payload...)
	}
	msg = protowire.AppendTag(msg, fieldID, protowire.BytesType)
	msg = protowire.AppendString(msg, j.ID)
	msg = protowire.AppendTag(msg, fieldQueue, protowire.BytesType)
	msg = protowire.AppendString(msg, j.Queue)
	msg = protowire.AppendTag(msg, fieldRetry, protowire.VarintType)
	msg = protowire.AppendVarint(msg, uint64(taskRetries(j)))
	msg = protowire.AppendTag(msg, fieldTimeout, protowire.VarintType)
	msg = protowire.AppendVarint(msg, uint64(taskTimeout(req)/time.Second))

	base := "asynq:{" + j.Queue + "}:"
	t := &TaskWrite{
		Key: base + "t:" + j.ID, List: base + "pending", Queues: "asynq:queues",
		Queue: j.Queue, ID: j.ID, Msg: msg, PendingSince: now.UnixNano(),
		Doc: doc, Req: rq,
	}
	if processAt.After(now) {
		t.List, t.Scheduled, t.Score = base+"scheduled", true, processAt.Unix()
	}
	return t
}

// newTaskPayload is what j's task carries: where the record is. Tenant
// names and job IDs are plain ASCII (ValidName, NewID), written without
// escapes; anything else goes through encoding/json.
func newTaskPayload(j *Job, now time.Time, cycle int) []byte {
	if !jsonx.Plain(j.Tenant) || !jsonx.Plain(j.ID) {
		b, _ := json.Marshal(taskPayload{Tenant: j.Tenant, ID: j.ID, Created: now.UnixMilli(), Cycle: cycle})
		return b
	}
	b := make([]byte, 0, 40+len(j.Tenant)+len(j.ID))
	b = append(b, `{"t":"`...)
	b = append(b, j.Tenant...)
	b = append(b, `","id":"`...)
	b = append(b, j.ID...)
	b = append(b, `","c":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	if cycle != 0 {
		b = append(b, `,"r":`...)
		b = strconv.AppendInt(b, int64(cycle), 10)
	}
	return append(b, '}')
}

// snapshot returns the job and request the task carries, as its record
// had them when accepted (version 1); ok is false when it carries none,
// or they do not decode, or are not this task's job.
func (p *taskPayload) snapshot() (*Job, *Request, bool) {
	if p.Doc == nil || p.Req == nil || p.Cycle != 0 {
		return nil, nil, false
	}
	j, req := new(Job), new(Request)
	if DecodeJob(p.Doc, j) != nil || DecodeRequest(p.Req, req) != nil || j.ID != p.ID {
		return nil, nil, false
	}
	j.Tenant, j.Version = p.Tenant, "1"
	return j, req, true
}

// appendSnapshot appends to b the payload newTaskPayload made with a job's
// record and request, as encoded JSON, added before its closing brace:
// `,"n":[len(doc),len(req)],"d":doc,"q":req`. The lengths let
// parseTaskPayload cut them out without scanning; a reader that does not
// know them ignores them.
func appendSnapshot(b, payload, doc, req []byte) []byte {
	b = append(b, payload[:len(payload)-1]...)
	b = append(b, `,"n":[`...)
	b = strconv.AppendInt(b, int64(len(doc)), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(len(req)), 10)
	b = append(b, `],"d":`...)
	b = append(b, doc...)
	b = append(b, `,"q":`...)
	b = append(b, req...)
	return append(b, '}')
}

// snapshotLen is the length of what appendSnapshot appends.
func snapshotLen(payload, doc, req []byte) int {
	digits := func(n int) int {
		d := 1
		for ; n >= 10; n /= 10 {
			d++
		}
		return d
	}
	return len(payload) + len(`,"n":[`) + digits(len(doc)) + len(`,`) + digits(len(req)) +
		len(`],"d":`) + len(doc) + len(`,"q":`) + len(req)
}

// parseTaskPayload reads a task's payload. The form newTaskPayload writes
// by hand is read by hand; anything else (an escaped string, spaces, other
// members, another order) goes to encoding/json, which then decides.
func parseTaskPayload(b []byte) (taskPayload, error) {
	var p taskPayload
	rest, ok := bytes.CutPrefix(b, []byte(`{"t":"`))
	var t, id []byte
	if ok {
		t, rest, ok = cutPlainString(rest)
	}
	if ok {
		rest, ok = bytes.CutPrefix(rest, []byte(`,"id":"`))
	}
	if ok {
		id, rest, ok = cutPlainString(rest)
	}
	if ok {
		rest, ok = bytes.CutPrefix(rest, []byte(`,"c":`))
	}
	if ok {
		p.Created, rest, ok = cutInt(rest)
	}
	if ok {
		if r, found := bytes.CutPrefix(rest, []byte(`,"r":`)); found {
			var cycle int64
			cycle, rest, ok = cutInt(r)
			p.Cycle = int(cycle)
		}
	}
	if ok && len(rest) > 1 {
		p.Doc, p.Req, rest, ok = cutSnapshot(rest)
	}
	if ok && string(rest) == "}" {
		p.Tenant, p.ID = string(t), string(id)
		return p, nil
	}
	p = taskPayload{}
	err := json.Unmarshal(b, &p)
	return p, err
}

// cutSnapshot cuts what appendSnapshot wrote, trusting its lengths: the
// bytes around the record and the request must be as it writes them, but
// what lies within is not looked at here (decoding it checks it).
func cutSnapshot(b []byte) (doc, req, rest []byte, ok bool) {
	rest, ok = bytes.CutPrefix(b, []byte(`,"n":[`))
	var nd, nq int64
	if ok {
		nd, rest, ok = cutInt(rest)
	}
	if ok {
		rest, ok = bytes.CutPrefix(rest, []byte(`,`))
	}
	if ok {
		nq, rest, ok = cutInt(rest)
	}
	if ok {
		rest, ok = bytes.CutPrefix(rest, []byte(`],"d":`))
	}
	if !ok || nd <= 0 || nq <= 0 || nd > int64(len(rest)) {
		return nil, nil, nil, false
	}
	doc, rest = rest[:nd], rest[nd:]
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"q":`)); !ok || nq > int64(len(rest)) {
		return nil, nil, nil, false
	}
	req, rest = rest[:nq], rest[nq:]
	if !object(doc) || !object(req) {
		return nil, nil, nil, false
	}
	return doc, req, rest, true
}

// object reports whether b starts and ends as a JSON object does, with no
// space around it.
func object(b []byte) bool { return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}' }

// cutPlainString cuts a JSON string's contents up to its closing quote and
// returns them and what follows the quote; ok is false when the string
// has an escape or a byte jsonx.Plain would not allow, or does not end.
func cutPlainString(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '"')
	if i < 0 || !jsonx.Plain(string(b[:i])) {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// cutInt cuts a JSON integer of up to 18 digits (an optional minus, no
// leading zeros).
func cutInt(b []byte) (n int64, rest []byte, ok bool) {
	neg := len(b) > 0 && b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || digits > 1 && b[start] == '0' {
		return 0, nil, false
	}
	if neg {
		n = -n
	}
	return n, b[i:], true
}

// taskRetries is asynq's retry limit for j's task. There is room beyond
// the attempts: when recording "dead" after the last attempt fails, asynq
// runs the task again (without counting) and that run only records it; it
// must not be archived instead.
func taskRetries(j *Job) int { return j.MaxAttempts + 1 }

// taskTimeout is asynq's limit on one run of j's task: the upstream
// call's own timeout, and time to record its outcome.
func taskTimeout(req *Request) time.Duration { return time.Duration(req.Timeout) + 30*time.Second }
