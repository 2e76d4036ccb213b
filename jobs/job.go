// Package jobs is asyncgw's job model: IDs and names, State, Job, Request,
// Result, Event, the Backoff of retries, their JSON encodings, the payload
// of a job's task, and the errors stores return. It is a leaf: it imports
// no Redis, asynq or OpenTelemetry, and none of the packages that store or
// run jobs, which all import it. A job's path goes one way: the gateway
// submits through jobs/submit, which stores it (package status); a worker
// (jobs/worker) runs it and records its outcome in the store; the store's
// event hub tells the gateway, which streams it (SSE).
package jobs

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// State is where a job is in its life.
type State string

// The states of a job. Queued, Scheduled, Running and Retrying are live; the
// others are terminal.
const (
	StateQueued    State = "queued"
	StateScheduled State = "scheduled"
	StateRunning   State = "running"
	StateRetrying  State = "retrying"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateDead      State = "dead"
	StateCanceled  State = "canceled"
)

// Terminal reports whether s is a final state.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateDead, StateCanceled:
		return true
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StateQueued, StateScheduled, StateRunning, StateRetrying,
		StateSucceeded, StateFailed, StateDead, StateCanceled:
		return true
	}
	return false
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a fresh job ID: 128 random bits, lower-case base32, 26
// characters, URL-safe.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the shape of an ID made by NewID. Handlers
// use it to refuse junk before it reaches Redis.
func ValidID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// ValidName reports whether s can name a tenant, queue, route or job type:
// 1–64 characters of ASCII letters, digits, '-', '_' and '.'. Such names
// are safe in Redis keys, hash tags, URLs and logs.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// MaxOrderingKeyLen is the longest ordering key.
const MaxOrderingKeyLen = 200

// ValidOrderingKey reports whether s can be an ordering key: 1 to
// MaxOrderingKeyLen printable ASCII characters (space to '~').
func ValidOrderingKey(s string) bool {
	if len(s) == 0 || len(s) > MaxOrderingKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Job is the public job resource, as served by GET /v1/jobs/{id} and carried
// in every event.
type Job struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	State         State      `json:"state"`
	Queue         string     `json:"queue"`
	Attempt       int        `json:"attempt"`
	MaxAttempts   int        `json:"max_attempts"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	Result        *Result    `json:"result"`
	Error         string     `json:"error"`
	// Precheck is what the route's synchronous pre-check answered (JSON),
	// when it has one.
	Precheck json.RawMessage `json:"precheck,omitempty"`
	// Replays counts the replays from the dead-letter queue; each starts a
	// new cycle of attempts. ReplayedAt is when the last one was made.
	Replays    int        `json:"replays,omitempty"`
	ReplayedAt *time.Time `json:"replayed_at,omitempty"`
	// CallbackURL is where the job's webhooks go, when it has one.
	CallbackURL string `json:"callback_url,omitempty"`
	// OrderingKey, when the job has one, puts it in line behind the jobs
	// of its tenant with the same key accepted before it: it starts only
	// when the one before it has ended.
	OrderingKey string `json:"ordering_key,omitempty"`
	// Webhook, on a webhook delivery, says which job and event it
	// delivers.
	Webhook *WebhookRef `json:"webhook,omitempty"`
	// CallbackEvents are the states whose events are sent to CallbackURL.
	// It is kept with the record, not shown.
	CallbackEvents []State `json:"-"`
	// Tenant owns the job. It is not part of the public resource.
	Tenant string `json:"-"`
	// IdempotencyKey, when the job was submitted with one, is remembered
	// with the job as it is created. It is not part of the public resource.
	IdempotencyKey string `json:"-"`
	// IdempotencyFingerprint identifies the request that used the key.
	IdempotencyFingerprint string `json:"-"`
	// Version is the record's version when this copy was read (for
	// status.Store, its event count), so that Recorder.Advance can write
	// the next state without reading the record again. "" when unknown.
	Version string `json:"-"`
}

// WebhookRef ties a webhook delivery to what it delivers: an event of
// another job of the same tenant.
type WebhookRef struct {
	JobID string `json:"job_id"`
	// Event is the event's kind (the job's state) and Seq its number in
	// the job's event log.
	Event string `json:"event"`
	Seq   int64  `json:"seq"`
	URL   string `json:"url"`
}

// Result is the upstream's answer to the last attempt. Body holds the JSON
// value when the upstream answered JSON, a string for text; BodyBase64
// replaces it for anything else.
type Result struct {
	Status     int               `json:"status"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       json.RawMessage   `json:"body,omitempty"`
	BodyBase64 string            `json:"body_base64,omitempty"`
	// BodyTooLarge says that the body was over the route's max_response
	// and was not kept: neither Body nor BodyBase64 is set, and BodySize
	// is its size in bytes when that is known (from Content-Length, or
	// counted to its end).
	BodyTooLarge bool  `json:"body_too_large,omitempty"`
	BodySize     int64 `json:"body_size,omitempty"`
	// Raw is the body exactly as the upstream sent it. It is stored beside
	// the job resource, not in it, and served by GET /v1/jobs/{id}/result.
	Raw []byte `json:"-"`
}

// NewResult builds the Result of an upstream answer, choosing how to carry
// the body from its content type.
func NewResult(status int, header http.Header, body []byte) *Result {
	r := &Result{Status: status, Headers: make(map[string]string, len(header)), Raw: body}
	for k, v := range header {
		if len(v) > 0 && !hopHeader(k) {
			r.Headers[http.CanonicalHeaderKey(k)] = strings.Join(v, ", ")
		}
	}
	if len(body) == 0 {
		return r
	}
	ct := strings.ToLower(header.Get("Content-Type"))
	switch {
	case isJSONType(ct) && json.Valid(body):
		r.Body = json.RawMessage(body)
	// Text that is not UTF-8 would not survive as a JSON string.
	case strings.HasPrefix(ct, "text/") && utf8.Valid(body) || ct == "" && isPrintableUTF8(body):
		s, _ := json.Marshal(string(body))
		r.Body = s
	default:
		r.BodyBase64 = encodeBase64(body)
	}
	return r
}

// Request is the write a job replays against its upstream, stored with the
// job when it is accepted. For jobs run by a Go handler registered in the
// embedding program, URL is empty and Body is the payload.
type Request struct {
	Method  string      `json:"method,omitempty"`
	URL     string      `json:"url,omitempty"`
	Header  http.Header `json:"header,omitempty"`
	Body    []byte      `json:"body,omitempty"`
	Timeout Duration    `json:"timeout,omitempty"`
	Backoff Backoff     `json:"backoff"`
	// Kind names the Sender that makes the call instead of a plain
	// forward (WorkerConfig.Senders); "" for upstream requests.
	Kind string `json:"kind,omitempty"`
	// TraceParent and TraceState are the W3C trace context the job was
	// accepted in, so that its attempts continue the caller's trace.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
}

// Backoff is a retry schedule: exponential from Base, capped at Max, with
// full jitter; or, when Schedule is set, the n-th retry after Schedule[n-1]
// (the last entry repeating), stretched by up to a tenth at random.
type Backoff struct {
	Base     Duration   `json:"base,omitempty"`
	Max      Duration   `json:"max,omitempty"`
	Schedule []Duration `json:"schedule,omitempty"`
}

// Duration is a time.Duration that encodes to JSON as a Go duration string.
type Duration time.Duration

// MarshalText encodes d as 1.5s (in JSON: "1.5s"). A duration's text
// never needs escaping.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// UnmarshalJSON decodes "1.5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Event is one state change of a job, as stored in its event log and
// streamed to subscribers.
type Event struct {
	// Seq numbers a job's events from 1.
	Seq int64
	// StreamID is the event's ID in its tenant's stream on its shard
	// ("ms-n").
	StreamID string
	// Cursor, on an event read from its tenant's streams, is the position
	// just after it on every shard (status.Cursor): what GET /v1/events
	// sends as the event's id. Empty on a live event.
	Cursor string
	Tenant string
	JobID  string
	// Kind is the new state, or "progress".
	Kind string
	// Data is the job resource as JSON at the time of the event.
	Data []byte
}

// Terminal reports whether e ends its job's stream.
func (e Event) Terminal() bool { return State(e.Kind).Terminal() }
