package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/upstream"
)

// consolePageSize is the number of rows of a console list page.
const consolePageSize = 50

// overview is what the overview page shows.
type overview struct {
	Queues   []overviewQueue
	Disabled []status.DisabledEndpoint
	Dead     int64
	Live     int
	// AcceptedPerMin counts the jobs accepted in the last minute (-1:
	// unknown); Outbox the webhook events waiting to go out (-1: unknown).
	AcceptedPerMin int64
	Outbox         int64
	// Upstreams are the upstream hosts, by host: the in-process worker's
	// breakers and, for hosts with limits, the limits and their use across
	// every worker.
	Upstreams []upstreamState
	At        time.Time
}

// overviewQueue is a queue with how fast it has been finishing jobs
// (per second; negative when unknown).
type overviewQueue struct {
	admin.Queue
	DoneRate float64
}

// upstreamState is one upstream host: its breaker state in this process
// ("" when no worker here called it) and, when it has limits, Usage.
type upstreamState struct {
	Host  string
	State string
	Usage *upstream.Usage
}

// overviewStore is what the overview reads from the store beyond the
// admin service (status.Store).
type overviewStore interface {
	AcceptedSince(ctx context.Context, since time.Time) (int64, error)
	OutboxTenants(ctx context.Context) ([]string, error)
	OutboxSize(ctx context.Context, tenant string) (int64, error)
}

var _ overviewStore = (*status.Store)(nil)

// overviewCache shares one reading of the queues among every open
// overview page: it is read again at most once a second.
type overviewCache struct {
	mu   sync.Mutex
	at   time.Time
	last *overview
}

func (g *Gateway) readOverview(ctx context.Context) (*overview, error) {
	oc := &g.overviewCache
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if oc.last != nil && time.Since(oc.at) < time.Second {
		return oc.last, nil
	}
	qs, err := g.deps.Admin.Queues(ctx)
	if err != nil {
		return nil, err
	}
	dis, err := g.deps.Admin.DisabledEndpoints(ctx, "")
	if err != nil {
		return nil, err
	}
	o := &overview{Disabled: dis, At: time.Now(), AcceptedPerMin: -1, Outbox: -1}
	for _, q := range qs {
		o.Dead += q.Dead
		o.Live += q.Pending + q.Scheduled + q.Retry + q.Active
		oq := overviewQueue{Queue: q, DoneRate: -1}
		if g.deps.Queues != nil {
			if st := g.deps.Queues.Stats(q.Name); !st.At.IsZero() {
				oq.DoneRate = st.DrainRate
			}
		}
		o.Queues = append(o.Queues, oq)
	}
	if st, ok := g.deps.Store.(overviewStore); ok {
		if o.AcceptedPerMin, err = st.AcceptedSince(ctx, time.Now().Add(-time.Minute)); err != nil {
			return nil, err
		}
		tenants, err := st.OutboxTenants(ctx)
		if err != nil {
			return nil, err
		}
		o.Outbox = 0
		for _, t := range tenants {
			n, err := st.OutboxSize(ctx, t)
			if err != nil {
				return nil, err
			}
			o.Outbox += n
		}
	}
	if o.Upstreams, err = g.readUpstreams(ctx); err != nil {
		return nil, err
	}
	oc.last, oc.at = o, time.Now()
	return o, nil
}

// readUpstreams joins the in-process breakers with the hosts' limits and
// their use, sorted by host.
func (g *Gateway) readUpstreams(ctx context.Context) ([]upstreamState, error) {
	byHost := map[string]*upstreamState{}
	var out []upstreamState
	if g.deps.Upstreams != nil {
		for host, st := range g.deps.Upstreams() {
			byHost[host] = &upstreamState{Host: host, State: string(st)}
		}
	}
	us, err := g.deps.Admin.Upstreams(ctx)
	if err != nil {
		return nil, err
	}
	for i := range us {
		u := &us[i]
		if s, ok := byHost[u.Host]; ok {
			s.Usage = u
		} else {
			byHost[u.Host] = &upstreamState{Host: u.Host, Usage: u}
		}
	}
	for _, s := range byHost {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b upstreamState) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// consoleOverview serves the overview (admins; tenants go to their jobs).
func (g *Gateway) consoleOverview(c *echo.Context) error {
	if p, _ := c.Get(principalKey).(principal); !p.admin {
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path+"jobs")
	}
	o, err := g.readOverview(c.Request().Context())
	if err != nil {
		return err
	}
	pd := g.page(c, "Overview", "overview", o)
	pd.Live = g.cfg.Console.Path + "live?overview=1"
	return g.render(c, http.StatusOK, "overview", pd)
}

// consolePause pauses or resumes a queue.
func (g *Gateway) consolePause(c *echo.Context) error {
	action := c.Param("action")
	if action != "pause" && action != "resume" {
		return g.consoleError(c, http.StatusNotFound, "No such action.")
	}
	q, err := g.deps.Admin.SetPaused(c.Request().Context(), c.Param("queue"), action == "pause")
	if errors.Is(err, admin.ErrUnknownQueue) {
		return g.consoleError(c, http.StatusNotFound, "No such queue.")
	}
	if err != nil {
		return err
	}
	msg := "Queue " + q.Name + " resumed."
	if q.Paused {
		msg = "Queue " + q.Name + " paused: workers take no jobs from it; jobs are still accepted."
	}
	return g.redirectFlash(c, g.cfg.Console.Path+"overview", msg)
}

// jobsView is what the jobs page shows.
type jobsView struct {
	Query  url.Values
	Items  []*jobs.Job
	Next   string
	States []jobs.State
	Errors []FieldError
	// ShowTenant is set for admins, who list every tenant.
	ShowTenant bool
}

var allStates = []jobs.State{
	jobs.StateQueued, jobs.StateScheduled, jobs.StateRunning, jobs.StateRetrying,
	jobs.StateSucceeded, jobs.StateFailed, jobs.StateDead, jobs.StateCanceled,
}

// consoleJobs serves the jobs page: find by ID, or a filtered list.
func (g *Gateway) consoleJobs(c *echo.Context) error {
	p, _ := c.Get(principalKey).(principal)
	q := c.Request().URL.Query()
	if id := strings.TrimSpace(q.Get("id")); id != "" {
		return c.Redirect(http.StatusSeeOther, g.cfg.Console.Path+"jobs/"+url.PathEscape(id))
	}
	// Empty form fields are no filter.
	for k, vs := range q {
		if len(vs) == 1 && vs[0] == "" {
			q.Del(k)
		}
	}
	v := jobsView{Query: q, States: allStates, ShowTenant: p.admin}
	lq, fields := parseListQuery(q, p.admin)
	lq.limit = consolePageSize
	if !p.admin {
		lq.filter.Tenant = p.tenant
	}
	if len(fields) == 0 && g.lister() != nil {
		items, next, err := g.list(c.Request().Context(), lq)
		var pr *Problem
		if errors.As(err, &pr) {
			fields = pr.Errors
		} else if err != nil {
			return err
		}
		v.Items, v.Next = items, next
	}
	v.Errors = fields
	pd := g.page(c, "Jobs", "jobs", v)
	if q.Get("cursor") == "" {
		// The first page follows the events of the jobs it lists.
		pd.Live = g.cfg.Console.Path + "live"
		if t := q.Get("tenant"); t != "" && p.admin {
			pd.Live += "?tenant=" + url.QueryEscape(t)
		}
	}
	status := http.StatusOK
	if len(fields) > 0 {
		status = http.StatusBadRequest
	}
	return g.render(c, status, "jobs", pd)
}

// jobView is what the job page shows.
type jobView struct {
	Job        *jobs.Job
	Tenant     string
	Events     []eventRow
	Attempts   []eventRow
	Deliveries []*jobs.Job
	Result     string
	Dead       bool
}

// eventRow is one event of a job's timeline.
type eventRow struct {
	Seq     int64
	Kind    string
	At      time.Time
	Attempt int
	Error   string
	Status  int
}

// consoleFind reads the job the console user may see: an admin any
// tenant's, a tenant only its own.
func (g *Gateway) consoleFind(c *echo.Context) (*jobs.Job, error) {
	id := c.Param("id")
	if !jobs.ValidID(id) {
		return nil, errConsoleNotFound
	}
	p, _ := c.Get(principalKey).(principal)
	ctx := c.Request().Context()
	if p.admin && g.lister() != nil {
		j, err := g.lister().FindJob(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) {
			return nil, errConsoleNotFound
		}
		return j, err
	}
	j, err := g.deps.Store.Get(ctx, p.tenant, id)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, errConsoleNotFound
	}
	if j != nil {
		j.Tenant = p.tenant
	}
	return j, err
}

// consoleJob serves a job's page.
func (g *Gateway) consoleJob(c *echo.Context) error {
	j, err := g.consoleFind(c)
	if errors.Is(err, errConsoleNotFound) {
		return g.consoleError(c, http.StatusNotFound, "No such job: "+c.Param("id"))
	}
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	evs, err := g.deps.Store.Events(ctx, j.Tenant, j.ID, 0)
	if err != nil {
		return err
	}
	v := jobView{Job: j, Tenant: j.Tenant, Dead: j.State == jobs.StateDead}
	for _, ev := range evs {
		var doc struct {
			Attempt   int       `json:"attempt"`
			Error     string    `json:"error"`
			UpdatedAt time.Time `json:"updated_at"`
			Result    *struct {
				Status int `json:"status"`
			} `json:"result"`
		}
		_ = json.Unmarshal(ev.Data, &doc)
		row := eventRow{Seq: ev.Seq, Kind: ev.Kind, At: doc.UpdatedAt, Attempt: doc.Attempt, Error: doc.Error}
		if doc.Result != nil {
			row.Status = doc.Result.Status
		}
		v.Events = append(v.Events, row)
		switch jobs.State(ev.Kind) {
		case jobs.StateRetrying, jobs.StateSucceeded, jobs.StateFailed, jobs.StateDead:
			v.Attempts = append(v.Attempts, row)
		}
	}
	if v.Deliveries, err = g.deps.Store.Deliveries(ctx, j.Tenant, j.ID); err != nil {
		return err
	}
	if r := j.Result; r != nil {
		switch {
		case r.BodyTooLarge:
			v.Result = "(the body was over the route's max_response and was not kept)"
		case len(r.Body) > 0:
			var pretty any
			if json.Unmarshal(r.Body, &pretty) == nil {
				b, _ := json.MarshalIndent(pretty, "", "  ")
				v.Result = string(b)
			}
		case r.BodyBase64 != "":
			v.Result = "(binary, base64) " + r.BodyBase64
		}
	}
	pd := g.page(c, "Job "+j.ID, "jobs", v)
	if !j.State.Terminal() || j.State == jobs.StateDead {
		pd.Live = g.cfg.Console.Path + "jobs/" + j.ID + "/live"
	}
	return g.render(c, http.StatusOK, "job", pd)
}

// consoleCancel cancels a live job.
func (g *Gateway) consoleCancel(c *echo.Context) error {
	j, err := g.consoleFind(c)
	if errors.Is(err, errConsoleNotFound) {
		return g.consoleError(c, http.StatusNotFound, "No such job: "+c.Param("id"))
	}
	if err != nil {
		return err
	}
	back := g.cfg.Console.Path + "jobs/" + j.ID
	cj, err := g.deps.Jobs.Cancel(c.Request().Context(), j.Tenant, j.ID)
	if errors.Is(err, jobs.ErrFinished) {
		return g.redirectFlash(c, back, "The job had already ended: nothing was canceled.")
	}
	if err != nil {
		return err
	}
	g.metrics.Completed(cj.Queue, cj.Type, string(cj.State))
	g.log.Info("job canceled", "job_id", j.ID, "tenant", j.Tenant, "by", "console")
	return g.redirectFlash(c, back, "Job canceled.")
}

// consoleReplay replays one dead job.
func (g *Gateway) consoleReplay(c *echo.Context) error {
	id := c.Param("id")
	back := g.cfg.Console.Path + "jobs/" + url.PathEscape(id)
	if !jobs.ValidID(id) {
		return g.consoleError(c, http.StatusNotFound, "No such job.")
	}
	_, err := g.deps.Admin.Replay(c.Request().Context(), id)
	switch {
	case errors.Is(err, admin.ErrNotFound):
		return g.redirectFlash(c, back, "The job is not in the dead-letter queue: nothing was replayed.")
	case errors.Is(err, admin.ErrBusy):
		return g.redirectFlash(c, back, err.Error())
	case err != nil:
		return err
	}
	return g.redirectFlash(c, back, "Job replayed: it is back on its queue.")
}

// dlqView is what the dead-letter page shows.
type dlqView struct {
	Query  url.Values
	Filter admin.FilterInput
	Items  []status.DeadLetter
	Next   string
	Errors []FieldError
	// Preview is a dry run's answer; Result a bulk replay's.
	Preview *admin.BulkResult
	Result  *admin.BulkResult
	// DeletePreview is a dry run of deleting every match, counted as of
	// AsOf; Deleted a bulk delete's answer.
	DeletePreview *admin.BulkDeleteResult
	AsOf          string
	Deleted       *admin.BulkDeleteResult
	Rate          string
	Done          string
}

// dlqInput reads a dead-letter filter from form or query values.
func dlqInput(v url.Values) admin.FilterInput {
	return admin.FilterInput{
		Queue: v.Get("queue"), Type: v.Get("type"), Tenant: v.Get("tenant"),
		Error: v.Get("error"), Since: v.Get("since"), Until: v.Get("until"),
	}
}

// consoleDLQ serves the dead-letter page: a filtered list, and with
// preview=1 a dry run of replaying every match (preview=delete: of
// deleting every match).
func (g *Gateway) consoleDLQ(c *echo.Context) error {
	p, _ := c.Get(principalKey).(principal)
	q := c.Request().URL.Query()
	in := dlqInput(q)
	if !p.admin {
		in.Tenant = p.tenant
	}
	v := dlqView{Query: q, Filter: in, Rate: q.Get("rate")}
	f, fields := dlqFilter(in, func(name string) FieldError { return FieldError{Parameter: name} })
	v.Errors = fields
	ctx := c.Request().Context()
	if len(fields) == 0 {
		items, next, err := g.deps.Admin.DeadLetters(ctx, f, q.Get("cursor"), consolePageSize)
		switch {
		case errors.Is(err, status.ErrBadCursor):
			v.Errors = append(v.Errors, FieldError{Parameter: "cursor", Detail: "is not a cursor the console handed out"})
		case err != nil:
			return err
		}
		v.Items, v.Next = items, next
		switch {
		case !p.admin || q.Get("preview") == "":
		case q.Get("preview") == "delete":
			if err := g.previewDelete(ctx, f, &v); err != nil {
				return err
			}
		default:
			res, err := g.deps.Admin.ReplayMatching(ctx, admin.BulkReplay{Filter: f, DryRun: true})
			if err != nil {
				return err
			}
			v.Preview = res
		}
	}
	pd := g.page(c, "Dead letters", "dlq", v)
	status := http.StatusOK
	if len(v.Errors) > 0 {
		status = http.StatusBadRequest
	}
	return g.render(c, status, "dlq", pd)
}

// consoleDLQSelected replays or deletes the dead letters ticked on the
// page.
func (g *Gateway) consoleDLQSelected(c *echo.Context) error {
	form := c.Request().PostForm
	ids := form["id"]
	back := g.cfg.Console.Path + "dlq"
	if ret := form.Get("return"); strings.HasPrefix(ret, "?") {
		back += ret
	}
	action := form.Get("action")
	if action != "replay" && action != "delete" {
		return g.consoleError(c, http.StatusBadRequest, "Choose replay or delete.")
	}
	if len(ids) == 0 {
		return g.redirectFlash(c, back, "No job was selected.")
	}
	if len(ids) > 1000 {
		return g.consoleError(c, http.StatusBadRequest, "At most 1000 jobs at once.")
	}
	ctx := c.Request().Context()
	done, gone, failed := 0, 0, 0
	for _, id := range ids {
		if !jobs.ValidID(id) {
			gone++
			continue
		}
		var err error
		if action == "replay" {
			_, err = g.deps.Admin.Replay(ctx, id)
		} else {
			err = g.deps.Admin.Delete(ctx, id)
		}
		switch {
		case errors.Is(err, admin.ErrNotFound):
			gone++
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
		default:
			done++
		}
	}
	verb := map[string]string{"replay": "Replayed", "delete": "Deleted"}[action]
	msg := verb + " " + strconv.Itoa(done) + " of " + strconv.Itoa(len(ids)) + " selected jobs."
	if gone > 0 {
		msg += " " + strconv.Itoa(gone) + " had left the dead-letter queue."
	}
	if failed > 0 {
		msg += " " + strconv.Itoa(failed) + " failed; try again."
	}
	return g.redirectFlash(c, back, msg)
}

// consoleBulkReplay replays every dead letter matching a filter, after
// the dry run the page showed.
func (g *Gateway) consoleBulkReplay(c *echo.Context) error {
	form := c.Request().PostForm
	in := dlqInput(form)
	f, fields := dlqFilter(in, func(name string) FieldError { return FieldError{Parameter: name} })
	rate := 0.0
	if s := form.Get("rate"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r < 0 || r > 100000 {
			fields = append(fields, FieldError{Parameter: "rate", Detail: "must be a number of jobs per second from 0 (the default, 50) to 100000"})
		}
		rate = r
	}
	if form.Get("confirm") != "yes" {
		fields = append(fields, FieldError{Parameter: "confirm", Detail: "tick the box to confirm the replay"})
	}
	v := dlqView{Query: url.Values{}, Filter: in, Rate: form.Get("rate")}
	if len(fields) > 0 {
		v.Errors = fields
		return g.render(c, http.StatusBadRequest, "dlq", g.page(c, "Dead letters", "dlq", v))
	}
	res, err := g.deps.Admin.ReplayMatching(c.Request().Context(), admin.BulkReplay{Filter: f, Rate: rate})
	if err != nil {
		return err
	}
	v.Result = res
	g.log.Info("bulk replay from the console", "matched", res.Matched, "replayed", res.Replayed)
	return g.render(c, http.StatusOK, "dlq", g.page(c, "Dead letters", "dlq", v))
}

// consoleTenants are the tenants whose events a principal's live stream
// follows: its own, or for an admin every configured tenant (or the one
// asked for).
func (g *Gateway) consoleTenants(p principal, only string) []string {
	if !p.admin {
		return []string{p.tenant}
	}
	if only != "" {
		return []string{only}
	}
	if !g.cfg.Auth.Enabled {
		return []string{DefaultTenant}
	}
	var out []string
	for _, t := range g.cfg.Auth.Tenants {
		out = append(out, t.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
