package status

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/jobs"
)

// Jobs are listed from the job index: one sorted set per tenant and shard
// (keyspace.JobIndex) of job IDs scored by when they were accepted (unix
// ms), written by the accept script in the same step as the record and
// trimmed there past JobIndexRetention. A listing merges a tenant's shards
// (or every tenant's, for an operator) newest first, reading each set a
// batch at a time and the records of the entries it looks at in
// pipelined batches; it never scans the key space. An entry whose record
// has expired is taken out of its set when a listing comes across it.

// JobFilter selects jobs from the job index; zero fields match everything.
type JobFilter struct {
	// Tenant is the jobs' owner; "" lists every tenant's.
	Tenant string
	// Type is the job type (a route's name).
	Type string
	// State is the job's current state.
	State jobs.State
	// Since and Until bound when the job was accepted: Since <= at <
	// Until, to the millisecond.
	Since, Until time.Time
}

// match reports whether j passes the filter's record fields.
func (f JobFilter) match(j *jobs.Job) bool {
	return (f.Type == "" || j.Type == f.Type) && (f.State == "" || j.State == f.State)
}

// needsRecords reports whether the filter looks at the records, not only
// at the index.
func (f JobFilter) needsRecords() bool { return f.Type != "" || f.State != "" }

// indexList reads one job index newest first, a batch at a time. It keeps
// its place as (highest score still to read, entries at that score
// already read), so entries accepted in one millisecond are neither
// skipped nor read twice.
type indexList struct {
	tenant, key string
	max         int64
	skip        int64
	min         string
	buf         []jobPos
	done        bool
	cmd         *redis.ZSliceCmd
}

func (l *indexList) query(ctx context.Context, p redis.Cmdable, batch int64) {
	l.cmd = p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: l.key, ByScore: true, Rev: true, Start: strconv.FormatInt(l.max, 10), Stop: l.min,
		Offset: l.skip, Count: batch,
	})
}

// took stores what query read.
func (l *indexList) took(batch int64) error {
	zs, err := l.cmd.Result()
	l.cmd = nil
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read job index: %w", err)
	}
	l.done = int64(len(zs)) < batch
	for _, z := range zs {
		id, _ := z.Member.(string)
		l.buf = append(l.buf, jobPos{ms: int64(z.Score), tenant: l.tenant, id: id})
	}
	return nil
}

func (l *indexList) pop() {
	p := l.buf[0]
	l.buf = l.buf[1:]
	if p.ms == l.max {
		l.skip++
	} else {
		l.max, l.skip = p.ms, 1
	}
}

// JobTenants lists the tenants that have a job index.
func (s *Store) JobTenants(ctx context.Context) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, s.ks.JobTenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("read job index tenants: %w", err)
	}
	return ts, nil
}

// registerIndex notes tenant in the set of tenants with a job index, at
// most every few minutes per process.
func (s *Store) registerIndex(ctx context.Context, tenant string) error {
	if at, ok := s.indexed.Load(tenant); ok && time.Since(at.(time.Time)) < 10*time.Minute {
		return nil
	}
	if err := s.rdb.SAdd(ctx, s.ks.JobTenants(), tenant).Err(); err != nil {
		return fmt.Errorf("register job index: %w", err)
	}
	s.indexed.Store(tenant, time.Now())
	return nil
}

// ListJobs returns up to limit jobs that match f, newest first, after
// cursor ("" for the newest), with their tenants set, and the cursor of
// the next page ("" on the last). It looks at no more than budget index
// entries (0: no limit), so a narrow filter over many jobs may answer
// fewer than limit with a cursor to go on from. A cursor that this store
// did not hand out is ErrBadCursor.
func (s *Store) ListJobs(ctx context.Context, f JobFilter, cursor string, limit, budget int) ([]*jobs.Job, string, error) {
	if limit < 1 {
		return nil, "", errors.New("list jobs: limit must be positive")
	}
	var after jobPos
	resume := cursor != ""
	if resume {
		var err error
		if after, err = parseCursor(cursor, jobCursorTag); err != nil {
			return nil, "", err
		}
	}
	tenants := []string{f.Tenant}
	if f.Tenant == "" {
		var err error
		if tenants, err = s.JobTenants(ctx); err != nil {
			return nil, "", err
		}
	}
	top := int64(1<<53 - 1)
	if !f.Until.IsZero() {
		top = f.Until.UnixMilli() - 1
	}
	if resume {
		top = min(top, after.ms)
	}
	bottom := "-inf"
	if !f.Since.IsZero() {
		bottom = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	var lists []*indexList
	for _, t := range tenants {
		for shard := range s.ks.Shards() {
			lists = append(lists, &indexList{tenant: t, key: s.ks.JobIndex(shard, t), max: top, min: bottom})
		}
	}
	// An unfiltered page needs at most limit+1 entries of any one list.
	batch := int64(256)
	if !f.needsRecords() {
		batch = int64(min(limit+1, 256))
	}
	var page []*jobs.Job
	var pagePos []jobPos
	seen := 0
	var last jobPos
	for {
		if err := s.fillIndex(ctx, lists, batch); err != nil {
			return nil, "", err
		}
		// Take the next chunk in order, then read its records together.
		var chunk []jobPos
		var owners []*indexList
		for len(chunk) < 64 && (budget == 0 || seen+len(chunk) < budget) && len(page)+len(chunk) <= limit {
			var best *indexList
			for _, l := range lists {
				if len(l.buf) == 0 && !l.done {
					// This list ran dry mid-chunk: read the rest first.
					best = nil
					break
				}
				if len(l.buf) > 0 && (best == nil || l.buf[0].before(best.buf[0])) {
					best = l
				}
			}
			if best == nil {
				break
			}
			p := best.buf[0]
			best.pop()
			if resume && !after.before(p) {
				continue // at or before the cursor
			}
			chunk = append(chunk, p)
			owners = append(owners, best)
		}
		if len(chunk) == 0 {
			if lists := dry(lists); len(lists) > 0 && (budget == 0 || seen < budget) && len(page) <= limit {
				continue // a list to refill
			}
			break
		}
		found, err := s.readIndexed(ctx, chunk, owners)
		if err != nil {
			return nil, "", err
		}
		for i, j := range found {
			seen, last = seen+1, chunk[i]
			if j != nil && f.match(j) {
				page, pagePos = append(page, j), append(pagePos, chunk[i])
				if len(page) > limit {
					break
				}
			}
		}
		if len(page) > limit || budget > 0 && seen >= budget {
			break
		}
	}
	switch {
	case len(page) > limit:
		// One more match than asked for: there is a next page.
		return page[:limit], pagePos[limit-1].cursor(jobCursorTag), nil
	case budget > 0 && seen >= budget:
		return page, last.cursor(jobCursorTag), nil
	}
	return page, "", nil
}

// dry returns the lists that have nothing buffered but more to read.
func dry(lists []*indexList) []*indexList {
	var out []*indexList
	for _, l := range lists {
		if len(l.buf) == 0 && !l.done {
			out = append(out, l)
		}
	}
	return out
}

// fillIndex reads the next batch of every list that has run dry, in one
// pipeline.
func (s *Store) fillIndex(ctx context.Context, lists []*indexList, batch int64) error {
	todo := dry(lists)
	if len(todo) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, l := range todo {
		l.query(ctx, pipe, batch)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read job index: %w", err)
	}
	for _, l := range todo {
		if err := l.took(batch); err != nil {
			return err
		}
	}
	return nil
}

// readIndexed reads the records of a chunk of index entries, in one
// pipeline. An entry whose record is gone (expired) is taken out of its
// index and gives nil.
func (s *Store) readIndexed(ctx context.Context, chunk []jobPos, lists []*indexList) ([]*jobs.Job, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(chunk))
	for i, p := range chunk {
		cmds[i] = pipe.HMGet(ctx, s.ks.Record(p.id), "doc", "seq", "t")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	out := make([]*jobs.Job, len(chunk))
	var gone redis.Pipeliner
	for i, p := range chunk {
		vals := cmds[i].Val()
		doc, ok := vals[0].(string)
		if !ok || !owned(vals[2], p.tenant) {
			if gone == nil {
				gone = s.rdb.Pipeline()
			}
			gone.ZRem(ctx, lists[i].key, p.id)
			continue
		}
		j, err := decodeDoc([]byte(doc), p.tenant)
		if err != nil {
			return nil, err
		}
		j.Version, _ = vals[1].(string)
		out[i] = j
	}
	if gone != nil {
		// Best effort: the next listing tries again.
		_, _ = gone.Exec(ctx)
	}
	return out, nil
}

// FindJob returns job id, whichever tenant owns it (its Tenant set), or
// ErrNotFound. It is for operators: a tenant reads its jobs with Get.
func (s *Store) FindJob(ctx context.Context, id string) (*jobs.Job, error) {
	vals, err := s.rdb.HMGet(ctx, s.ks.Record(id), "doc", "seq", "t").Result()
	if err != nil {
		return nil, fmt.Errorf("read job record: %w", err)
	}
	doc, ok := vals[0].(string)
	t, _ := vals[2].(string)
	if !ok || t == "" {
		return nil, ErrNotFound
	}
	j, err := decodeDoc([]byte(doc), t)
	if err != nil {
		return nil, err
	}
	j.Version, _ = vals[1].(string)
	return j, nil
}

// AcceptedSince counts the jobs accepted at or after since, of every
// tenant, from the job index: one ZCOUNT per tenant and shard, in one
// pipeline.
func (s *Store) AcceptedSince(ctx context.Context, since time.Time) (int64, error) {
	tenants, err := s.JobTenants(ctx)
	if err != nil || len(tenants) == 0 {
		return 0, err
	}
	min := strconv.FormatInt(since.UnixMilli(), 10)
	pipe := s.rdb.Pipeline()
	var cmds []*redis.IntCmd
	for _, t := range tenants {
		for shard := range s.ks.Shards() {
			cmds = append(cmds, pipe.ZCount(ctx, s.ks.JobIndex(shard, t), min, "+inf"))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count accepted jobs: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
