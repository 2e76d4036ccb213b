package ratelimit

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// RedisConfig configures a Redis limiter.
type RedisConfig struct {
	// Prefix starts every key. Defaults to "asyncgw".
	Prefix string
}

func (c RedisConfig) withDefaults() RedisConfig {
	c.Prefix = cmp.Or(c.Prefix, "asyncgw")
	return c
}

func (c RedisConfig) validate() error {
	if strings.ContainsAny(c.Prefix, "{}\n ") {
		return fmt.Errorf("prefix %q: must not contain braces or spaces", c.Prefix)
	}
	return nil
}

// Redis is a Limiter that keeps its buckets in Redis, so that every process
// using the same Redis shares one budget per key. It runs the generic cell
// rate algorithm (GCRA) in a Lua script (keyspace.RateLimit) that reads the
// clock of Redis, so the clocks of the processes do not matter.
//
// Each key is one Redis string, "<prefix>:rl:{<key>}", holding the time at
// which its bucket will be full again; it expires at that time. A call
// touches that key only, so the limiter works on Redis Cluster. It needs
// Redis 5 or later (or miniredis).
type Redis struct {
	rdb redis.UniversalClient
	cfg RedisConfig
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a Limiter on rdb.
func NewRedis(rdb redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit redis config: %w", err)
	}
	return &Redis{rdb: rdb, cfg: cfg}, nil
}

// Allow counts a request for key if limit allows it. It fails if limit is
// invalid or Redis does not answer; the caller decides whether to let the
// request through then.
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.Validate(); err != nil {
		return Decision{}, err
	}
	res, err := keyspace.RateLimit.Run(ctx, r.rdb, []string{r.key(key)},
		strconv.FormatFloat(limit.Rate, 'g', -1, 64), limit.Burst, epsilon).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("rate limit %q: %w", key, err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("rate limit %q: script returned %d values, want 4", key, len(res))
	}
	d := Decision{
		Allowed:   res[0] == 1,
		Limit:     limit.Burst,
		Remaining: int(min(max(res[1], 0), int64(limit.Burst))),
		Reset:     time.Duration(res[2]) * time.Microsecond,
	}
	if !d.Allowed {
		d.RetryAfter = max(time.Microsecond, time.Duration(res[3])*time.Microsecond)
	}
	return d, nil
}

func (r *Redis) key(key string) string { return keyspace.RateLimitKey(r.cfg.Prefix, key) }
