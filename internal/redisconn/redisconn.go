// Package redisconn builds the go-redis clients of an asyncgw process from
// its redis configuration, in one place: one node named by a URL, the
// master of a Redis Sentinel deployment, or a Redis Cluster, each with TLS
// (system roots or a CA file) and an ACL user where the deployment needs
// them.
//
// Every client a process uses (its main pool, the accept path's pool, the
// event hub's, asynq's) comes from one Connector, so that all of them
// follow a failover the same way. Callers get a redis.UniversalClient and
// need not know which form it is.
//
// For Sentinel the clients are go-redis failover clients
// (NewFailoverClient): they ask a sentinel for the master when they dial
// and, on Sentinel's +switch-master, close the command and pipeline
// connections to the old master. They do not move pub/sub connections:
// Switches tells their owners to resubscribe.
//
// For Cluster they are go-redis cluster clients that reload their slot map
// every second (go-redis alone does so every 60s, or on MOVED), so that
// after a master fails they find its promoted replica within a second of
// the promotion.
package redisconn

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config says how to reach Redis: exactly one of URL, Sentinel and
// Cluster.
type Config struct {
	// URL names one node: redis://[user:password@]host:port/db,
	// rediss:// (TLS with the system's roots unless TLS.CAFile is set) or
	// unix://. Defaults to none.
	URL string
	// Sentinel names the master of a Sentinel deployment. Defaults to
	// none.
	Sentinel Sentinel
	// Cluster names the nodes of a Redis Cluster. Defaults to none.
	Cluster Cluster
	// TLS applies to the URL form when its scheme is rediss://, and to
	// every connection of the Sentinel and Cluster forms (sentinels and
	// data nodes) when TLS.Enabled is set.
	TLS TLS
}

// Set reports whether c names a Redis (any key of url, sentinel or
// cluster is set); if not, the caller may run an embedded one.
func (c Config) Set() bool { return c.URL != "" || c.Sentinel.set() || c.Cluster.set() }

// forms returns the configuration keys of the forms c sets, in the order
// url, sentinel, cluster.
func (c Config) forms() []string {
	var out []string
	if c.URL != "" {
		out = append(out, "redis.url")
	}
	if c.Sentinel.set() {
		out = append(out, "redis.sentinel")
	}
	if c.Cluster.set() {
		out = append(out, "redis.cluster")
	}
	return out
}

// Sentinel is the redis.sentinel section.
type Sentinel struct {
	// MasterName is the name the sentinels monitor the master by
	// (redis.sentinel.master_name). Required.
	MasterName string
	// Addrs are host:port of sentinels (redis.sentinel.addrs); the
	// clients learn the others from them. At least one is required.
	Addrs []string
	// Username and Password authenticate to the master and replicas
	// (ACL user, or requirepass with no username). Default to none.
	Username string
	Password string
	// SentinelPassword authenticates to the sentinels themselves
	// (requirepass in sentinel.conf). Defaults to none.
	SentinelPassword string
}

// set reports whether any key of the section is set.
func (s Sentinel) set() bool {
	return s.MasterName != "" || len(s.Addrs) > 0 || s.Username != "" || s.Password != "" || s.SentinelPassword != ""
}

// TLS is the redis.tls section.
type TLS struct {
	// Enabled turns TLS on for the Sentinel and Cluster forms (the URL
	// form turns it on with rediss://). Defaults to false.
	Enabled bool
	// CAFile is a PEM file of the certificate authorities that sign the
	// servers' certificates, for managed Redis with a private CA.
	// Defaults to the system's roots.
	CAFile string
	// ServerName is the name the server certificates must carry.
	// Defaults to the host dialed.
	ServerName string
}

// Options are what a process sets on a client beyond the configuration.
type Options struct {
	// ClientName names the connections in CLIENT LIST, unless the URL
	// names them (?client_name=). Defaults to none.
	ClientName string
	// PoolSize is the least size of the connection pool. Defaults to
	// go-redis' (10 per CPU).
	PoolSize int
	// NoRetries makes a client that never retries a command and dials
	// once: for the accept path, where a quick error beats a wait.
	NoRetries bool
}

// ErrNoRedis is returned by New when none of redis.url, redis.sentinel
// and redis.cluster is set.
var ErrNoRedis = errors.New("redis: none of redis.url, redis.sentinel and redis.cluster is set")

// Connector makes clients for one configured Redis.
type Connector struct {
	cfg      Config
	url      *redis.Options         // the URL form
	failover *redis.FailoverOptions // the Sentinel form
	cluster  *redis.ClusterOptions  // the Cluster form
}

// New checks cfg and returns a Connector for it. Its errors name the bad
// key (redis.url, redis.sentinel.addrs, redis.cluster.addrs,
// redis.tls.ca_file, ...).
func New(cfg Config) (*Connector, error) {
	switch forms := cfg.forms(); len(forms) {
	case 0:
		return nil, ErrNoRedis
	case 1:
	case 2:
		return nil, fmt.Errorf("%s: give one of them, not both", strings.Join(forms, ", "))
	default:
		return nil, fmt.Errorf("%s: give one of them, not all three", strings.Join(forms, ", "))
	}
	c := &Connector{cfg: cfg}
	tlsSet := cfg.TLS != (TLS{})
	sentinel := cfg.Sentinel.set()
	if cfg.Cluster.set() {
		opts, err := cfg.Cluster.options(cfg.TLS)
		if err != nil {
			return nil, err
		}
		c.cluster = opts
		return c, nil
	}
	if !sentinel {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		switch {
		case cfg.TLS.Enabled:
			return nil, errors.New("redis.tls.enabled: with redis.url, TLS is chosen by the scheme: use rediss://")
		case tlsSet && opts.TLSConfig == nil:
			return nil, errors.New("redis.tls: applies to a rediss:// URL only; redis.url does not use TLS")
		case tlsSet:
			tc, err := cfg.TLS.config()
			if err != nil {
				return nil, err
			}
			tc.ServerName = cmp.Or(tc.ServerName, opts.TLSConfig.ServerName)
			opts.TLSConfig = tc
		}
		c.url = opts
		return c, nil
	}
	s := cfg.Sentinel
	if s.MasterName == "" {
		return nil, errors.New("redis.sentinel.master_name: required with redis.sentinel")
	}
	if len(s.Addrs) == 0 {
		return nil, errors.New("redis.sentinel.addrs: at least one sentinel host:port is required")
	}
	for i, a := range s.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("redis.sentinel.addrs[%d]: %q must be host:port", i, a)
		}
	}
	var tc *tls.Config
	if tlsSet {
		if !cfg.TLS.Enabled {
			return nil, errors.New("redis.tls: set redis.tls.enabled: true to use TLS with redis.sentinel")
		}
		var err error
		if tc, err = cfg.TLS.config(); err != nil {
			return nil, err
		}
	}
	c.failover = &redis.FailoverOptions{
		MasterName:       s.MasterName,
		SentinelAddrs:    s.Addrs,
		Username:         s.Username,
		Password:         s.Password,
		SentinelPassword: s.SentinelPassword,
		TLSConfig:        tc,
	}
	return c, nil
}

// config builds the TLS configuration: the system's roots, or CAFile's.
func (t TLS) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Sentinel reports whether the clients go through Sentinel.
func (c *Connector) Sentinel() bool { return c.failover != nil }

// Key is the configuration key messages about the connection name:
// "redis.url", "redis.sentinel" or "redis.cluster".
func (c *Connector) Key() string {
	switch {
	case c.Sentinel():
		return "redis.sentinel"
	case c.Cluster():
		return "redis.cluster"
	}
	return "redis.url"
}

// Addr says where the clients go, for messages: the URL's host:port,
// "master mymaster of sentinels a:26379,b:26379", or "cluster of
// a:6379,b:6379" (the configured nodes).
func (c *Connector) Addr() string {
	switch {
	case c.Sentinel():
		return fmt.Sprintf("master %s of sentinels %s", c.failover.MasterName, strings.Join(c.failover.SentinelAddrs, ","))
	case c.Cluster():
		return "cluster of " + strings.Join(c.cluster.Addrs, ",")
	}
	return c.url.Addr
}

// Client returns a new client for the configured Redis with o's options
// and asyncgw's usual ones: context deadlines honoured, a refused dial
// retried twice 20ms apart, and RESP2 unless the URL asks for
// ?protocol=3 (asyncgw uses no RESP3 push notifications, and with RESP3
// the client looks for them before every command, about 8% of the
// gateway's CPU under load). For Sentinel it is a failover client that
// only ever talks to the master; for Cluster, a cluster client that
// reloads its slot map every second until it is closed (see
// clusterClient), and that follows MOVED and ASK even with NoRetries.
//
// The caller closes the client.
func (c *Connector) Client(o Options) redis.UniversalClient {
	if c.Cluster() {
		return c.clusterClient(o)
	}
	if c.Sentinel() {
		f := *c.failover
		f.SentinelAddrs = append([]string(nil), f.SentinelAddrs...)
		f.ClientName = o.ClientName
		f.PoolSize = o.PoolSize
		f.ContextTimeoutEnabled = true
		f.DialerRetries, f.DialerRetryTimeout = 2, 20*time.Millisecond
		f.Protocol = 2
		f.ReplicaOnly, f.RouteByLatency, f.RouteRandomly = false, false, false
		if o.NoRetries {
			f.MaxRetries, f.DialerRetries = -1, 1
		}
		return redis.NewFailoverClient(&f)
	}
	opts := *c.url
	opts.PoolSize = max(opts.PoolSize, o.PoolSize)
	if opts.ClientName == "" {
		opts.ClientName = o.ClientName
	}
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = min(opts.DialTimeout, time.Second)
	opts.DialerRetries, opts.DialerRetryTimeout = 2, 20*time.Millisecond
	if opts.Protocol == 0 {
		opts.Protocol = 2
	}
	if o.NoRetries {
		opts.MaxRetries, opts.DialerRetries = -1, 1
	}
	return redis.NewClient(&opts)
}

// NodeClient returns a plain client for one data node at addr (such as a
// replica the sentinels name, or one master or replica of a cluster) with
// the configuration's credentials and TLS. It never retries and, on a
// cluster node, does not follow MOVED: it is for commands about the node
// itself (CONFIG GET, INFO, ROLE). The caller closes it.
func (c *Connector) NodeClient(addr string) *redis.Client {
	if c.Cluster() {
		o := c.cluster
		return redis.NewClient(&redis.Options{
			Addr: addr, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
			Protocol: 2, MaxRetries: -1, ContextTimeoutEnabled: true, DialTimeout: time.Second,
		})
	}
	if !c.Sentinel() {
		opts := *c.url
		opts.Addr = addr
		opts.MaxRetries = -1
		return redis.NewClient(&opts)
	}
	f := c.failover
	return redis.NewClient(&redis.Options{
		Addr: addr, Username: f.Username, Password: f.Password, TLSConfig: f.TLSConfig,
		Protocol: 2, MaxRetries: -1, ContextTimeoutEnabled: true, DialTimeout: time.Second,
	})
}

// sentinelClient returns a client for the sentinel at addr. The caller
// closes it.
func (c *Connector) sentinelClient(addr string) *redis.SentinelClient {
	f := c.failover
	return redis.NewSentinelClient(&redis.Options{
		Addr: addr, Password: f.SentinelPassword, TLSConfig: f.TLSConfig,
		Protocol: 2, MaxRetries: -1, ContextTimeoutEnabled: true, DialTimeout: time.Second,
	})
}
