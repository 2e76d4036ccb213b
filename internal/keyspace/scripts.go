package keyspace

import (
	"embed"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts, one per file in lua/, each opening with a header that
// names its KEYS and ARGV. Every key a script touches is one of its KEYS,
// and all the KEYS of one call share one slot (TestScriptsDeclareTheirKeys
// runs each on Redis with a "#!lua" shebang, under which Redis refuses
// any other key, and watches what it touches).
var (
	// Accept stores a new job, its task and its Idempotency-Key.
	Accept = script("accept")
	// Update writes a job's new state and may retire its task.
	Update = script("update")
	// Take moves tasks of a queue from pending, then from its fair line,
	// to active and leases them.
	Take = script("take")
	// Withdraw takes a canceled job's task out of its queue's fair line.
	Withdraw = script("withdraw")
	// Unfair moves tasks of a queue's fair line to its pending list.
	Unfair = script("unfair")
	// Claim marks taken tasks active and reads them with their records.
	Claim = script("claim")
	// PutBack returns taken tasks to the head of their queue.
	PutBack = script("putback")
	// Recover puts back tasks whose lease ended.
	Recover = script("recover")
	// DeleteDead takes a job out of the dead-letter queue.
	DeleteDead = script("delete_dead")
	// ClaimOutbox leases due webhook outbox entries.
	ClaimOutbox = script("claim_outbox")
	// AddDelivery notes a webhook delivery of a job.
	AddDelivery = script("add_delivery")
	// Promote writes the task of an ordering key's line's head.
	Promote = script("promote")
	// RateLimit counts a request against a rate limiter's bucket.
	RateLimit = script("rate_limit")
	// UpstreamAcquire takes a slot for a call to a limited upstream host.
	UpstreamAcquire = script("upstream_acquire")
	// UpstreamRelease ends a call to a limited upstream host.
	UpstreamRelease = script("upstream_release")
	// UpstreamRenew extends the lease of a call still in flight.
	UpstreamRenew = script("upstream_renew")
	// UpstreamUsage reads what a limited upstream host uses now.
	UpstreamUsage = script("upstream_usage")
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scripts are the scripts by name, for the tests.
var scripts = map[string]*redis.Script{}

func script(name string) *redis.Script {
	src, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("keyspace: no script " + name)
	}
	s := redis.NewScript(string(src))
	scripts[name] = s
	return s
}

// ScriptNames lists the scripts' names (their files' names without .lua).
func ScriptNames() []string {
	names := make([]string, 0, len(scripts))
	for n := range scripts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Source is the Lua source of script name.
func Source(name string) string {
	src, _ := luaFiles.ReadFile("lua/" + strings.TrimSuffix(name, ".lua") + ".lua")
	return string(src)
}
