package jobs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/asyncgw/asyncgw/internal/jsonx"
	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// newTaskWrite builds the task of j for the accept script to write: its
// payload points at the record, its options are those enqueue gives, and
// it waits on the asynq queue of the job's priority and shard.
func newTaskWrite(ks *keyspace.Space, j *Job, req *Request, processAt time.Time) *keyspace.TaskWrite {
	now := time.Now()
	return keyspace.NewTaskWrite(keyspace.Task{
		Type: TaskType, Payload: newTaskPayload(j, now, 0), ID: j.ID,
		Queue: ks.JobQueue(j.ID, j.Queue), MaxRetry: taskRetries(j), Timeout: taskTimeout(req),
	}, processAt, now)
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
