package chaos

import (
	"strconv"
	"sync"
	"time"
)

// NoAnswer stands for a try that got no HTTP answer (connection refused
// or reset, or a timeout) where a status code would be.
const NoAnswer = 0

// Entry is what the ledger knows of one write: its Idempotency-Key, the
// answer to each try, and the job ID once a 202 named it.
type Entry struct {
	// Key is the write's Idempotency-Key, the same on every try.
	Key string
	// Codes are the status codes of the tries in order, NoAnswer for a
	// try that got none.
	Codes []int
	// JobID is the job the 202 named; "" if no try got one.
	JobID string
	// Replayed is true when the 202 was a replay of an earlier accept
	// (Idempotent-Replayed: true): a try that had stored the job got no
	// answer, or a 5xx.
	Replayed bool
	// GaveUp is true when the client stopped retrying without a final
	// answer.
	GaveUp bool
}

// Accepted reports whether a try of the write got a 202.
func (e *Entry) Accepted() bool { return e.JobID != "" }

// Try is one try of a write: when it was sent and answered, and how.
type Try struct {
	Start, End time.Time
	Code       int
	// Problem is the last segment of the problem type of an answer other
	// than 202 (such as "replica-ack-timeout"), "" for none.
	Problem string
}

// answer names the try's answer in a report: "202", "503
// replica-ack-timeout", "no answer".
func (t Try) answer() string {
	if t.Problem == "" || t.Problem == "." || t.Problem == "/" {
		return codeName(t.Code)
	}
	return codeName(t.Code) + " " + t.Problem
}

// Ledger records every write of a soak and every answer: the list of
// jobs that clients were told were accepted, which the end of the soak
// checks against what the gateway, Redis and the upstream know. It is safe
// for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	entries []*Entry
	tries   []Try
}

// add starts the entry of a new write.
func (l *Ledger) add(key string) *Entry {
	e := &Entry{Key: key}
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
	return e
}

// try records the answer to one try of e.
func (l *Ledger) try(e *Entry, t Try, jobID string, replayed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Codes = append(e.Codes, t.Code)
	if jobID != "" {
		e.JobID, e.Replayed = jobID, replayed
	}
	l.tries = append(l.tries, t)
}

// giveUp records that the client stopped retrying e.
func (l *Ledger) giveUp(e *Entry) {
	l.mu.Lock()
	e.GaveUp = true
	l.mu.Unlock()
}

// Entries returns a copy of every entry.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, len(l.entries))
	for i, e := range l.entries {
		out[i] = *e
		out[i].Codes = append([]int(nil), e.Codes...)
	}
	return out
}

// Tries returns every try so far.
func (l *Ledger) Tries() []Try {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Try(nil), l.tries...)
}

// Accepts counts the 202s answered to tries sent at or after since.
func (l *Ledger) Accepts(since time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, t := range l.tries {
		if t.Code == 202 && !t.Start.Before(since) {
			n++
		}
	}
	return n
}

// codeName names a status code in a report: "202", or "no answer".
func codeName(code int) string {
	if code == NoAnswer {
		return "no answer"
	}
	return strconv.Itoa(code)
}
