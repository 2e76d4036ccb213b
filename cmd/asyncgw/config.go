package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/asyncgw/asyncgw/breaker"
	"github.com/asyncgw/asyncgw/gateway"
	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/internal/telemetry"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/jobs/worker"
	"github.com/asyncgw/asyncgw/ratelimit"
	"github.com/asyncgw/asyncgw/status"
	ups "github.com/asyncgw/asyncgw/upstream"
	"github.com/asyncgw/asyncgw/webhook"
)

// fileConfig is the YAML configuration as written. Durations and sizes are
// strings here so that a bad one is reported with its key.
type fileConfig struct {
	Listen  string         `yaml:"listen"`
	Redis   redisConfig    `yaml:"redis"`
	Queues  map[string]int `yaml:"queues"`
	Worker  workerConfig   `yaml:"worker"`
	Gateway gatewayConfig  `yaml:"gateway"`
	Records recordsConfig  `yaml:"records"`
	DLQ     dlqConfig      `yaml:"dlq"`
	Log     logConfig      `yaml:"log"`
	Routes  []routeConfig  `yaml:"routes"`
	Auth    authConfig     `yaml:"auth"`
	// Idempotency holds the Idempotency-Key policy.
	Idempotency idempotencyConfig `yaml:"idempotency"`
	Webhooks    webhooksConfig    `yaml:"webhooks"`
	Metrics     metricsConfig     `yaml:"metrics"`
	Tracing     tracingConfig     `yaml:"tracing"`
	// Upstreams are the limits of upstream hosts, by host or host:port
	// (upstreams.go).
	Upstreams map[string]upstreamConfig `yaml:"upstreams"`
	Fairness  fairnessConfig            `yaml:"fairness"`
}

// fairnessConfig is how a queue's workers are shared among tenants.
type fairnessConfig struct {
	// Enabled: new jobs wait in fair lines, where tenants are taken in
	// turn (status/fair.go). false: in accept order whatever the tenant.
	// Default true.
	Enabled *bool `yaml:"enabled"`
}

type metricsConfig struct {
	// Listen, when set, serves /metrics on a listener of its own (and not
	// on the gateway's); a worker process serves metrics only then.
	Listen string `yaml:"listen"`
	// Pprof adds Go's profiler (/debug/pprof/) to that listener.
	Pprof bool `yaml:"pprof"`
}

type tracingConfig struct {
	Enabled     bool    `yaml:"enabled"`
	Endpoint    string  `yaml:"endpoint"`
	ServiceName string  `yaml:"service_name"`
	SampleRatio float64 `yaml:"sample_ratio"`
}

type authConfig struct {
	Enabled bool           `yaml:"enabled"`
	Tenants []tenantConfig `yaml:"tenants"`
}

type tenantConfig struct {
	Name  string      `yaml:"name"`
	Admin bool        `yaml:"admin"`
	Keys  []keyConfig `yaml:"keys"`
	// Weight is the tenant's share of each queue's workers against a
	// tenant of weight 1, while both have jobs waiting (fairness), from 1
	// to 100. Defaults to 1.
	Weight int `yaml:"weight"`
	// WebhookSecret signs the tenant's webhooks; WebhookSecrets, several
	// at once, during a rotation (both may be given).
	WebhookSecret  string   `yaml:"webhook_secret"`
	WebhookSecrets []string `yaml:"webhook_secrets"`
	// WebhookURL is where the tenant's jobs report when the request
	// names no callback URL.
	WebhookURL    string   `yaml:"webhook_url"`
	WebhookEvents []string `yaml:"webhook_events"`
}

type keyConfig struct {
	SHA256 string `yaml:"sha256"`
}

type idempotencyConfig struct {
	TTL string `yaml:"ttl"`
}

type webhooksConfig struct {
	AllowHTTP            bool     `yaml:"allow_http"`
	AllowPrivateNetworks bool     `yaml:"allow_private_networks"`
	AllowCIDRs           []string `yaml:"allow_cidrs"`
	// Secrets sign the webhooks of tenants without secrets of their own.
	Secrets       []string `yaml:"secrets"`
	Events        []string `yaml:"events"`
	Queue         string   `yaml:"queue"`
	Weight        int      `yaml:"weight"`
	RetrySchedule []string `yaml:"retry_schedule"`
	Timeout       string   `yaml:"timeout"`
}

type rateLimitConfig struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

type precheckConfig struct {
	URL     string `yaml:"url"`
	Timeout string `yaml:"timeout"`
}

type redisConfig struct {
	URL string `yaml:"url"`
	// Sentinel names the master of a Sentinel deployment, in place of
	// url.
	Sentinel redisSentinelConfig `yaml:"sentinel"`
	// Cluster names the nodes of a Redis Cluster, in place of url and
	// sentinel. A pointer, so that a section with no addrs is an error
	// rather than no section.
	Cluster *redisClusterConfig `yaml:"cluster"`
	// TLS sets the certificate authorities and server name for rediss://
	// and for Sentinel and Cluster with tls.enabled.
	TLS    redisTLSConfig `yaml:"tls"`
	Prefix string         `yaml:"prefix"`
	// Shards is how many shards (hash tags) a tenant's jobs are spread
	// over, from 1 to 1024. Default 1. Fixed for the life of a
	// deployment's data.
	Shards int `yaml:"shards"`
	// RequireDurable makes a Redis that fails the durability check at
	// start-up a fatal error rather than a warning.
	RequireDurable bool `yaml:"require_durable"`
	// AsynqDirect lets asyncgw write asynq's tasks in its accept script
	// and serve asynq's dequeue and Done in batches (internal/keyspace/
	// asynq.go), when the asynq linked in is the version that file
	// describes. false keeps to asynq's public API. Default true.
	AsynqDirect *bool `yaml:"asynq_direct"`
	// MinReplicasAck is how many replicas must confirm (Redis WAIT) an
	// accept before its 202, and every state change a worker records.
	// Default 0: none, no WAIT is sent.
	MinReplicasAck int `yaml:"min_replicas_ack"`
	// ReplicaAckTimeout bounds that wait; an accept not confirmed in time
	// answers 503 replica-ack-timeout. Default 200ms.
	ReplicaAckTimeout string `yaml:"replica_ack_timeout"`
}

type redisSentinelConfig struct {
	MasterName string `yaml:"master_name"`
	// Addrs are the sentinels' host:port; ASYNCGW_REDIS_SENTINEL_ADDRS
	// takes them separated by commas.
	Addrs            []string `yaml:"addrs" env:"list"`
	Username         string   `yaml:"username"`
	Password         string   `yaml:"password"`
	SentinelPassword string   `yaml:"sentinel_password"`
}

type redisClusterConfig struct {
	// Addrs are cluster nodes' host:port, usually every master;
	// ASYNCGW_REDIS_CLUSTER_ADDRS takes them separated by commas.
	Addrs    []string `yaml:"addrs" env:"list"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
}

type redisTLSConfig struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

type workerConfig struct {
	Concurrency     int           `yaml:"concurrency"`
	Fetchers        int           `yaml:"fetchers"`
	ShutdownTimeout string        `yaml:"shutdown_timeout"`
	PollInterval    string        `yaml:"poll_interval"`
	RecoverInterval string        `yaml:"recover_interval"`
	Breaker         breakerConfig `yaml:"breaker"`
}

// breakerConfig tunes the circuit breaker kept per upstream host.
type breakerConfig struct {
	Window              string  `yaml:"window"`
	MinRequests         int     `yaml:"min_requests"`
	FailureRatio        float64 `yaml:"failure_ratio"`
	ConsecutiveFailures int     `yaml:"consecutive_failures"`
	OpenTimeout         string  `yaml:"open_timeout"`
	Probes              int     `yaml:"probes"`
}

type dlqConfig struct {
	// Retention is how long a dead job stays in the dead-letter queue;
	// empty or "0": until it is replayed or deleted.
	Retention string `yaml:"retention"`
}

type gatewayConfig struct {
	MaxBody         string `yaml:"max_body"`
	Heartbeat       string `yaml:"heartbeat"`
	ShutdownTimeout string `yaml:"shutdown_timeout"`
	// DrainDelay is how long a stopping gateway keeps serving while
	// /readyz answers 503; "0": none. Defaults to 5s.
	DrainDelay  string         `yaml:"drain_delay"`
	MaxWait     string         `yaml:"max_wait"`
	QueueLimits map[string]int `yaml:"queue_limits"`
	// RateLimitStore is "local" (per process) or "redis" (shared).
	RateLimitStore string `yaml:"rate_limit_store"`
	// StreamTokens: gateway.StreamTokenConfig.
	StreamTokens streamTokensConfig `yaml:"stream_tokens"`
	// CORS: gateway.CORSConfig.
	CORS corsConfig `yaml:"cors"`
	// UI is the operator console.
	UI uiConfig `yaml:"ui"`
}

type streamTokensConfig struct {
	// Secret signs stream tokens; every gateway process behind one
	// balancer needs the same. Defaults to a random key per process.
	Secret string `yaml:"secret"`
	// TTL is how long a token opens its stream. Defaults to 5m.
	TTL string `yaml:"ttl"`
}

type corsConfig struct {
	// AllowedOrigins are the web origins that may call the API, or "*".
	// Defaults to none (no CORS headers).
	AllowedOrigins []string `yaml:"allowed_origins" env:"list"`
}

// uiConfig is gateway.ui: the operator console (gateway.ConsoleConfig).
type uiConfig struct {
	// Enabled serves the console. Defaults to true.
	Enabled *bool `yaml:"enabled"`
	// Path is where it is served. Defaults to /ui/.
	Path string `yaml:"path"`
	// SessionTTL is how long a sign-in lasts. Defaults to 12h.
	SessionTTL string `yaml:"session_ttl"`
	// SessionKey signs session cookies: at least 32 characters, the same
	// on every gateway that shares sessions. Defaults to a random key per
	// process (sessions end at a restart).
	SessionKey string `yaml:"session_key"`
}

type recordsConfig struct {
	Retention    string `yaml:"retention"`
	StreamMaxLen int64  `yaml:"stream_max_len"`
	// IndexRetention is how long a job stays listable (GET /v1/jobs)
	// after it was accepted. Defaults to twice retention.
	IndexRetention string `yaml:"index_retention"`
}

type logConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

type backoffConfig struct {
	Base string `yaml:"base"`
	Max  string `yaml:"max"`
}

type routeConfig struct {
	Name        string        `yaml:"name"`
	Method      string        `yaml:"method"`
	Path        string        `yaml:"path"`
	Upstream    string        `yaml:"upstream"`
	Queue       string        `yaml:"queue"`
	Priorities  []string      `yaml:"priorities"`
	Timeout     string        `yaml:"timeout"`
	MaxAttempts int           `yaml:"max_attempts"`
	Backoff     backoffConfig `yaml:"backoff"`
	MaxBody     string        `yaml:"max_body"`
	// MaxResponse is the largest upstream answer kept whole, at most
	// 1GiB. Defaults to 10MiB (worker.DefaultMaxResponse).
	MaxResponse string `yaml:"max_response"`
	// Headers are sent on every upstream call of the route; they are
	// never stored nor logged. Defaults to none.
	Headers     map[string]string `yaml:"headers"`
	Idempotency string            `yaml:"idempotency"`
	// Ordering is optional, required (400 without an X-Ordering-Key) or
	// off (400 with one). Defaults to optional.
	Ordering string `yaml:"ordering"`
	// Schema is a JSON Schema file, relative to the configuration file.
	Schema string `yaml:"schema"`
	// ContentTypes are the media types the route takes (text/plain,
	// text/*, */*), replacing the default: application/json and *+json.
	ContentTypes []string         `yaml:"content_types"`
	RateLimit    *rateLimitConfig `yaml:"rate_limit"`
	Precheck     *precheckConfig  `yaml:"precheck"`
}

// config is the configuration every part is built from.
type config struct {
	// Path is the file it was read from ("" for the built-in demo).
	Path string
	// reload reads the configuration again from where this one came
	// (SIGHUP); nil when it cannot.
	reload    func() (*config, error)
	Listen    string
	RedisURL  string
	LogFormat string
	LogLevel  string
	Demo      bool
	// AsynqPublicOnly is redis.asynq_direct: false.
	AsynqPublicOnly bool
	// RequireDurable: refuse to start unless Redis is durable
	// (redis.require_durable).
	RequireDurable bool
	// RateLimitStore is "local" or "redis".
	RateLimitStore string
	// MinReplicasAck and ReplicaAckTimeout: redis.min_replicas_ack and
	// redis.replica_ack_timeout (also in Status, which does the waiting);
	// the durability check reads min-replicas-to-write on the master when
	// MinReplicasAck is 1 or more.
	MinReplicasAck    int
	ReplicaAckTimeout time.Duration
	Status            status.Config
	Worker            worker.Config
	Gateway           gateway.Config
	Webhooks          webhook.Config
	// MetricsListen is the address of a separate /metrics listener ("":
	// the gateway's own).
	MetricsListen string
	// Pprof serves /debug/pprof/ on the metrics listener.
	Pprof   bool
	Tracing telemetry.TracingConfig
	// AdminQueues are the queues the admin API reports: the gateway's
	// and the webhook queue.
	AdminQueues []string

	// RedisSentinel is redis.sentinel (an alternative to RedisURL).
	RedisSentinel redisconn.Sentinel
	// RedisCluster is redis.cluster (the other alternative).
	RedisCluster redisconn.Cluster
	// Shards is redis.shards: how many shards a tenant's jobs are spread
	// over, from 1 to 1024. Defaults to 1.
	Shards int
	// RedisTLS is redis.tls.
	RedisTLS redisconn.TLS
	// Upstreams are the upstream hosts' limits (upstreams), by host.
	Upstreams map[string]ups.Limit
}

const defaultListen = "127.0.0.1:8080"

// defaultShards and maxShards bound redis.shards.
const (
	defaultShards = 1
	maxShards     = 1024
)

// defaultDrainDelay is gateway.drain_delay's default: long enough for a
// load balancer that checks /readyz every few seconds to see the 503.
const defaultDrainDelay = 5 * time.Second

// maxResponseLimit bounds routes[].max_response: an answer is held in
// memory whole.
const maxResponseLimit = 1 << 30

// loadConfig reads the file named by --config or ASYNCGW_CONFIG (none: the
// built-in demo), sets the keys whose ASYNCGW_ variables are set (see
// envKeys), and replaces ${VAR} in the file's other string values (see
// expandEnv). It reads nothing but the file and getenv, so it may be
// called again to reload the configuration.
func loadConfig(path string, getenv func(string) string) (*config, error) {
	path = cmpOr(path, getenv("ASYNCGW_CONFIG"))
	var fc fileConfig
	demo := path == ""
	if !demo {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := decodeYAML(b, &fc); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	fromEnv, err := applyEnv(&fc, getenv)
	if err != nil {
		return nil, configError(path, err)
	}
	ex, err := expandEnv(&fc, getenv, fromEnv)
	if err != nil {
		return nil, configError(path, err)
	}
	// Schema and CA files are named relative to the configuration file.
	if f := fc.Redis.TLS.CAFile; f != "" && !filepath.IsAbs(f) {
		fc.Redis.TLS.CAFile = filepath.Join(filepath.Dir(path), f)
	}
	for i, r := range fc.Routes {
		if r.Schema != "" && !filepath.IsAbs(r.Schema) {
			fc.Routes[i].Schema = filepath.Join(filepath.Dir(path), r.Schema)
		}
	}
	cfg, err := fc.resolve()
	if err != nil {
		return nil, configError(path, redact(nameEnv(err, fromEnv), ex))
	}
	cfg.Path, cfg.Demo = path, demo
	if demo && fc.Gateway.DrainDelay == "" {
		// No load balancer follows the demo's /readyz: Ctrl-C stops it
		// at once.
		cfg.Gateway.DrainDelay = 0
	}
	return cfg, nil
}

// configError says that err comes from the configuration in path.
func configError(path string, err error) error {
	if path == "" {
		return fmt.Errorf("config: %w", err)
	}
	return fmt.Errorf("config %s: %w", path, err)
}

func decodeYAML(b []byte, fc *fileConfig) error {
	var doc yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil // an empty file is the defaults
	}
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err = dec.Decode(fc)
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return errors.New(yamlMessage(&doc, te.Errors[0]))
	}
	return err
}

var (
	unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	badValue     = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
)

// yamlMessage turns yaml.v3's wording into one that names the key, such as
// `line 3: worker.concurrency: must be an integer, not "ten"`. doc is the parsed
// file.
func yamlMessage(doc *yaml.Node, m string) string {
	if s := unknownField.FindStringSubmatch(m); s != nil {
		line, _ := strconv.Atoi(s[1])
		key := s[2]
		if path := findKey(doc, "", func(k, _ *yaml.Node) bool { return k.Line == line && k.Value == s[2] }); path != "" {
			key = path
		}
		return fmt.Sprintf("line %s: unknown key %q", s[1], key)
	}
	if s := badValue.FindStringSubmatch(m); s != nil {
		line, _ := strconv.Atoi(s[1])
		kind := map[string]yaml.Kind{"!!map": yaml.MappingNode, "!!seq": yaml.SequenceNode}[s[2]]
		if kind == 0 {
			kind = yaml.ScalarNode
		}
		// yaml.v3 shortens values over 10 bytes to their first 7 and "...".
		short, value := strings.TrimSuffix(s[3], "..."), ""
		path := findKey(doc, "", func(_, v *yaml.Node) bool {
			ok := v.Line == line && v.Kind == kind &&
				(kind != yaml.ScalarNode || v.Value == s[3] || len(v.Value) > 10 && strings.HasPrefix(v.Value, short))
			if ok {
				value = v.Value
			}
			return ok
		})
		if path != "" {
			what := s[4]
			switch {
			case strings.HasPrefix(what, "[]"):
				what = "a list"
			case strings.HasPrefix(what, "map[") || strings.HasPrefix(what, "main."):
				what = "a mapping"
			case strings.HasPrefix(what, "int"):
				what = "an integer"
			case what == "string":
				what = "a string"
			case what == "bool":
				what = "true or false"
			}
			got := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}[kind]
			if kind == yaml.ScalarNode {
				got = strconv.Quote(value)
			}
			return fmt.Sprintf("line %s: %s: must be %s, not %s", s[1], path, what, got)
		}
	}
	return m
}

// findKey returns the path ("routes[0].timeout") of the deepest mapping key
// under n that, with its value, satisfies match, or "".
func findKey(n *yaml.Node, at string, match func(k, v *yaml.Node) bool) string {
	found := ""
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			found = cmpOr(findKey(c, at, match), found)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			found = cmpOr(findKey(c, fmt.Sprintf("%s[%d]", at, i), match), found)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if at != "" {
				path = at + "." + k.Value
			}
			if deeper := findKey(v, path, match); deeper != "" {
				found = deeper
			} else if match(k, v) {
				found = path
			}
		}
	}
	return found
}

func (fc fileConfig) resolve() (*config, error) {
	cfg := &config{
		Listen:    cmpOr(fc.Listen, defaultListen),
		RedisURL:  fc.Redis.URL,
		LogFormat: cmpOr(fc.Log.Format, "text"),
		LogLevel:  cmpOr(fc.Log.Level, "info"),
	}
	if f := cfg.LogFormat; f != "text" && f != "json" {
		return nil, fmt.Errorf("log.format: %q must be text or json", f)
	}
	if l := cfg.LogLevel; l != "debug" && l != "info" && l != "warn" && l != "error" {
		return nil, fmt.Errorf("log.level: %q must be debug, info, warn or error", l)
	}
	if fc.Redis.URL != "" && !strings.HasPrefix(fc.Redis.URL, "redis://") && !strings.HasPrefix(fc.Redis.URL, "rediss://") && !strings.HasPrefix(fc.Redis.URL, "unix://") {
		return nil, fmt.Errorf("redis.url: %q must be a redis://, rediss:// or unix:// URL", withoutPassword(fc.Redis.URL))
	}
	rs, rt := fc.Redis.Sentinel, fc.Redis.TLS
	cfg.RedisSentinel = redisconn.Sentinel{MasterName: rs.MasterName, Addrs: rs.Addrs, Username: rs.Username, Password: rs.Password, SentinelPassword: rs.SentinelPassword}
	if rc := fc.Redis.Cluster; rc != nil {
		if len(rc.Addrs) == 0 {
			return nil, errors.New("redis.cluster.addrs: at least one node host:port is required")
		}
		cfg.RedisCluster = redisconn.Cluster{Addrs: rc.Addrs, Username: rc.Username, Password: rc.Password}
	}
	cfg.RedisTLS = redisconn.TLS{Enabled: rt.Enabled, CAFile: rt.CAFile, ServerName: rt.ServerName}
	if cfg.redisSet() {
		if _, rerr := redisconn.New(cfg.redisConn()); rerr != nil {
			return nil, rerr
		}
	} else if rt != (redisTLSConfig{}) {
		return nil, errors.New("redis.tls: needs redis.url, redis.sentinel or redis.cluster")
	}
	cfg.Shards = cmp.Or(fc.Redis.Shards, defaultShards)
	if n := fc.Redis.Shards; n != 0 && (n < 1 || n > maxShards) {
		return nil, fmt.Errorf("redis.shards: %d must be between 1 and %d", n, maxShards)
	}

	cfg.RequireDurable = fc.Redis.RequireDurable
	cfg.AsynqPublicOnly = fc.Redis.AsynqDirect != nil && !*fc.Redis.AsynqDirect
	if cfg.RequireDurable && !cfg.redisSet() {
		return nil, errors.New("redis.require_durable: needs redis.url, redis.sentinel or redis.cluster (or ASYNCGW_REDIS_URL); the embedded Redis is never durable")
	}
	var err error
	d := func(key, v string) time.Duration {
		if err != nil || v == "" {
			return 0
		}
		x, perr := time.ParseDuration(v)
		if perr != nil || x <= 0 {
			err = fmt.Errorf("%s: %q is not a positive duration (such as 10s or 5m)", key, v)
		}
		return x
	}
	size := func(key, v string) int64 {
		if err != nil || v == "" {
			return 0
		}
		x, perr := parseSize(v)
		if perr != nil {
			err = fmt.Errorf("%s: %w", key, perr)
		}
		return x
	}

	cfg.Status = status.Config{
		Prefix:         fc.Redis.Prefix,
		Shards:         cfg.Shards,
		Retention:      d("records.retention", fc.Records.Retention),
		StreamMaxLen:   fc.Records.StreamMaxLen,
		IdempotencyTTL: d("idempotency.ttl", fc.Idempotency.TTL),
		FIFO:           fc.Fairness.Enabled != nil && !*fc.Fairness.Enabled,
	}
	for i, t := range fc.Auth.Tenants {
		switch {
		case t.Weight == 0:
		case t.Weight < 1 || t.Weight > status.MaxTenantWeight:
			return nil, fmt.Errorf("auth.tenants[%d].weight: %d must be from 1 to %d", i, t.Weight, status.MaxTenantWeight)
		default:
			if cfg.Status.TenantWeights == nil {
				cfg.Status.TenantWeights = map[string]int{}
			}
			cfg.Status.TenantWeights[t.Name] = t.Weight
		}
	}
	cfg.Status.JobIndexRetention = d("records.index_retention", fc.Records.IndexRetention)
	if v := cfg.Status.JobIndexRetention; v != 0 && v < time.Minute {
		return nil, fmt.Errorf("records.index_retention: %q must be at least 1m", fc.Records.IndexRetention)
	}
	if err := cfg.resolveReplicaAck(fc.Redis); err != nil {
		return nil, err
	}
	if v := cfg.Status.IdempotencyTTL; v != 0 && v < time.Minute {
		return nil, fmt.Errorf("idempotency.ttl: %q must be at least 1m", fc.Idempotency.TTL)
	}
	if r := cfg.Status.Retention; r != 0 && r < time.Minute {
		return nil, fmt.Errorf("records.retention: %q must be at least 1m", fc.Records.Retention)
	}
	if r := fc.DLQ.Retention; r != "" && r != "0" {
		cfg.Status.DeadRetention = d("dlq.retention", r)
		if v := cfg.Status.DeadRetention; err == nil && v < time.Minute {
			return nil, fmt.Errorf("dlq.retention: %q must be at least 1m, or 0 to keep dead jobs until replayed or deleted", r)
		}
	}
	if fc.Records.StreamMaxLen < 0 {
		return nil, fmt.Errorf("records.stream_max_len: %d must be positive", fc.Records.StreamMaxLen)
	}
	if fc.Redis.Prefix != "" && !regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`).MatchString(fc.Redis.Prefix) {
		return nil, fmt.Errorf("redis.prefix: %q must be 1-32 letters, digits, '_', '.', '-'", fc.Redis.Prefix)
	}
	for q, w := range fc.Queues {
		if qerr := worker.ValidateQueueName(q); qerr != nil {
			return nil, qerr // it names "queues"
		}
		if w < 1 || w > 1000 {
			return nil, fmt.Errorf("queues.%s: weight %d must be between 1 and 1000", q, w)
		}
	}
	if fc.Worker.Concurrency < 0 || fc.Worker.Concurrency > 10000 {
		return nil, fmt.Errorf("worker.concurrency: %d must be between 1 and 10000", fc.Worker.Concurrency)
	}
	if fc.Worker.Fetchers < 0 || fc.Worker.Fetchers > 64 {
		return nil, fmt.Errorf("worker.fetchers: %d must be between 1 and 64", fc.Worker.Fetchers)
	}
	b := fc.Worker.Breaker
	switch {
	case b.MinRequests < 0 || b.MinRequests > 1e6:
		return nil, fmt.Errorf("worker.breaker.min_requests: %d must be between 1 and 1000000", b.MinRequests)
	case b.ConsecutiveFailures < 0 || b.ConsecutiveFailures > 1e6:
		return nil, fmt.Errorf("worker.breaker.consecutive_failures: %d must be between 1 and 1000000", b.ConsecutiveFailures)
	case b.Probes < 0 || b.Probes > 1000:
		return nil, fmt.Errorf("worker.breaker.probes: %d must be between 1 and 1000", b.Probes)
	case b.FailureRatio < 0 || b.FailureRatio > 1:
		return nil, fmt.Errorf("worker.breaker.failure_ratio: %v must be above 0 and at most 1", b.FailureRatio)
	}
	cfg.Worker = worker.Config{
		Queues:            fc.Queues,
		Concurrency:       fc.Worker.Concurrency,
		Fetchers:          fc.Worker.Fetchers,
		ShutdownTimeout:   d("worker.shutdown_timeout", fc.Worker.ShutdownTimeout),
		TaskCheckInterval: d("worker.poll_interval", fc.Worker.PollInterval),
		RecoverInterval:   d("worker.recover_interval", fc.Worker.RecoverInterval),
		UpstreamBreaker: breaker.Config{
			Window:              d("worker.breaker.window", b.Window),
			MinRequests:         uint32(b.MinRequests),
			FailureRatio:        b.FailureRatio,
			ConsecutiveFailures: uint32(b.ConsecutiveFailures),
			OpenTimeout:         d("worker.breaker.open_timeout", b.OpenTimeout),
			Probes:              uint32(b.Probes),
		},
	}
	queues := make([]string, 0, len(fc.Queues))
	for q := range fc.Queues {
		queues = append(queues, q)
	}
	cfg.Gateway = gateway.Config{
		Queues:          queues,
		MaxBody:         size("gateway.max_body", fc.Gateway.MaxBody),
		Heartbeat:       d("gateway.heartbeat", fc.Gateway.Heartbeat),
		ShutdownTimeout: d("gateway.shutdown_timeout", fc.Gateway.ShutdownTimeout),
		DrainDelay:      defaultDrainDelay,
		MaxWait:         d("gateway.max_wait", fc.Gateway.MaxWait),
		QueueLimits:     fc.Gateway.QueueLimits,
		StreamTokens: gateway.StreamTokenConfig{
			Secret: fc.Gateway.StreamTokens.Secret,
			TTL:    d("gateway.stream_tokens.ttl", fc.Gateway.StreamTokens.TTL),
		},
		CORS: gateway.CORSConfig{AllowedOrigins: fc.Gateway.CORS.AllowedOrigins},
	}
	if cfg.MinReplicasAck > 0 {
		// An accept's Redis work includes the wait for replicas.
		cfg.Gateway.RedisTimeout = time.Second + cfg.ReplicaAckTimeout
	}
	if v := fc.Gateway.DrainDelay; v != "" {
		x, perr := time.ParseDuration(v)
		if perr != nil || x < 0 {
			return nil, fmt.Errorf("gateway.drain_delay: %q is not a duration (such as 5s, or 0 for none)", v)
		}
		cfg.Gateway.DrainDelay = x
	}
	ui := fc.Gateway.UI
	cfg.Gateway.Console = gateway.ConsoleConfig{
		Disabled:   ui.Enabled != nil && !*ui.Enabled,
		Path:       ui.Path,
		SessionTTL: d("gateway.ui.session_ttl", ui.SessionTTL),
	}
	if ui.SessionKey != "" {
		if len(ui.SessionKey) < 32 {
			return nil, errors.New("gateway.ui.session_key: must be at least 32 characters")
		}
		cfg.Gateway.Console.SessionKey = []byte(ui.SessionKey)
	}
	cfg.RateLimitStore = cmpOr(fc.Gateway.RateLimitStore, "local")
	if s := cfg.RateLimitStore; s != "local" && s != "redis" {
		return nil, fmt.Errorf("gateway.rate_limit_store: %q must be local or redis", s)
	}
	auth, aerr := fc.Auth.resolve()
	if aerr != nil {
		return nil, aerr
	}
	cfg.Gateway.Auth = auth
	var werr error
	if cfg.Webhooks, werr = fc.webhooks(); werr != nil {
		return nil, werr
	}
	cfg.MetricsListen, cfg.Pprof = fc.Metrics.Listen, fc.Metrics.Pprof
	if cfg.Pprof && cfg.MetricsListen == "" {
		return nil, errors.New("metrics.pprof: needs metrics.listen (the profiler is never served on the gateway's own port)")
	}
	if l := fc.Metrics.Listen; l != "" {
		if _, _, serr := net.SplitHostPort(l); serr != nil {
			return nil, fmt.Errorf("metrics.listen: %q must be host:port", l)
		}
	}
	tc := fc.Tracing
	if tc.SampleRatio < 0 || tc.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing.sample_ratio: %v must be from 0 to 1", tc.SampleRatio)
	}
	if tc.Endpoint != "" && !strings.HasPrefix(tc.Endpoint, "http://") && !strings.HasPrefix(tc.Endpoint, "https://") {
		return nil, fmt.Errorf("tracing.endpoint: %q must be an http(s) URL of an OTLP/HTTP collector", tc.Endpoint)
	}
	cfg.Tracing = telemetry.TracingConfig{Enabled: tc.Enabled, Endpoint: tc.Endpoint, ServiceName: tc.ServiceName, SampleRatio: tc.SampleRatio}
	if len(queues) == 0 {
		cfg.Gateway.Queues = nil
		for q := range worker.DefaultQueues() {
			cfg.Gateway.Queues = append(cfg.Gateway.Queues, q)
		}
	}
	cfg.AdminQueues = append(slices.Clone(cfg.Gateway.Queues), cfg.Webhooks.Queue)
	if len(cfg.Worker.Queues) == 0 {
		cfg.Worker.Queues = worker.DefaultQueues()
	}
	if _, ok := cfg.Worker.Queues[cfg.Webhooks.Queue]; !ok {
		cfg.Worker.Queues = maps.Clone(cfg.Worker.Queues)
		cfg.Worker.Queues[cfg.Webhooks.Queue] = cmp.Or(fc.Webhooks.Weight, 2)
	} else if fc.Webhooks.Weight != 0 {
		return nil, fmt.Errorf("webhooks.weight: the queue %q is configured under queues; set its weight there", cfg.Webhooks.Queue)
	}
	for i, r := range fc.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if r.Name == webhook.JobType {
			return nil, fmt.Errorf("%s.name: %q is reserved for webhook deliveries", at, r.Name)
		}
		if r.MaxAttempts < 0 {
			return nil, fmt.Errorf("%s.max_attempts: %d must be at least 1", at, r.MaxAttempts)
		}
		headers, herr := routeHeaders(at+".headers", r.Headers)
		if herr != nil {
			return nil, herr
		}
		maxResponse := cmp.Or(size(at+".max_response", r.MaxResponse), worker.DefaultMaxResponse)
		if maxResponse > maxResponseLimit {
			return nil, fmt.Errorf("%s.max_response: %q must be at most 1GiB", at, r.MaxResponse)
		}
		cfg.Gateway.Routes = append(cfg.Gateway.Routes, gateway.Route{
			Name: r.Name, Method: r.Method, Path: r.Path, Upstream: r.Upstream,
			Queue: r.Queue, Priorities: r.Priorities,
			Timeout:     d(at+".timeout", r.Timeout),
			MaxAttempts: r.MaxAttempts,
			Backoff: jobs.Backoff{
				Base: jobs.Duration(d(at+".backoff.base", r.Backoff.Base)),
				Max:  jobs.Duration(d(at+".backoff.max", r.Backoff.Max)),
			},
			MaxBody:      size(at+".max_body", r.MaxBody),
			MaxResponse:  maxResponse,
			Headers:      headers,
			Idempotency:  r.Idempotency,
			Ordering:     r.Ordering,
			Schema:       r.Schema,
			ContentTypes: r.ContentTypes,
		})
		// The worker's options are keyed by route name, and a worker
		// process never builds a gateway to find a name used twice.
		if slices.ContainsFunc(fc.Routes[:i], func(o routeConfig) bool { return o.Name == r.Name }) && r.Name != "" {
			return nil, fmt.Errorf("%s.name: %q is used twice", at, r.Name)
		}
		rt := &cfg.Gateway.Routes[len(cfg.Gateway.Routes)-1]
		if r.RateLimit != nil {
			rt.RateLimit = &ratelimit.Limit{Rate: r.RateLimit.Rate, Burst: r.RateLimit.Burst}
		}
		if r.Precheck != nil {
			rt.Precheck = &gateway.Precheck{URL: r.Precheck.URL, Timeout: d(at+".precheck.timeout", r.Precheck.Timeout)}
		}
	}
	if err != nil {
		return nil, err
	}
	// The worker adds the headers and applies the limit: they are not
	// stored with the job.
	cfg.Worker.Routes = gateway.WorkerRoutes(cfg.Gateway.Routes)
	if cfg.Upstreams, err = resolveUpstreams(fc.Upstreams); err != nil {
		return nil, err
	}
	return cfg, nil
}

// redisConn is the redis section as redisconn reads it.
func (c *config) redisConn() redisconn.Config {
	return redisconn.Config{URL: c.RedisURL, Sentinel: c.RedisSentinel, Cluster: c.RedisCluster, TLS: c.RedisTLS}
}

// redisSet reports whether a Redis is configured (redis.url,
// redis.sentinel or redis.cluster): if not, the demo runs an embedded one.
func (c *config) redisSet() bool { return c.redisConn().Set() }

// resolve checks the auth section (the tenants' webhook settings are read
// by webhooks).
func (a authConfig) resolve() (gateway.AuthConfig, error) {
	out := gateway.AuthConfig{Enabled: a.Enabled}
	for _, t := range a.Tenants {
		tn := gateway.Tenant{Name: t.Name, Admin: t.Admin}
		for _, k := range t.Keys {
			tn.KeySHA256 = append(tn.KeySHA256, k.SHA256)
		}
		out.Tenants = append(out.Tenants, tn)
	}
	return out, nil
}

// parseSize reads "1MiB", "512KiB", "2MB", "1000" (bytes).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size (such as 1MiB or 512KiB)", s)
	}
	return n * mult, nil
}

// withoutPassword is the URL s with its password hidden, for messages.
func withoutPassword(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		return "xxxxx" + s[at:]
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// webhooks resolves the webhooks section and the tenants' webhook
// settings, naming the bad key when one is wrong.
func (fc fileConfig) webhooks() (webhook.Config, error) {
	w := fc.Webhooks
	out := webhook.Config{
		Policy:  webhook.Policy{AllowHTTP: w.AllowHTTP, AllowPrivateNetworks: w.AllowPrivateNetworks},
		Secrets: w.Secrets,
		Queue:   cmpOr(w.Queue, "webhooks"),
		Tenants: map[string]webhook.Tenant{},
	}
	for i, c := range w.AllowCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return out, fmt.Errorf("webhooks.allow_cidrs[%d]: %q is not a CIDR prefix such as 10.1.0.0/16", i, c)
		}
		out.Policy.AllowCIDRs = append(out.Policy.AllowCIDRs, p.Masked())
	}
	for i, s := range w.Secrets {
		if err := webhook.CheckSecret(s); err != nil {
			return out, fmt.Errorf("webhooks.secrets[%d]: %w", i, err)
		}
	}
	var err error
	if out.Events, err = states("webhooks.events", w.Events); err != nil {
		return out, err
	}
	if w.Queue != "" && !jobs.ValidName(w.Queue) {
		return out, fmt.Errorf("webhooks.queue: %q must be 1-64 letters, digits, '_', '.', '-'", w.Queue)
	}
	if w.Weight < 0 || w.Weight > 1000 {
		return out, fmt.Errorf("webhooks.weight: %d must be between 1 and 1000", w.Weight)
	}
	for i, s := range w.RetrySchedule {
		d, perr := time.ParseDuration(s)
		if perr != nil || d < 0 || d > 48*time.Hour {
			return out, fmt.Errorf("webhooks.retry_schedule[%d]: %q must be a duration from 0s to 48h", i, s)
		}
		out.Schedule = append(out.Schedule, d)
	}
	if len(w.RetrySchedule) > 50 {
		return out, errors.New("webhooks.retry_schedule: at most 50 retries")
	}
	if w.Timeout != "" {
		d, perr := time.ParseDuration(w.Timeout)
		if perr != nil || d < time.Second || d > 5*time.Minute {
			return out, fmt.Errorf("webhooks.timeout: %q must be a duration from 1s to 5m", w.Timeout)
		}
		out.Timeout = d
	}
	for i, t := range fc.Auth.Tenants {
		at := fmt.Sprintf("auth.tenants[%d]", i)
		wt := webhook.Tenant{URL: t.WebhookURL}
		if t.WebhookSecret != "" {
			if err := webhook.CheckSecret(t.WebhookSecret); err != nil {
				return out, fmt.Errorf("%s.webhook_secret: %w", at, err)
			}
			wt.Secrets = append(wt.Secrets, t.WebhookSecret)
		}
		for j, s := range t.WebhookSecrets {
			if err := webhook.CheckSecret(s); err != nil {
				return out, fmt.Errorf("%s.webhook_secrets[%d]: %w", at, j, err)
			}
			wt.Secrets = append(wt.Secrets, s)
		}
		if wt.Events, err = states(at+".webhook_events", t.WebhookEvents); err != nil {
			return out, err
		}
		if t.WebhookURL != "" {
			if err := out.Policy.CheckURL(t.WebhookURL); err != nil {
				return out, fmt.Errorf("%s.webhook_url: %w", at, err)
			}
			if len(wt.Secrets) == 0 && len(w.Secrets) == 0 {
				return out, fmt.Errorf("%s.webhook_url: needs a signing secret (webhook_secret, or webhooks.secrets)", at)
			}
		}
		out.Tenants[t.Name] = wt
	}
	if _, err := webhook.New(out); err != nil {
		return out, err
	}
	return out, nil
}

// states reads a list of job states.
func states(key string, in []string) ([]jobs.State, error) {
	var out []jobs.State
	for i, s := range in {
		st := jobs.State(s)
		if !st.Valid() {
			return nil, fmt.Errorf("%s[%d]: %q is not a job state (queued, scheduled, running, retrying, succeeded, failed, dead, canceled)", key, i, s)
		}
		out = append(out, st)
	}
	return out, nil
}

// resolveReplicaAck reads redis.min_replicas_ack and
// redis.replica_ack_timeout into cfg and its Status.
func (cfg *config) resolveReplicaAck(rc redisConfig) error {
	if rc.MinReplicasAck < 0 || rc.MinReplicasAck > 100 {
		return fmt.Errorf("redis.min_replicas_ack: %d must be between 0 and 100", rc.MinReplicasAck)
	}
	if rc.MinReplicasAck > 0 && !cfg.redisSet() {
		return errors.New("redis.min_replicas_ack: needs a replicated Redis (redis.url, redis.sentinel or redis.cluster); the embedded Redis has no replicas")
	}
	cfg.MinReplicasAck = rc.MinReplicasAck
	cfg.ReplicaAckTimeout = status.DefaultReplicaAckTimeout
	if v := rc.ReplicaAckTimeout; v != "" {
		x, err := time.ParseDuration(v)
		if err != nil || x < time.Millisecond || x > status.MaxReplicaAckTimeout {
			return fmt.Errorf("redis.replica_ack_timeout: %q must be a duration from 1ms to %s", v, status.MaxReplicaAckTimeout)
		}
		cfg.ReplicaAckTimeout = x
	}
	if cfg.MinReplicasAck == 0 {
		return nil
	}
	cfg.Status.MinReplicasAck, cfg.Status.ReplicaAckTimeout = cfg.MinReplicasAck, cfg.ReplicaAckTimeout
	return nil
}
