package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// durabilityProblems reads Redis' appendonly, appendfsync and
// maxmemory-policy and says, in plain words, what keeps an accepted job (a
// 202) from surviving a crash or restart of Redis. Durable is appendonly yes,
// appendfsync always and maxmemory-policy noeviction: then it returns nil.
// A Redis that will not answer CONFIG GET (managed services often disable or
// rename CONFIG) gives one problem that starts with "cannot check: ".
func durabilityProblems(ctx context.Context, rdb redis.Cmdable) []string {
	settings := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync", "maxmemory-policy"} {
		// One parameter a call: CONFIG GET takes several only since Redis 7.
		m, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return []string{fmt.Sprintf("cannot check: CONFIG GET %s failed (%s); "+
				"make sure Redis runs with appendonly yes, appendfsync always and maxmemory-policy noeviction", name, strings.TrimSpace(err.Error()))}
		}
		v, ok := m[name]
		if !ok {
			return []string{fmt.Sprintf("cannot check: CONFIG GET %s: Redis does not report it; "+
				"make sure Redis runs with appendonly yes, appendfsync always and maxmemory-policy noeviction", name)}
		}
		settings[name] = strings.ToLower(v)
	}

	var problems []string
	if v := settings["appendonly"]; v != "yes" {
		// appendfsync does nothing without the AOF: this one problem says
		// both.
		problems = append(problems, fmt.Sprintf("appendonly is %s: an accepted job is lost if Redis restarts; use appendonly yes with appendfsync always", v))
	} else {
		switch v := settings["appendfsync"]; v {
		case "always":
		case "everysec":
			problems = append(problems, "appendfsync is everysec: up to 1 s of accepted jobs can be lost in a crash; use always")
		default:
			problems = append(problems, fmt.Sprintf("appendfsync is %s: accepted jobs not yet written to disk by the OS (often 30 s of them) can be lost in a crash; use always", v))
		}
	}
	if v := settings["maxmemory-policy"]; v != "noeviction" {
		problems = append(problems, fmt.Sprintf("maxmemory-policy is %s: Redis may evict queued jobs; use noeviction", v))
	}
	return problems
}

// checkDurability runs durabilityProblems against the Redis at addr. Each
// problem is a warning of its own, unless require (redis.require_durable)
// is set: then the problems are one start-up error and nothing is logged.
func checkDurability(ctx context.Context, rdb redis.Cmdable, addr string, require bool, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	problems := durabilityProblems(ctx, rdb)
	cancel()
	if len(problems) == 0 {
		return nil
	}
	if require {
		msg := problems[0]
		if len(problems) > 1 {
			var b strings.Builder
			for i, p := range problems {
				fmt.Fprintf(&b, " %d) %s", i+1, p)
			}
			msg = b.String()[1:]
		}
		return fmt.Errorf("redis.require_durable: Redis at %s fails the durability check: %s", addr, msg)
	}
	for _, p := range problems {
		log.Warn("REDIS MAY NOT BE DURABLE: an accepted job (202) can be lost if Redis crashes or restarts; "+
			"set redis.require_durable: true to refuse to start", "redis_durability", p)
	}
	return nil
}
