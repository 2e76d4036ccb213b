package status

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
)

// ClaimOutbox takes up to n due entries of a tenant's outbox, on every
// shard, for lease: the caller acknowledges each with AckOutbox once its
// delivery is stored, and an entry not acknowledged comes back after the
// lease.
//
// Each shard's outbox is claimed from in one pipeline (on a cluster, one
// per master, sent at once), each getting an equal share of n. A shard
// that filled its share may hold more: such shards share what is left of
// n in a further pass, until n entries are taken or no shard has more.
// So a busy shard cannot starve the others, nor they slow it down. Which
// shard comes first (and gets the remainder of the division) turns with
// every call, so that when n is smaller than the number of shards every
// shard is served in turn.
//
// Entries claimed on the shards that answered are returned even when
// another failed, with its error.
func (s *Store) ClaimOutbox(ctx context.Context, tenant string, n int, lease time.Duration) ([]OutboxEntry, error) {
	shards := s.ks.Shards()
	first := int(s.outboxTurn.Add(1) % uint64(shards))
	open := make([]int, shards) // the shards that may hold more, in turn
	for k := range open {
		open[k] = (first + k) % shards
	}
	var out []OutboxEntry
	var errs []error
	for left := n; left > 0 && len(open) > 0; {
		claims := s.claimShards(ctx, tenant, open, share(left, len(open)), lease)
		var next []int
		for _, c := range claims {
			switch {
			case c.err != nil:
				errs = append(errs, c.err)
			case c.quota == 0 || c.taken == c.quota:
				// Not served in this pass, or served in full: it may
				// hold more.
				next = append(next, c.shard)
			}
			out = append(out, c.entries...)
			left -= c.taken
		}
		open = next
	}
	return out, errors.Join(errs...)
}

// share divides n into k shares that differ by at most one, the larger
// first.
func share(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// shardClaim is what one claim on one shard's outbox took.
type shardClaim struct {
	shard, quota int
	taken        int // entries leased, readable or not
	entries      []OutboxEntry
	err          error
}

// claimShards claims up to quotas[i] entries of the tenant's outbox on
// shards[i], in one pipeline.
func (s *Store) claimShards(ctx context.Context, tenant string, shards, quotas []int, lease time.Duration) []shardClaim {
	now := time.Now()
	args := func(quota int) []any { return []any{now.UnixMilli(), now.Add(lease).UnixMilli(), quota} }
	claims := make([]shardClaim, len(shards))
	cmds := make([]*redis.Cmd, len(shards))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, shard := range shards {
			claims[i].shard, claims[i].quota = shard, quotas[i]
			if quotas[i] > 0 {
				cmds[i] = keyspace.ClaimOutbox.EvalSha(ctx, p, []string{s.ks.Outbox(shard, tenant)}, args(quotas[i])...)
			}
		}
		return nil
	})
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		c := &claims[i]
		key := s.ks.Outbox(c.shard, tenant)
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis has not seen the script yet: nothing ran, and Run
			// sends it whole.
			cmd = keyspace.ClaimOutbox.Run(ctx, s.rdb, []string{key}, args(c.quota)...)
		}
		ms, err := cmd.StringSlice()
		if err != nil {
			c.err = fmt.Errorf("claim outbox of shard %d: %w", c.shard, err)
			continue
		}
		c.taken = len(ms)
		c.entries = make([]OutboxEntry, 0, len(ms))
		for _, m := range ms {
			id, seq, _ := strings.Cut(m, "\n")
			n, err := strconv.ParseInt(seq, 10, 64)
			if err != nil {
				// Not ours to read: drop it rather than claim it forever.
				_ = s.rdb.ZRem(ctx, key, m).Err()
				continue
			}
			c.entries = append(c.entries, OutboxEntry{Tenant: tenant, JobID: id, Seq: n, Shard: c.shard, member: m})
		}
	}
	return claims
}
