package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/memredis"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/status"
)

// demo is asyncgw running in the example's process, as `asyncgw` with no
// configuration runs it: a gateway and a worker on an embedded Redis,
// with a route POST /v1/orders to a small orders service that answers
// 201.
type demo struct {
	// URL is the gateway's base URL.
	URL   string
	close []func()
}

// startDemo starts a demo; it panics when it cannot.
func startDemo() *demo {
	d := &demo{}
	must := func(err error) {
		if err != nil {
			d.Close()
			panic(fmt.Sprintf("demo: %v", err))
		}
	}
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"order":"o-1042"}`)
	}))
	d.close = append(d.close, orders.Close)
	mr, err := memredis.Start()
	must(err)
	d.close = append(d.close, mr.Close)
	opts, err := redis.ParseURL(mr.URL())
	must(err)
	rdb := redis.NewClient(opts)
	d.close = append(d.close, func() { _ = rdb.Close() })
	store, err := status.New(status.Config{Prefix: "demo", PlainPubSub: true}, rdb)
	must(err)
	ctx := context.Background()
	hub := status.NewHub(rdb, store, nil)
	must(hub.Start(ctx))
	d.close = append(d.close, func() { _ = hub.Stop(ctx) })
	w, err := worker.New(worker.Config{Queues: map[string]int{"default": 1}, TaskCheckInterval: 10 * time.Millisecond}, rdb, store, nil, nil)
	must(err)
	must(w.Start(ctx))
	d.close = append(d.close, func() { _ = w.Stop(ctx) })
	g, err := gateway.New(gateway.Config{
		Queues: []string{"default"},
		Routes: []gateway.Route{{Name: "orders", Path: "/v1/orders", Upstream: orders.URL + "/orders"}},
	}, gateway.Deps{Jobs: submit.New(rdb, store, nil), Store: store, Hub: hub})
	must(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() { _ = g.Serve(sctx, ln); close(served) }()
	// Stopped first: the gateway, then what it uses.
	d.close = append(d.close, func() { cancel(); <-served })
	d.URL = "http://" + ln.Addr().String()
	return d
}

// Close stops the demo.
func (d *demo) Close() {
	for i := len(d.close) - 1; i >= 0; i-- {
		d.close[i]()
	}
}
