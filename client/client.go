// Package client is a Go client of asyncgw's HTTP API (v1). It submits
// writes with an Idempotency-Key, retrying where that is safe, follows jobs
// to their end over Server-Sent Events (resuming after a dropped connection
// and falling back to polling when a stream cannot be had), follows the
// tenant's event stream, makes stream tokens for web pages, and verifies
// the signatures of asyncgw's webhooks.
//
// It uses only the standard library (and asyncgw's sse package, which does
// too). Its types follow the OpenAPI document the gateway serves at
// GET /openapi.json; a test keeps them in step.
//
//	c, err := client.New("https://gateway.example.com", os.Getenv("ASYNCGW_API_KEY"))
//	acc, err := c.Submit(ctx, "/v1/orders", order)
//	job, err := c.Wait(ctx, acc.ID)
package client

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one asyncgw gateway. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	apiKey    string
	hc        *http.Client
	retry     Retry
	pollEvery time.Duration
	idle      time.Duration
	userAgent string
}

// Retry is how calls are retried after a connection error or an answer
// that asks to try again (429, 502, 503, 504, and 409 while a request with
// the same Idempotency-Key is still being accepted).
type Retry struct {
	// Attempts is how many times a call is made in all; 1 never retries.
	// Defaults to 5.
	Attempts int
	// Base is the first wait; each wait doubles it, up to Max, with
	// jitter. A Retry-After of the answer is waited instead. Defaults to
	// 200ms.
	Base time.Duration
	// Max caps a wait of the backoff (not a Retry-After). Defaults to 5s.
	Max time.Duration
}

// Option changes a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc. Leave
// hc.Timeout at zero: it would cut event streams; every call takes a
// context instead. Defaults to a client of its own.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetry sets how calls are retried. Zero fields keep their defaults.
func WithRetry(r Retry) Option { return func(c *Client) { c.retry = r } }

// WithPollInterval sets how often Wait polls a job when it cannot stream
// its events, unless the gateway's Retry-After says otherwise. Defaults to
// 1s.
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.pollEvery = d } }

// WithStreamIdleTimeout sets how long an event stream may stay silent
// before it is taken for dead and reopened. The gateway writes a comment
// at least every 15s. Defaults to 45s.
func WithStreamIdleTimeout(d time.Duration) Option { return func(c *Client) { c.idle = d } }

// WithUserAgent sets the User-Agent of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the gateway at baseURL (such as
// "https://gateway.example.com"; a path is kept as a prefix) that
// authenticates with apiKey ("" for a gateway without authentication).
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be an absolute http(s) URL", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q must have no query or fragment", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if strings.ContainsAny(apiKey, "\r\n") {
		return nil, errors.New("client: the API key must not contain line breaks")
	}
	c := &Client{base: u, apiKey: apiKey, userAgent: "asyncgw-go-client"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	c.retry.Attempts = cmp.Or(c.retry.Attempts, 5)
	c.retry.Base = cmp.Or(c.retry.Base, 200*time.Millisecond)
	c.retry.Max = cmp.Or(c.retry.Max, 5*time.Second)
	c.pollEvery = cmp.Or(c.pollEvery, time.Second)
	c.idle = cmp.Or(c.idle, 45*time.Second)
	if c.retry.Attempts < 1 || c.retry.Base < 0 || c.retry.Max < 0 || c.pollEvery < 0 || c.idle < 0 {
		return nil, errors.New("client: retry attempts, waits and intervals must be positive")
	}
	return c, nil
}

// request is one call, which may be sent several times.
type request struct {
	method string
	path   string // with its query
	header http.Header
	body   []byte
}

// answer is a gateway's answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// newRequest builds the HTTP request of r.
func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base.String()+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if c.apiKey != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	return req, nil
}

// maxAnswer bounds an answer read in full.
const maxAnswer = 64 << 20

// do sends r, retrying connection errors and answers that ask to try
// again, and returns the last answer, whatever its status. The error is
// a transport error, or the context's.
func (c *Client) do(ctx context.Context, r request) (*answer, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		a, err := c.once(ctx, r)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var wait time.Duration
		switch {
		case err != nil:
			lastErr = err
			wait = c.backoff(attempt)
		case retryable(a):
			wait = cmp.Or(retryAfter(a.header), c.backoff(attempt))
		default:
			return a, nil
		}
		if attempt+1 >= c.retry.Attempts {
			if err != nil {
				return nil, lastErr
			}
			return a, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// once sends r once and reads the answer.
func (c *Client) once(ctx context.Context, r request) (*answer, error) {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: read the answer: %w", r.method, r.path, err)
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// retryable reports whether an answer asks to send the request again:
// nothing was done, or (for a write with an Idempotency-Key) sending it
// again cannot do it twice.
func retryable(a *answer) bool {
	switch a.status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict:
		return problemSlug(a) == "idempotency-key-in-use"
	}
	return false
}

// backoff is the wait before retry attempt+1: Base doubled attempt
// times, capped at Max, between half of that and all of it.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.Base << min(attempt, 20)
	if d > c.retry.Max || d <= 0 {
		d = c.retry.Max
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads Retry-After: seconds, or an HTTP date; 0 when absent.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jobPath is the path of a job's resource; id is escaped.
func jobPath(id string) string { return "/v1/jobs/" + url.PathEscape(id) }
