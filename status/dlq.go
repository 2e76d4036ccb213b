package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// The dead-letter queue is asyncgw's own, not asynq's archive (which drops
// tasks past 10,000 per queue or 90 days). It is one sorted set per tenant,
// queue and shard (keyspace.DeadLetters), of job IDs scored by when they
// died (unix ms), written by the same script that records the death, so a
// dead job is always in it. The set keyspace.DeadLetterLists names every
// tenant and queue that has such lists. An entry leaves the list when the job is replayed or deleted,
// or (with DeadRetention) when its record expires.

// DeadLetter is one job in the dead-letter queue.
type DeadLetter struct {
	Tenant string    `json:"tenant"`
	DeadAt time.Time `json:"dead_at"`
	Job    *jobs.Job `json:"job"`
}

// DLQFilter selects dead letters; zero fields match everything.
type DLQFilter struct {
	Tenant string
	Queue  string
	Type   string
	// Error matches a job whose last error contains it, ignoring case.
	Error string
	// Since and Until bound when the job died: Since <= dead_at < Until,
	// to the millisecond.
	Since, Until time.Time
}

// Match reports whether the dead letter d passes the filter.
func (f DLQFilter) Match(d DeadLetter) bool {
	switch {
	case f.Tenant != "" && d.Tenant != f.Tenant,
		f.Queue != "" && d.Job.Queue != f.Queue,
		f.Type != "" && d.Job.Type != f.Type,
		f.Error != "" && !strings.Contains(strings.ToLower(d.Job.Error), strings.ToLower(f.Error)),
		!f.Since.IsZero() && d.DeadAt.UnixMilli() < f.Since.UnixMilli(),
		!f.Until.IsZero() && d.DeadAt.UnixMilli() >= f.Until.UnixMilli():
		return false
	}
	return true
}

// ErrBadCursor: a dead-letter cursor that this store did not hand out.
var ErrBadCursor = errors.New("invalid cursor")

// dlqList reads one dead-letter list in order, a batch at a time. It keeps
// its place as (lowest score still to read, entries at that score already
// read), so ties in death time are neither skipped nor read twice.
type dlqList struct {
	tenant, queue, key string
	shard              int
	min                int64
	skip               int64
	until              string
	buf                []dlqPos
	done               bool
}

const dlqBatch = 256

func (l *dlqList) head(ctx context.Context, rdb redis.UniversalClient) (dlqPos, bool, error) {
	if len(l.buf) == 0 && !l.done {
		zs, err := rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: l.key, ByScore: true, Start: strconv.FormatInt(l.min, 10), Stop: l.until,
			Offset: l.skip, Count: dlqBatch,
		}).Result()
		if err != nil {
			return dlqPos{}, false, fmt.Errorf("read dead-letter list: %w", err)
		}
		l.done = len(zs) < dlqBatch
		for _, z := range zs {
			id, _ := z.Member.(string)
			l.buf = append(l.buf, dlqPos{ms: int64(z.Score), tenant: l.tenant, id: id})
		}
	}
	if len(l.buf) == 0 {
		return dlqPos{}, false, nil
	}
	return l.buf[0], true, nil
}

func (l *dlqList) pop() {
	p := l.buf[0]
	l.buf = l.buf[1:]
	if p.ms == l.min {
		l.skip++
	} else {
		l.min, l.skip = p.ms, 1
	}
}

// dlqLists returns the dead-letter lists the filter can match.
func (s *Store) dlqLists(ctx context.Context, f DLQFilter) ([]*dlqList, error) {
	names, err := s.rdb.SMembers(ctx, s.ks.DeadLetterLists()).Result()
	if err != nil {
		return nil, fmt.Errorf("read dead-letter lists: %w", err)
	}
	var lists []*dlqList
	for _, n := range names {
		tenant, queue, ok := strings.Cut(n, "/")
		if !ok || f.Tenant != "" && tenant != f.Tenant || f.Queue != "" && queue != f.Queue {
			continue
		}
		for shard := range s.ks.Shards() {
			lists = append(lists, &dlqList{tenant: tenant, queue: queue, shard: shard, key: s.ks.DeadLetters(shard, tenant, queue), until: "+inf"})
		}
	}
	return lists, nil
}

// ScanDeadLetters calls fn with each dead letter that matches f, oldest
// first, starting after cursor ("" for the start). It stops when fn returns
// false, or once it has looked at budget entries (0: no limit), and returns
// the cursor to go on from: after the last entry it looked at or gave to
// fn, or "" when it reached the end.
func (s *Store) ScanDeadLetters(ctx context.Context, f DLQFilter, cursor string, budget int, fn func(DeadLetter) bool) (string, error) {
	var after dlqPos
	resume := cursor != ""
	if resume {
		var err error
		if after, err = parseCursor(cursor, dlqCursorTag); err != nil {
			return "", err
		}
	}
	lists, err := s.dlqLists(ctx, f)
	if err != nil {
		return "", err
	}
	start := after.ms
	if !f.Since.IsZero() {
		start = max(start, f.Since.UnixMilli())
	}
	until := "+inf"
	if !f.Until.IsZero() {
		until = "(" + strconv.FormatInt(f.Until.UnixMilli(), 10)
	}
	for _, l := range lists {
		l.min, l.until = start, until
	}
	seen, last := 0, after
	for {
		// Take the next chunk in order, then read its records together.
		var chunk []dlqPos
		var owners []*dlqList
		for len(chunk) < 64 && (budget == 0 || seen+len(chunk) < budget) {
			var best *dlqList
			var bestPos dlqPos
			for _, l := range lists {
				p, ok, err := l.head(ctx, s.rdb)
				if err != nil {
					return "", err
				}
				if ok && (best == nil || p.less(bestPos)) {
					best, bestPos = l, p
				}
			}
			if best == nil {
				break
			}
			best.pop()
			if resume && !after.less(bestPos) {
				continue // at or before the cursor
			}
			chunk = append(chunk, bestPos)
			owners = append(owners, best)
		}
		if len(chunk) == 0 {
			if budget > 0 && seen >= budget {
				return last.cursor(dlqCursorTag), nil
			}
			return "", nil
		}
		letters, err := s.readDeadLetters(ctx, chunk, owners)
		if err != nil {
			return "", err
		}
		for i, d := range letters {
			seen, last = seen+1, chunk[i]
			if d != nil && f.Match(*d) && !fn(*d) {
				return last.cursor(dlqCursorTag), nil
			}
		}
	}
}

// readDeadLetters reads the records of a chunk of dead-letter entries. An
// entry whose record is gone (expired) is taken out of its list; one whose
// job is no longer dead (replayed meanwhile) is skipped. Both give nil.
func (s *Store) readDeadLetters(ctx context.Context, chunk []dlqPos, lists []*dlqList) ([]*DeadLetter, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(chunk))
	for i, p := range chunk {
		cmds[i] = pipe.HMGet(ctx, s.ks.Record(p.id), "doc", "state", "t")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]*DeadLetter, len(chunk))
	for i, p := range chunk {
		vals := cmds[i].Val()
		doc, ok := vals[0].(string)
		if !ok || !owned(vals[2], p.tenant) {
			s.rdb.ZRem(ctx, lists[i].key, p.id)
			continue
		}
		if st, _ := vals[1].(string); st != string(jobs.StateDead) {
			continue
		}
		j, err := decodeDoc([]byte(doc), p.tenant)
		if err != nil {
			return nil, err
		}
		out[i] = &DeadLetter{Tenant: p.tenant, DeadAt: time.UnixMilli(p.ms).UTC(), Job: j}
	}
	return out, nil
}

// DeadLetters returns up to limit dead letters that match f, after cursor,
// and the cursor of the next page ("" on the last). It looks at no more
// than scan entries (0: no limit), so a narrow filter over a long queue
// may answer fewer than limit with a cursor to go on from.
func (s *Store) DeadLetters(ctx context.Context, f DLQFilter, cursor string, limit, scan int) ([]DeadLetter, string, error) {
	var page []DeadLetter
	next, err := s.ScanDeadLetters(ctx, f, cursor, scan, func(d DeadLetter) bool {
		page = append(page, d)
		return len(page) < limit
	})
	if err != nil {
		return nil, "", err
	}
	if next != "" && len(page) == limit {
		// Do not hand out a cursor to an empty last page.
		more := false
		if _, err := s.ScanDeadLetters(ctx, f, next, scan, func(DeadLetter) bool { more = true; return false }); err != nil {
			return nil, "", err
		}
		if !more {
			next = ""
		}
	}
	return page, next, nil
}

// FindDeadLetter returns the dead letter of job id, whichever tenant owns
// it, or ErrNotFound when the job is not in the dead-letter queue.
func (s *Store) FindDeadLetter(ctx context.Context, id string) (*DeadLetter, error) {
	lists, err := s.dlqLists(ctx, DLQFilter{})
	if err != nil {
		return nil, err
	}
	shard := s.ks.ShardOf(id)
	lists = slices.DeleteFunc(lists, func(l *dlqList) bool { return l.shard != shard })
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.FloatCmd, len(lists))
	for i, l := range lists {
		cmds[i] = pipe.ZScore(ctx, l.key, id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("find dead letter: %w", err)
	}
	for i, c := range cmds {
		if c.Err() != nil {
			continue
		}
		p := dlqPos{ms: int64(c.Val()), tenant: lists[i].tenant, id: id}
		ds, err := s.readDeadLetters(ctx, []dlqPos{p}, lists[i:i+1])
		if err != nil {
			return nil, err
		}
		if ds[0] != nil {
			return ds[0], nil
		}
	}
	return nil, ErrNotFound
}

// DeleteDeadLetter takes a dead job out of the dead-letter queue. Its
// record stays readable, as dead, for Retention and then expires.
// ErrNotFound if it is not in the dead-letter queue.
func (s *Store) DeleteDeadLetter(ctx context.Context, tenant, queue, id string) error {
	record := s.ks.Record(id)
	n, err := keyspace.DeleteDead.Run(ctx, s.rdb,
		[]string{record, keyspace.EventList(record), s.ks.DeadLetters(s.ks.ShardOf(id), tenant, queue), keyspace.Deliveries(record)},
		id, int64(s.cfg.Retention/time.Second), tenant).Int()
	if err != nil {
		return fmt.Errorf("delete dead letter: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeadLetterCounts returns how many jobs are in the dead-letter queue, per
// queue. Entries whose records expired are counted until a scan takes
// them out.
func (s *Store) DeadLetterCounts(ctx context.Context) (map[string]int64, error) {
	lists, err := s.dlqLists(ctx, DLQFilter{})
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(lists))
	for i, l := range lists {
		cmds[i] = pipe.ZCard(ctx, l.key)
	}
	if len(lists) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("count dead letters: %w", err)
		}
	}
	out := map[string]int64{}
	for i, l := range lists {
		out[l.queue] += cmds[i].Val()
	}
	return out, nil
}
