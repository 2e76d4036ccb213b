// Package keyspace owns everything asyncgw keeps in Redis: every key's
// name and every Lua script (lua/*.lua, embedded). Nothing else in the
// module builds a key or holds a script. asynq's private layout, which the
// worker and the accept script write directly, is in asynq.go, next to the
// asynq version it was read from.
//
// # Shards
//
// Keys are laid out for Redis Cluster. Every key of one job — its record,
// event list and webhook deliveries, its tenant's event stream, outbox,
// dead-letter lists and Idempotency-Keys on that shard, its asynq task and
// the queues the task waits on — carries one hash tag, its shard's, so that
// every script call touches one slot. A deployment has a fixed number of
// shards (redis.shards); shard i's tag is the first of "s<i>", "s<i>.1",
// "s<i>.2", … whose slot lies in the i-th of as many equal slot ranges, so
// that shards spread evenly over masters that own equal ranges (as
// redis-cli --cluster create gives them).
//
// A job's shard is written in its ID (ShardOf), so a read needs no lookup.
// A job with an ordering key is on the shard of its tenant and ordering key
// (ShardFor), where its key's line is: every job of one line, and the line,
// share one slot. A job with an Idempotency-Key and no ordering key is on
// the shard of its tenant and Idempotency-Key (ShardFor): two requests with
// one key meet in one script. Either way the Idempotency-Key is kept on the
// job's shard (IdempotencyOn). Any other job is on a random shard.
//
// # Names
//
// With prefix P and shard tag T:
//
//	P:{T}:j:<id>                  job record (hash: t tenant, doc, req, state, seq, rbody, cb, cbev)
//	P:{T}:j:<id>:ev               the job's earlier events (list)
//	P:{T}:j:<id>:wh               its webhook deliveries (sorted set)
//	P:{T}:t:<tenant>:events       the tenant's event stream on the shard
//	P:{T}:t:<tenant>:outbox       the tenant's webhook outbox on the shard
//	P:{T}:t:<tenant>:dlq:<queue>  the tenant's dead letters of a queue on the shard
//	P:{T}:t:<tenant>:idem:<hash>  an Idempotency-Key of the tenant
//	P:{T}:t:<tenant>:jobs         the tenant's jobs on the shard, by creation time (the job index)
//	P:{T}:t:<tenant>:ord:<hash>   an ordering key's line: "<id>\n<queue>" entries, head first
//	P:{T}:ord:promote             the shard's lines whose head may need its task written
//	P:{T}:ord:waiting             jobs waiting behind another in the shard's lines, by tenant (hash)
//	P:{T}:fair:<queue>            new jobs of a queue on the shard, in fair order (sorted set: "<id>\n<tenant>" → virtual start)
//	P:{T}:fair:<queue>:st         its virtual clock and each waiting tenant's last start and count (hash: v, l:<tenant>, n:<tenant>; alt: the line's turn next)
//	P:t:<tenant>:webhooks:disabled  the tenant's disabled webhook endpoints
//	P:dlq:lists, P:outbox:tenants, P:webhooks:disabled:tenants, P:jobs:tenants  registries
//	P:{T}:replica-ack             the key written before a WAIT for the shard's replicas
//	P:rl:{<key>}                  a rate limiter's bucket
//	P:{up:<host>}:leases          calls in flight to a limited upstream host (sorted set: holder → lease expiry, ms)
//	P:{up:<host>}:tat             its rate's theoretical arrival time (µs of Redis TIME)
//	P:{up:<host>}:pause           paused until (ms), from the upstream's Retry-After
//	P:{up:<host>}:state           its adaptive limit and latency figures (hash)
//	P:{up:<host>}:held            jobs held back by its limits (sorted set: the run's task key, or job ID outside a task → when it comes back, ms)
//
// Events of every tenant's jobs on shard T are published on the shard
// channel P:{T}:events (SPUBLISH, inside the script's slot; PUBLISH on a
// Redis without sharded pub/sub), the tenant named in each message.
package keyspace

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// MaxShards is the most shards a deployment can have: a job ID carries
// its shard in its first two characters (10 bits).
const MaxShards = 1024

// Space is the layout of one deployment: its key prefix and shards.
type Space struct {
	prefix string
	tags   []string
}

// New returns the layout with prefix (which must not contain braces or
// spaces) and shards shards (1 to MaxShards).
func New(prefix string, shards int) (*Space, error) {
	if prefix == "" || strings.ContainsAny(prefix, "{}\n ") {
		return nil, fmt.Errorf("prefix %q: must be set and must not contain braces or spaces", prefix)
	}
	if shards < 1 || shards > MaxShards {
		return nil, fmt.Errorf("shards %d: must be from 1 to %d", shards, MaxShards)
	}
	s := &Space{prefix: prefix, tags: make([]string, shards)}
	for i := range shards {
		s.tags[i] = shardTag(i, shards)
	}
	return s, nil
}

// shardTag is shard i's hash tag among n: the first of "s<i>", "s<i>.1", …
// whose slot is in [i·16384/n, (i+1)·16384/n).
func shardTag(i, n int) string {
	lo, hi := i*Slots/n, (i+1)*Slots/n
	base := "s" + strconv.Itoa(i)
	for k := 0; ; k++ {
		tag := base
		if k > 0 {
			tag += "." + strconv.Itoa(k)
		}
		if slot := int(Slot(tag)); slot >= lo && slot < hi {
			return tag
		}
	}
}

// Prefix is the prefix of every key.
func (s *Space) Prefix() string { return s.prefix }

// Shards is the number of shards.
func (s *Space) Shards() int { return len(s.tags) }

// Tag is shard's hash tag, without braces.
func (s *Space) Tag(shard int) string { return s.tags[shard] }

// ShardOf is the shard of the job with ID id (an ID made by jobs.NewID and
// placed by PlaceID, or any ID of that shape).
func (s *Space) ShardOf(id string) int {
	return idBits(id) % len(s.tags)
}

// ShardFor is the shard of a job with an ordering key (that key) or,
// without one, with an Idempotency-Key (that key).
func (s *Space) ShardFor(tenant, key string) int {
	if len(s.tags) == 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return int(h.Sum64() % uint64(len(s.tags)))
}

// PlaceID returns id changed in its first two characters so that
// ShardOf gives shard; the rest of the ID is kept.
func (s *Space) PlaceID(id string, shard int) string {
	n := len(s.tags)
	v := idBits(id)
	v = v/n*n + shard
	if v >= MaxShards {
		v -= n
	}
	return string(idAlphabet[v>>5]) + string(idAlphabet[v&31]) + id[2:]
}

// idAlphabet is the lower-case base32 alphabet of job IDs.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// idBits is the value of an ID's first two characters (0 to 1023); an ID
// too short or of other characters counts as 0.
func idBits(id string) int {
	if len(id) < 2 {
		return 0
	}
	return b32(id[0])<<5 | b32(id[1])
}

func b32(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= '2' && c <= '7':
		return int(c-'2') + 26
	}
	return 0
}

// shardPrefix is "P:{T}:" of the job with ID id.
func (s *Space) shardPrefix(shard int) string {
	return s.prefix + ":{" + s.tags[shard] + "}:"
}

// Record is the record of job id.
func (s *Space) Record(id string) string {
	return s.shardPrefix(s.ShardOf(id)) + "j:" + id
}

// EventList is the list of the earlier events of the job whose record is
// at record.
func EventList(record string) string { return record + ":ev" }

// Deliveries is the set of webhook deliveries of the job whose record is
// at record.
func Deliveries(record string) string { return record + ":wh" }

// tenantKey is "P:{T}:t:<tenant>:<what>" on shard.
func (s *Space) tenantKey(shard int, tenant, what string) string {
	return s.shardPrefix(shard) + "t:" + tenant + ":" + what
}

// Stream is the tenant's event stream on shard.
func (s *Space) Stream(shard int, tenant string) string { return s.tenantKey(shard, tenant, "events") }

// Outbox is the tenant's webhook outbox on shard: "id\nseq" members scored
// by when they are due (unix ms).
func (s *Space) Outbox(shard int, tenant string) string { return s.tenantKey(shard, tenant, "outbox") }

// DeadLetters is the tenant's dead-letter list of queue on shard: job IDs
// scored by when they died (unix ms).
func (s *Space) DeadLetters(shard int, tenant, queue string) string {
	return s.tenantKey(shard, tenant, "dlq:"+queue)
}

// JobIndex is the tenant's job index on shard: the IDs of its jobs on
// the shard, scored by when they were accepted (unix ms). The accept
// script writes it, trims what is older than the index's horizon and
// has the set expire after a horizon without accepts; a listing takes out
// entries whose records have expired.
func (s *Space) JobIndex(shard int, tenant string) string { return s.tenantKey(shard, tenant, "jobs") }

// JobTenants is the set of tenants that ever had a job index.
func (s *Space) JobTenants() string { return s.prefix + ":jobs:tenants" }

// Idempotency is where an Idempotency-Key of tenant is remembered, on the
// shard ShardFor gives: that of a job with the key and no ordering key.
func (s *Space) Idempotency(tenant, key string) string {
	return s.IdempotencyOn(s.ShardFor(tenant, key), tenant, key)
}

// IdempotencyOn is where an Idempotency-Key of tenant is remembered on
// shard: the job's own, which for a job with an ordering key is that key's.
func (s *Space) IdempotencyOn(shard int, tenant, key string) string {
	return s.tenantKey(shard, tenant, "idem:"+keyHash(key))
}

// keyHash is the SHA-256 of a client's key, in hex: any key, whatever its
// characters, makes a plain key name.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// OrderingLine is the line of tenant's jobs with ordering key key, on the
// shard ShardFor gives: a list of entries (OrderingEntry), the job that
// may run first.
func (s *Space) OrderingLine(tenant, key string) string {
	return s.tenantKey(s.ShardFor(tenant, key), tenant, "ord:"+keyHash(key))
}

// ParseOrderingLine returns the tenant of a line named by OrderingLine;
// ok is false for any other key.
func (s *Space) ParseOrderingLine(key string) (tenant string, ok bool) {
	rest, found := strings.CutPrefix(key, s.prefix+":{")
	if !found {
		return "", false
	}
	_, rest, found = strings.Cut(rest, "}:t:")
	if !found {
		return "", false
	}
	tenant, hash, found := strings.Cut(rest, ":ord:")
	return tenant, found && tenant != "" && len(hash) == 64
}

// OrderingEntry is the entry of job id, of priority queue (a configured
// queue name, not an asynq queue), in its ordering key's line.
func OrderingEntry(id, queue string) string { return id + "\n" + queue }

// ParseOrderingEntry splits an entry made by OrderingEntry; ok is false
// for anything else.
func ParseOrderingEntry(e string) (id, queue string, ok bool) {
	id, queue, ok = strings.Cut(e, "\n")
	return id, queue, ok && id != "" && queue != ""
}

// PromoteSet is the set of shard's lines whose head may be waiting for
// its task to be written: a line joins it when its head is released or a
// replay becomes its head, and leaves it when its head's task is written
// (or the line is empty). Workers sweep it, so that a lost promotion
// delays a line rather than stopping it.
func (s *Space) PromoteSet(shard int) string { return s.shardPrefix(shard) + "ord:promote" }

// OrderingWaiting is a hash of shard: for each tenant, how many of its
// jobs on the shard wait behind another job of their ordering key (the
// lines' lengths less their heads).
func (s *Space) OrderingWaiting(shard int) string { return s.shardPrefix(shard) + "ord:waiting" }

// FairKeys are the keys of a queue's fair line on one shard: the new jobs
// of every tenant that wait for a worker, ordered so that the workers take
// the tenants' jobs in turn (start-time fair queueing). Each job is scored
// with a virtual start: one after the later of the line's virtual clock
// and its tenant's last job in the line. The take pops the lowest score
// and moves the clock to it. A tenant with no job in the line thus starts
// level with the next job to run, however long another tenant's backlog
// is, and tenants with backlogs alternate; one tenant's jobs keep the
// order they were accepted in.
type FairKeys struct {
	// Line is the sorted set of FairMember entries by virtual start.
	Line string
	// State holds the virtual clock (v), whose turn a take starts with
	// (alt set: the line's, see take.lua) and, for each tenant with jobs
	// in the line, its last virtual start (l:<tenant>) and how many it
	// has there (n:<tenant>).
	State string
}

// Fair is the fair line of priority queue priority (a configured queue
// name) on shard. It shares the shard's slot with the asynq queue.
func (s *Space) Fair(shard int, priority string) FairKeys {
	line := s.shardPrefix(shard) + "fair:" + priority
	return FairKeys{Line: line, State: line + ":st"}
}

// FairOf is the fair line of an asynq queue made by Queue; ok is false for
// another queue.
func (s *Space) FairOf(queue string) (FairKeys, bool) {
	shard, priority, ok := s.ParseQueue(queue)
	if !ok {
		return FairKeys{}, false
	}
	return s.Fair(shard, priority), true
}

// FairMember is job id's entry in a fair line.
func FairMember(id, tenant string) string { return id + "\n" + tenant }

// ParseFairTenants reads a fair line's state (HGETALL) into how many jobs
// each tenant has in the line.
func ParseFairTenants(state map[string]string) map[string]int {
	out := map[string]int{}
	for k, v := range state {
		if t, ok := strings.CutPrefix(k, "n:"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				out[t] = n
			}
		}
	}
	return out
}

// DisabledEndpoints maps the tenant's disabled webhook endpoints (URL) to
// why (JSON).
func (s *Space) DisabledEndpoints(tenant string) string {
	return s.prefix + ":t:" + tenant + ":webhooks:disabled"
}

// DeadLetterLists is the set of every dead-letter list ("tenant/queue";
// one list per shard) that was ever written.
func (s *Space) DeadLetterLists() string { return s.prefix + ":dlq:lists" }

// OutboxTenants is the set of tenants that ever had an outbox.
func (s *Space) OutboxTenants() string { return s.prefix + ":outbox:tenants" }

// DisabledTenants is the set of tenants that ever had an endpoint disabled.
func (s *Space) DisabledTenants() string { return s.prefix + ":webhooks:disabled:tenants" }

// ReplicaAck is the counter written before a WAIT for the replicas of
// shard's master, so that the WAIT goes to that master and covers every
// write that completed before it. It holds nothing else of value.
func (s *Space) ReplicaAck(shard int) string { return s.shardPrefix(shard) + "replica-ack" }

// EventChannel is the pub/sub channel on which the events of every job on
// shard are published. It hashes to the shard's slot, so that a script
// may SPUBLISH to it.
func (s *Space) EventChannel(shard int) string { return s.shardPrefix(shard) + "events" }

// Channel is the deployment's untagged channel name, from which an event
// hub names its own probe channel. Nothing is published on it.
func (s *Space) Channel() string { return s.prefix + ":events" }

// UpstreamKeys are the keys of one upstream host's limits (see the
// upstream_* scripts). They share the host's hash tag, so that a script
// call touches one slot.
type UpstreamKeys struct {
	// Leases holds the calls in flight, scored by lease expiry (ms).
	Leases string
	// TAT is the rate's theoretical arrival time (µs).
	TAT string
	// Pause is when a Retry-After pause ends (ms).
	Pause string
	// State holds the adaptive limit and latency figures.
	State string
	// Held holds the jobs held back, scored by when they come back (ms).
	Held string
}

// Upstream is the keys of upstream host's limits, under prefix (the
// limits are shared by a deployment's processes, as rate limiters are).
// host must not contain braces.
func Upstream(prefix, host string) UpstreamKeys {
	p := prefix + ":{up:" + host + "}:"
	return UpstreamKeys{Leases: p + "leases", TAT: p + "tat", Pause: p + "pause", State: p + "state", Held: p + "held"}
}

// RateLimitKey is the bucket of a rate limiter's key, under prefix (rate
// limiters are shared by deployments' processes without a Space).
func RateLimitKey(prefix, key string) string { return prefix + ":rl:{" + key + "}" }
