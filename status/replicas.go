package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
)

// Outcomes of a wait for replicas, as ReplicaAckObserver is told them.
const (
	// AckConfirmed: enough replicas confirmed the write in time.
	AckConfirmed = "acked"
	// AckTimeout: WAIT answered with fewer replicas than asked for.
	AckTimeout = "timeout"
	// AckError: the WAIT got no answer (Redis unreachable, or the
	// caller's deadline ran out first).
	AckError = "error"
)

// A ReplicaAckObserver is told of every write that waited for replicas:
// its outcome (AckConfirmed, AckTimeout, AckError) and how long it waited.
type ReplicaAckObserver func(outcome string, wait time.Duration)

// An acker confirms that writes reached min replicas of one master, in
// batches: one WAIT covers every write that completed before it was sent.
//
// WAIT waits for the replication offset of its own connection's last
// write. The replication stream is one for the whole master, so a write
// that comes after every collected write, on the acker's connection, and
// a WAIT after it in the same pipeline, confirm all of them at once: the
// replicas that have that tiny write have everything before it. Writes
// that complete while a round is in flight join the next round. Rounds run
// one after another on one goroutine, started when a write arrives and
// none is running; there is nothing to run while no write is waiting.
//
// On a cluster there is one acker per master (see replicaAcks): the tiny
// write goes to the ack key of a shard of the round's writes, which only
// the master that owns that shard's slot takes (any other answers MOVED,
// and the round fails), and the WAIT after it on the same connection asks
// that master's replicas.
type acker struct {
	cfg *ackConfig

	mu      sync.Mutex
	conn    redis.Cmdable // where rounds go: the master's client
	next    *ackRound     // the round that writes completing now join
	running bool          // a goroutine is running rounds

	rounds int64 // rounds sent (tests and benchmarks read it)
}

// ackConfig is what every acker of a Store shares.
type ackConfig struct {
	min     int
	timeout time.Duration
	observe ReplicaAckObserver
	fence   FailoverFence // nil: no failover is ever announced
}

// ackRound is one INCR + WAIT and the writes it confirms.
type ackRound struct {
	key  string // the ack key the round writes, on the master's shard
	done chan struct{}
	err  error // nil: confirmed
}

// ackSlack is how much longer than the WAIT's own timeout a round may take
// before its connection is given up: a WAIT answers by itself when its
// timeout runs out, so only a lost connection needs it.
const ackSlack = time.Second

// FailoverFence tells a Store's wait for replicas that a failover is
// under way (redisconn.Switches does, from Sentinel's announcements).
//
// Why WAIT alone is not enough: when a failover promotes one replica while
// the old master still runs (SENTINEL FAILOVER, or a master cut off from
// the sentinels), the old master goes on taking writes, and the other
// replicas, still its replicas until they are moved, confirm them. Those
// writes are lost when the replicas move to the new master. So a round of
// WAIT that a failover overlaps confirms nothing: its writes answer as
// not replicated (503, retry with the same Idempotency-Key), and the
// retry finds them, or not, on the new master.
type FailoverFence interface {
	// Failover returns a count of the failovers begun so far and whether
	// one is under way now.
	Failover() (begun uint64, underWay bool)
}

// errFailover is a round of WAIT that a failover overlapped.
var errFailover = errors.New("a Redis failover is under way")

// wait returns once the writes this caller completed on the acker's
// master before calling it are on min replicas: nil; or an error wrapping
// jobs.ErrNotReplicated when the replicas did not confirm them within the
// timeout, the WAIT failed, or ctx ended first. The writes themselves
// stand either way. key is the ack key of the shard the caller wrote to,
// and conn the client of that shard's master as last seen (nil: keep the
// acker's).
func (a *acker) wait(ctx context.Context, key string, conn redis.Cmdable) error {
	start := time.Now()
	a.mu.Lock()
	if conn != nil {
		a.conn = conn
	}
	r := a.next
	if r == nil {
		r = &ackRound{key: key, done: make(chan struct{})}
		a.next = r
	}
	if !a.running {
		a.running = true
		go a.run()
	}
	a.mu.Unlock()
	var err error
	outcome := AckConfirmed
	select {
	case <-r.done:
		err = r.err
		switch {
		case err == nil:
		case errors.Is(err, errTooFewReplicas), errors.Is(err, errFailover):
			outcome = AckTimeout
		default:
			outcome = AckError
		}
	case <-ctx.Done():
		err, outcome = ctx.Err(), AckError
	}
	a.cfg.observed(outcome, time.Since(start))
	if err != nil {
		return fmt.Errorf("%w: %w", jobs.ErrNotReplicated, err)
	}
	return nil
}

// observed tells the observer, if any, of a wait's outcome.
func (c *ackConfig) observed(outcome string, wait time.Duration) {
	if c.observe != nil {
		c.observe(outcome, wait)
	}
}

// errTooFewReplicas: WAIT answered, with fewer replicas than asked for.
var errTooFewReplicas = errors.New("too few replicas confirmed")

// run sends rounds while writes wait for one.
func (a *acker) run() {
	for {
		a.mu.Lock()
		r, conn := a.next, a.conn
		a.next = nil
		if r == nil {
			a.running = false
			a.mu.Unlock()
			return
		}
		a.rounds++
		a.mu.Unlock()
		r.err = a.round(conn, r.key)
		close(r.done)
	}
}

// round sends the tiny write and the WAIT after it in one pipeline, on
// one connection.
func (a *acker) round(conn redis.Cmdable, key string) error {
	cfg := a.cfg
	var begun uint64
	if cfg.fence != nil {
		var underWay bool
		if begun, underWay = cfg.fence.Failover(); underWay {
			return errFailover
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout+ackSlack)
	defer cancel()
	var wait *redis.Cmd
	_, err := conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, key)
		wait = p.Do(ctx, "wait", cfg.min, cfg.timeout.Milliseconds())
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	n, err := wait.Int64()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	if n < int64(cfg.min) {
		return fmt.Errorf("%w: %d of %d within %s", errTooFewReplicas, n, cfg.min, cfg.timeout)
	}
	if cfg.fence != nil {
		if now, underWay := cfg.fence.Failover(); underWay || now != begun {
			return errFailover
		}
	}
	return nil
}

// sent reports how many WAITs the acker has sent.
func (a *acker) sent() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rounds
}

// awaitReplicas is the hook every write of the Store goes through once
// Redis has answered it: with MinReplicasAck set, it returns once the
// write, made on shard, is on that many replicas of the shard's master, or
// an error wrapping jobs.ErrNotReplicated. Without, it costs nothing.
func (s *Store) awaitReplicas(ctx context.Context, shard int) error {
	if s.acks == nil {
		return nil
	}
	return s.acks.wait(ctx, shard)
}

// AwaitReplicas returns once every write this process has seen answered
// (by this Store or any other client of the same Redis) is on
// MinReplicasAck replicas, or with an error wrapping jobs.ErrNotReplicated.
// On a cluster it waits on every master that owns a shard, at once. It
// returns nil at once when MinReplicasAck is 0. A caller that found a
// record after a write whose answer was lost calls it before it treats
// the record as stored.
func (s *Store) AwaitReplicas(ctx context.Context) error {
	if s.acks == nil {
		return nil
	}
	return s.acks.waitAll(ctx)
}

// AwaitJobReplicas is AwaitReplicas for the master of job id's shard only:
// a replica missing on another master does not fail it.
func (s *Store) AwaitJobReplicas(ctx context.Context, id string) error {
	return s.awaitReplicas(ctx, s.ks.ShardOf(id))
}
