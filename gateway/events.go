package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/sse"
	"github.com/asyncgw/asyncgw/status"
)

// reconnectHint is the retry: a stream sends when the gateway closes it.
const reconnectHint = time.Second

// tenantBacklog bounds one read of a tenant's stream.
const tenantBacklog = 500

// subscribeTimeout bounds the wait for a subscription to go live. A
// variable only so that tests can shorten it.
var subscribeTimeout = 5 * time.Second

// live waits until sub receives every event published from now on. When
// it cannot, it closes sub and returns the problem to answer.
func (g *Gateway) live(ctx context.Context, sub *status.Subscription) error {
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	if err := sub.Wait(ctx); err != nil {
		sub.Close()
		g.log.Warn("event subscription not live", "err", err)
		p := problem(http.StatusServiceUnavailable, "unavailable", "live events are unavailable; try again later")
		p.RetryAfter = 1
		return p
	}
	return nil
}

// openStream prepares a long-lived event stream: no read deadline cuts it
// (the write deadline is handled per write by sse.Stream). It is counted
// as open, by scope, until the caller calls done.
func (g *Gateway) openStream(c *echo.Context, scope string) (st *sse.Stream, done func(), err error) {
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Time{})
	st, err = sse.NewStream(c.Response())
	if err != nil {
		return nil, nil, err
	}
	st.OnSend = g.metrics.EventSent
	g.metrics.StreamOpened(scope)
	return st, func() { g.metrics.StreamClosed(scope) }, nil
}

func toSSE(ev jobs.Event, id string) sse.Event {
	return sse.Event{ID: id, Event: ev.Kind, Data: ev.Data}
}

// serveStream runs follow until the stream ends, then end. Where the
// connection allows, the stream is detached from the HTTP server first and
// follow runs in a goroutine of its own, so that an idle stream holds only
// that goroutine and its connection, not the handler's deep stack, the
// server's buffers and the request; the handler returns at once. Otherwise
// follow runs on the handler's goroutine. follow must not use c: echo
// reuses it once the handler has returned. Its context is done when the
// client goes away.
func (g *Gateway) serveStream(c *echo.Context, st *sse.Stream, follow func(ctx context.Context), end func()) {
	// Counted before the connection is taken over: until then the HTTP
	// server counts it as active, so Serve's shutdown cannot be waiting
	// for detached streams yet.
	g.detached.Add(1)
	ctx, err := st.Detach(c.Request())
	if err != nil {
		g.detached.Done()
		defer end()
		follow(c.Request().Context())
		return
	}
	go func() {
		defer g.detached.Done()
		defer end()
		defer func() { _ = st.Close() }()
		follow(ctx)
	}()
}

// jobEvents serves GET /v1/jobs/{id}/events: the events after Last-Event-ID
// from the store, then live ones from the hub, until the terminal event.
func (g *Gateway) jobEvents(c *echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	var last int64
	if v := sse.ParseLastEventID(c.Request()); v != "" {
		last, err = strconv.ParseInt(v, 10, 64)
		if err != nil || last < 0 {
			return problem(http.StatusBadRequest, "bad-last-event-id", "Last-Event-ID must be an event id of this job's stream")
		}
	}
	ctx, t := c.Request().Context(), tenant(c)
	// Subscribe before reading the backlog, so nothing falls in between.
	sub := g.deps.Hub.SubscribeJob(t, id)
	if err := g.live(ctx, sub); err != nil {
		return err
	}
	j, err := g.deps.Store.Get(ctx, t, id)
	if err != nil {
		sub.Close()
		return err
	}
	stream, closed, err := g.openStream(c, "job")
	if err != nil {
		sub.Close()
		return err
	}
	js := &jobStream{g: g, stream: stream, sub: sub, tenant: t, id: id, last: last}
	end := func() { sub.Close(); closed() }
	// A job that had ended before the backlog was read has nothing more
	// to come, even for a client that resumes past its end. A backlog that
	// cannot be read yet is read by follow.
	caughtUp := js.retry.run(func() (bool, error) { return js.catchUp(ctx) })
	if !caughtUp || j.State.Terminal() && js.retry.C() == nil {
		end()
		return nil
	}
	g.serveStream(c, stream, js.follow, end)
	return nil
}

// jobStream is one client's stream of one job's events.
type jobStream struct {
	g          *Gateway
	stream     *sse.Stream
	sub        *status.Subscription
	tenant, id string
	last       int64 // the last event sent
	retry      catchUpRetry
}

// catchUp sends what the store has after the last event sent; it reports
// whether the stream has ended. A terminal event that is not the last (the
// job was replayed from the dead-letter queue since) does not end it.
func (s *jobStream) catchUp(ctx context.Context) (bool, error) {
	evs, err := s.g.deps.Store.Events(ctx, s.tenant, s.id, s.last)
	if err != nil {
		return false, storeUnavailable{err}
	}
	for i, ev := range evs {
		if err := s.stream.Send(toSSE(ev, strconv.FormatInt(ev.Seq, 10))); err != nil {
			return false, err
		}
		s.last = ev.Seq
		if ev.Terminal() && i == len(evs)-1 {
			return true, nil
		}
	}
	return false, nil
}

// follow sends live events until the job ends, the client goes away or the
// gateway stops.
func (s *jobStream) follow(ctx context.Context) {
	heartbeat := time.NewTicker(s.g.cfg.Heartbeat)
	defer heartbeat.Stop()
	retry := &s.retry
	defer retry.stop()
	for {
		select {
		case ev, ok := <-s.sub.C:
			if !ok {
				_ = s.stream.Retry(reconnectHint)
				return
			}
			if ev.Seq <= s.last {
				continue
			}
			if ev.Seq > s.last+1 { // a gap: fill it from the store
				if !retry.run(func() (bool, error) { return s.catchUp(ctx) }) {
					return
				}
				continue
			}
			if err := s.stream.Send(toSSE(ev, strconv.FormatInt(ev.Seq, 10))); err != nil {
				return
			}
			s.last = ev.Seq
			if ev.Terminal() {
				return
			}
		case <-s.sub.Resync:
			if !retry.run(func() (bool, error) { return s.catchUp(ctx) }) {
				return
			}
		case <-retry.C():
			if !retry.run(func() (bool, error) { return s.catchUp(ctx) }) {
				return
			}
		case <-heartbeat.C:
			if err := s.stream.Comment("keep-alive"); err != nil {
				return
			}
		case <-s.g.stopping:
			_ = s.stream.Retry(reconnectHint)
			return
		case <-ctx.Done():
			return
		}
	}
}

// tenantEvents serves GET /v1/events: the tenant's events after
// Last-Event-ID (within the streams' retention), or live from now. An
// event's id is a cursor over every shard of the tenant's events
// (status.Cursor): resuming from it gives every later event exactly once.
func (g *Gateway) tenantEvents(c *echo.Context) error {
	ctx, t := c.Request().Context(), tenant(c)
	last := sse.ParseLastEventID(c.Request())
	cur, err := g.deps.Store.ParseCursor(last)
	if err != nil {
		return problem(http.StatusBadRequest, "bad-last-event-id", "Last-Event-ID must be an event id of this stream")
	}
	sub := g.deps.Hub.SubscribeTenant(t)
	if err := g.live(ctx, sub); err != nil {
		return err
	}
	if last == "" {
		tail, err := g.deps.Store.TenantTail(ctx, t)
		if err == nil {
			cur, err = g.deps.Store.ParseCursor(tail)
		}
		if err != nil {
			sub.Close()
			return err
		}
	}
	stream, closed, err := g.openStream(c, "tenant")
	if err != nil {
		sub.Close()
		return err
	}
	ts := &tenantStream{g: g, stream: stream, sub: sub, tenant: t, cur: cur}
	end := func() { sub.Close(); closed() }
	if !ts.retry.run(func() (bool, error) { return false, ts.catchUp(ctx) }) {
		end()
		return nil
	}
	g.serveStream(c, stream, ts.follow, end)
	return nil
}

// tenantStream is one client's stream of a tenant's events.
type tenantStream struct {
	g      *Gateway
	stream *sse.Stream
	sub    *status.Subscription
	tenant string
	// cur is where the events sent end, on every shard.
	cur   *status.Cursor
	retry catchUpRetry
}

// send sends ev, read from the store or heard live, unless it was sent
// already (it is at or before the cursor on its shard), with the cursor
// after it as its id.
func (s *tenantStream) send(ev jobs.Event) error {
	if !s.cur.Advance(ev) {
		return nil
	}
	return s.stream.Send(toSSE(ev, s.cur.String()))
}

// catchUp sends what the tenant's streams hold after the last events sent.
func (s *tenantStream) catchUp(ctx context.Context) error {
	for {
		evs, err := s.g.deps.Store.TenantEvents(ctx, s.tenant, s.cur.String(), tenantBacklog)
		if err != nil {
			return storeUnavailable{err}
		}
		for _, ev := range evs {
			if err := s.send(ev); err != nil {
				return err
			}
		}
		if len(evs) < tenantBacklog {
			return nil
		}
	}
}

// follow sends live events until the client goes away or the gateway
// stops.
func (s *tenantStream) follow(ctx context.Context) {
	heartbeat := time.NewTicker(s.g.cfg.Heartbeat)
	defer heartbeat.Stop()
	retry := &s.retry
	defer retry.stop()
	catchUp := func() (bool, error) { return false, s.catchUp(ctx) }
	for {
		select {
		case ev, ok := <-s.sub.C:
			if !ok {
				_ = s.stream.Retry(reconnectHint)

				return
			}
			// While a catch-up is due, a live event would skip what it
			// has to send first: the catch-up sends both.
			if retry.C() != nil {
				continue
			}
			if err := s.send(ev); err != nil {

				return
			}
		case <-s.sub.Resync:
			if !retry.run(catchUp) {

				return
			}
		case <-retry.C():
			if !retry.run(catchUp) {

				return
			}
		case <-heartbeat.C:
			if err := s.stream.Comment("keep-alive"); err != nil {

				return
			}
		case <-s.g.stopping:
			_ = s.stream.Retry(reconnectHint)

			return
		case <-ctx.Done():

			return
		}
	}
}
