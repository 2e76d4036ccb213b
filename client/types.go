package client

import (
	"encoding/json"
	"time"
)

// State is a job's state.
type State string

// The states of a job. Queued, Scheduled, Running and Retrying are live;
// the others are terminal.
const (
	Queued    State = "queued"
	Scheduled State = "scheduled"
	Running   State = "running"
	Retrying  State = "retrying"
	Succeeded State = "succeeded"
	// Failed: the upstream refused the write for good.
	Failed State = "failed"
	// Dead: the attempts were used up; the job is in the dead-letter
	// queue, from which an operator may replay it.
	Dead     State = "dead"
	Canceled State = "canceled"
)

// States lists every state, live ones first.
var States = []State{Queued, Scheduled, Running, Retrying, Succeeded, Failed, Dead, Canceled}

// Terminal reports whether a job in state s has ended.
func (s State) Terminal() bool {
	switch s {
	case Succeeded, Failed, Dead, Canceled:
		return true
	}
	return false
}

// Job is a job resource (GET /v1/jobs/{id}, the data of every event, the
// body of every webhook).
type Job struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	State State  `json:"state"`
	Queue string `json:"queue"`
	// Attempt counts the attempts of the current cycle from 1 (0 before
	// the first).
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// StartedAt, FinishedAt and NextAttemptAt are nil until known.
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	// Result is the upstream's answer to the last attempt, once there is
	// one.
	Result *Result `json:"result"`
	// Error is the last error; "" when there is none.
	Error string `json:"error"`
	// Precheck is what the route's pre-check answered, when it has one.
	Precheck json.RawMessage `json:"precheck,omitempty"`
	// Replays counts replays from the dead-letter queue; ReplayedAt is
	// the last one's time.
	Replays     int        `json:"replays,omitempty"`
	ReplayedAt  *time.Time `json:"replayed_at,omitempty"`
	CallbackURL string     `json:"callback_url,omitempty"`
	// OrderingKey is the job's ordering key, if it has one: jobs of a
	// tenant with one key run one at a time, in accept order.
	OrderingKey string `json:"ordering_key,omitempty"`
	// Webhook is set on a webhook delivery's job: the job and event it
	// delivers.
	Webhook *WebhookRef `json:"webhook,omitempty"`
}

// Result is an upstream's answer. Body is the JSON value when the upstream
// answered JSON, a JSON string for text; BodyBase64 holds any other body.
// Neither is set when the body was empty or too large to keep.
type Result struct {
	Status       int               `json:"status"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         json.RawMessage   `json:"body,omitempty"`
	BodyBase64   []byte            `json:"body_base64,omitempty"`
	BodyTooLarge bool              `json:"body_too_large,omitempty"`
	BodySize     int64             `json:"body_size,omitempty"`
}

// WebhookRef names the job and event a webhook delivery delivers.
type WebhookRef struct {
	JobID string `json:"job_id"`
	Event string `json:"event"`
	Seq   int64  `json:"seq"`
	URL   string `json:"url"`
}

// Accepted is the answer to a submitted write: the job it became.
type Accepted struct {
	ID        string `json:"id"`
	State     State  `json:"state"`
	StatusURL string `json:"status_url"`
	EventsURL string `json:"events_url"`
	// IdempotencyKey is the key the write was sent with (made by Submit
	// when none was given); sending the write again with it cannot make a
	// second job.
	IdempotencyKey string `json:"-"`
	// Replayed is true when the gateway had accepted this write before
	// (the same Idempotency-Key): this is that job.
	Replayed bool `json:"-"`
	// RetryAfter is the gateway's estimate of the queue's wait.
	RetryAfter time.Duration `json:"-"`
}

// JobRequest is the body of POST /v1/jobs (SubmitJob).
type JobRequest struct {
	// Type is a route's name or a Go handler's type. Required.
	Type string `json:"type"`
	// Payload is the job's input, encoded as JSON (a []byte or
	// json.RawMessage as it is).
	Payload any `json:"payload,omitempty"`
	// Priority is the queue to use, as X-Priority.
	Priority string `json:"priority,omitempty"`
	// CallbackURL is where the job's webhook goes, as X-Callback-URL.
	CallbackURL string `json:"callback_url,omitempty"`
	// Delay runs the job later: a duration such as "30s".
	Delay string `json:"delay,omitempty"`
	// OrderingKey runs the job after every job of the tenant with the same
	// key accepted before it, one at a time.
	OrderingKey string `json:"ordering_key,omitempty"`
}

// Event is one event of a job's or the tenant's stream.
type Event struct {
	// ID resumes the stream after this event (Last-Event-ID; After).
	ID string
	// Kind is the job's new state, or "progress".
	Kind string
	// Job is the job resource at that moment.
	Job *Job
}

// StreamToken opens one event stream without an API key: a web page's
// EventSource passes Token as the stream's ?token= parameter.
type StreamToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}
