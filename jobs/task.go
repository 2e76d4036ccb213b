package jobs

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/asyncgw/asyncgw/internal/jsonx"
)

// TaskType is the asynq task type of every asyncgw job. The job's own type
// lives in its record; the task only points at it.
const TaskType = "asyncgw:job"

// TaskPayload is what the asynq task carries: where the record is
// (NewTaskPayload writes it, ParseTaskPayload reads it).
type TaskPayload struct {
	Tenant string `json:"t"`
	ID     string `json:"id"`
	// Created is when the task was enqueued (unix ms); a task whose record
	// never appeared is dropped once it is older than the orphan grace.
	Created int64 `json:"c"`
	// Cycle is the job's replay count when the task was made: 0 for the
	// first cycle, n for the n-th replay from the dead-letter queue.
	Cycle int `json:"r,omitempty"`
}

// NewTaskPayload encodes what j's task carries: where the record is. Tenant
// names and job IDs are plain ASCII (ValidName, NewID), written without
// escapes; anything else goes through encoding/json.
func NewTaskPayload(j *Job, now time.Time, cycle int) []byte {
	if !jsonx.Plain(j.Tenant) || !jsonx.Plain(j.ID) {
		b, _ := json.Marshal(TaskPayload{Tenant: j.Tenant, ID: j.ID, Created: now.UnixMilli(), Cycle: cycle})
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

// ParseTaskPayload reads a task's payload. The form NewTaskPayload writes
// by hand is read by hand; anything else (an escaped string, spaces, other
// members, another order) goes to encoding/json, which then decides.
func ParseTaskPayload(b []byte) (TaskPayload, error) {
	var p TaskPayload
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
	p = TaskPayload{}
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
