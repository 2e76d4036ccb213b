package gateway

import (
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
	defer sub.Close()
	j, err := g.deps.Store.Get(ctx, t, id)
	if err != nil {
		return err
	}
	stream, closed, err := g.openStream(c, "job")
	if err != nil {
		return err
	}
	defer closed()
	// catchUp sends what the store has after last; it reports whether the
	// stream has ended. A terminal event that is not the last (the job was
	// replayed from the dead-letter queue since) does not end it.
	catchUp := func() (bool, error) {
		evs, err := g.deps.Store.Events(ctx, t, id, last)
		if err != nil {
			return false, err
		}
		for i, ev := range evs {
			if err := stream.Send(toSSE(ev, strconv.FormatInt(ev.Seq, 10))); err != nil {
				return false, err
			}
			last = ev.Seq
			if ev.Terminal() && i == len(evs)-1 {
				return true, nil
			}
		}
		return false, nil
	}
	if done, err := catchUp(); done || err != nil || j.State.Terminal() {
		// A job that had ended before the backlog was read has nothing
		// more to come, even for a client that resumes past its end.
		return nil
	}
	heartbeat := time.NewTicker(g.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				_ = stream.Retry(reconnectHint)
				return nil
			}
			if ev.Seq <= last {
				continue
			}
			if ev.Seq > last+1 { // a gap: fill it from the store
				if done, err := catchUp(); done || err != nil {
					return nil
				}
				continue
			}
			if err := stream.Send(toSSE(ev, strconv.FormatInt(ev.Seq, 10))); err != nil {
				return nil
			}
			last = ev.Seq
			if ev.Terminal() {
				return nil
			}
		case <-sub.Resync:
			if done, err := catchUp(); done || err != nil {
				return nil
			}
		case <-heartbeat.C:
			if err := stream.Comment("keep-alive"); err != nil {
				return nil
			}
		case <-g.stopping:
			_ = stream.Retry(reconnectHint)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// tenantEvents serves GET /v1/events: the tenant's events after
// Last-Event-ID (within the stream's retention), or live from now.
func (g *Gateway) tenantEvents(c *echo.Context) error {
	ctx, t := c.Request().Context(), tenant(c)
	last := sse.ParseLastEventID(c.Request())
	if last != "" && !status.ValidStreamID(last) {
		return problem(http.StatusBadRequest, "bad-last-event-id", "Last-Event-ID must be an event id of this stream")
	}
	sub := g.deps.Hub.SubscribeTenant(t)
	defer sub.Close()
	if last == "" {
		tail, err := g.deps.Store.TenantTail(ctx, t)
		if err != nil {
			return err
		}
		last = tail
	}
	stream, closed, err := g.openStream(c, "tenant")
	if err != nil {
		return err
	}
	defer closed()
	send := func(ev jobs.Event) error {
		if err := stream.Send(toSSE(ev, ev.StreamID)); err != nil {
			return err
		}
		last = ev.StreamID
		return nil
	}
	catchUp := func() error {
		for {
			evs, err := g.deps.Store.TenantEvents(ctx, t, last, tenantBacklog)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if err := send(ev); err != nil {
					return err
				}
			}
			if len(evs) < tenantBacklog {
				return nil
			}
		}
	}
	if err := catchUp(); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(g.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				_ = stream.Retry(reconnectHint)
				return nil
			}
			if status.CompareStreamIDs(ev.StreamID, last) <= 0 {
				continue
			}
			if err := send(ev); err != nil {
				return nil
			}
		case <-sub.Resync:
			if err := catchUp(); err != nil {
				return nil
			}
		case <-heartbeat.C:
			if err := stream.Comment("keep-alive"); err != nil {
				return nil
			}
		case <-g.stopping:
			_ = stream.Retry(reconnectHint)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
