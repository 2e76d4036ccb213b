package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"
	"go.opentelemetry.io/otel/propagation"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/internal/jsonx"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// Queues reports the state of the queues for admission (submit.Monitor).
type Queues interface {
	Stats(queue string) submit.QueueStats
	EstimateWait(queue, tenant string) time.Duration
}

// submission is one accepted write in the making.
type submission struct {
	jobType     string
	queue       string
	maxAttempts int
	req         *jobs.Request
	delay       time.Duration
	// raw is the request body as received, for the fingerprint.
	raw []byte
	// idempotency is the route's policy: "optional" or "required".
	idempotency string
	// route, when the job comes from a route (for its pre-check).
	route *Route
	// ordering is the route's ordering policy: "optional" (also for Go
	// handlers' types), "required" or "off". orderingKey is the body's
	// ordering_key, when orderingSet (POST /v1/jobs).
	ordering    string
	orderingKey string
	orderingSet bool
	// callback is the callback URL the request named, and callbackAt
	// where: "/callback_url" in the body, or "" for the X-Callback-URL
	// header.
	callback   string
	callbackAt string
}

// accept runs the admission steps that need Redis, stores the job, and
// answers 202 (or 200 when Prefer: wait saw it end).
func (g *Gateway) accept(c *echo.Context, s submission) error {
	r := c.Request()
	t := tenant(c)
	key, err := ParseIdempotencyKey(r.Header.Values("Idempotency-Key"))
	if err != nil {
		return problem(http.StatusBadRequest, "bad-idempotency-key", err.Error())
	}
	if key == "" && s.idempotency == "required" {
		return problem(http.StatusBadRequest, "idempotency-key-required", "this route requires an Idempotency-Key header")
	}
	ordKey, err := orderingKey(r, s)
	if err != nil {
		return err
	}
	wait, err := ParsePreferWait(r.Header.Values("Prefer"), g.cfg.MaxWait)
	if err != nil {
		return problem(http.StatusBadRequest, "bad-prefer", err.Error())
	}
	cbURL, cbEvents, err := g.callback(r, t, s)
	if err != nil {
		return err
	}
	if err := g.admit(s.queue); err != nil {
		return err
	}
	var pre json.RawMessage
	if s.route != nil {
		if pre, err = g.precheck(c, s.route, s.req.Body); err != nil {
			return err
		}
	}

	now := time.Now().UTC()
	// A job with an ordering key lives on its key's shard, with its line;
	// its Idempotency-Key is kept there too.
	placeBy := key
	if ordKey != "" {
		placeBy = ordKey
	}
	j := &jobs.Job{
		ID: g.deps.Jobs.NewID(t, placeBy), Type: s.jobType, State: jobs.StateQueued, Queue: s.queue,
		MaxAttempts: s.maxAttempts, CreatedAt: now, UpdatedAt: now, Tenant: t,
		Precheck: pre, CallbackURL: cbURL, CallbackEvents: cbEvents, OrderingKey: ordKey,
	}
	var processAt time.Time
	if s.delay > 0 {
		processAt = now.Add(s.delay)
		j.State, j.NextAttemptAt = jobs.StateScheduled, &processAt
	}

	if key != "" {
		j.IdempotencyKey, j.IdempotencyFingerprint = key, Fingerprint(r.Method, r.URL.RequestURI(), s.raw)
	}

	var sub *status.Subscription
	if wait > 0 {
		sub = g.deps.Hub.SubscribeJob(t, j.ID)
		defer sub.Close()
		// Waiting for the subscription is bounded like a Redis call, and
		// does not spend the store's own time below.
		lctx, cancel := context.WithTimeout(r.Context(), g.cfg.RedisTimeout)
		err := g.live(lctx, sub)
		cancel()
		if err != nil {
			wait = 0 // answer 202 at once rather than miss the end
		}
	}
	// Redis gets a tight deadline here: a client is better served by a
	// quick 503 than by a hang.
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RedisTimeout)
	defer cancel()
	// The job carries the request's trace, for its attempts to continue.
	tc := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, tc)
	s.req.TraceParent, s.req.TraceState = tc["traceparent"], tc["tracestate"]
	err = g.redis.Do(func() error { return g.deps.Jobs.Submit(ctx, j, s.req, processAt) })
	var taken *jobs.KeyTaken
	switch {
	case errors.As(err, &taken):
		return g.keyTaken(c, taken, j, s.queue)
	case err != nil:
		return unavailable(err)
	}
	// The access log line says which job the request stored.
	c.Set(acceptedKey, &accepted{id: j.ID, queue: s.queue, jobType: s.jobType})
	if wait > 0 {
		// The server's write timeout is for ordinary answers; this one
		// may come as late as the wait allows.
		_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(wait + waitSlack))
		if done := g.awaitEnd(c, sub, j, wait); done != nil {
			c.Response().Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			c.Response().Header().Set("Location", "/v1/jobs/"+j.ID)
			return c.JSONBlob(http.StatusOK, done)
		}
	}
	return g.answerAccepted(c, j.ID, j.State, s.queue)
}

// waitSlack is how long after a Prefer: wait has run out its answer may
// still be written: a record read and the answer itself.
const waitSlack = 10 * time.Second

// keyTaken answers a request whose Idempotency-Key already stands for a
// job: the first answer again for the same request, 422 for another.
func (g *Gateway) keyTaken(c *echo.Context, taken *jobs.KeyTaken, j *jobs.Job, queue string) error {
	switch {
	case taken.Fingerprint != j.IdempotencyFingerprint:
		return problem(http.StatusUnprocessableEntity, "idempotency-key-reused",
			"this Idempotency-Key was used for a different request (method, path or body)")
	case taken.Pending:
		p := problem(http.StatusConflict, "idempotency-key-in-use",
			"a request with this Idempotency-Key is still being accepted; retry shortly")
		p.RetryAfter = 1
		return p
	}
	c.Response().Header().Set("Idempotent-Replayed", "true")
	return g.answerAccepted(c, taken.JobID, taken.State, queue)
}

// awaitEnd waits up to d for the job's terminal event and returns the job
// resource it carries, or nil.
func (g *Gateway) awaitEnd(c *echo.Context, sub *status.Subscription, j *jobs.Job, d time.Duration) []byte {
	timer := time.NewTimer(d)
	defer timer.Stop()
	ctx := c.Request().Context()
	check := func() []byte {
		cur, err := g.deps.Store.Get(ctx, j.Tenant, j.ID)
		if err != nil || !cur.State.Terminal() {
			return nil
		}
		return status.PublicJSON(cur)
	}
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			if ev.Terminal() {
				return ev.Data
			}
		case <-sub.Resync:
			if b := check(); b != nil {
				return b
			}
		case <-timer.C:
			return check()
		case <-g.stopping:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// answerAccepted writes the 202 of an accepted job.
func (g *Gateway) answerAccepted(c *echo.Context, id string, state jobs.State, queue string) error {
	loc := "/v1/jobs/" + id
	h := c.Response().Header()
	h.Set("Location", loc)
	retry := 1
	if g.deps.Queues != nil {
		retry = submit.RetryAfterSeconds(g.deps.Queues.EstimateWait(queue, tenant(c)), 3600)
	}
	h.Set("Retry-After", strconv.Itoa(retry))
	if !jsonx.Plain(id) || !jsonx.Plain(string(state)) {
		return c.JSON(http.StatusAccepted, Accepted{ID: id, State: state, StatusURL: loc, EventsURL: loc + "/events"})
	}
	return c.JSONBlob(http.StatusAccepted, appendAccepted(make([]byte, 0, 96+3*len(id)), id, state))
}

// appendAccepted appends what c.JSON writes for the Accepted of a job
// whose ID and state are jsonx.Plain, without reflection (the accept path
// is hot).
func appendAccepted(b []byte, id string, state jobs.State) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","state":"`...)
	b = append(b, state...)
	b = append(b, `","status_url":"/v1/jobs/`...)
	b = append(b, id...)
	b = append(b, `","events_url":"/v1/jobs/`...)
	b = append(b, id...)
	return append(b, "/events\"}\n"...)
}

// admit refuses a job when its queue is over its depth limit, with a
// Retry-After from how fast the queue drains.
func (g *Gateway) admit(queue string) error {
	limit := g.cfg.QueueLimits[queue]
	if limit <= 0 || g.deps.Queues == nil {
		return nil
	}
	st := g.deps.Queues.Stats(queue)
	if st.Depth < limit {
		return nil
	}
	wait := 10 * time.Second
	if st.DrainRate > 0 {
		wait = time.Duration(float64(st.Depth-limit+1) / st.DrainRate * float64(time.Second))
	}
	p := problem(http.StatusServiceUnavailable, "overloaded",
		fmt.Sprintf("queue %q is over its depth limit (%d waiting); nothing was stored, retry later", queue, st.Depth))
	p.RetryAfter = submit.RetryAfterSeconds(wait, 300)
	return p
}

// unavailable maps a failure to store a job to 503.
func unavailable(err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	if errors.Is(err, jobs.ErrNotReplicated) {
		return replicaAckTimeout()
	}
	if errors.Is(err, breaker.ErrOpen) || !errors.Is(err, jobs.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", jobs.ErrUnavailable, err)
	}
	return err
}

// Fingerprint identifies a request for idempotency: its method, path with
// query, and the SHA-256 of its body. An Idempotency-Key is bound to it.
func Fingerprint(method, uri string, body []byte) string {
	h := sha256.New()
	bd := sha256.Sum256(body)
	h.Write([]byte(method + " " + uri + "\n"))
	h.Write(bd[:])
	return hex.EncodeToString(h.Sum(nil))
}

// isRedisFailure says which errors count against the Redis breaker: those
// that mean Redis could not take the call, not a refusal by our own rules.
func isRedisFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, jobs.ErrNotReplicated) {
		// Redis made the write; only its replicas were slow, unless
		// the WAIT itself could not reach it.
		return unreachable(err)
	}
	var taken *jobs.KeyTaken
	return !errors.Is(err, jobs.ErrExists) && !errors.As(err, &taken)
}
