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
// that asynq reads back what it would have written itself. The writer
// also names the job's record in the hash's field TaskRecordField, for
// the worker's take to read the record with the task.
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
}

// TaskRecordField is the field of a task hash that holds the key of its
// job's record (a hash with the fields doc, seq and req), when the task
// was written with the record. A worker's take reads the record in the
// same step as the task, so that a run need not read it back; asynq
// ignores the field.
const TaskRecordField = "rec"

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
	payload := newTaskPayload(j, now, 0)
	// As in asynq's client: the wire form of a TaskMessage with a
	// timeout and no deadline, fields in number order, zero values left
	// out.
	msg := make([]byte, 0, 64+len(payload)+len(j.ID)+len(j.Queue))
	msg = protowire.AppendTag(msg, fieldType, protowire.BytesType)
	msg = protowire.AppendString(msg, TaskType)
	msg = protowire.AppendTag(msg, fieldPayload, protowire.BytesType)
	msg = protowire.AppendBytes(msg, payload)
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
		Key: taskKey(j.Queue, j.ID), List: base + "pending", Queues: "asynq:queues",
		Queue: j.Queue, ID: j.ID, Msg: msg, PendingSince: now.UnixNano(),
	}
	if processAt.After(now) {
		t.List, t.Scheduled, t.Score = base+"scheduled", true, processAt.Unix()
	}
	return t
}

// taskKey is asynq's hash of task id on queue.
func taskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

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
	if ok && string(rest) == "}" {
		p.Tenant, p.ID = string(t), string(id)
		return p, nil
	}
	p = taskPayload{}
	err := json.Unmarshal(b, &p)
	return p, err
}

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
