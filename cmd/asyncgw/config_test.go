package main

import (
	"bytes"
	"context"
	"maps"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/jobs/worker"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// unreachableRedis is a Redis URL nothing answers on: a configuration that
// gets as far as dialing it has passed every check.
const unreachableRedis = "redis://127.0.0.1:1/0"

func TestExampleConfig(t *testing.T) {
	t.Parallel()
	const path = "../../configs/asyncgw.yaml"
	cfg, err := loadConfig(path, env(nil))
	if err != nil {
		t.Fatalf("loadConfig(%s): %v", path, err)
	}
	if cfg.Demo || cfg.Listen != "127.0.0.1:8080" || cfg.RedisURL != "redis://127.0.0.1:6379/0" {
		t.Errorf("demo %v, listen %q, redis %q", cfg.Demo, cfg.Listen, cfg.RedisURL)
	}
	if len(cfg.Worker.Queues) != 4 || cfg.Worker.Queues["webhooks"] != 2 || len(cfg.Gateway.Routes) != 2 || cfg.Gateway.Routes[0].Name != "orders" {
		t.Errorf("queues %v, routes %+v", cfg.Worker.Queues, cfg.Gateway.Routes)
	}
	if o := cfg.Worker.Routes["orders"]; cfg.Gateway.DrainDelay != 5*time.Second || o.MaxResponse != 10<<20 || o.Headers["X-Api-Version"] == "" {
		t.Errorf("drain delay %v, worker options of orders %+v", cfg.Gateway.DrainDelay, o)
	}

	// The parts built from it accept it too: run gets as far as dialing Redis.
	var stdout, stderr bytes.Buffer
	getenv := env(map[string]string{"ASYNCGW_LISTEN": "127.0.0.1:0", "ASYNCGW_REDIS_URL": unreachableRedis})
	err = run(context.Background(), []string{"--config", path}, getenv, &stdout, &stderr)
	if err == nil || !strings.HasPrefix(err.Error(), "redis.url: cannot reach 127.0.0.1:1") {
		t.Fatalf("run with the example config: %v, want it to get as far as dialing Redis", err)
	}
}

// testSecret is a well-formed webhook signing secret.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="

func TestBadConfig(t *testing.T) {
	t.Parallel()
	const route = "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:9/a\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string // over the defaults (listen on port 0, unreachable Redis)
		want string
		// later is set for what only gateway.New, worker.New or
		// status.New catch, after loadConfig.
		later bool
	}{
		{name: "unknown key", yaml: "listen: 127.0.0.1:0\nauthentication:\n  enabled: true\n", want: `line 2: unknown key "authentication"`},
		{name: "unknown nested key", yaml: "worker:\n  concurency: 5\n", want: `line 2: unknown key "worker.concurency"`},
		{name: "unknown route key", yaml: route + "    idempotence: required\n", want: `line 5: unknown key "routes[0].idempotence"`},
		{name: "min_replicas_ack negative", yaml: "redis:\n  min_replicas_ack: -1\n", want: "redis.min_replicas_ack: -1 must be between 0 and 100"},
		{name: "min_replicas_ack without redis", yaml: "redis:\n  min_replicas_ack: 1\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.min_replicas_ack: needs a replicated Redis (redis.url, redis.sentinel or redis.cluster)"},
		{name: "replica_ack_timeout", yaml: "redis:\n  min_replicas_ack: 1\n  replica_ack_timeout: 1m\n", want: `redis.replica_ack_timeout: "1m" must be a duration from 1ms to 10s`},
		{name: "bad idempotency policy", yaml: route + "    idempotency: always\n", want: `routes[0].idempotency: "always" must be optional or required`, later: true},
		{name: "bad ordering policy", yaml: route + "    ordering: strict\n", want: `routes[0].ordering: "strict" must be optional, required or off`, later: true},
		{name: "bad rate limit", yaml: route + "    rate_limit: {rate: 0, burst: 5}\n", want: `routes[0].rate_limit.rate 0: must be a positive number`, later: true},
		{name: "missing schema", yaml: route + "    schema: nowhere.json\n", want: `routes[0].schema: `, later: true},
		{name: "bad precheck url", yaml: route + "    precheck: {url: ftp://x}\n", want: `routes[0].precheck.url: `, later: true},
		{name: "bad tenant weight", yaml: "auth:\n  tenants:\n    - name: acme\n      weight: 101\n", want: `auth.tenants[0].weight: 101 must be from 1 to 100`},
		{name: "bad content type", yaml: route + "    content_types: [text/plain, Text/CSV]\n", want: `routes[0].content_types[1]: "Text/CSV" must be a media type such as text/plain (lower case, no parameters), type/* or */*`, later: true},
		{name: "content type with parameters", yaml: route + "    content_types: [\"text/plain; charset=utf-8\"]\n", want: `routes[0].content_types[0]: "text/plain; charset=utf-8" must be a media type`, later: true},
		{name: "wildcard inside a subtype", yaml: route + "    content_types: [\"application/*+json\"]\n", want: `routes[0].content_types[0]: "application/*+json" must be a media type`, later: true},
		{name: "no content types", yaml: route + "    content_types: []\n", want: `routes[0].content_types: must list at least one media type (leave it out for JSON)`, later: true},
		{name: "schema with text", yaml: route + "    schema: ../../configs/schemas/order.json\n    content_types: [application/json, text/plain]\n", want: `routes[0].schema: a JSON Schema checks JSON bodies: content_types may list only application/json and +json types with it`, later: true},
		{name: "bad rate limit store", yaml: "gateway:\n  rate_limit_store: memcached\n", want: `gateway.rate_limit_store: "memcached" must be local or redis`},
		{name: "bad key digest", yaml: "auth:\n  tenants:\n    - name: acme\n      keys: [{sha256: abc}]\n", want: `auth.tenants[0].keys[0].sha256: must be 64 hex digits`, later: true},
		{name: "auth without tenants", yaml: "auth:\n  enabled: true\n", want: `auth.tenants: at least one tenant`, later: true},
		{name: "bad webhook secret", yaml: "auth:\n  tenants:\n    - name: acme\n      webhook_secret: hunter2\n", want: `auth.tenants[0].webhook_secret: must be whsec_`},
		{name: "bad rotated webhook secret", yaml: "auth:\n  tenants:\n    - name: acme\n      webhook_secrets: [" + testSecret + ", whsec_c2hvcnQ=]\n", want: `auth.tenants[0].webhook_secrets[1]: must be whsec_`},
		{name: "bad default webhook secret", yaml: "webhooks:\n  secrets: [nope]\n", want: `webhooks.secrets[0]: must be whsec_`},
		{name: "webhook url without secret", yaml: "auth:\n  tenants:\n    - name: acme\n      webhook_url: https://hooks.example.com/x\n", want: `auth.tenants[0].webhook_url: needs a signing secret`},
		{name: "private webhook url", yaml: "webhooks:\n  secrets: [" + testSecret + "]\nauth:\n  tenants:\n    - name: acme\n      webhook_url: https://10.1.2.3/x\n", want: `auth.tenants[0].webhook_url: `},
		{name: "http webhook url", yaml: "webhooks:\n  secrets: [" + testSecret + "]\nauth:\n  tenants:\n    - name: acme\n      webhook_url: http://hooks.example.com/x\n", want: `auth.tenants[0].webhook_url: `},
		{name: "bad webhook events", yaml: "webhooks:\n  events: [done]\n", want: `webhooks.events[0]: "done" is not a job state`},
		{name: "bad tenant webhook events", yaml: "auth:\n  tenants:\n    - name: acme\n      webhook_events: [succeeded, ok]\n", want: `auth.tenants[0].webhook_events[1]: "ok" is not a job state`},
		{name: "bad webhook cidr", yaml: "webhooks:\n  allow_cidrs: [10.0.0.0]\n", want: `webhooks.allow_cidrs[0]: "10.0.0.0" is not a CIDR prefix`},
		{name: "bad retry schedule", yaml: "webhooks:\n  retry_schedule: [5s, forever]\n", want: `webhooks.retry_schedule[1]: "forever" must be a duration`},
		{name: "long retry step", yaml: "webhooks:\n  retry_schedule: [72h]\n", want: `webhooks.retry_schedule[0]: "72h" must be a duration from 0s to 48h`},
		{name: "bad webhook timeout", yaml: "webhooks:\n  timeout: 10m\n", want: `webhooks.timeout: "10m" must be a duration from 1s to 5m`},
		{name: "bad webhook queue", yaml: "webhooks:\n  queue: \"a b\"\n", want: `webhooks.queue: "a b" must be`},
		{name: "webhook weight twice", yaml: "queues: {default: 1, webhooks: 2}\nwebhooks:\n  weight: 3\n", want: `webhooks.weight: the queue "webhooks" is configured under queues`},
		{name: "route named webhook", yaml: "routes:\n  - name: webhook\n    path: /a\n    upstream: http://127.0.0.1:9/a\n", want: `routes[0].name: "webhook" is reserved`},
		{name: "short idempotency ttl", yaml: "idempotency:\n  ttl: 10s\n", want: `idempotency.ttl: "10s" must be at least 1m`},
		{name: "queue limit for unknown queue", yaml: "gateway:\n  queue_limits: {nope: 5}\n", want: `queue_limits.nope: not a configured queue`, later: true},
		{name: "unknown webhooks key", yaml: "webhooks:\n  allow_ftp: true\n", want: `line 2: unknown key "webhooks.allow_ftp"`},
		{name: "yaml syntax", yaml: "listen: a\n  b: c\n", want: "line 2: mapping values are not allowed"},
		{name: "key twice", yaml: "listen: a\nlisten: b\n", want: `line 2: mapping key "listen" already defined at line 1`},
		{name: "routes not a list", yaml: "routes: {a: 1}\n", want: "line 1: routes: must be a list, not a mapping"},
		{name: "listen not a string", yaml: "listen: [a, b]\n", want: "line 1: listen: must be a string, not a list"},
		{name: "route timeout", yaml: route + "    timeout: 10 seconds\n", want: `routes[0].timeout: "10 seconds" is not a positive duration`},
		{name: "route timeout negative", yaml: route + "    timeout: -1s\n", want: `routes[0].timeout: "-1s" is not a positive duration`},
		{name: "route backoff", yaml: route + "    backoff: {base: 1s, max: forever}\n", want: `routes[0].backoff.max: "forever" is not a positive duration`},
		{name: "route max_attempts negative", yaml: route + "    max_attempts: -1\n", want: "routes[0].max_attempts: -1 must be at least 1"},
		{name: "route max_attempts not a number", yaml: route + "    max_attempts: many\n", want: `line 5: routes[0].max_attempts: must be an integer, not "many"`},
		{name: "route max_body", yaml: route + "    max_body: 12 parsecs\n", want: `routes[0].max_body: "12 parsecs" is not a size`},
		{name: "route max_response", yaml: route + "    max_response: lots\n", want: `routes[0].max_response: "lots" is not a size`},
		{name: "route max_response zero", yaml: route + "    max_response: 0\n", want: `routes[0].max_response: "0" is not a size`},
		{name: "route max_response too large", yaml: route + "    max_response: 2GiB\n", want: `routes[0].max_response: "2GiB" must be at most 1GiB`},
		{name: "route headers not a mapping", yaml: route + "    headers: [Authorization]\n", want: `line 5: routes[0].headers: must be a mapping, not a list`},
		{name: "route header value not a string", yaml: route + "    headers: {Authorization: [a, b]}\n", want: `line 5: routes[0].headers.Authorization: must be a string, not a list`},
		{name: "route header name", yaml: route + "    headers: {\"Api Key\": x}\n", want: `routes[0].headers: "Api Key" is not a valid header name`},
		{name: "route header empty name", yaml: route + "    headers: {\"\": x}\n", want: `routes[0].headers: "" is not a valid header name`},
		{name: "route header host", yaml: route + "    headers: {host: example.com}\n", want: `routes[0].headers.host: asyncgw or the HTTP connection sets this header`},
		{name: "route header content-length", yaml: route + "    headers: {Content-Length: \"5\"}\n", want: `routes[0].headers.Content-Length: asyncgw or the HTTP connection sets this header`},
		{name: "route header transfer-encoding", yaml: route + "    headers: {Transfer-Encoding: chunked}\n", want: `routes[0].headers.Transfer-Encoding: asyncgw`},
		{name: "route header connection", yaml: route + "    headers: {Connection: close}\n", want: `routes[0].headers.Connection: asyncgw`},
		{name: "route header idempotency-key", yaml: route + "    headers: {Idempotency-Key: k}\n", want: `routes[0].headers.Idempotency-Key: asyncgw`},
		{name: "route header traceparent", yaml: route + "    headers: {traceparent: \"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}\n", want: `routes[0].headers.traceparent: asyncgw`},
		{name: "route header x-asyncgw", yaml: route + "    headers: {x-asyncgw-attempt: \"1\"}\n", want: `routes[0].headers.x-asyncgw-attempt: asyncgw`},
		{name: "route header twice", yaml: route + "    headers: {Authorization: a, authorization: b}\n", want: `routes[0].headers.authorization: the header is given twice`},
		{name: "route header CRLF", yaml: route + "    headers: {X-Token: \"abc\\r\\nX-Evil: 1\"}\n", want: `routes[0].headers.X-Token: the value has a control character`},
		{name: "route header LF", yaml: route + "    headers: {X-Token: \"abc\\ndef\"}\n", want: `routes[0].headers.X-Token: the value has a control character`},
		{name: "route header NUL", yaml: route + "    headers: {X-Token: \"abc\\0\"}\n", want: `routes[0].headers.X-Token: the value has a control character`},
		{name: "route upstream not http", yaml: "routes:\n  - name: a\n    path: /a\n    upstream: ftp://127.0.0.1/a\n", want: `routes[0].upstream: "ftp://127.0.0.1/a" must be an absolute http(s) URL`, later: true},
		{name: "route upstream missing", yaml: "routes:\n  - name: a\n    path: /a\n", want: `routes[0].upstream: "" must be an absolute http(s) URL`, later: true},
		{name: "route name twice", yaml: route + "  - name: a\n    path: /b\n    upstream: http://127.0.0.1:9/b\n", want: `routes[1].name: "a" is used twice`},
		{name: "route name bad", yaml: "routes:\n  - name: my orders\n    path: /a\n    upstream: http://127.0.0.1:9/a\n", want: `routes[0].name: "my orders" must be`, later: true},
		{name: "route path", yaml: "routes:\n  - name: a\n    path: a\n    upstream: http://127.0.0.1:9/a\n", want: `routes[0].path: "a" must start with /`, later: true},
		{name: "route path reserved", yaml: "routes:\n  - name: a\n    path: /v1/jobs/x\n    upstream: http://127.0.0.1:9/a\n", want: `routes[0].path: "/v1/jobs/x" is reserved`, later: true},
		{name: "route path twice", yaml: route + "  - name: b\n    path: /a\n    upstream: http://127.0.0.1:9/b\n", want: "routes[1].path: POST /a is used twice", later: true},
		{name: "route queue", yaml: "queues: {q1: 1}\n" + route, want: `routes[0].queue: "default" is not a configured queue`, later: true},
		{name: "route priorities", yaml: route + "    priorities: [urgent]\n", want: `routes[0].priorities: "urgent" is not a configured queue`, later: true},
		{name: "route max_attempts too many", yaml: route + "    max_attempts: 1000\n", want: "routes[0].max_attempts: 1000 must be between 1 and 100", later: true},
		{name: "queue name", yaml: "queues: {\"de fault\": 1}\n", want: `queues: invalid queue name "de fault"`},
		{name: "queue weight zero", yaml: "queues: {default: 0}\n", want: "queues.default: weight 0 must be between 1 and 1000"},
		{name: "queue weight not a number", yaml: "queues:\n  default: heavy\n", want: `line 2: queues.default: must be an integer, not "heavy"`},
		{name: "worker concurrency negative", yaml: "worker:\n  concurrency: -1\n", want: "worker.concurrency: -1 must be between 1 and 10000"},
		{name: "worker concurrency not a number", yaml: "worker:\n  concurrency: ten\n", want: `line 2: worker.concurrency: must be an integer, not "ten"`},
		{name: "worker fetchers too many", yaml: "worker:\n  fetchers: 65\n", want: "worker.fetchers: 65 must be between 1 and 64"},
		{name: "worker shutdown_timeout", yaml: "worker:\n  shutdown_timeout: soon\n", want: `worker.shutdown_timeout: "soon" is not a positive duration`},
		{name: "worker poll_interval", yaml: "worker:\n  poll_interval: 0s\n", want: `worker.poll_interval: "0s" is not a positive duration`},
		{name: "breaker open_timeout", yaml: "worker:\n  breaker: {open_timeout: never}\n", want: `worker.breaker.open_timeout: "never" is not a positive duration`},
		{name: "breaker window", yaml: "worker:\n  breaker: {window: -1s}\n", want: `worker.breaker.window: "-1s" is not a positive duration`},
		{name: "breaker failure_ratio", yaml: "worker:\n  breaker: {failure_ratio: 1.5}\n", want: "worker.breaker.failure_ratio: 1.5 must be above 0 and at most 1"},
		{name: "breaker min_requests", yaml: "worker:\n  breaker: {min_requests: -3}\n", want: "worker.breaker.min_requests: -3 must be between 1 and 1000000"},
		{name: "breaker consecutive_failures", yaml: "worker:\n  breaker: {consecutive_failures: -1}\n", want: "worker.breaker.consecutive_failures: -1 must be between 1 and 1000000"},
		{name: "breaker probes", yaml: "worker:\n  breaker: {probes: 5000}\n", want: "worker.breaker.probes: 5000 must be between 1 and 1000"},
		{name: "breaker unknown key", yaml: "worker:\n  breaker: {threshold: 3}\n", want: "threshold"},
		{name: "dlq retention", yaml: "dlq:\n  retention: forever\n", want: `dlq.retention: "forever" is not a positive duration`},
		{name: "dlq retention short", yaml: "dlq:\n  retention: 30s\n", want: `dlq.retention: "30s" must be at least 1m`},
		{name: "gateway max_body", yaml: "gateway:\n  max_body: 12 parsecs\n", want: `gateway.max_body: "12 parsecs" is not a size`},
		{name: "gateway heartbeat", yaml: "gateway:\n  heartbeat: 15\n", want: `gateway.heartbeat: "15" is not a positive duration`},
		{name: "gateway shutdown_timeout", yaml: "gateway:\n  shutdown_timeout: -5s\n", want: `gateway.shutdown_timeout: "-5s" is not a positive duration`},
		{name: "gateway drain_delay negative", yaml: "gateway:\n  drain_delay: -1s\n", want: `gateway.drain_delay: "-1s" is not a duration (such as 5s, or 0 for none)`},
		{name: "gateway drain_delay", yaml: "gateway:\n  drain_delay: a while\n", want: `gateway.drain_delay: "a while" is not a duration`},
		{name: "stream token ttl", yaml: "gateway:\n  stream_tokens: {ttl: soon}\n", want: `gateway.stream_tokens.ttl: "soon" is not a positive duration`},
		{name: "stream token ttl too long", yaml: "gateway:\n  stream_tokens: {ttl: 48h}\n", want: "gateway.stream_tokens.ttl: 48h0m0s must be between 1s and 24h", later: true},
		{name: "stream token secret short", yaml: "gateway:\n  stream_tokens: {secret: short}\n", want: "gateway.stream_tokens.secret: must be at least 32 bytes", later: true},
		{name: "cors origin with a path", yaml: "gateway:\n  cors: {allowed_origins: [\"https://app.example.com/\"]}\n", want: "gateway.cors.allowed_origins[0]: \"https://app.example.com/\"", later: true},
		{name: "cors origin from env", env: map[string]string{"ASYNCGW_GATEWAY_CORS_ALLOWED_ORIGINS": "*,https://a.test"}, want: `gateway.cors.allowed_origins[0]: "*" allows every origin and must be the only entry`, later: true},
		{name: "unknown gateway key", yaml: "gateway:\n  drain: 5s\n", want: `line 2: unknown key "gateway.drain"`},
		{name: "records retention", yaml: "records:\n  retention: 30s\n", want: `records.retention: "30s" must be at least 1m`},
		{name: "records stream_max_len", yaml: "records:\n  stream_max_len: -5\n", want: "records.stream_max_len: -5 must be positive"},
		{name: "log format", yaml: "log:\n  format: xml\n", want: `log.format: "xml" must be text or json`},
		{name: "log level", yaml: "log:\n  level: loud\n", want: `log.level: "loud" must be debug, info, warn or error`},
		{name: "redis url", yaml: "redis:\n  url: http://127.0.0.1:6379\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: `redis.url: "http://127.0.0.1:6379" must be a redis://`},
		{name: "redis url unparsable", yaml: "redis:\n  url: redis://127.0.0.1:6379/zero\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.url: redis: invalid database number"},
		{name: "redis prefix", yaml: "redis:\n  prefix: my prefix\n", want: `redis.prefix: "my prefix" must be`},
		{name: "require_durable without redis", yaml: "redis:\n  require_durable: true\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.require_durable: needs redis.url, redis.sentinel or redis.cluster"},
		{name: "redis url and sentinel", yaml: "redis:\n  sentinel: {master_name: m, addrs: [\"127.0.0.1:26379\"]}\n", want: "redis.url, redis.sentinel: give one of them, not both"},
		{name: "sentinel without master_name", yaml: "redis:\n  sentinel: {addrs: [\"127.0.0.1:26379\"]}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.sentinel.master_name: required"},
		{name: "sentinel without addrs", yaml: "redis:\n  sentinel: {master_name: m}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.sentinel.addrs: at least one"},
		{name: "sentinel bad addr", yaml: "redis:\n  sentinel: {master_name: m, addrs: [\"redis://127.0.0.1:26379\"]}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: `redis.sentinel.addrs[0]: "redis://127.0.0.1:26379" must be host:port`},
		{name: "tls on plain url", yaml: "redis:\n  url: redis://127.0.0.1:6379/0\n  tls: {ca_file: ca.pem}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.tls: applies to a rediss:// URL only"},
		{name: "tls enabled with url", yaml: "redis:\n  url: rediss://127.0.0.1:6379/0\n  tls: {enabled: true}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.tls.enabled: with redis.url, TLS is chosen by the scheme"},
		{name: "tls ca_file missing", yaml: "redis:\n  url: rediss://127.0.0.1:6379/0\n  tls: {ca_file: /nowhere/ca.pem}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.tls.ca_file: open /nowhere/ca.pem"},
		{name: "tls without redis", yaml: "redis:\n  tls: {enabled: true}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.tls: needs redis.url, redis.sentinel or redis.cluster"},
		{name: "sentinel tls not enabled", yaml: "redis:\n  sentinel: {master_name: m, addrs: [\"127.0.0.1:26379\"]}\n  tls: {server_name: r.example}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.tls: set redis.tls.enabled: true"},
		{name: "redis url and cluster", yaml: "redis:\n  cluster: {addrs: [\"127.0.0.1:7000\"]}\n", want: "redis.url, redis.cluster: give one of them, not both"},
		{name: "sentinel and cluster", yaml: "redis:\n  sentinel: {master_name: m, addrs: [\"127.0.0.1:26379\"]}\n  cluster: {addrs: [\"127.0.0.1:7000\"]}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.sentinel, redis.cluster: give one of them, not both"},
		{name: "all three forms", yaml: "redis:\n  sentinel: {master_name: m, addrs: [\"127.0.0.1:26379\"]}\n  cluster: {addrs: [\"127.0.0.1:7000\"]}\n", want: "redis.url, redis.sentinel, redis.cluster: give one of them, not all three"},
		{name: "cluster without addrs", yaml: "redis:\n  cluster: {username: u}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.cluster.addrs: at least one node host:port is required"},
		{name: "cluster empty addrs", yaml: "redis:\n  cluster: {addrs: []}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.cluster.addrs: at least one node host:port is required"},
		{name: "cluster bad addr", yaml: "redis:\n  cluster: {addrs: [\"127.0.0.1:7000\", \"redis://127.0.0.1:7001\"]}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: `redis.cluster.addrs[1]: "redis://127.0.0.1:7001" must be host:port`},
		{name: "cluster tls not enabled", yaml: "redis:\n  cluster: {addrs: [\"127.0.0.1:7000\"]}\n  tls: {server_name: r.example}\n", env: map[string]string{"ASYNCGW_REDIS_URL": ""}, want: "redis.tls: set redis.tls.enabled: true to use TLS with redis.cluster"},
		{name: "shards zero is the default, negative is not", yaml: "redis:\n  shards: -1\n", want: "redis.shards: -1 must be between 1 and 1024"},
		{name: "shards too many", yaml: "redis:\n  shards: 1025\n", want: "redis.shards: 1025 must be between 1 and 1024"},
		{name: "shards not a number", yaml: "redis:\n  shards: many\n", want: "redis.shards"},
		{name: "require_durable not a bool", yaml: "redis:\n  require_durable: maybe\n", want: `line 2: redis.require_durable: must be true or false, not "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "asyncgw.yaml", tt.yaml)
			vars := map[string]string{"ASYNCGW_LISTEN": "127.0.0.1:0", "ASYNCGW_REDIS_URL": unreachableRedis}
			for k, v := range tt.env {
				vars[k] = v
			}
			getenv := env(vars)

			_, loadErr := loadConfig(path, getenv)
			switch {
			case tt.later && loadErr != nil:
				t.Errorf("loadConfig: %v, want it to pass (this is caught later)", loadErr)
			case !tt.later && loadErr == nil:
				t.Errorf("loadConfig: no error, want %q", tt.want)
			}

			// What the user sees: run's error, printed as "asyncgw: <err>".
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := run(ctx, []string{"--config", path}, getenv, &stdout, &stderr)
			if err == nil {
				t.Fatalf("run: no error, want %q", tt.want)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if prefix := "config " + path + ": "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if !tt.later && loadErr != nil && loadErr.Error() != msg {
				t.Errorf("loadConfig says %q, run says %q", loadErr, msg)
			}
			if stderr.Len() > 0 || stdout.Len() > 0 {
				t.Errorf("run wrote before failing:\nstdout: %s\nstderr: %s", &stdout, &stderr)
			}
		})
	}
}

func TestConfigEnv(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:9999\nredis:\n  url: redis://file.example:6379/0\n")
	bad := writeFile(t, "bad.yaml", "nonsense: true\n")
	tests := []struct {
		name       string
		path       string
		env        map[string]string
		listen     string
		redisURL   string
		demo       bool
		wantErr    string
		wantConfig string // the file the configuration came from
	}{
		{name: "defaults", listen: "127.0.0.1:8080", demo: true},
		{name: "env without file", env: map[string]string{"ASYNCGW_LISTEN": "127.0.0.1:7000", "ASYNCGW_REDIS_URL": "redis://env.example:6379/1"},
			listen: "127.0.0.1:7000", redisURL: "redis://env.example:6379/1", demo: true},
		{name: "ASYNCGW_CONFIG", env: map[string]string{"ASYNCGW_CONFIG": file},
			listen: "127.0.0.1:9999", redisURL: "redis://file.example:6379/0", wantConfig: file},
		{name: "env over file", env: map[string]string{"ASYNCGW_CONFIG": file, "ASYNCGW_LISTEN": "127.0.0.1:7000", "ASYNCGW_REDIS_URL": "rediss://env.example:6380/2"},
			listen: "127.0.0.1:7000", redisURL: "rediss://env.example:6380/2", wantConfig: file},
		{name: "flag over ASYNCGW_CONFIG", path: file, env: map[string]string{"ASYNCGW_CONFIG": bad},
			listen: "127.0.0.1:9999", redisURL: "redis://file.example:6379/0", wantConfig: file},
		{name: "bad file from ASYNCGW_CONFIG", env: map[string]string{"ASYNCGW_CONFIG": bad}, wantErr: `config ` + bad + `: line 1: unknown key "nonsense"`},
		{name: "missing file", env: map[string]string{"ASYNCGW_CONFIG": "/nonexistent/asyncgw.yaml"}, wantErr: "config: open /nonexistent/asyncgw.yaml: no such file"},
		{name: "bad ASYNCGW_REDIS_URL", env: map[string]string{"ASYNCGW_REDIS_URL": "127.0.0.1:6379"}, wantErr: `config: ASYNCGW_REDIS_URL (redis.url): "127.0.0.1:6379" must be a redis://`},
		{name: "ASYNCGW_REDIS_URL password not quoted", env: map[string]string{"ASYNCGW_REDIS_URL": "http://u:hunter2@redis.example:6379"}, wantErr: `config: ASYNCGW_REDIS_URL (redis.url): "http://u:xxxxx@redis.example:6379" must be a redis://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(tt.path, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadConfig: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.Listen != tt.listen || cfg.RedisURL != tt.redisURL || cfg.Demo != tt.demo || cfg.Path != tt.wantConfig {
				t.Errorf("listen %q, redis %q, demo %v, path %q; want %q, %q, %v, %q",
					cfg.Listen, cfg.RedisURL, cfg.Demo, cfg.Path, tt.listen, tt.redisURL, tt.demo, tt.wantConfig)
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		wantErr    string
		wantStdout string
	}{
		{args: []string{"version"}, wantStdout: "asyncgw " + version + "\n"},
		{args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`},
		{args: []string{"version", "extra"}, wantErr: `version: unexpected argument "extra"`},
		{args: []string{"--no-such-flag"}, wantErr: "unknown flag: --no-such-flag"},
		{args: []string{"--help"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, env(nil), &stdout, &stderr)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("run(%q): %v, want error %q", tt.args, err, tt.wantErr)
			}
			if tt.wantStdout != "" && stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
		})
	}
}

// TestBinaryExit runs the built binary where it must stop: the exit code
// and the one line on stderr are what a user or a supervisor sees.
func TestBinaryExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		stderr     string // the whole of stderr, when oneLine
		oneLine    bool
		lastLine   string // the last line of stderr, when not oneLine
		wantStdout string
	}{
		{name: "version", args: []string{"version"}, code: 0, oneLine: true, wantStdout: "asyncgw " + testVersion + "\n"},
		{name: "unknown key", args: []string{"--config", "testdata/unknown-key.yaml"}, code: 1, oneLine: true,
			stderr: `asyncgw: config testdata/unknown-key.yaml: line 3: unknown key "authentication"` + "\n"},
		{name: "duplicate route", args: []string{"--config", "testdata/duplicate-route.yaml"}, code: 1, oneLine: true,
			stderr: `asyncgw: config testdata/duplicate-route.yaml: routes[1].name: "orders" is used twice` + "\n"},
		{name: "bad duration from ASYNCGW_CONFIG", args: []string{"gateway"}, env: map[string]string{"ASYNCGW_CONFIG": "testdata/bad-timeout.yaml"}, code: 1, oneLine: true,
			stderr: `asyncgw: config testdata/bad-timeout.yaml: routes[0].timeout: "ten seconds" is not a positive duration (such as 10s or 5m)` + "\n"},
		{name: "gateway without redis", args: []string{"gateway"}, code: 1, oneLine: true,
			stderr: `asyncgw: redis.url, redis.sentinel or redis.cluster: required for "gateway" (the embedded Redis lives inside one process; run asyncgw without a command to use it)` + "\n"},
		{name: "worker without redis", args: []string{"worker"}, code: 1, oneLine: true,
			stderr: `asyncgw: redis.url, redis.sentinel or redis.cluster: required for "worker" (the embedded Redis lives inside one process; run asyncgw without a command to use it)` + "\n"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, lastLine: "Run 'asyncgw --help' for usage."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, asyncgwBin, tt.args...)
			cmd.Env = childEnv(tt.env)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if cmd.ProcessState == nil {
				t.Fatalf("run asyncgw: %v", err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, &stderr)
			}
			switch {
			case tt.oneLine && tt.stderr != "" && stderr.String() != tt.stderr:
				t.Errorf("stderr:\n%q\nwant:\n%q", &stderr, tt.stderr)
			case tt.oneLine && strings.Count(stderr.String(), "\n") > 1:
				t.Errorf("stderr is more than one line:\n%s", &stderr)
			case tt.lastLine != "":
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				if last := lines[len(lines)-1]; last != tt.lastLine {
					t.Errorf("last line of stderr %q, want %q", last, tt.lastLine)
				}
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", &stdout, tt.wantStdout)
			}
		})
	}
}

// TestRouteOptions reads the route options the worker applies (headers,
// max_response) and the gateway's drain delay, with their defaults: each
// reaches both the gateway's route and the worker's options for its type.
func TestRouteOptions(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", `gateway:
  drain_delay: 250ms
routes:
  - name: orders
    path: /v1/orders
    upstream: http://127.0.0.1:9/orders
    max_response: 2MiB
    headers:
      authorization: Bearer abc
      X-Api-Version: 7
      X-Empty: ""
  - name: plain
    path: /v1/plain
    upstream: http://127.0.0.1:9/plain
`)
	cfg, err := loadConfig(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.DrainDelay != 250*time.Millisecond {
		t.Errorf("drain delay %v, want 250ms", cfg.Gateway.DrainDelay)
	}
	wantHeaders := map[string]string{"Authorization": "Bearer abc", "X-Api-Version": "7", "X-Empty": ""}
	orders, plain := cfg.Gateway.Routes[0], cfg.Gateway.Routes[1]
	if !maps.Equal(orders.Headers, wantHeaders) || orders.MaxResponse != 2<<20 {
		t.Errorf("gateway route orders: headers %q, max_response %d; want %q, %d", orders.Headers, orders.MaxResponse, wantHeaders, 2<<20)
	}
	if plain.Headers != nil || plain.MaxResponse != worker.DefaultMaxResponse {
		t.Errorf("gateway route plain: headers %q, max_response %d; want none, %d", plain.Headers, plain.MaxResponse, worker.DefaultMaxResponse)
	}
	if o := cfg.Worker.Routes["orders"]; !maps.Equal(o.Headers, wantHeaders) || o.MaxResponse != 2<<20 {
		t.Errorf("worker options of orders: %+v", o)
	}
	if o, ok := cfg.Worker.Routes["plain"]; !ok || o.Headers != nil || o.MaxResponse != worker.DefaultMaxResponse {
		t.Errorf("worker options of plain: %+v (%v)", o, ok)
	}

	// The defaults: 5s with a file, none for the demo (no balancer
	// follows it) unless asked for.
	cfg, err = loadConfig(writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:0\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.DrainDelay != 5*time.Second {
		t.Errorf("default drain delay %v, want 5s", cfg.Gateway.DrainDelay)
	}
	if cfg, err = loadConfig("", env(nil)); err != nil || cfg.Gateway.DrainDelay != 0 {
		t.Errorf("the demo's drain delay %v (%v), want none", cfg.Gateway.DrainDelay, err)
	}
	if cfg, err = loadConfig("", env(map[string]string{"ASYNCGW_GATEWAY_DRAIN_DELAY": "2s"})); err != nil || cfg.Gateway.DrainDelay != 2*time.Second {
		t.Errorf("the demo's drain delay with ASYNCGW_GATEWAY_DRAIN_DELAY=2s: %v (%v)", cfg.Gateway.DrainDelay, err)
	}
	for _, v := range []string{"0", "0s"} {
		cfg, err = loadConfig(writeFile(t, "asyncgw.yaml", "gateway:\n  drain_delay: "+v+"\n"), env(nil))
		if err != nil || cfg.Gateway.DrainDelay != 0 {
			t.Errorf("drain_delay: %s gives %v (%v), want 0", v, cfg.Gateway.DrainDelay, err)
		}
	}
}

// TestRouteHeaderErrorsHideValues: a header value is often a credential,
// so an error about it names the key but never shows the value.
func TestRouteHeaderErrorsHideValues(t *testing.T) {
	t.Parallel()
	for _, v := range []string{`"s3cret\r\nX-Evil: 1"`, `"s3cret\0"`, `"s3cret\u007f"`} {
		path := writeFile(t, "asyncgw.yaml", "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:9/a\n    headers: {X-Token: "+v+"}\n")
		_, err := loadConfig(path, env(nil))
		if err == nil || !strings.Contains(err.Error(), "routes[0].headers.X-Token: ") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("value %s: %v, want an error naming routes[0].headers.X-Token without the value", v, err)
		}
	}
}

// TestReplicaAckConfig: redis.min_replicas_ack and redis.replica_ack_timeout
// reach the stores, with the documented default, and give an accept's
// Redis work room for the wait.
func TestReplicaAckConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		yaml     string
		env      map[string]string
		min      int
		timeout  time.Duration
		redisCap time.Duration
	}{
		{yaml: "redis:\n  url: redis://127.0.0.1:1/0\n"},
		{yaml: "redis:\n  url: redis://127.0.0.1:1/0\n  min_replicas_ack: 1\n", min: 1, timeout: 200 * time.Millisecond, redisCap: 1200 * time.Millisecond},
		{yaml: "redis:\n  url: redis://127.0.0.1:1/0\n  min_replicas_ack: 2\n  replica_ack_timeout: 50ms\n", min: 2, timeout: 50 * time.Millisecond, redisCap: 1050 * time.Millisecond},
		{yaml: "redis:\n  url: redis://127.0.0.1:1/0\n", env: map[string]string{"ASYNCGW_REDIS_MIN_REPLICAS_ACK": "1", "ASYNCGW_REDIS_REPLICA_ACK_TIMEOUT": "300ms"},
			min: 1, timeout: 300 * time.Millisecond, redisCap: 1300 * time.Millisecond},
	} {
		cfg, err := loadConfig(writeFile(t, "asyncgw.yaml", tt.yaml), env(tt.env))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if cfg.MinReplicasAck != tt.min || cfg.Status.MinReplicasAck != tt.min || cfg.Status.ReplicaAckTimeout != tt.timeout || cfg.Gateway.RedisTimeout != tt.redisCap {
			t.Errorf("%q %v: min %d/%d, timeout %s, gateway redis timeout %s; want %d, %s, %s", tt.yaml, tt.env,
				cfg.MinReplicasAck, cfg.Status.MinReplicasAck, cfg.Status.ReplicaAckTimeout, cfg.Gateway.RedisTimeout, tt.min, tt.timeout, tt.redisCap)
		}
	}
}

// TestFairnessConfig: fairness is on unless fairness.enabled is false, and
// tenants' weights reach the store (a tenant without one has weight 1).
func TestFairnessConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		yaml    string
		fifo    bool
		weights map[string]int
	}{
		{yaml: "listen: 127.0.0.1:0\n"},
		{yaml: "fairness:\n  enabled: false\n", fifo: true},
		{yaml: "fairness:\n  enabled: true\nauth:\n  tenants:\n    - name: acme\n      weight: 3\n    - name: globex\n", weights: map[string]int{"acme": 3}},
	} {
		cfg, err := loadConfig(writeFile(t, "asyncgw.yaml", tt.yaml), env(nil))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if cfg.Status.FIFO != tt.fifo || !maps.Equal(cfg.Status.TenantWeights, tt.weights) {
			t.Errorf("%q: FIFO %v, weights %v; want %v, %v", tt.yaml, cfg.Status.FIFO, cfg.Status.TenantWeights, tt.fifo, tt.weights)
		}
	}
}
