package status

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
)

// TenantEvents returns up to count of the tenant's events after cursor
// after (a Cursor's text; "": from the oldest kept), each with the cursor
// just after it (Event.Cursor). With several shards it reads every shard's
// stream in one pipeline and merges them by stream ID: each shard's events
// come in their own order, and resuming after any event's cursor gives the
// rest exactly once. A malformed cursor is ErrBadEventID.
func (s *Store) TenantEvents(ctx context.Context, tenant, after string, count int64) ([]jobs.Event, error) {
	cur, err := s.ParseCursor(after)
	if err != nil {
		return nil, err
	}
	return s.TenantEventsAfter(ctx, tenant, cur, count)
}

// TenantEventsAfter is TenantEvents after a parsed cursor, which it leaves
// as it is.
func (s *Store) TenantEventsAfter(ctx context.Context, tenant string, after *Cursor, count int64) ([]jobs.Event, error) {
	n := s.ks.Shards()
	cmds := make([]*redis.XMessageSliceCmd, n)
	read := func(p redis.Cmdable) {
		for i := range n {
			start := "-"
			if !after.start() {
				start = "(" + after.pos[i].String()
			}
			cmds[i] = p.XRangeN(ctx, s.ks.Stream(i, tenant), start, "+", count)
		}
	}
	if n == 1 {
		read(s.rdb) // no pipeline for one command
	} else if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { read(p); return nil }); err != nil {
		return nil, fmt.Errorf("read tenant events: %w", err)
	}
	lists := make([][]redis.XMessage, n)
	for i, c := range cmds {
		msgs, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("read tenant events: %w", err)
		}
		lists[i] = msgs
	}
	// Merge by stream ID, oldest first: each list is taken from its
	// front, so what is returned of a shard is always a prefix of what
	// comes after the cursor there.
	cur := after.Clone()
	evs := make([]jobs.Event, 0, min(count, 64))
	for int64(len(evs)) < count {
		best := -1
		var bestID streamID
		for i, l := range lists {
			if len(l) == 0 {
				continue
			}
			id, _ := parseStreamID(l[0].ID)
			if best < 0 || id.compare(bestID) < 0 {
				best, bestID = i, id
			}
		}
		if best < 0 {
			break
		}
		ev := tenantEvent(tenant, lists[best][0])
		lists[best] = lists[best][1:]
		cur.Advance(ev)
		ev.Cursor = cur.String()
		evs = append(evs, ev)
	}
	return evs, nil
}

// tenantEvent decodes an entry of a tenant's stream.
func tenantEvent(tenant string, m redis.XMessage) jobs.Event {
	id, _ := m.Values["j"].(string)
	kind, _ := m.Values["k"].(string)
	data, _ := m.Values["d"].(string)
	seq, _ := strconv.ParseInt(fmt.Sprint(m.Values["s"]), 10, 64)
	return jobs.Event{
		Seq: seq, StreamID: m.ID, Tenant: tenant, JobID: id,
		Kind: kind, Data: []byte(data),
	}
}

// TenantTail returns the cursor at the newest event of every shard of the
// tenant's streams (with one shard, its stream ID, or "0-0" when it is
// empty): the point a live-only subscriber starts after.
func (s *Store) TenantTail(ctx context.Context, tenant string) (string, error) {
	n := s.ks.Shards()
	cmds := make([]*redis.XMessageSliceCmd, n)
	read := func(p redis.Cmdable) {
		for i := range n {
			cmds[i] = p.XRevRangeN(ctx, s.ks.Stream(i, tenant), "+", "-", 1)
		}
	}
	if n == 1 {
		read(s.rdb)
	} else if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { read(p); return nil }); err != nil {
		return "", fmt.Errorf("read tenant stream tail: %w", err)
	}
	cur := &Cursor{ks: s.ks, pos: make([]streamID, n)}
	for i, c := range cmds {
		msgs, err := c.Result()
		if err != nil {
			return "", fmt.Errorf("read tenant stream tail: %w", err)
		}
		if len(msgs) > 0 {
			cur.pos[i], _ = parseStreamID(msgs[0].ID)
		}
	}
	return cur.String(), nil
}
