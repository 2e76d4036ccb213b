package ratelimit

import (
	"cmp"
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LocalConfig configures a Local limiter.
type LocalConfig struct {
	// IdleTTL is how long a key must go unused before its bucket may be
	// dropped; buckets are looked over every IdleTTL/4. A bucket that is
	// still refilling is kept until it is full, so dropping it never hands
	// out more than the limit. Defaults to 10m.
	IdleTTL time.Duration
	// MaxKeys bounds how many buckets are kept. When a new key would exceed
	// it, the bucket used least recently is dropped, full or not.
	// Defaults to 100000.
	MaxKeys int
	// Now tells the time. Defaults to time.Now.
	Now func() time.Time
}

func (c LocalConfig) withDefaults() LocalConfig {
	c.IdleTTL = cmp.Or(c.IdleTTL, 10*time.Minute)
	c.MaxKeys = cmp.Or(c.MaxKeys, 100_000)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c LocalConfig) validate() error {
	if c.IdleTTL < 0 {
		return fmt.Errorf("idle_ttl %s: must not be negative", c.IdleTTL)
	}
	if c.MaxKeys < 0 {
		return fmt.Errorf("max_keys %d: must not be negative", c.MaxKeys)
	}
	return nil
}

// Local is a Limiter that keeps one token bucket per key in process memory.
// Each process has its own buckets; use Redis to share them. Memory is
// bounded by MaxKeys; idle buckets are dropped as Allow is called, so Local
// needs no goroutine and nothing to close. It is safe for concurrent use.
type Local struct {
	cfg LocalConfig

	mu        sync.Mutex
	entries   map[string]*list.Element // of *bucket
	lru       list.List                // front: used most recently
	nextSweep time.Time
}

var _ Limiter = (*Local)(nil)

// bucket is the state of one key.
type bucket struct {
	key      string
	tokens   *rate.Limiter
	limit    Limit
	lastUsed time.Time
	fullAt   time.Time // when the bucket will be full again
}

// NewLocal returns an in-process Limiter.
func NewLocal(cfg LocalConfig) (*Local, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit local config: %w", err)
	}
	return &Local{cfg: cfg, entries: make(map[string]*list.Element)}, nil
}

// Allow counts a request for key if limit allows it. It fails only if limit
// is invalid. If limit differs from the last call for key, the bucket keeps
// its tokens and takes the new rate and burst from now on.
func (l *Local) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.Validate(); err != nil {
		return Decision{}, err
	}
	now := l.cfg.Now()

	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.bucket(key, limit, now)
	allowed := b.tokens.AllowN(now, 1)
	d := decide(allowed, limit, b.tokens.TokensAt(now))
	b.lastUsed = now
	b.fullAt = now.Add(d.Reset)
	return d, nil
}

// bucket returns the bucket of key, marked as used most recently, creating
// it full (and making room for it) if there is none. l.mu must be held.
func (l *Local) bucket(key string, limit Limit, now time.Time) *bucket {
	if el, ok := l.entries[key]; ok {
		l.lru.MoveToFront(el)
		b := el.Value.(*bucket)
		if b.limit != limit {
			b.tokens.SetLimitAt(now, rate.Limit(limit.Rate))
			b.tokens.SetBurstAt(now, limit.Burst)
			b.limit = limit
		}
		return b
	}
	for len(l.entries) >= l.cfg.MaxKeys {
		l.remove(l.lru.Back())
	}
	b := &bucket{key: key, tokens: rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst), limit: limit}
	l.entries[key] = l.lru.PushFront(b)
	return b
}

// sweep drops the buckets that have been idle for IdleTTL and are full
// again. It walks from the least recently used end and stops at the first
// bucket used within IdleTTL, and it runs at most every IdleTTL/4, so its
// cost is spread over many calls. l.mu must be held.
func (l *Local) sweep(now time.Time) {
	if now.Before(l.nextSweep) {
		return
	}
	l.nextSweep = now.Add(l.cfg.IdleTTL / 4)
	for el := l.lru.Back(); el != nil; {
		b := el.Value.(*bucket)
		if now.Sub(b.lastUsed) < l.cfg.IdleTTL {
			return
		}
		prev := el.Prev()
		if !now.Before(b.fullAt) {
			l.remove(el)
		}
		el = prev
	}
}

// remove drops the bucket in el. l.mu must be held.
func (l *Local) remove(el *list.Element) {
	delete(l.entries, l.lru.Remove(el).(*bucket).key)
}
