package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v5"
	"github.com/redis/go-redis/v9"
)

// The servers below run as child processes of the harness (or on their
// own, for k6): each prints "listening on <addr>" once it accepts
// connections, and stops on SIGINT or SIGTERM.

// serve runs h on addr until a signal, announcing the address.
func serve(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Printf("listening on %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// upstream is the service behind the gateway: it answers every request
// with 200 and a small JSON body after delay, with at most limit requests
// in progress (0: no limit); the rest wait their turn, as in a service
// whose pool is full.
type upstream struct {
	delay time.Duration
	slots chan struct{}
	// onCall, when set, sees each call as its answer is written.
	onCall func(r *http.Request, answered time.Time)
	// gate, when set, holds every call until it is closed.
	gate chan struct{}
}

func newUpstream(delay time.Duration, limit int) *upstream {
	u := &upstream{delay: delay}
	if limit > 0 {
		u.slots = make(chan struct{}, limit)
	}
	return u
}

var okBody = []byte(`{"ok":true}` + "\n")

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if u.slots != nil {
		select {
		case u.slots <- struct{}{}:
			defer func() { <-u.slots }()
		case <-ctx.Done():
			return
		}
	}
	if u.gate != nil {
		select {
		case <-u.gate:
		case <-ctx.Done():
			return
		}
	}
	if u.delay > 0 {
		t := time.NewTimer(u.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(okBody)
	if u.onCall != nil {
		u.onCall(r, time.Now())
	}
}

// upstreamCmd: bench upstream -listen ADDR [-delay D] [-concurrency N].
func upstreamCmd(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9001", "address to listen on")
	delay := fs.Duration("delay", 0, "time each answer takes")
	limit := fs.Int("concurrency", 0, "requests served at once; the rest wait (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return serve(*listen, newUpstream(*delay, *limit))
}

// glueCmd: bench glue -listen ADDR -redis URL -queue Q [-upstream URL
// -concurrency N -fetchers F]. The baseline: what a team would write by hand
// with echo and asynq — decode the JSON body, enqueue it, answer 202 with
// the task ID. No auth, no idempotency, no job record, no events. With
// -upstream, its workers run in the same process (glueWorkers).
func glueCmd(args []string) error {
	fs := flag.NewFlagSet("glue", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	redisURL := fs.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	queue := fs.String("queue", "glue", "asynq queue")
	target := fs.String("upstream", "", "also run workers that POST each task's payload to this URL")
	concurrency := fs.Int("concurrency", 50, "tasks the workers run at once (with -upstream)")
	fetchers := fs.Int("fetchers", 1, "asynq servers sharing the concurrency, each with its own fetch loop (with -upstream)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if *target != "" {
		srvs, err := glueWorkers(rdb, *queue, *target, *concurrency, *fetchers)
		if err != nil {
			return err
		}
		defer func() {
			for _, srv := range srvs {
				srv.Shutdown()
			}
		}()
	}
	client := asynq.NewClientFromRedisClient(rdb)
	e := echo.New()
	e.POST("/v1/work", func(c *echo.Context) error {
		var body map[string]any
		if err := json.NewDecoder(c.Request().Body).Decode(&body); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
		}
		payload, err := json.Marshal(body)
		if err != nil {
			return err
		}
		info, err := client.EnqueueContext(c.Request().Context(), asynq.NewTask("work", payload), asynq.Queue(*queue))
		if err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		}
		return c.JSON(http.StatusAccepted, map[string]string{"id": info.ID})
	})
	return serve(*listen, e)
}

// glueWorkers are the baseline's workers, as a team would write them with
// asynq: each task's payload is POSTed to url, and anything but a 2xx is
// an error for asynq to retry. The task ID goes in X-Asyncgw-Job-Id, as
// the gateway sends its job ID, so the bench's upstream counts both alike.
// Tasks are looked for every 10 ms, as the gateway's workers are set to.
func glueWorkers(rdb *redis.Client, queue, url string, concurrency, fetchers int) ([]*asynq.Server, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, IdleConnTimeout: time.Minute}}
	handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(t.Payload()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Asyncgw-Job-Id", t.ResultWriter().TaskID())
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("upstream: %s", resp.Status)
		}
		return nil
	})
	var srvs []*asynq.Server
	for i := range fetchers {
		n := concurrency / fetchers
		if i < concurrency%fetchers {
			n++
		}
		srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency: n, Queues: map[string]int{queue: 1},
			TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.WarnLevel,
		})
		if err := srv.Start(handler); err != nil {
			for _, s := range srvs {
				s.Shutdown()
			}
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	return srvs, nil
}

// proxyCmd: bench proxy -listen ADDR -upstream URL. The synchronous
// alternative: a reverse proxy that holds each client until the upstream
// answers.
func proxyCmd(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	target := fs.String("upstream", "", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-upstream %q: need an absolute URL", *target)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	return serve(*listen, rp)
}

// jobUpstream is an upstream that notes when each job's call (by
// X-Asyncgw-Job-Id) was first answered; when gated, its calls wait until
// release.
type jobUpstream struct {
	*upstream
	mu       sync.Mutex
	answered map[string]time.Time
	once     sync.Once
}

func newJobUpstream(gated bool) *jobUpstream {
	u := &jobUpstream{upstream: newUpstream(0, 0), answered: map[string]time.Time{}}
	if gated {
		u.gate = make(chan struct{})
	}
	u.onCall = func(r *http.Request, at time.Time) {
		id := r.Header.Get("X-Asyncgw-Job-Id")
		u.mu.Lock()
		if _, ok := u.answered[id]; !ok {
			u.answered[id] = at
		}
		u.mu.Unlock()
	}
	return u
}

// release lets the held calls of a gated upstream through.
func (u *jobUpstream) release() {
	u.once.Do(func() {
		if u.gate != nil {
			close(u.gate)
		}
	})
}

func (u *jobUpstream) answeredAt(id string) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.answered[id]
	return t, ok
}

// span is when the first and the last job were answered.
func (u *jobUpstream) span() (first, last time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, at := range u.answered {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}

// jobs counts the jobs answered so far, and those answered in [from, to).
func (u *jobUpstream) jobs(from, to time.Time) (all, between int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, at := range u.answered {
		if !at.Before(from) && at.Before(to) {
			between++
		}
	}
	return len(u.answered), between
}
