package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/telemetry"
	"github.com/asyncgw/asyncgw/jobs/submit"
	"github.com/asyncgw/asyncgw/status"
)

// The accept benchmarks drive the whole echo application (middleware,
// authentication, body checks, schema validation, Idempotency-Key, and
// storing the job in Redis) through ServeHTTP, on the shared Redis server,
// with a key prefix and a queue of their own. The requests are built by hand
// and the ResponseWriter is reused, so that what is measured is the
// gateway, not an HTTP client or server.
//
//	go test -run '^$' -bench 'BenchmarkAccept' -benchmem ./gateway

// benchAPIKey is the API key of the benchmark's tenant; the gateway knows
// only its digest.
const benchAPIKey = "agw_benchmark_7c1e9a4f03b2d5866e0f"

// benchOrder is a body the order schema (configs/schemas/order.json)
// accepts.
const benchOrder = `{"sku":"A-1042","quantity":3,"note":"leave at the door"}`

// benchCase is one kind of write.
type benchCase struct {
	name string
	path string
	body []byte
	// idempotent requests carry an Idempotency-Key of their own.
	idempotent bool
}

var benchCases = []benchCase{
	{name: "route", path: "/v1/orders", body: []byte(benchOrder)},
	{name: "route_idempotency", path: "/v1/orders", body: []byte(benchOrder), idempotent: true},
	{name: "generic", path: "/v1/jobs", body: []byte(`{"type":"orders","payload":` + benchOrder + `}`)},
}

// Header values shared by every request (nothing in the gateway changes a
// header's values in place).
var (
	benchAuth        = []string{"Bearer " + benchAPIKey}
	benchContentType = []string{"application/json"}
	benchAccept      = []string{"application/json"}
	benchUserAgent   = []string{"orders-service/2.4.1 (go-http-client)"}
)

// benchGateway is a gateway configured as in production: authentication
// on (three tenants), a route with a JSON Schema, Prometheus metrics (on
// Redis commands too), a JSON logger at level info (writing to
// io.Discard) and a started Hub.
type benchGateway struct {
	g *Gateway
	// seq numbers the Idempotency-Keys.
	seq atomic.Uint64
}

func newBenchGateway(b *testing.B) *benchGateway { return newTestGateway(b, nil) }

// newTestGateway is newBenchGateway for tests, with tune, when not nil,
// changing the configuration and dependencies before the gateway is made.
func newTestGateway(b testing.TB, tune func(*Config, *Deps)) *benchGateway {
	b.Helper()
	opts, err := redis.ParseURL(redistest.Shared(b).URL())
	if err != nil {
		b.Fatal(err)
	}
	// As cmd/asyncgw configures the accept path's pool.
	opts.PoolSize = 64
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries, opts.DialerRetries = -1, 1
	rdb := redis.NewClient(opts)
	metrics := telemetry.NewMetrics("bench")
	rdb.AddHook(metrics.RedisHook())

	prefix, queue := redistest.Prefix(b), redistest.Queue(b, "default")
	store, err := status.New(status.Config{Prefix: prefix}, rdb)
	if err != nil {
		b.Fatal(err)
	}
	client := submit.New(rdb, store, nil)
	hub := status.NewHub(rdb, store, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hub.Start(ctx); err != nil {
		_ = rdb.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = hub.Stop(ctx)
		// The queue and every key under the prefix: nothing is left
		// behind on a shared server.
		aq := store.Space().Queue(0, queue)
		_ = client.Inspector().DeleteQueue(aq, true)
		for _, match := range []string{prefix + ":*", "asynq:{" + aq + "}:*"} {
			iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				if keys = append(keys, iter.Val()); len(keys) == 1000 {
					_ = rdb.Unlink(ctx, keys...).Err()
					keys = keys[:0]
				}
			}
			if len(keys) > 0 {
				_ = rdb.Unlink(ctx, keys...).Err()
			}
		}
		_ = rdb.Close()
	})

	tenants := []Tenant{
		{Name: "globex", KeySHA256: []string{benchDigest("agw_other_tenant_key_1"), benchDigest("agw_other_tenant_key_2")}},
		{Name: "acme", KeySHA256: []string{benchDigest(benchAPIKey)}},
		{Name: "ops", Admin: true, KeySHA256: []string{benchDigest("agw_admin_key")}},
	}
	cfg := Config{
		Queues: []string{queue},
		Routes: []Route{{
			Name: "orders", Path: "/v1/orders", Upstream: "http://127.0.0.1:9/orders",
			Queue: queue, Schema: "../configs/schemas/order.json",
		}},
		Auth: AuthConfig{Enabled: true, Tenants: tenants},
	}
	deps := Deps{
		Jobs: client, Store: store, Hub: hub, Metrics: metrics,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if tune != nil {
		tune(&cfg, &deps)
	}
	g, err := New(cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Stop)
	return &benchGateway{g: g}
}

func benchDigest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

// request returns a request of bc as a client would send it.
func (bg *benchGateway) request(bc *benchCase) *http.Request {
	h := http.Header{
		"Authorization": benchAuth,
		"Content-Type":  benchContentType,
		"Accept":        benchAccept,
		"User-Agent":    benchUserAgent,
	}
	if bc.idempotent {
		h["Idempotency-Key"] = []string{`"bench-` + strconv.FormatUint(bg.seq.Add(1), 10) + `"`}
	}
	return &http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: bc.path}, RequestURI: bc.path,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: "gateway.test", RemoteAddr: "192.0.2.10:40512",
		Body: io.NopCloser(bytes.NewReader(bc.body)), ContentLength: int64(len(bc.body)),
	}
}

// benchWriter is a ResponseWriter that keeps the status and body of one
// answer and is reset for the next.
type benchWriter struct {
	header http.Header
	code   int
	body   []byte
}

func newBenchWriter() *benchWriter { return &benchWriter{header: http.Header{}} }

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.code, w.body = 0, w.body[:0]
}

// serve sends one request of bc and reports whether it was accepted (202).
func (bg *benchGateway) serve(w *benchWriter, bc *benchCase) bool {
	w.reset()
	bg.g.ServeHTTP(w, bg.request(bc))
	return w.code == http.StatusAccepted
}

// BenchmarkAccept measures one accepted write, one request after the
// other.
func BenchmarkAccept(b *testing.B) {
	bg := newBenchGateway(b)
	for i := range benchCases {
		bc := &benchCases[i]
		b.Run(bc.name, func(b *testing.B) {
			w := newBenchWriter()
			b.ReportAllocs()
			for b.Loop() {
				if !bg.serve(w, bc) {
					b.Fatalf("status %d, want 202: %s", w.code, w.body)
				}
			}
		})
	}
}

// benchParallelism is how many requests per GOMAXPROCS are in flight at
// once in BenchmarkAcceptParallel: a gateway spends most of an accept
// waiting for Redis.
const benchParallelism = 8

// BenchmarkAcceptParallel measures accepted writes made concurrently
// (benchParallelism × GOMAXPROCS at a time); ns/op is wall time divided by
// the number of requests.
func BenchmarkAcceptParallel(b *testing.B) {
	bg := newBenchGateway(b)
	for i := range benchCases {
		bc := &benchCases[i]
		b.Run(bc.name, func(b *testing.B) {
			var failed atomic.Bool
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				w := newBenchWriter()
				for pb.Next() {
					if !bg.serve(w, bc) {
						if !failed.Swap(true) {
							b.Errorf("status %d, want 202: %s", w.code, w.body)
						}
						return
					}
				}
			})
		})
	}
}
