package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"net/http"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

// stream is one open event stream.
type stream struct {
	body   io.ReadCloser
	rd     *sse.Reader
	cancel context.CancelFunc
	idle   *time.Timer
	// retry is the reconnection delay the gateway last asked for.
	retry time.Duration
}

// openStream opens GET path as an event stream, resuming after last ("":
// from the start, or now for the tenant stream). It does not retry. An
// answer that is not a stream is an *Error for a problem of the gateway,
// else ErrNoStream.
func (c *Client) openStream(ctx context.Context, path, last string) (*stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	h := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if last != "" {
		h.Set("Last-Event-ID", last)
	}
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: path, header: h})
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: GET %s: %w", path, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		defer cancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		a := &answer{status: resp.StatusCode, header: resp.Header, body: body}
		if resp.StatusCode != http.StatusOK && isProblem(resp.Header) {
			return nil, toError(a)
		}
		return nil, fmt.Errorf("%w (%d %s)", ErrNoStream, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{body: resp.Body, cancel: cancel}
	// A stream silent for longer than the idle timeout is dead (the
	// gateway writes a comment at least every 15s): cutting it makes the
	// next read fail.
	s.idle = time.AfterFunc(c.idle, cancel)
	s.rd = sse.NewReader(&idleReader{r: resp.Body, idle: s.idle, d: c.idle})
	return s, nil
}

// next reads the next event with data; io.EOF when the gateway ended the
// stream.
func (s *stream) next() (sse.Event, error) {
	for {
		ev, err := s.rd.Next()
		if err != nil {
			return ev, err
		}
		if ev.Retry > 0 {
			s.retry = ev.Retry
		}
		if ev.Data != nil {
			return ev, nil
		}
	}
}

func (s *stream) close() {
	s.idle.Stop()
	s.cancel()
	_ = s.body.Close()
}

// idleReader pushes the idle deadline back at every read that returns
// bytes.
type idleReader struct {
	r    io.Reader
	idle *time.Timer
	d    time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.Reset(r.d)
	}
	return n, err
}

// toEvent decodes an event of a stream.
func toEvent(ev sse.Event) (Event, error) {
	var j Job
	if err := json.Unmarshal(ev.Data, &j); err != nil {
		return Event{}, fmt.Errorf("client: event %q: decode the job: %w", ev.ID, err)
	}
	return Event{ID: ev.ID, Kind: ev.Event, Job: &j}, nil
}

// permanent reports whether a failure to open a stream will not go away
// by trying again: a problem other than 429 and 5xx.
func permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// reconnectWait is how long to wait before reopening a stream after the
// failures-th failure in a row (0: the stream was dropped after it had
// worked).
func (c *Client) reconnectWait(err error, failures int, hint time.Duration) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	if failures == 0 {
		return max(hint, c.retry.Base)
	}
	return max(hint, c.backoff(failures-1))
}

// Wait follows the job until it ends and returns it in its terminal state.
//
// It reads the job's event stream; after a dropped connection (a network
// failure, a gateway restarting) it reconnects with Last-Event-ID, so no
// event is missed, for as long as ctx allows. When no stream can be had (a
// proxy in between answers with something else, or keeps failing it while
// the job can be read) it polls GET /v1/jobs/{id} instead. It returns
// ErrNotFound for a job this tenant does not have, and ctx's error when
// ctx ends first.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	path := jobPath(id) + "/events"
	var last string
	var job *Job
	failures := 0
	for {
		s, err := c.openStream(ctx, path, last)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var hint time.Duration
		if err == nil {
			ended, rerr := func() (bool, error) {
				defer s.close()
				for {
					ev, err := s.next()
					if errors.Is(err, io.EOF) {
						// The gateway ends the stream after the
						// terminal event (and closes it with a
						// retry: hint when it shuts down).
						return job != nil && job.State.Terminal(), nil
					}
					if err != nil {
						return false, err
					}
					e, err := toEvent(ev)
					if err != nil {
						return false, err
					}
					last, job, failures = e.ID, e.Job, 0
				}
			}()
			if ended {
				return job, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			hint = s.retry
			err = rerr
		} else {
			if errors.Is(err, ErrNoStream) {
				return c.poll(ctx, id)
			}
			if permanent(err) {
				return nil, err
			}
			failures++
			// The gateway may be down, or only its streams: the job
			// itself tells whether it has ended, and whether polling
			// works where streaming keeps failing.
			j, gerr := c.getOnce(ctx, id)
			switch {
			case gerr == nil && j.State.Terminal():
				return j, nil
			case gerr == nil && failures >= 3:
				return c.poll(ctx, id)
			case permanent(gerr):
				return nil, gerr
			}
		}
		if err := sleep(ctx, c.reconnectWait(err, failures, hint)); err != nil {
			return nil, err
		}
	}
}

// getOnce reads the job once, without retrying.
func (c *Client) getOnce(ctx context.Context, id string) (*Job, error) {
	a, err := c.once(ctx, request{method: http.MethodGet, path: jobPath(id), header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, err
	}
	return decodeJob(a)
}

// poll reads the job until it has ended, as often as its Retry-After (or
// the poll interval) says, riding out a gateway that is unavailable for a
// while.
func (c *Client) poll(ctx context.Context, id string) (*Job, error) {
	failures := 0
	for {
		a, err := c.once(ctx, request{method: http.MethodGet, path: jobPath(id), header: http.Header{"Accept": {"application/json"}}})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait := c.pollEvery
		switch {
		case err != nil:
			failures++
			wait = c.backoff(failures - 1)
		case a.status == http.StatusOK:
			failures = 0
			j, err := decodeJob(a)
			if err != nil {
				return nil, err
			}
			if j.State.Terminal() {
				return j, nil
			}
			wait = max(retryAfter(a.header), c.pollEvery)
		case retryable(a):
			failures++
			wait = max(retryAfter(a.header), c.backoff(failures-1))
		default:
			return nil, toError(a)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// EventsOption changes what Events follows.
type EventsOption func(*eventsOptions)

type eventsOptions struct{ after string }

// After resumes the tenant's stream after the event of this ID (an
// Event.ID kept from before), while the gateway still holds it.
func After(id string) EventsOption { return func(o *eventsOptions) { o.after = id } }

// Events follows the tenant's event stream: every event of its jobs, live
// from now (or after After's event). After a dropped connection it
// reconnects with Last-Event-ID, so that every event comes once. It ends
// when the loop breaks, or with one error: ctx's when ctx ends, or one
// that trying again would not cure (ErrUnauthorized, ErrNoStream, an
// *Error for a Last-Event-ID the gateway no longer knows).
//
//	for ev, err := range c.Events(ctx) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(ev.Job.ID, ev.Kind)
//	}
func (c *Client) Events(ctx context.Context, opts ...EventsOption) iter.Seq2[Event, error] {
	var o eventsOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(Event, error) bool) {
		last := o.after
		failures := 0
		for {
			s, err := c.openStream(ctx, "/v1/events", last)
			if ctx.Err() != nil {
				yield(Event{}, ctx.Err())
				return
			}
			var hint time.Duration
			if err == nil {
				stop := false
				func() {
					defer s.close()
					for {
						ev, rerr := s.next()
						if rerr != nil {
							err = rerr
							return
						}
						e, derr := toEvent(ev)
						if derr != nil {
							err = derr
							return
						}
						last, failures = e.ID, 0
						if !yield(e, nil) {
							stop = true
							return
						}
					}
				}()
				if stop {
					return
				}
				if ctx.Err() != nil {
					yield(Event{}, ctx.Err())
					return
				}
				hint = s.retry
			} else {
				if errors.Is(err, ErrNoStream) || permanent(err) {
					yield(Event{}, err)
					return
				}
				failures++
			}
			if serr := sleep(ctx, c.reconnectWait(err, failures, hint)); serr != nil {
				yield(Event{}, serr)
				return
			}
		}
	}
}
