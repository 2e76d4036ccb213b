package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/jobs"
)

func TestEnvKeys(t *testing.T) {
	t.Parallel()
	byName := map[string]string{}
	for _, k := range envKeys() {
		if other, ok := byName[k.name]; ok {
			t.Errorf("%s names both %s and %s", k.name, other, k.path)
		}
		byName[k.name] = k.path
		if k.name != envName(k.path) {
			t.Errorf("%s: variable %s, want %s", k.path, k.name, envName(k.path))
		}
	}
	for name, path := range map[string]string{
		"ASYNCGW_LISTEN":                      "listen",
		"ASYNCGW_REDIS_URL":                   "redis.url",
		"ASYNCGW_REDIS_REQUIRE_DURABLE":       "redis.require_durable",
		"ASYNCGW_REDIS_SENTINEL_MASTER_NAME":  "redis.sentinel.master_name",
		"ASYNCGW_REDIS_SENTINEL_ADDRS":        "redis.sentinel.addrs",
		"ASYNCGW_REDIS_CLUSTER_ADDRS":         "redis.cluster.addrs",
		"ASYNCGW_REDIS_CLUSTER_USERNAME":      "redis.cluster.username",
		"ASYNCGW_REDIS_CLUSTER_PASSWORD":      "redis.cluster.password",
		"ASYNCGW_REDIS_SHARDS":                "redis.shards",
		"ASYNCGW_REDIS_TLS_CA_FILE":           "redis.tls.ca_file",
		"ASYNCGW_WORKER_CONCURRENCY":          "worker.concurrency",
		"ASYNCGW_WORKER_BREAKER_OPEN_TIMEOUT": "worker.breaker.open_timeout",
		"ASYNCGW_METRICS_LISTEN":              "metrics.listen",
		"ASYNCGW_GATEWAY_MAX_WAIT":            "gateway.max_wait",
		"ASYNCGW_GATEWAY_DRAIN_DELAY":         "gateway.drain_delay",
		"ASYNCGW_AUTH_ENABLED":                "auth.enabled",
		"ASYNCGW_TRACING_SAMPLE_RATIO":        "tracing.sample_ratio",
		"ASYNCGW_RECORDS_STREAM_MAX_LEN":      "records.stream_max_len",
	} {
		if byName[name] != path {
			t.Errorf("%s overrides %q, want %q", name, byName[name], path)
		}
	}
	// Lists, user-named mappings and what is inside them have none; nor
	// does anything take the name of the variable that names the file.
	for name, path := range byName {
		if strings.ContainsAny(path, "[]") || slices.ContainsFunc([]string{"routes", "auth.tenants", "queues", "gateway.queue_limits", "webhooks.secrets"}, func(p string) bool {
			return path == p || strings.HasPrefix(path, p+".")
		}) || name == "ASYNCGW_CONFIG" {
			t.Errorf("%s overrides %s", name, path)
		}
	}
}

// TestEnvKeysMatchFile sets each key once from its variable and once in
// a file: both give the same configuration, so every variable sets the
// key whose path it is named after, whatever its type.
func TestEnvKeysMatchFile(t *testing.T) {
	t.Parallel()
	for _, k := range envKeys() {
		var fromEnv fileConfig
		kind := fieldAlloc(reflect.ValueOf(&fromEnv).Elem(), k.index).Kind()
		value := map[reflect.Kind]string{reflect.Bool: "true", reflect.Float64: "0.5", reflect.String: "x-1"}[kind]
		if value == "" {
			value = "7" // the integers
		}
		if kind == reflect.Slice {
			value = "x-1" // a list of one string
		}
		fromEnv = fileConfig{}
		set, err := applyEnv(&fromEnv, env(map[string]string{k.name: value}))
		if err != nil || len(set) != 1 || set[k.path] != k.name {
			t.Errorf("%s=%s: set %v (%v), want %s", k.name, value, set, err, k.path)
			continue
		}
		// The same key in YAML: a.b.c: v is a: {b: {c: v}}.
		doc := value
		if kind == reflect.Slice {
			doc = "[" + value + "]"
		}
		parts := strings.Split(k.path, ".")
		for i := len(parts) - 1; i >= 0; i-- {
			doc = "{" + parts[i] + ": " + doc + "}"
		}
		var fromFile fileConfig
		if err := decodeYAML([]byte(doc), &fromFile); err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if !reflect.DeepEqual(fromEnv, fromFile) {
			t.Errorf("%s=%s gives\n%+v\nwhile %s gives\n%+v", k.name, value, fromEnv, doc, fromFile)
		}
	}
}

// TestEnvSentinel sets the Sentinel form from the environment alone, the
// sentinels' addresses separated by commas.
func TestEnvSentinel(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", "redis:\n  sentinel: {master_name: file, addrs: [\"10.0.0.1:26379\"]}\n")
	cfg, err := loadConfig(path, env(map[string]string{
		"ASYNCGW_REDIS_SENTINEL_MASTER_NAME":       "mymaster",
		"ASYNCGW_REDIS_SENTINEL_ADDRS":             " 127.0.0.1:26379, 127.0.0.1:26380,,127.0.0.1:26381 ",
		"ASYNCGW_REDIS_SENTINEL_SENTINEL_PASSWORD": "s3cret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.RedisSentinel
	if want := []string{"127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"}; s.MasterName != "mymaster" || !slices.Equal(s.Addrs, want) || s.SentinelPassword != "s3cret" || cfg.RedisURL != "" {
		t.Errorf("sentinel %+v, url %q; want mymaster at %q", s, cfg.RedisURL, want)
	}
	// The URL form from the environment beside the Sentinel form in the
	// file is a conflict, named.
	_, err = loadConfig(path, env(map[string]string{"ASYNCGW_REDIS_URL": "redis://127.0.0.1:6379/0"}))
	if err == nil || !strings.Contains(err.Error(), "redis.url, redis.sentinel: give one of them, not both") {
		t.Errorf("url and sentinel: %v", err)
	}
}

// TestEnvCluster sets the Cluster form and the shard count from the
// environment alone, the nodes' addresses separated by commas.
func TestEnvCluster(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", "redis:\n  cluster: {addrs: [\"10.0.0.1:6379\"]}\n  shards: 4\n")
	cfg, err := loadConfig(path, env(map[string]string{
		"ASYNCGW_REDIS_CLUSTER_ADDRS":    " 127.0.0.1:7000, 127.0.0.1:7001,,127.0.0.1:7002 ",
		"ASYNCGW_REDIS_CLUSTER_USERNAME": "gw",
		"ASYNCGW_REDIS_CLUSTER_PASSWORD": "s3cret",
		"ASYNCGW_REDIS_SHARDS":           "16",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.RedisCluster
	if want := []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}; !slices.Equal(c.Addrs, want) || c.Username != "gw" || c.Password != "s3cret" || cfg.RedisURL != "" || !cfg.redisSet() {
		t.Errorf("cluster %+v, url %q; want %q", c, cfg.RedisURL, want)
	}
	if cfg.Shards != 16 {
		t.Errorf("shards %d, want 16 from ASYNCGW_REDIS_SHARDS", cfg.Shards)
	}
	if cfg, err := loadConfig(path, env(nil)); err != nil || cfg.Shards != 4 || !slices.Equal(cfg.RedisCluster.Addrs, []string{"10.0.0.1:6379"}) {
		t.Errorf("from the file: shards %d, cluster %+v (%v)", cfg.Shards, cfg.RedisCluster, err)
	}
	// The cluster form from the environment alone, with no file.
	cfg, err = loadConfig("", env(map[string]string{"ASYNCGW_REDIS_CLUSTER_ADDRS": "127.0.0.1:7000"}))
	if err != nil || !slices.Equal(cfg.RedisCluster.Addrs, []string{"127.0.0.1:7000"}) || cfg.Shards != 1 {
		t.Errorf("no file: cluster %+v, shards %d (%v)", cfg.RedisCluster, cfg.Shards, err)
	}
	// A bad address and a bad count name their variables.
	_, err = loadConfig(path, env(map[string]string{"ASYNCGW_REDIS_CLUSTER_ADDRS": "127.0.0.1:7000,7001"}))
	if err == nil || !strings.Contains(err.Error(), `ASYNCGW_REDIS_CLUSTER_ADDRS (redis.cluster.addrs[1]): "7001" must be host:port`) {
		t.Errorf("bad address: %v", err)
	}
	_, err = loadConfig(path, env(map[string]string{"ASYNCGW_REDIS_SHARDS": "2000"}))
	if err == nil || !strings.Contains(err.Error(), "ASYNCGW_REDIS_SHARDS (redis.shards): 2000 must be between 1 and 1024") {
		t.Errorf("bad shard count: %v", err)
	}
	// The URL form from the environment beside the Cluster form in the
	// file is a conflict, named.
	_, err = loadConfig(path, env(map[string]string{"ASYNCGW_REDIS_URL": "redis://127.0.0.1:6379/0"}))
	if err == nil || !strings.Contains(err.Error(), "redis.url, redis.cluster: give one of them, not both") {
		t.Errorf("url and cluster: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", `listen: 127.0.0.1:9999
worker:
  concurrency: 50
  breaker: {open_timeout: 30s}
gateway:
  max_wait: 30s
metrics:
  listen: 127.0.0.1:9464
auth:
  enabled: true
  tenants:
    - name: acme
      keys: [{sha256: "02662f67bebc4b43d89c1350730506f31ff02f11ab6ad4178929ca20117fc3dd"}]
`)
	cfg, err := loadConfig(path, env(map[string]string{
		"ASYNCGW_LISTEN":                       "127.0.0.1:7000",
		"ASYNCGW_WORKER_CONCURRENCY":           "7",
		"ASYNCGW_WORKER_BREAKER_OPEN_TIMEOUT":  "5s",
		"ASYNCGW_WORKER_BREAKER_FAILURE_RATIO": "0.25",
		"ASYNCGW_GATEWAY_MAX_WAIT":             "45s",
		"ASYNCGW_GATEWAY_DRAIN_DELAY":          "0",
		"ASYNCGW_METRICS_LISTEN":               "127.0.0.1:9465",
		"ASYNCGW_AUTH_ENABLED":                 "false",
		"ASYNCGW_RECORDS_STREAM_MAX_LEN":       "500",
		"ASYNCGW_LOG_LEVEL":                    "debug",
		// Taken as is: a variable's value is not expanded again.
		"ASYNCGW_TRACING_SERVICE_NAME": "orders-${NOT_EXPANDED}",
		"ASYNCGW_WORKER_FETCHERS":      "", // empty: unset
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"listen": cfg.Listen, "worker.concurrency": cfg.Worker.Concurrency,
		"worker.breaker.open_timeout": cfg.Worker.UpstreamBreaker.OpenTimeout, "worker.breaker.failure_ratio": cfg.Worker.UpstreamBreaker.FailureRatio,
		"gateway.max_wait": cfg.Gateway.MaxWait, "gateway.drain_delay": cfg.Gateway.DrainDelay,
		"metrics.listen": cfg.MetricsListen, "auth.enabled": cfg.Gateway.Auth.Enabled, "auth.tenants": len(cfg.Gateway.Auth.Tenants),
		"records.stream_max_len": cfg.Status.StreamMaxLen, "log.level": cfg.LogLevel,
		"tracing.service_name": cfg.Tracing.ServiceName, "worker.fetchers": cfg.Worker.Fetchers,
	}
	want := map[string]any{
		"listen": "127.0.0.1:7000", "worker.concurrency": 7,
		"worker.breaker.open_timeout": 5 * time.Second, "worker.breaker.failure_ratio": 0.25,
		"gateway.max_wait": 45 * time.Second, "gateway.drain_delay": time.Duration(0),
		"metrics.listen": "127.0.0.1:9465", "auth.enabled": false, "auth.tenants": 1,
		"records.stream_max_len": int64(500), "log.level": "debug",
		"tracing.service_name": "orders-${NOT_EXPANDED}", "worker.fetchers": 0,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %v (%T), want %v (%T)", k, got[k], got[k], w, w)
		}
	}
}

func TestEnvOverrideErrors(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "asyncgw.yaml", "worker:\n  concurrency: 5\n")
	tests := []struct {
		name, value string
		path        string // "" for the demo configuration
		want        string
	}{
		{"ASYNCGW_WORKER_CONCURRENCY", "ten", file, `config ` + file + `: ASYNCGW_WORKER_CONCURRENCY (worker.concurrency): must be an integer, not "ten"`},
		{"ASYNCGW_WORKER_CONCURRENCY", "-1", file, `config ` + file + `: ASYNCGW_WORKER_CONCURRENCY (worker.concurrency): -1 must be between 1 and 10000`},
		{"ASYNCGW_WORKER_CONCURRENCY", "99999999999999999999", "", `config: ASYNCGW_WORKER_CONCURRENCY (worker.concurrency): must be an integer, not "99999999999999999999"`},
		{"ASYNCGW_AUTH_ENABLED", "yes", "", `config: ASYNCGW_AUTH_ENABLED (auth.enabled): must be true or false, not "yes"`},
		{"ASYNCGW_TRACING_SAMPLE_RATIO", "NaN", "", `config: ASYNCGW_TRACING_SAMPLE_RATIO (tracing.sample_ratio): must be a number, not "NaN"`},
		{"ASYNCGW_TRACING_SAMPLE_RATIO", "2", "", `config: ASYNCGW_TRACING_SAMPLE_RATIO (tracing.sample_ratio): 2 must be from 0 to 1`},
		{"ASYNCGW_WORKER_SHUTDOWN_TIMEOUT", "soon", "", `config: ASYNCGW_WORKER_SHUTDOWN_TIMEOUT (worker.shutdown_timeout): "soon" is not a positive duration (such as 10s or 5m)`},
		{"ASYNCGW_GATEWAY_DRAIN_DELAY", "-5s", "", `config: ASYNCGW_GATEWAY_DRAIN_DELAY (gateway.drain_delay): "-5s" is not a duration (such as 5s, or 0 for none)`},
		{"ASYNCGW_METRICS_LISTEN", "9464", "", `config: ASYNCGW_METRICS_LISTEN (metrics.listen): "9464" must be host:port`},
		{"ASYNCGW_METRICS_PPROF", "true", "", `config: ASYNCGW_METRICS_PPROF (metrics.pprof): needs metrics.listen`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			_, err := loadConfig(tt.path, env(map[string]string{tt.name: tt.value}))
			if err == nil || err.Error() != tt.want && !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("loadConfig: %v\nwant:        %s", err, tt.want)
			}
		})
	}
}

func TestExpandString(t *testing.T) {
	t.Parallel()
	getenv := env(map[string]string{"A": "alpha", "B_2": "b$${x}", "EMPTY": ""})
	tests := []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x${A}y${A}", want: "xalphayalpha"},
		{in: "${A}${B_2}", want: "alphab$${x}"}, // a value is not expanded again
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"},
		{in: "pa$$word $A {A} $", want: "pa$$word $A {A} $"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${EMPTY}", err: "environment variable EMPTY is not set"},
		{in: "${A", err: "${ without a closing }: write ${NAME}, or $${ for a literal ${"},
		{in: "${}", err: `"${}" is not a variable reference: write ${NAME} (letters, digits and _), or $${ for a literal ${`},
		{in: "${1A}", err: `"${1A}" is not a variable reference`},
		{in: "${A:-x}", err: `"${A:-x}" is not a variable reference`},
	}
	for _, tt := range tests {
		got, err := expandString(tt.in, getenv)
		switch {
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("expandString(%q): %q, %v; want error %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("expandString(%q): %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestExpandEnv fills a file's string values from the environment, in
// every kind of place they sit: top-level and nested keys, lists, list
// entries' keys and mapping values.
func TestExpandEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "v2", "order.json"), []byte(`{"type":"object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "asyncgw.yaml")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="
	if err := os.WriteFile(path, []byte(`redis:
  url: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"
webhooks:
  secrets: ["${DEFAULT_SECRET}"]
auth:
  tenants:
    - name: acme
      webhook_secret: ${ACME_SECRET}
routes:
  - name: orders
    path: /v1/orders
    upstream: http://${ORDERS_HOST}/orders
    schema: ${SCHEMA_DIR}/order.json
    headers:
      Authorization: "Bearer ${ORDERS_TOKEN}"
      X-Template: "$${not a variable}"
      X-Price: "$5"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, env(map[string]string{
		"REDIS_PASSWORD": "p@ss", "DEFAULT_SECRET": secret, "ACME_SECRET": secret,
		"ORDERS_HOST": "orders.internal:8080", "SCHEMA_DIR": "v2", "ORDERS_TOKEN": "tok-123",
	}))
	if err != nil {
		t.Fatal(err)
	}
	rt := cfg.Gateway.Routes[0]
	checks := []struct{ key, got, want string }{
		{"redis.url", cfg.RedisURL, "redis://:p@ss@127.0.0.1:6379/0"},
		{"webhooks.secrets[0]", strings.Join(cfg.Webhooks.Secrets, ","), secret},
		{"auth.tenants[0].webhook_secret", strings.Join(cfg.Webhooks.Tenants["acme"].Secrets, ","), secret},
		{"routes[0].upstream", rt.Upstream, "http://orders.internal:8080/orders"},
		// Relative to the file, once expanded.
		{"routes[0].schema", rt.Schema, filepath.Join(dir, "v2", "order.json")},
		{"routes[0].headers.Authorization", rt.Headers["Authorization"], "Bearer tok-123"},
		{"worker: routes[0].headers.Authorization", cfg.Worker.Routes["orders"].Headers["Authorization"], "Bearer tok-123"},
		{"routes[0].headers.X-Template", rt.Headers["X-Template"], "${not a variable}"},
		{"routes[0].headers.X-Price", rt.Headers["X-Price"], "$5"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.key, c.got, c.want)
		}
	}
	if len(rt.Headers) != 3 {
		t.Errorf("headers %q", rt.Headers)
	}
}

func TestExpandEnvErrors(t *testing.T) {
	t.Parallel()
	const route = "routes:\n  - name: orders\n    path: /v1/orders\n    upstream: http://127.0.0.1:9/orders\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string // after "config <path>: "
	}{
		{name: "missing header variable", yaml: route + "    headers: {Authorization: \"Bearer ${ORDERS_TOKEN}\"}\n",
			want: "routes[0].headers.Authorization: environment variable ORDERS_TOKEN is not set"},
		{name: "empty variable", yaml: "redis:\n  url: ${REDIS_URL}\n", env: map[string]string{"REDIS_URL": ""},
			want: "redis.url: environment variable REDIS_URL is not set"},
		{name: "missing in a list", yaml: "webhooks:\n  secrets: [" + testSecret + ", \"${OLD_SECRET}\"]\n",
			want: "webhooks.secrets[1]: environment variable OLD_SECRET is not set"},
		{name: "missing in a tenant", yaml: "auth:\n  tenants:\n    - name: acme\n      webhook_secret: ${ACME_SECRET}\n",
			want: "auth.tenants[0].webhook_secret: environment variable ACME_SECRET is not set"},
		{name: "unclosed", yaml: "log:\n  level: ${LEVEL\n", want: "log.level: ${ without a closing }"},
		{name: "bad name", yaml: "routes:\n  - name: orders\n    upstream: http://${ORDERS HOST}/\n", want: `routes[0].upstream: "${ORDERS HOST}" is not a variable reference`},
		// Keys are never expanded: were it, X-ok would be a good name.
		{name: "key", yaml: route + "    headers: {\"X-${NOT_A_KEY}\": v}\n", env: map[string]string{"NOT_A_KEY": "ok"},
			want: `routes[0].headers: "X-${NOT_A_KEY}" is not a valid header name`},
		// Numbers and booleans are not strings: ASYNCGW_ variables set them.
		{name: "integer", yaml: "worker:\n  concurrency: ${CONCURRENCY}\n", env: map[string]string{"CONCURRENCY": "5"},
			want: `line 2: worker.concurrency: must be an integer, not "${CONCURRENCY}"`},
		// A header value from the environment is checked like one in the file.
		{name: "header CRLF from the environment", yaml: route + "    headers: {X-Token: \"${TOKEN}\"}\n", env: map[string]string{"TOKEN": "a\r\nX-Evil: 1"},
			want: "routes[0].headers.X-Token: the value has a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "asyncgw.yaml", tt.yaml)
			_, err := loadConfig(path, env(tt.env))
			if want := "config " + path + ": " + tt.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("loadConfig: %v\nwant:        %s", err, want)
			}
		})
	}
}

// TestExpandEnvRedacts: an error about a value that a variable filled in
// quotes the value as written in the file, never the secret.
func TestExpandEnvRedacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml, secret, want string
	}{
		{"redis:\n  url: \"${REDIS_URL}\"\n", "redis.example:6379/hunter2",
			`redis.url: "${REDIS_URL}" must be a redis://`},
		{"routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:9/a\n    max_response: \"${SIZE}\"\n", "hunter2",
			`routes[0].max_response: "${SIZE}" is not a size`},
		{"routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:9/a\n    headers: {X-Key: \"k-${KEY}\"}\n", "hunter2\n",
			`routes[0].headers.X-Key: the value has a control character`},
	}
	for _, tt := range tests {
		path := writeFile(t, "asyncgw.yaml", tt.yaml)
		vars := map[string]string{"REDIS_URL": tt.secret, "SIZE": tt.secret, "KEY": tt.secret}
		_, err := loadConfig(path, env(vars))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("loadConfig: %v, want %q without the secret", err, tt.want)
		}
	}
}

// TestEnvOverExpansion: a key set by its ASYNCGW_ variable is not
// expanded, so a ${VAR} it replaces need not be set.
func TestEnvOverExpansion(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", "redis:\n  url: \"${REDIS_URL}\"\n")
	if _, err := loadConfig(path, env(nil)); err == nil || !strings.Contains(err.Error(), "redis.url: environment variable REDIS_URL is not set") {
		t.Fatalf("without either variable: %v", err)
	}
	cfg, err := loadConfig(path, env(map[string]string{"ASYNCGW_REDIS_URL": "redis://127.0.0.1:6390/0"}))
	if err != nil || cfg.RedisURL != "redis://127.0.0.1:6390/0" {
		t.Fatalf("with ASYNCGW_REDIS_URL: %v, %v", cfg, err)
	}
}

// TestLoadConfigAgain: loading is a function of the file and getenv only,
// so a reload sees the environment it is given, and nothing is left over
// from an earlier load.
func TestLoadConfigAgain(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", "routes:\n  - name: a\n    path: /a\n    upstream: http://127.0.0.1:9/a\n    headers: {Authorization: \"Bearer ${TOKEN}\"}\n")
	for _, tt := range []struct {
		token       string
		concurrency int
	}{{"one", 5}, {"two", 0}, {"one", 7}} {
		vars := map[string]string{"TOKEN": tt.token}
		if tt.concurrency != 0 {
			vars["ASYNCGW_WORKER_CONCURRENCY"] = strconv.Itoa(tt.concurrency)
		}
		cfg, err := loadConfig(path, env(vars))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Worker.Routes["a"].Headers["Authorization"]; got != "Bearer "+tt.token || cfg.Worker.Concurrency != tt.concurrency {
			t.Errorf("%+v: header %q, concurrency %d", tt, got, cfg.Worker.Concurrency)
		}
	}
}

// TestBinaryEnvErrors runs the built binary where the environment makes
// the configuration bad: one line on stderr names the variable, and the
// exit code is 1.
func TestBinaryEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		stderr string
	}{
		{name: "unset variable", args: []string{"--config", "testdata/env-token.yaml"},
			stderr: "asyncgw: config testdata/env-token.yaml: routes[0].headers.Authorization: environment variable ORDERS_TOKEN is not set\n"},
		{name: "bad override", args: []string{"worker", "--config", "testdata/env-token.yaml"}, env: map[string]string{"ORDERS_TOKEN": "t", "ASYNCGW_WORKER_CONCURRENCY": "ten"},
			stderr: `asyncgw: config testdata/env-token.yaml: ASYNCGW_WORKER_CONCURRENCY (worker.concurrency): must be an integer, not "ten"` + "\n"},
		{name: "bad override without a file", args: []string{"gateway"}, env: map[string]string{"ASYNCGW_GATEWAY_MAX_WAIT": "forever"},
			stderr: `asyncgw: config: ASYNCGW_GATEWAY_MAX_WAIT (gateway.max_wait): "forever" is not a positive duration (such as 10s or 5m)` + "\n"},
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
			_ = cmd.Run()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
				t.Errorf("exit: %v, want code 1", cmd.ProcessState)
			}
			if stderr.String() != tt.stderr || stdout.Len() > 0 {
				t.Errorf("stderr:\n%q\nwant:\n%q\nstdout: %q", &stderr, tt.stderr, &stdout)
			}
		})
	}
}

// TestOneFileGatewayAndWorker runs a gateway and a worker process on one
// host from one file that sets metrics.listen: the worker, given the same
// address, cannot start; with ASYNCGW_METRICS_LISTEN it serves its
// metrics elsewhere and runs what the gateway accepts, with the
// concurrency that ASYNCGW_WORKER_CONCURRENCY sets.
func TestOneFileGatewayAndWorker(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	metricsAddr := freeAddr(t)
	config := writeFile(t, "asyncgw.yaml", readFile(t, s.config)+"metrics:\n  listen: "+metricsAddr+"\n")

	gw := startAsyncgw(t, nil, "gateway", "--config", config)
	base := gw.baseURL(t)
	gw.waitLog(t, `msg="metrics listening" addr=http://`+metricsAddr+"/metrics", 10*time.Second)

	// The same file alone: the worker wants the gateway's metrics address.
	clash := startAsyncgw(t, nil, "worker", "--config", config)
	if code := clash.wait(t, 30*time.Second); code != 1 {
		t.Errorf("worker on the gateway's metrics address exited %d, want 1", code)
	}
	if want := "metrics.listen: listen tcp " + metricsAddr + ": bind: address already in use"; !strings.Contains(clash.stderr.String(), want) {
		t.Errorf("worker on the gateway's metrics address said:\n%s\nwant %q", clash.stderr.String(), want)
	}

	wk := startAsyncgw(t, map[string]string{"ASYNCGW_METRICS_LISTEN": "127.0.0.1:0", "ASYNCGW_WORKER_CONCURRENCY": "3"}, "worker", "--config", config)
	log := wk.waitLog(t, "workers started", 30*time.Second)
	if !strings.Contains(log, "concurrency=3") {
		t.Errorf("ASYNCGW_WORKER_CONCURRENCY=3 not applied:\n%s", log)
	}
	m := regexp.MustCompile(`msg="metrics listening" addr=(http://\S+)`).FindStringSubmatch(log)
	if m == nil || strings.Contains(m[1], metricsAddr) {
		t.Fatalf("worker metrics listener: %q, want one of its own:\n%s", m, log)
	}

	id := postJob(t, base+"/v1/work", `{"sku":"A-1"}`)
	if j := waitEnded(t, base, s, []string{id}, 30*time.Second, gw, wk)[id]; j.State != jobs.StateSucceeded {
		t.Errorf("job %+v, want succeeded", j)
	}
	wk.waitLog(t, "job_id="+id, 10*time.Second)
	// Both listeners answer, each for its own process.
	for _, u := range []string{"http://" + metricsAddr + "/metrics", m[1]} {
		resp, err := httpClient.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	if gw.exited() || wk.exited() {
		t.Errorf("gateway exited %v, worker exited %v", gw.exited(), wk.exited())
	}
}

// freeAddr is a 127.0.0.1 address that is free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
