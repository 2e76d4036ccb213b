// Package gateway is the HTTP side of asyncgw: the echo application that
// accepts writes as jobs, serves their status, results and event streams,
// and maps every error to problem+json.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/ratelimit"
	"github.com/asyncgw/asyncgw/status"
)

// Config configures a Gateway.
type Config struct {
	// Routes map method + path to jobs that forward to an upstream.
	Routes []Route
	// Types are job types run by Go handlers of the embedding program,
	// submitted through POST /v1/jobs.
	Types []Type
	// Queues are the queues jobs may go to (their names are also the
	// priorities a client may ask for). Defaults to critical, default, low.
	Queues []string
	// MaxBody is the default request body limit. Defaults to 1 MiB.
	MaxBody int64
	// Heartbeat is the interval of comment lines on event streams.
	// Defaults to 15s.
	Heartbeat time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// at shutdown. Defaults to 10s.
	ShutdownTimeout time.Duration
	// DrainDelay is how long, after shutdown begins, /readyz answers 503
	// while requests are still served, so that load balancers take the
	// gateway out before it stops accepting. Defaults to 0 (none); the
	// command sets gateway.drain_delay (5s by default).
	DrainDelay time.Duration
	// Demo mounts the built-in demo upstream at /_demo/upstream.
	Demo bool
	// RedisTimeout bounds the Redis work of one accept. Defaults to 1s.
	RedisTimeout time.Duration
	// MaxWait caps Prefer: wait. Defaults to 30s.
	MaxWait time.Duration
	// QueueLimits are the depth limits of queues (pending + running +
	// retrying); a job for a queue over its limit is refused with 503.
	// Unlisted queues have no limit.
	QueueLimits map[string]int
	// RedisBreaker tunes the breaker around Redis on the accept path.
	// Defaults: open after 5 consecutive failures or half of at least 5
	// calls failing in 10s; probe again after 1s.
	RedisBreaker breaker.Config
	// Auth says who may call. Defaults to off (everyone is tenant
	// "default").
	Auth AuthConfig
	// StreamTokens configures the tokens that open one event stream
	// without an API key (POST /v1/jobs/{id}/stream-token).
	StreamTokens StreamTokenConfig
	// CORS says which web origins may call the API from a browser.
	// Defaults to none (no CORS headers at all).
	CORS CORSConfig
	// Console is the operator console at /ui/. Defaults to on.
	Console ConsoleConfig
}

// Route maps an HTTP method and path to jobs forwarded to an upstream.
type Route struct {
	// Name is the route's job type. Required.
	Name string
	// Method is the HTTP method. Defaults to POST.
	Method string
	// Path is the request path. Parameters are whole segments "{id}" or,
	// in echo's syntax, ":id" ("/v1/orders/{id}" and "/v1/orders/:id" are
	// the same route). Required.
	Path string
	// Upstream is the URL the worker calls; path segments "{param}" or
	// ":param" are replaced by the request's value of that path parameter
	// (each must name one). Required.
	Upstream string
	// Queue is the default queue of the route's jobs. Defaults to "default".
	Queue string
	// Priorities are the queues a client may pick with X-Priority.
	// Defaults to every configured queue.
	Priorities []string
	// Timeout bounds each upstream call. Defaults to 10s.
	Timeout time.Duration
	// MaxAttempts is how many times the upstream is tried. Defaults to 8.
	MaxAttempts int
	// Backoff is the retry schedule. Defaults to 1s base, 5m cap.
	Backoff jobs.Backoff
	// MaxBody limits request bodies. Defaults to Config.MaxBody.
	MaxBody int64
	// MaxResponse limits how much of the upstream's answer is kept; a
	// larger answer is recorded as too large, never cut. Defaults to
	// worker.DefaultMaxResponse (10 MiB). The worker applies it
	// (worker.Config.Routes).
	MaxResponse int64
	// Headers are sent on every upstream call (for example credentials).
	// They are never stored with the job nor logged: the worker adds them
	// (worker.Config.Routes).
	Headers map[string]string
	// Idempotency is "optional" or "required" (400 without an
	// Idempotency-Key). Defaults to "optional".
	Idempotency string
	// Ordering is "optional", "required" (400 without an ordering key)
	// or "off" (400 with one): whether writes carry an X-Ordering-Key, by
	// which the jobs of one tenant and key run one at a time, in the order
	// they were accepted. Defaults to "optional".
	Ordering string
	// Schema is a JSON Schema file the body must satisfy. Optional; it
	// needs ContentTypes to take JSON.
	Schema string
	// ContentTypes are the media types the route takes, replacing the
	// default, JSON (application/json and any +json type): "text/plain",
	// "text/*", "*/*"; "application/json" keeps JSON. A body of another
	// type is stored and forwarded as it came (contenttypes.go).
	ContentTypes []string
	// Precheck is called before accepting. Optional.
	Precheck *Precheck
	// RateLimit limits each tenant's requests to this route. Optional.
	RateLimit *ratelimit.Limit
}

// WorkerRoutes are the options a worker needs to call the upstreams of
// routes (worker.Config.Routes), by route name.
func WorkerRoutes(routes []Route) map[string]worker.RouteOptions {
	out := make(map[string]worker.RouteOptions, len(routes))
	for _, r := range routes {
		out[r.Name] = worker.RouteOptions{Headers: r.Headers, MaxResponse: r.MaxResponse}
	}
	return out
}

// Type is a job type handled by a Go handler of the embedding program.
type Type struct {
	// Name is the type's name. Required.
	Name string
	// Queue defaults to "default"; Timeout to 10s; MaxAttempts to 8.
	Queue       string
	Timeout     time.Duration
	MaxAttempts int
	Backoff     jobs.Backoff
}

func (c Config) withDefaults() Config {
	if len(c.Queues) == 0 {
		c.Queues = []string{"critical", "default", "low"}
	}
	c.MaxBody = cmp.Or(c.MaxBody, 1<<20)
	c.Heartbeat = cmp.Or(c.Heartbeat, 15*time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 10*time.Second)
	c.MaxWait = cmp.Or(c.MaxWait, 30*time.Second)
	c.RedisTimeout = cmp.Or(c.RedisTimeout, time.Second)
	c.Console = c.Console.withDefaults()
	c.RedisBreaker.Name = cmp.Or(c.RedisBreaker.Name, "redis")
	c.StreamTokens = c.StreamTokens.withDefaults()
	if c.RedisBreaker.IsFailure == nil {
		c.RedisBreaker.IsFailure = isRedisFailure
	}
	routes := make([]Route, len(c.Routes))
	for i, r := range c.Routes {
		r.Method = strings.ToUpper(cmp.Or(r.Method, http.MethodPost))
		r.Queue = cmp.Or(r.Queue, "default")
		if len(r.Priorities) == 0 {
			r.Priorities = c.Queues
		}
		r.Timeout = cmp.Or(r.Timeout, 10*time.Second)
		r.MaxAttempts = cmp.Or(r.MaxAttempts, 8)
		r.MaxBody = cmp.Or(r.MaxBody, c.MaxBody)
		r.Idempotency = cmp.Or(r.Idempotency, "optional")
		r.Ordering = cmp.Or(r.Ordering, OrderingOptional)
		if r.Precheck != nil {
			pc := *r.Precheck
			pc.Timeout = cmp.Or(pc.Timeout, 2*time.Second)
			r.Precheck = &pc
		}
		routes[i] = r
	}
	c.Routes = routes
	types := make([]Type, len(c.Types))
	for i, t := range c.Types {
		t.Queue = cmp.Or(t.Queue, "default")
		t.Timeout = cmp.Or(t.Timeout, 10*time.Second)
		t.MaxAttempts = cmp.Or(t.MaxAttempts, 8)
		types[i] = t
	}
	c.Types = types
	return c
}

func (c Config) validate() error {
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if err := c.StreamTokens.validate(); err != nil {
		return err
	}
	if err := c.Console.validate(c.Routes); err != nil {
		return err
	}
	if err := c.CORS.validate(); err != nil {
		return err
	}
	queues := map[string]bool{}
	for _, q := range c.Queues {
		queues[q] = true
	}
	names := map[string]bool{}
	paths := map[string]string{} // method and shape: the key that has it
	for i, r := range c.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if !jobs.ValidName(r.Name) {
			return fmt.Errorf("%s.name: %q must be 1-64 letters, digits, '_', '.', '-'", at, r.Name)
		}
		if names[r.Name] {
			return fmt.Errorf("%s.name: %q is used twice", at, r.Name)
		}
		names[r.Name] = true
		if !strings.HasPrefix(r.Path, "/") {
			return fmt.Errorf("%s.path: %q must start with /", at, r.Path)
		}
		if reservedPath(r.Path) {
			return fmt.Errorf("%s.path: %q is reserved by asyncgw", at, r.Path)
		}
		rp, err := parseRoutePath(r.Path)
		if err != nil {
			return fmt.Errorf("%s.path: %w", at, err)
		}
		// "/v1/orders/{id}" and "/v1/orders/:customer" are one route.
		if first, ok := paths[r.Method+" "+rp.shape]; ok {
			return fmt.Errorf("%s.path: %s %s is used twice (also %s)", at, r.Method, r.Path, first)
		}
		paths[r.Method+" "+rp.shape] = fmt.Sprintf("routes[%d].path", i)
		if err := checkUpstream(r.Upstream); err != nil {
			return fmt.Errorf("%s.upstream: %w", at, err)
		}
		if err := checkPlaceholders(r.Upstream, rp); err != nil {
			return fmt.Errorf("%s.upstream: %w", at, err)
		}
		if !queues[r.Queue] {
			return fmt.Errorf("%s.queue: %q is not a configured queue", at, r.Queue)
		}
		for _, p := range r.Priorities {
			if !queues[p] {
				return fmt.Errorf("%s.priorities: %q is not a configured queue", at, p)
			}
		}
		if r.MaxAttempts < 1 || r.MaxAttempts > 100 {
			return fmt.Errorf("%s.max_attempts: %d must be between 1 and 100", at, r.MaxAttempts)
		}
		if r.Idempotency != "optional" && r.Idempotency != "required" {
			return fmt.Errorf("%s.idempotency: %q must be optional or required", at, r.Idempotency)
		}
		if r.Ordering != OrderingOptional && r.Ordering != OrderingRequired && r.Ordering != OrderingOff {
			return fmt.Errorf("%s.ordering: %q must be optional, required or off", at, r.Ordering)
		}
		if r.RateLimit != nil {
			if err := r.RateLimit.Validate(); err != nil {
				return fmt.Errorf("%s.rate_limit.%w", at, err)
			}
		}
		if r.Precheck != nil {
			if err := checkUpstream(r.Precheck.URL); err != nil {
				return fmt.Errorf("%s.precheck.url: %w", at, err)
			}
		}
		if r.Timeout < 0 || r.MaxBody < 0 {
			return fmt.Errorf("%s: timeout and max_body must not be negative", at)
		}
		if r.ContentTypes != nil && len(r.ContentTypes) == 0 {
			return fmt.Errorf("%s.content_types: must list at least one media type (leave it out for JSON)", at)
		}
		if err := checkContentTypes(at, r.ContentTypes); err != nil {
			return err
		}
		if r.Schema != "" && slices.ContainsFunc(r.ContentTypes, func(ct string) bool { return !jobs.IsJSONType(ct) }) {
			return fmt.Errorf("%s.schema: a JSON Schema checks JSON bodies: content_types may list only application/json and +json types with it", at)
		}
	}
	for q, n := range c.QueueLimits {
		if !queues[q] {
			return fmt.Errorf("queue_limits.%s: not a configured queue", q)
		}
		if n < 0 {
			return fmt.Errorf("queue_limits.%s: %d must not be negative", q, n)
		}
	}
	for i, t := range c.Types {
		at := fmt.Sprintf("types[%d]", i)
		if !jobs.ValidName(t.Name) || names[t.Name] {
			return fmt.Errorf("%s.name: %q is invalid or used twice", at, t.Name)
		}
		names[t.Name] = true
		if !queues[t.Queue] {
			return fmt.Errorf("%s.queue: %q is not a configured queue", at, t.Queue)
		}
	}
	return nil
}

// Deps are what the gateway needs from the rest of asyncgw.
type Deps struct {
	// Jobs submits and cancels jobs.
	Jobs Submitter
	// Store reads job records and events.
	Store Reader
	// Hub streams live events.
	Hub Feed
	// Limiter enforces route rate limits. Defaults to an in-process
	// limiter; use ratelimit.NewRedis to share limits between gateways.
	Limiter ratelimit.Limiter
	// Queues reports queue depths for admission and Retry-After
	// estimates (submit.Monitor). Optional: without it there are no depth
	// limits and Retry-After is 1.
	Queues Queues
	// Admin carries out the admin API's actions (admin.Service).
	// Optional: without it there is no admin API.
	Admin Admin
	// Webhooks decides where a job's webhooks go (webhook.Webhooks).
	// Optional: without it a request naming a callback URL is refused.
	Webhooks Callbacks
	// Metrics receives what the gateway counts (telemetry.Metrics).
	// Optional.
	Metrics Metrics
	// MetricsHandler, when set, is served at GET /metrics.
	MetricsHandler http.Handler
	// Upstreams reports the upstream breakers of the worker running in
	// this process, by host, for the console's overview. Optional.
	Upstreams func() map[string]breaker.State
	// Ping reports whether Redis is reachable and takes writes, for
	// /readyz; an error with a Reason() method gives that reason (see
	// RedisReason).
	Ping func(ctx context.Context) error
	// Logger may be nil.
	Logger *slog.Logger
}

// Submitter puts jobs on queues and cancels them (submit.Client).
type Submitter interface {
	// NewID is the ID of a new job of tenant, placed by key: its
	// ordering key when it has one, else its Idempotency-Key ("" for
	// neither).
	NewID(tenant, key string) string
	Submit(ctx context.Context, j *jobs.Job, req *jobs.Request, processAt time.Time) error
	Cancel(ctx context.Context, tenant, id string) (*jobs.Job, error)
}

// Reader reads job records and their events (status.Store).
type Reader interface {
	Get(ctx context.Context, tenant, id string) (*jobs.Job, error)
	Events(ctx context.Context, tenant, id string, after int64) ([]jobs.Event, error)
	// TenantEvents reads a tenant's events after a cursor, across its
	// shards; TenantTail is the cursor at its newest events; ParseCursor
	// reads a cursor (a Last-Event-ID of GET /v1/events).
	TenantEvents(ctx context.Context, tenant, after string, count int64) ([]jobs.Event, error)
	TenantTail(ctx context.Context, tenant string) (string, error)
	ParseCursor(v string) (*status.Cursor, error)
	ResultBody(ctx context.Context, tenant, id string) ([]byte, error)
	Deliveries(ctx context.Context, tenant, id string) ([]*jobs.Job, error)
}

// Callbacks decides where a new job's webhooks go (webhook.Webhooks): the
// URL the request named, else the tenant's, else none (""), with the
// states to report. A refused URL is a *webhook.CallbackError.
type Callbacks interface {
	Callback(tenant, requested string) (string, []jobs.State, error)
}

// Feed hands out live event subscriptions (status.Hub).
type Feed interface {
	SubscribeJob(tenant, id string) *status.Subscription
	SubscribeTenant(tenant string) *status.Subscription
	Ready() bool
}

// Gateway is the HTTP application. A Gateway is one configuration of it:
// Reload builds the next one, and requests are served by the newest while
// those in flight finish on the one they started with.
type Gateway struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	echo    *echo.Echo
	routes  map[string]*Route
	types   map[string]*Type
	keys    keyring
	schemas map[string]*Schema

	prechecks      map[string]*breaker.Breaker
	precheckClient *http.Client

	metrics Metrics
	// openapi is the document GET /openapi.json serves, and its ETag.
	openapi     []byte
	openapiETag string
	// submitPaths are "METHOD path" of the routes that accept writes.
	submitPaths map[string]bool
	// cors answers preflights; nil when no origin is allowed.
	cors *cors
	*life
}

// life is what every configuration of one gateway shares: the one being
// served, the breaker around Redis, and the state of the shutdown.
type life struct {
	current atomic.Pointer[Gateway]
	redis   *breaker.Breaker
	// draining is closed when shutdown begins: /readyz answers 503 from
	// then on, while requests are still served for Config.DrainDelay.
	draining  chan struct{}
	drainOnce sync.Once
	// stopping is closed when the gateway stops serving: event streams and
	// Prefer: wait end then.
	stopping chan struct{}
	stopOnce sync.Once
	// detached counts event streams running apart from their handlers,
	// which the HTTP server's shutdown does not wait for.
	detached sync.WaitGroup
	// tokenKey signs stream tokens when the configuration names no
	// secret: made at start, it outlives reloads.
	tokenKey []byte
	// consoleKey signs console sessions when the configuration gives no
	// key; overviewCache is the console's shared reading of the queues.
	consoleKey    []byte
	overviewCache overviewCache
}

// New builds the gateway.
func New(cfg Config, deps Deps) (*Gateway, error) {
	// A bad configuration is reported first, whatever the deps.
	if err := cfg.withDefaults().validate(); err != nil {
		return nil, err
	}
	if deps.Jobs == nil || deps.Store == nil || deps.Hub == nil {
		return nil, errors.New("gateway: Jobs, Store and Hub are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Limiter == nil {
		local, err := ratelimit.NewLocal(ratelimit.LocalConfig{})
		if err != nil {
			return nil, err
		}
		deps.Limiter = local
	}
	if deps.Metrics == nil {
		deps.Metrics = nopMetrics{}
	}
	rbc := cfg.withDefaults().RedisBreaker
	if rbc.OnChange == nil {
		rbc.OnChange = func(name string, _, to breaker.State) { deps.Metrics.BreakerChanged("redis", name, to) }
	}
	rb, err := breaker.New(rbc, deps.Logger)
	if err != nil {
		return nil, err
	}
	l := &life{redis: rb, draining: make(chan struct{}), stopping: make(chan struct{}), tokenKey: newStreamTokenKey(), consoleKey: newSessionKey()}
	g, err := configure(cfg, deps, l)
	if err != nil {
		return nil, err
	}
	l.current.Store(g)
	return g, nil
}

// Reload makes cfg the gateway's configuration for the requests that
// follow: routes, tenants and keys, schemas, limits and pre-checks. Requests
// and event streams in flight finish on the configuration they started
// with. The breaker around Redis and the shutdown are not reconfigured. An
// invalid cfg is refused and the running configuration kept.
func (g *Gateway) Reload(cfg Config) error {
	next, err := configure(cfg, g.deps, g.life)
	if err != nil {
		return err
	}
	g.current.Store(next)
	return nil
}

// configure builds one configuration of the gateway l serves.
func configure(cfg Config, deps Deps, l *life) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	schemas, err := loadSchemas(cfg.Routes)
	if err != nil {
		return nil, err
	}
	doc, err := buildOpenAPI(cfg, schemas)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg: cfg, deps: deps, log: deps.Logger,
		openapi: doc, openapiETag: openAPIETag(doc),
		routes:  map[string]*Route{},
		types:   map[string]*Type{},
		keys:    cfg.Auth.keyring(),
		schemas: schemas,
		metrics: deps.Metrics,
		submitPaths: map[string]bool{
			http.MethodPost + " /v1/jobs": true,
		},
		life: l,
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		rp, _ := parseRoutePath(r.Path) // validated
		r.Path = rp.echo
		g.routes[r.Name] = r
		g.submitPaths[r.Method+" "+r.Path] = true
	}
	if g.prechecks, err = newPrecheckBreakers(cfg.Routes, g); err != nil {
		return nil, err
	}
	g.precheckClient = &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for i := range cfg.Types {
		g.types[cfg.Types[i].Name] = &cfg.Types[i]
	}
	g.cors = newCORS(cfg.CORS, cfg.Routes)
	g.echo = g.build()
	return g, nil
}

// ServeHTTP makes the gateway an http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-g.draining:
		// While draining, every answer closes its connection, so that the
		// client's next request goes through the balancer, which sees
		// /readyz fail. Idle connections are not closed under a client
		// that may be sending on them.
		w.Header().Set("Connection", "close")
	default:
	}
	g.current.Load().echo.ServeHTTP(w, r)
}

// Serve answers HTTP on ln until ctx is done, then shuts down in the order
// load balancers can follow: /readyz answers 503 at once while requests are
// still served (each answer closing its connection) for DrainDelay; then
// it stops accepting, tells event streams to reconnect elsewhere, ends
// Prefer: wait early with the usual 202, and waits up to ShutdownTimeout
// for the requests in flight.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Answers that may take longer (Prefer: wait, event streams) move
		// their own write deadline.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(g.Stop)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	g.drain()
	cur := g.current.Load()
	if d := cur.cfg.DrainDelay; d > 0 {
		g.log.Info("draining: /readyz answers 503, requests still served", "drain_delay", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("serve http: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cur.cfg.ShutdownTimeout)
	defer cancel()
	g.Stop()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
	}
	// Detached event streams end on Stop, each after at most one write.
	streams := make(chan struct{})
	go func() { g.detached.Wait(); close(streams) }()
	select {
	case <-streams:
	case <-sctx.Done():
		err = cmp.Or(err, sctx.Err())
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// drain makes /readyz report that the gateway is shutting down.
func (g *Gateway) drain() { g.drainOnce.Do(func() { close(g.draining) }) }

// Stop tells open event streams and Prefer: wait requests that the gateway
// is going away, and /readyz that it is shutting down. Serve calls it at
// shutdown; it is safe to call more than once.
func (g *Gateway) Stop() {
	g.drain()
	g.stopOnce.Do(func() { close(g.stopping) })
}

// reservedPath reports whether a route path would take a path of
// asyncgw's own.
func reservedPath(p string) bool {
	for _, prefix := range []string{"/v1/jobs", "/v1/events", "/admin/", "/_demo/"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	switch p {
	case "/healthz", "/readyz", "/metrics", "/openapi.json", "/_demo":
		return true
	}
	return false
}

// checkUpstream validates an upstream URL template.
func checkUpstream(u string) error {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%q must be an absolute http(s) URL", u)
	}
	if _, err := parseURL(u); err != nil {
		return fmt.Errorf("%q: %w", u, err)
	}
	return nil
}
