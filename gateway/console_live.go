package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/sse"
	"github.com/asyncgw/asyncgw/status"
)

// The console's pages stay current through one event stream each. The
// stream says only that something changed ("refresh", with the job's ID
// when a job's event caused it); the page then fetches its own content
// again, which the server renders as it renders the page. The events come
// from the gateway's hub, like GET /v1/events: an open page costs a
// subscription in memory, never a Redis connection of its own. The
// overview's stream also says "refresh" every few seconds, and every open
// overview shares one reading of the queues a second (readOverview).

// overviewTick is how often an open overview page is told to refresh.
const overviewTick = 2 * time.Second

// consoleLive serves the event stream of the jobs and overview pages: a
// "refresh" whenever a job of the tenants the user sees changes, and
// with overview=1 every overviewTick as well.
func (g *Gateway) consoleLive(c *echo.Context) error {
	p, _ := c.Get(principalKey).(principal)
	q := c.Request().URL.Query()
	only := q.Get("tenant")
	if only != "" && !status.ValidTenant(only) {
		return queryProblem(FieldError{Parameter: "tenant", Detail: "must be 1-64 letters, digits, '-', '_', '.'"})
	}
	var subs []*status.Subscription
	for _, t := range g.consoleTenants(p, only) {
		subs = append(subs, g.deps.Hub.SubscribeTenant(t))
	}
	var tick time.Duration
	if q.Get("overview") != "" && p.admin {
		tick = overviewTick
	}
	return g.consoleStream(c, subs, tick)
}

// consoleJobLive serves the event stream of a job's page.
func (g *Gateway) consoleJobLive(c *echo.Context) error {
	j, err := g.consoleFind(c)
	if err != nil {
		return jobs.ErrNotFound
	}
	return g.consoleStream(c, []*status.Subscription{g.deps.Hub.SubscribeJob(j.Tenant, j.ID)}, 0)
}

// consoleStream sends "refresh" events for subs' events (at most a few a
// second) and, with tick, every tick, until the client goes away.
func (g *Gateway) consoleStream(c *echo.Context, subs []*status.Subscription, tick time.Duration) error {
	ctx := c.Request().Context()
	closeAll := func() {
		for _, s := range subs {
			s.Close()
		}
	}
	for _, s := range subs {
		if err := g.live(ctx, s); err != nil {
			closeAll()
			return err
		}
	}
	defer closeAll()
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Time{})
	st, err := sse.NewStream(c.Response())
	if err != nil {
		return err
	}
	// Fan the subscriptions in: one signal, the latest job's ID.
	changed := make(chan string, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, s := range subs {
		go func() {
			for {
				id := ""
				select {
				case ev, ok := <-s.C:
					if !ok {
						return
					}
					id = ev.JobID
				case <-s.Resync:
				case <-fctx.Done():
					return
				}
				select {
				case changed <- id:
				default:
				}
			}
		}()
	}
	if err := st.Send(sse.Event{Event: "ready", Data: []byte("{}")}); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(g.cfg.Heartbeat)
	defer heartbeat.Stop()
	var ticks <-chan time.Time
	if tick > 0 {
		t := time.NewTicker(tick)
		defer t.Stop()
		ticks = t.C
	}
	// Refreshes are sent at most every 250ms: a busy tenant's page is
	// re-read a few times a second, not once per event.
	const spacing = 250 * time.Millisecond
	var last time.Time
	var pending *time.Timer
	var pendingC <-chan time.Time
	send := func(id string) bool {
		last = time.Now()
		return st.Send(sse.Event{Event: "refresh", Data: []byte(`{"job":"` + id + `"}`)}) == nil
	}
	for {
		select {
		case id := <-changed:
			if wait := spacing - time.Since(last); wait > 0 {
				if pending == nil {
					pending = time.NewTimer(wait)
					pendingC = pending.C
				}
				continue
			}
			if !send(id) {
				return nil
			}
		case <-pendingC:
			pending, pendingC = nil, nil
			if !send("") {
				return nil
			}
		case <-ticks:
			if !send("") {
				return nil
			}
		case <-heartbeat.C:
			if st.Comment("keep-alive") != nil {
				return nil
			}
		case <-g.stopping:
			_ = st.Retry(reconnectHint)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
