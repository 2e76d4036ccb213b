package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// SubmitOption changes one Submit.
type SubmitOption func(*submitOptions)

type submitOptions struct {
	key         string
	contentType string
	header      http.Header
}

// IdempotencyKey sends the write with this Idempotency-Key instead of a
// random one. Use a key of your own (an order number, say) to make a write
// that is sent again after a crash of your program the same job.
func IdempotencyKey(key string) SubmitOption { return func(o *submitOptions) { o.key = key } }

// Priority asks for a queue (X-Priority: critical, default or low, as the
// route allows).
func Priority(p string) SubmitOption { return Header("X-Priority", p) }

// CallbackURL asks for a webhook to url when the job ends
// (X-Callback-URL).
func CallbackURL(url string) SubmitOption { return Header("X-Callback-URL", url) }

// OrderingKey runs the job after the tenant's earlier jobs of the same key
// (X-Ordering-Key).
func OrderingKey(key string) SubmitOption { return Header("X-Ordering-Key", key) }

// ContentType sends the body with this content type instead of
// application/json (for a route that takes others).
func ContentType(ct string) SubmitOption { return func(o *submitOptions) { o.contentType = ct } }

// Header sends a header with the write.
func Header(name, value string) SubmitOption {
	return func(o *submitOptions) {
		if o.header == nil {
			o.header = http.Header{}
		}
		o.header.Set(name, value)
	}
}

// newIdempotencyKey makes a random Idempotency-Key (128 bits).
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// encodeBody is body as sent: []byte, json.RawMessage and string as they
// are, anything else as JSON.
func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return []byte{}, nil
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	case string:
		return []byte(b), nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("client: encode the body: %w", err)
	}
	return b, nil
}

// Submit sends a write to a route of the gateway (POST path, such as
// "/v1/orders") and returns the job it became. body is sent as it is when
// it is a []byte, json.RawMessage or string, else encoded as JSON.
//
// The write always carries an Idempotency-Key (a random one unless
// IdempotencyKey gives one), and is sent again with the same key after a
// connection error or an answer that asks to try again (429, 502, 503,
// 504, or 409 while the first is still being accepted), waiting as
// Retry-After says: the gateway answers a key it has seen with the job it
// made then, so a write is never made into two jobs. Accepted.Replayed
// tells such an answer.
func (c *Client) Submit(ctx context.Context, path string, body any, opts ...SubmitOption) (*Accepted, error) {
	return c.submit(ctx, http.MethodPost, path, body, opts)
}

// SubmitTo is Submit for a route of another method (PUT, PATCH, ...).
func (c *Client) SubmitTo(ctx context.Context, method, path string, body any, opts ...SubmitOption) (*Accepted, error) {
	return c.submit(ctx, method, path, body, opts)
}

// SubmitJob submits a job of a type through POST /v1/jobs, as Submit
// does.
func (c *Client) SubmitJob(ctx context.Context, job JobRequest, opts ...SubmitOption) (*Accepted, error) {
	if b, ok := job.Payload.([]byte); ok {
		job.Payload = json.RawMessage(b)
	}
	return c.submit(ctx, http.MethodPost, "/v1/jobs", job, opts)
}

func (c *Client) submit(ctx context.Context, method, path string, body any, opts []SubmitOption) (*Accepted, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("client: path %q must start with /", path)
	}
	var o submitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.key == "" {
		o.key = newIdempotencyKey()
	}
	b, err := encodeBody(body)
	if err != nil {
		return nil, err
	}
	h := o.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Idempotency-Key", quoteKey(o.key))
	if o.contentType == "" {
		o.contentType = "application/json"
	}
	h.Set("Content-Type", o.contentType)
	h.Set("Accept", "application/json")
	a, err := c.do(ctx, request{method: method, path: path, header: h, body: b})
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusAccepted && a.status != http.StatusOK {
		return nil, toError(a)
	}
	var acc Accepted
	if a.status == http.StatusOK {
		// Prefer: wait, when the job ended in time: the job resource.
		var j Job
		if err := json.Unmarshal(a.body, &j); err != nil {
			return nil, fmt.Errorf("client: decode the answer: %w", err)
		}
		acc = Accepted{ID: j.ID, State: j.State, StatusURL: "/v1/jobs/" + j.ID, EventsURL: "/v1/jobs/" + j.ID + "/events"}
	} else if err := json.Unmarshal(a.body, &acc); err != nil || acc.ID == "" {
		return nil, fmt.Errorf("client: decode the answer %q: %v", a.body[:min(len(a.body), 200)], err)
	}
	acc.IdempotencyKey = o.key
	acc.Replayed = a.header.Get("Idempotent-Replayed") == "true"
	acc.RetryAfter = retryAfter(a.header)
	return &acc, nil
}

// quoteKey writes an Idempotency-Key as a structured-field string.
func quoteKey(k string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(k) + `"`
}

// Get returns the job's resource. A job of another tenant is ErrNotFound,
// as one that does not exist.
func (c *Client) Get(ctx context.Context, id string) (*Job, error) {
	a, err := c.do(ctx, request{method: http.MethodGet, path: jobPath(id), header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, err
	}
	return decodeJob(a)
}

func decodeJob(a *answer) (*Job, error) {
	if a.status != http.StatusOK {
		return nil, toError(a)
	}
	var j Job
	if err := json.Unmarshal(a.body, &j); err != nil {
		return nil, fmt.Errorf("client: decode the job: %w", err)
	}
	return &j, nil
}

// Cancel cancels a job that has not ended and returns it, now canceled.
// A job that has ended is ErrJobEnded.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	a, err := c.do(ctx, request{method: http.MethodDelete, path: jobPath(id), header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, err
	}
	return decodeJob(a)
}

// Response is the upstream's answer to a job, as it came.
type Response struct {
	// Status, Header and Body are the upstream's.
	Status int
	Header http.Header
	Body   []byte
	// State is the job's terminal state.
	State State
}

// Result returns the upstream's answer to an ended job. Before the job
// ends it is ErrNoResult; an answer too large to have been kept is an
// *Error of slug "result-too-large".
func (c *Client) Result(ctx context.Context, id string) (*Response, error) {
	a, err := c.do(ctx, request{method: http.MethodGet, path: jobPath(id) + "/result"})
	if err != nil {
		return nil, err
	}
	// The upstream's answer is told apart from the gateway's by this
	// header, whatever its status.
	state := a.header.Get("X-Asyncgw-Job-State")
	if state == "" {
		return nil, toError(a)
	}
	h := a.header.Clone()
	h.Del("X-Asyncgw-Job-State")
	return &Response{Status: a.status, Header: h, Body: a.body, State: State(state)}, nil
}

// StreamToken makes a token that opens the job's event stream, and
// nothing else, without an API key: hand it to a web page, whose
// EventSource opens /v1/jobs/{id}/events?token=<token>. It expires after
// the gateway's gateway.stream_tokens.ttl (5 minutes by default).
func (c *Client) StreamToken(ctx context.Context, id string) (*StreamToken, error) {
	return c.streamToken(ctx, jobPath(id)+"/stream-token")
}

// EventsStreamToken makes a token that opens the tenant's event stream
// (/v1/events?token=<token>) without an API key.
func (c *Client) EventsStreamToken(ctx context.Context) (*StreamToken, error) {
	return c.streamToken(ctx, "/v1/events/stream-token")
}

func (c *Client) streamToken(ctx context.Context, path string) (*StreamToken, error) {
	a, err := c.do(ctx, request{method: http.MethodPost, path: path, header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, toError(a)
	}
	var t StreamToken
	if err := json.Unmarshal(a.body, &t); err != nil || t.Token == "" {
		return nil, fmt.Errorf("client: decode the stream token: %v", err)
	}
	return &t, nil
}
