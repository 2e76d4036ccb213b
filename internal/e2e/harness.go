// Package e2e tests asyncgw's HTTP contract end to end, in one process: a
// gateway serving on a real 127.0.0.1 listener, a worker, a real Redis
// (internal/redistest) and an upstream whose behaviour each test scripts.
//
// A Harness isolates itself with its own key prefix and queue names, so
// tests that each start one can run in parallel against the shared Redis.
// Everything it starts is stopped when the test ends.
//
// # Redis modes
//
// The environment chooses the Redis a harness runs on when its test does
// not bring a dedicated server (Options.Redis):
//
//	ASYNCGW_TEST_REDIS=single   one node shared by the test binary
//	                            (redistest.Shared; the default)
//	ASYNCGW_TEST_REDIS=cluster  a Redis Cluster of 3 masters with a replica
//	                            each, shared by the test binary
//	                            (redistest.SharedCluster), reached as
//	                            redis.cluster reaches it (internal/redisconn)
//	ASYNCGW_TEST_SHARDS=n       the store's shard count (status.Config.Shards,
//	                            redis.shards); default 1
//
// `make test` runs this package once on one node and once on the cluster.
package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/admin"
	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/ratelimit"
	"github.com/asyncgw/asyncgw/sse"
	"github.com/asyncgw/asyncgw/status"
	"github.com/asyncgw/asyncgw/upstream"
	"github.com/asyncgw/asyncgw/webhook"
)

// Timeouts that bound every wait of a test, so that nothing hangs.
const (
	// RequestTimeout bounds one plain HTTP exchange with the gateway.
	RequestTimeout = 10 * time.Second
	// StreamTimeout bounds the whole life of one event stream opened by a
	// test.
	StreamTimeout = 30 * time.Second
	// WaitTimeout bounds how long WaitState polls.
	WaitTimeout = 20 * time.Second
	// shutdownTimeout bounds how long stopping a gateway may take.
	shutdownTimeout = 10 * time.Second
)

// TestBackoff is the retry schedule routes get when a test sets none.
var TestBackoff = jobs.Backoff{
	Base: jobs.Duration(10 * time.Millisecond),
	Max:  jobs.Duration(50 * time.Millisecond),
}

// Options configure a Harness.
type Options struct {
	// Routes are the gateway's routes. An Upstream that starts with "/" is
	// a path on the harness's upstream server. Queue defaults to the
	// harness's default queue and Backoff to TestBackoff.
	Routes []gateway.Route
	// Types are job types run by Go handlers; Queue defaults to the
	// harness's default queue and Backoff to TestBackoff.
	Types []gateway.Type
	// Handlers are the worker's Go handlers, by job type.
	Handlers map[string]worker.HandlerFunc
	// Heartbeat is the gateway's heartbeat interval. Defaults to the
	// gateway's own default.
	Heartbeat time.Duration
	// MaxBody is the gateway's default body limit. Defaults to the
	// gateway's own default.
	MaxBody int64
	// Concurrency is the worker's concurrency. Defaults to 10.
	Concurrency int

	// Auth is the gateway's authentication. Defaults to off (every caller
	// is tenant "default").
	Auth gateway.AuthConfig
	// Limiter enforces route rate limits. Defaults to the gateway's
	// in-process limiter.
	Limiter ratelimit.Limiter
	// QueueLimits are depth limits by queue role ("critical", "default",
	// "low"), mapped to the harness's queue names. They only take effect
	// with a Monitor.
	QueueLimits map[string]int
	// Monitor, when positive, starts a submit.Monitor reading the queues at
	// this interval and gives it to every gateway (Deps.Queues).
	Monitor time.Duration
	// MaxWait caps Prefer: wait. Defaults to the gateway's own default.
	MaxWait time.Duration
	// Breaker configures the worker's upstream breakers. Defaults to the
	// worker's own defaults.
	Breaker breaker.Config
	// WorkerHooks are the worker's hooks.
	WorkerHooks worker.Hooks
	// Webhooks, when set, turns webhooks on: the worker gets the delivery
	// sender, a dispatcher runs, and the gateways take callback URLs. The
	// queue is set to one of the harness's own.
	Webhooks *webhook.Config
	// Redis is a dedicated server (redistest.Start) to run on instead of
	// the shared one, for tests that stop or kill it. The harness then
	// talks to it as cmd/asyncgw does: context deadlines honoured, quick
	// dial retries, and a gateway pool that never retries.
	Redis *redistest.Server
	// MinReplicasAck and ReplicaAckTimeout are the stores' (status.Config):
	// writes wait for that many replicas of Redis.
	MinReplicasAck    int
	ReplicaAckTimeout time.Duration
	// Shards is the stores' shard count (status.Config). Defaults to 1.
	Shards int
	// CORS is the gateways' CORS configuration. Defaults to none.
	CORS gateway.CORSConfig
	// UpstreamLimit, when set, is the limit of the harness's upstream host
	// (upstreams:), kept as cmd/asyncgw keeps it: slots given back are
	// handed to held jobs.
	UpstreamLimit *upstream.Limit
	// WorkerLog is the worker's logger. Defaults to none.
	WorkerLog *slog.Logger
}

// Queues are the harness's queue names, unique to it.
type Queues struct {
	Critical, Default, Low string
}

// byRole returns the queue name of a role: "critical", "default" or
// "low"; "" for anything else.
func (q Queues) byRole(role string) string {
	switch role {
	case "critical":
		return q.Critical
	case "default":
		return q.Default
	case "low":
		return q.Low
	}
	return ""
}

// Harness is asyncgw running in the test's process: the first gateway
// (Server), a worker, the upstream, all on one Redis key prefix.
type Harness struct {
	// Server is the first gateway; StartGateway adds more.
	*Server
	// Upstream is the service routes forward to.
	Upstream *Upstream
	// Queues are the queue names gateways and the worker use.
	Queues Queues
	// Prefix is the Redis key prefix of the job records.
	Prefix string
	// Redis is the client every part of the harness shares: a
	// *redis.Client on one node, a cluster client on a cluster.
	Redis redis.UniversalClient
	// Store reads the job records directly.
	Store *status.Store
	// Worker runs the jobs.
	Worker *worker.Worker
	// Monitor reads the queues, when Options.Monitor asked for one.
	Monitor *submit.Monitor
	// Webhooks is the webhook setup, when Options.Webhooks asked for it.
	Webhooks *webhook.Webhooks

	cfg         gateway.Config
	adminQueues []string
	opts        Options
	front       redis.UniversalClient // the gateways' Redis pool
	frontSt     *status.Store         // the gateways' store, on front
}

// Start starts a harness for t: upstream, worker and one gateway. It fails
// t if anything cannot start, Redis included.
func Start(t testing.TB, opts Options) *Harness {
	t.Helper()
	h := &Harness{
		opts:   opts,
		Prefix: redistest.Prefix(t),
		Queues: Queues{
			Critical: redistest.Queue(t, "critical"),
			Default:  redistest.Queue(t, "default"),
			Low:      redistest.Queue(t, "low"),
		},
	}
	env := fromEnv(t)
	switch {
	case opts.Redis == nil && env.cluster:
		h.Redis, h.front = clusterClients(t, redistest.SharedCluster(t))
	default:
		h.Redis, h.front = nodeClients(t, opts.Redis)
	}
	h.Upstream = newUpstream(t)

	scfg := status.Config{Prefix: h.Prefix, Shards: cmp.Or(opts.Shards, env.shards), MinReplicasAck: opts.MinReplicasAck, ReplicaAckTimeout: opts.ReplicaAckTimeout}
	var err error
	h.Store, err = status.New(scfg, h.Redis)
	if err != nil {
		t.Fatalf("e2e: status store: %v", err)
	}
	h.frontSt = h.Store
	if h.front != h.Redis {
		if h.frontSt, err = status.New(scfg, h.front); err != nil {
			t.Fatalf("e2e: status store: %v", err)
		}
	}

	h.cfg = gateway.Config{
		Queues:    []string{h.Queues.Critical, h.Queues.Default, h.Queues.Low},
		Heartbeat: opts.Heartbeat,
		MaxBody:   opts.MaxBody,
		Auth:      opts.Auth,
		MaxWait:   opts.MaxWait,
		CORS:      opts.CORS,
	}
	if opts.MinReplicasAck > 0 {
		h.cfg.RedisTimeout = time.Second + cmp.Or(opts.ReplicaAckTimeout, status.DefaultReplicaAckTimeout)
	}
	for role, n := range opts.QueueLimits {
		q := h.Queues.byRole(role)
		if q == "" {
			t.Fatalf("e2e: QueueLimits: %q is not a queue role (critical, default, low)", role)
		}
		if h.cfg.QueueLimits == nil {
			h.cfg.QueueLimits = map[string]int{}
		}
		h.cfg.QueueLimits[q] = n
	}
	for _, r := range opts.Routes {
		if strings.HasPrefix(r.Upstream, "/") {
			r.Upstream = h.Upstream.URL + r.Upstream
		}
		if r.Precheck != nil && strings.HasPrefix(r.Precheck.URL, "/") {
			pc := *r.Precheck
			pc.URL = h.Upstream.URL + pc.URL
			r.Precheck = &pc
		}
		if r.Queue == "" {
			r.Queue = h.Queues.Default
		}
		if r.Backoff.Base == 0 && r.Backoff.Max == 0 && r.Backoff.Schedule == nil {
			r.Backoff = TestBackoff
		}
		h.cfg.Routes = append(h.cfg.Routes, r)
	}
	for _, ty := range opts.Types {
		if ty.Queue == "" {
			ty.Queue = h.Queues.Default
		}
		if ty.Backoff.Base == 0 && ty.Backoff.Max == 0 && ty.Backoff.Schedule == nil {
			ty.Backoff = TestBackoff
		}
		h.cfg.Types = append(h.cfg.Types, ty)
	}

	concurrency := opts.Concurrency
	if concurrency == 0 {
		concurrency = 10
	}
	wcfg := worker.Config{
		Queues:          map[string]int{h.Queues.Critical: 6, h.Queues.Default: 3, h.Queues.Low: 1},
		Concurrency:     concurrency,
		ShutdownTimeout: 5 * time.Second,
		UpstreamBreaker: opts.Breaker,
		Hooks:           opts.WorkerHooks,
		Routes:          gateway.WorkerRoutes(h.cfg.Routes),
	}
	h.adminQueues = h.cfg.Queues
	if opts.Webhooks != nil {
		wc := *opts.Webhooks
		wc.Queue = redistest.Queue(t, "webhooks")
		if h.Webhooks, err = webhook.New(wc); err != nil {
			t.Fatalf("e2e: webhooks: %v", err)
		}
		wcfg.Queues[wc.Queue] = 2
		wcfg.Senders = map[string]worker.Sender{webhook.Kind: webhook.NewSender(h.Webhooks, h.Store, nil, nil)}
		h.adminQueues = append(slices.Clone(h.cfg.Queues), wc.Queue)
	}
	// The worker process's own event hub, through which it hears of
	// queued jobs, as cmd/asyncgw wires it.
	workerHub := status.NewHub(h.Redis, h.Store, nil)
	wcfg.Wake = workerHub.Wake()
	if err := workerHub.Start(context.Background()); err != nil {
		t.Fatalf("e2e: worker's event hub: %v", err)
	}
	t.Cleanup(func() { _ = workerHub.Stop(context.Background()) })
	if opts.UpstreamLimit != nil {
		u, _ := url.Parse(h.Upstream.URL)
		wcfg.Limits, err = upstream.New(h.Redis, upstream.Config{Prefix: h.Prefix, HandOff: worker.LimitHandOff,
			Limits: map[string]upstream.Limit{u.Host: *opts.UpstreamLimit}}, opts.WorkerLog)
		if err != nil {
			t.Fatalf("e2e: upstream limits: %v", err)
		}
	}
	h.Worker, err = worker.New(wcfg, h.Redis, h.Store, nil, opts.WorkerLog)
	if err != nil {
		t.Fatalf("e2e: worker: %v", err)
	}
	for typ, fn := range opts.Handlers {
		h.Worker.Handle(typ, fn)
	}
	if err := h.Worker.Start(context.Background()); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	t.Cleanup(func() {
		testutil.Within(t, 15*time.Second, "worker stop", func() { _ = h.Worker.Stop(context.Background()) })
	})
	if h.Webhooks != nil {
		d := webhook.NewDispatcher(h.Webhooks, h.Store, submit.New(h.Redis, h.Store, nil), nil)
		_ = d.Start(context.Background())
		t.Cleanup(func() {
			testutil.Within(t, shutdownTimeout, "dispatcher stop", func() { _ = d.Stop(context.Background()) })
		})
	}

	if opts.Monitor > 0 {
		h.Monitor = submit.NewMonitor(submit.MonitorConfig{Queues: h.cfg.Queues, Interval: opts.Monitor},
			submit.New(h.Redis, h.Store, nil), nil)
		_ = h.Monitor.Start(context.Background())
		t.Cleanup(func() {
			testutil.Within(t, shutdownTimeout, "monitor stop", func() { _ = h.Monitor.Stop(context.Background()) })
		})
	}

	h.Server = h.StartGateway(t)

	// Runs first: let every held upstream call go, so that the worker and
	// the upstream server can stop.
	t.Cleanup(h.Upstream.release)
	return h
}

// Server is one gateway serving on its own listener, with its own Hub.
type Server struct {
	// URL is the gateway's base URL, http://127.0.0.1:port.
	URL string
	// Gateway is the application.
	Gateway *gateway.Gateway
	// Hub is this gateway's event fan-out.
	Hub *status.Hub

	client *http.Client
	// key, when set, is sent as "Authorization: Bearer <key>" on every
	// request that does not carry its own Authorization.
	key string
	run *serverRun
}

// serverRun is the serving goroutine of a gateway, shared by the views
// As returns.
type serverRun struct {
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error
}

// StartGateway starts another gateway on the harness's Redis, prefix and
// queues, with a Hub of its own, as a second gateway process would.
func (h *Harness) StartGateway(t testing.TB) *Server {
	t.Helper()
	return h.StartGatewayAt(t, "127.0.0.1:0")
}

// StartGatewayAt is StartGateway listening on addr: the address of a
// gateway that was shut down starts it again there, as a restarted
// process would.
func (h *Harness) StartGatewayAt(t testing.TB, addr string) *Server {
	t.Helper()
	hub := status.NewHub(h.Redis, h.Store, nil)
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	if err := hub.Start(ctx); err != nil {
		t.Fatalf("e2e: hub: %v", err)
	}
	t.Cleanup(func() {
		testutil.Within(t, shutdownTimeout, "hub stop", func() { _ = hub.Stop(context.Background()) })
	})

	client := submit.New(h.front, h.frontSt, nil)
	deps := gateway.Deps{
		Jobs:    client,
		Admin:   admin.New(h.frontSt, client, h.adminQueues, admin.Hooks{}, nil),
		Store:   h.frontSt,
		Hub:     hub,
		Limiter: h.opts.Limiter,
		Ping:    func(ctx context.Context) error { return h.Redis.Ping(ctx).Err() },
	}
	if h.Monitor != nil {
		deps.Queues = h.Monitor
	}
	if h.Webhooks != nil {
		deps.Webhooks = h.Webhooks
	}
	g, err := gateway.New(h.cfg, deps)
	if err != nil {
		t.Fatalf("e2e: gateway: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("e2e: listen: %v", err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	s := &Server{
		URL:     "http://" + ln.Addr().String(),
		Gateway: g,
		Hub:     hub,
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		run:     &serverRun{cancel: scancel, done: make(chan error, 1)},
	}
	go func() { s.run.done <- g.Serve(sctx, ln) }()
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("e2e: gateway shutdown: %v", err)
		}
		s.client.CloseIdleConnections()
	})
	return s
}

// As returns a view of the gateway that calls it with an API key
// ("Authorization: Bearer <key>"); "" calls without one.
func (s *Server) As(key string) *Server {
	v := *s
	v.key = key
	return &v
}

// Shutdown cancels the gateway's Serve context, as a signal would, and
// returns what Serve returned. It fails if Serve does not return within
// the shutdown bound. Later calls return the same result.
func (s *Server) Shutdown() error {
	r := s.run
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case r.stopErr = <-r.done:
		case <-time.After(shutdownTimeout + 5*time.Second):
			r.stopErr = errors.New("Serve did not return after its context was canceled")
		}
	})
	return r.stopErr
}

// Response is a gateway answer read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends one request to the gateway and reads the whole answer. body
// may be nil; header may be nil.
func (s *Server) Do(t testing.TB, method, path string, body []byte, header http.Header) *Response {
	t.Helper()
	r, err := s.Send(method, path, body, header)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return r
}

// Send is Do for goroutines other than the test's: it returns the error
// instead of failing the test.
func (s *Server) Send(method, path string, body []byte, header http.Header) (*Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	s.authorize(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if checkResponse != nil {
		err = checkResponse(s, req, r) // a mismatch fails the caller like a lost answer
	}
	return r, err
}

// checkResponse, when set, checks every answer Send reads from the gateway
// s (openapi_test.go sets it); its error becomes Send's.
var checkResponse func(s *Server, req *http.Request, r *Response) error

// authorize adds the view's API key to req unless it has its own
// Authorization.
func (s *Server) authorize(req *http.Request) {
	if s.key != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
}

// PostJSON posts body as application/json.
func (s *Server) PostJSON(t testing.TB, path, body string) *Response {
	t.Helper()
	return s.Do(t, http.MethodPost, path, []byte(body), http.Header{"Content-Type": {"application/json"}})
}

// Submit posts body as application/json to path, requires a 202 and
// returns the job ID.
func (s *Server) Submit(t testing.TB, path, body string) string {
	t.Helper()
	r := s.PostJSON(t, path, body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST %s: status %d, want 202; body %s", path, r.Status, r.Body)
	}
	var a gateway.Accepted
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("POST %s: decode 202 body %q: %v", path, r.Body, err)
	}
	if !jobs.ValidID(a.ID) {
		t.Fatalf("POST %s: job id %q is not a valid job id", path, a.ID)
	}
	return a.ID
}

// Job gets the job resource, requiring a 200.
func (s *Server) Job(t testing.TB, id string) (*jobs.Job, *Response) {
	t.Helper()
	r := s.Do(t, http.MethodGet, "/v1/jobs/"+id, nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/jobs/%s: status %d, want 200; body %s", id, r.Status, r.Body)
	}
	var j jobs.Job
	if err := json.Unmarshal(r.Body, &j); err != nil {
		t.Fatalf("GET /v1/jobs/%s: decode %q: %v", id, r.Body, err)
	}
	return &j, r
}

// WaitState polls GET /v1/jobs/{id} until the job is in state want and
// returns it. It fails at once when the job ends in another state, and
// after WaitTimeout otherwise.
func (s *Server) WaitState(t testing.TB, id string, want jobs.State) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	Eventually(t, WaitTimeout, func() (bool, string) {
		j, _ = s.Job(t, id)
		if j.State == want {
			return true, ""
		}
		if j.State.Terminal() {
			t.Fatalf("job %s ended %s (attempt %d, error %q), want %s", id, j.State, j.Attempt, j.Error, want)
		}
		return false, fmt.Sprintf("job %s is %s (attempt %d), want %s", id, j.State, j.Attempt, want)
	})
	return j
}

// Eventually calls cond every 10ms until it reports true, and fails t with
// cond's last explanation if that does not happen within timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %s", timeout, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stream is an open event stream.
type Stream struct {
	// Resp is the answer whose body is being read.
	Resp *http.Response
	// Reader parses the body; Raw reads it unparsed. Use one of them.
	Reader *sse.Reader
	cancel context.CancelFunc
}

// Events opens GET path as an event stream (requiring a 200
// text/event-stream answer), sending Last-Event-ID when lastID is not
// empty. The stream is closed when the test ends and can live at most
// StreamTimeout, after which reads fail.
func (s *Server) Events(t testing.TB, path, lastID string) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StreamTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		cancel()
		t.Fatalf("e2e: GET %s: %v", path, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	s.authorize(req)
	resp, err := s.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("e2e: GET %s: %v", path, err)
	}
	st := &Stream{Resp: resp, Reader: sse.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(st.Close)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: status %d, want 200; body %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET %s: Content-Type %q, want text/event-stream", path, ct)
	}
	return st
}

// Next reads the next event, failing t on any error.
func (st *Stream) Next(t testing.TB) sse.Event {
	t.Helper()
	ev, err := st.Reader.Next()
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	return ev
}

// Close ends the stream.
func (st *Stream) Close() {
	st.cancel()
	_ = st.Resp.Body.Close()
}

// Call is one request the upstream received.
type Call struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	// At is when the request arrived.
	At time.Time
	// JobID is the request's Idempotency-Key.
	JobID string
	// Attempt is the request's X-Asyncgw-Attempt.
	Attempt int
}

// Upstream is the service behind the routes: an httptest.Server that
// records every request and answers as the test scripts it.
type Upstream struct {
	// URL is the server's base URL.
	URL string

	srv      *httptest.Server
	released chan struct{}
	once     sync.Once

	mu      sync.Mutex
	handler func(w http.ResponseWriter, r *http.Request, c Call)
	calls   []Call
}

func newUpstream(t testing.TB) *Upstream {
	u := &Upstream{released: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	u.URL = u.srv.URL
	t.Cleanup(u.srv.Close)
	return u
}

// Handle sets how the upstream answers. fn gets the request (its body
// already read into c.Body). Until Handle is called it answers 200 {}.
func (u *Upstream) Handle(fn func(w http.ResponseWriter, r *http.Request, c Call)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler = fn
}

// Released is closed when the test ends. A handler that holds a call open
// must also give up when it is closed, or the harness cannot stop.
func (u *Upstream) Released() <-chan struct{} { return u.released }

func (u *Upstream) release() { u.once.Do(func() { close(u.released) }) }

// Calls returns the requests received for a job, in order.
func (u *Upstream) Calls(jobID string) []Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []Call
	for _, c := range u.calls {
		if c.JobID == jobID {
			out = append(out, c)
		}
	}
	return out
}

// AllCalls returns every request received, in order.
func (u *Upstream) AllCalls() []Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Call(nil), u.calls...)
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	attempt, _ := strconv.Atoi(r.Header.Get("X-Asyncgw-Attempt"))
	c := Call{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, At: time.Now(),
		JobID: r.Header.Get("Idempotency-Key"), Attempt: attempt,
	}
	u.mu.Lock()
	u.calls = append(u.calls, c)
	fn := u.handler
	u.mu.Unlock()
	if fn == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return
	}
	fn(w, r, c)
}

// Keys returns what the harness holds in Redis: every key under its prefix
// and every key of its queues but asynq's daily counters, each with its
// DUMP value. Two equal snapshots mean nothing was written in between.
func (h *Harness) Keys(t testing.TB) map[string]string {
	t.Helper()
	keys := scan(t, h.Redis, h.Prefix+":*")
	for _, q := range h.asynqQueues() {
		for _, k := range scan(t, h.Redis, "asynq:{"+q+"}:*") {
			rest := strings.TrimPrefix(k, "asynq:{"+q+"}:")
			if !strings.HasPrefix(rest, "processed") && !strings.HasPrefix(rest, "failed") {
				keys = append(keys, k)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := h.Redis.Dump(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue // gone since the scan
		}
		if err != nil {
			t.Fatalf("e2e: dump %s: %v", k, err)
		}
		out[k] = v
	}
	return out
}

// JobIDs returns the IDs of tenant's job records in Redis.
func (h *Harness) JobIDs(t testing.TB, tenant string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	var ids []string
	for _, k := range scan(t, h.Redis, h.Prefix+":{*}:j:*") {
		_, id, _ := strings.Cut(k, "}:j:")
		if strings.Contains(id, ":") {
			continue // the job's event list or deliveries
		}
		if owner, err := h.Redis.HGet(ctx, k, "t").Result(); err == nil && owner == tenant {
			ids = append(ids, id)
		}
	}
	return ids
}

// asynqQueues are the asynq queues of the harness's queues, every shard.
func (h *Harness) asynqQueues() []string {
	var out []string
	for _, q := range []string{h.Queues.Critical, h.Queues.Default, h.Queues.Low} {
		out = append(out, h.Store.Space().Queues(q)...)
	}
	return out
}

// AsynqQueue is the asynq queue the task of job id waits on, when the job
// is on queue q.
func (h *Harness) AsynqQueue(q, id string) string { return h.Store.Space().JobQueue(id, q) }

// TaskIDs returns the IDs of the asynq tasks on the harness's queues (a
// job's task ID is its job ID).
func (h *Harness) TaskIDs(t testing.TB) []string {
	t.Helper()
	var ids []string
	for _, q := range h.asynqQueues() {
		base := "asynq:{" + q + "}:t:"
		for _, k := range scan(t, h.Redis, base+"*") {
			ids = append(ids, strings.TrimPrefix(k, base))
		}
	}
	return ids
}
