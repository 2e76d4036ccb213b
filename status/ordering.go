package status

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// Ordering keys: the jobs of one tenant with one ordering key wait in a
// line (keyspace.Space.OrderingLine), on the shard of that key, where the
// jobs themselves are. Only the line's head has an asynq task: the accept
// script writes it for a job that finds the line empty, and keeps the
// task message of any other in its record. When the head ends (succeeded,
// failed, dead, canceled) the update script takes it out of the line and
// puts the line in its shard's promote set; write then promotes the next
// head (the promote script writes its task). A waiting job that ends
// (a cancel) only leaves the line. A dead job that is replayed joins the
// end of its line (Rejoin). Retries of the head keep its place: the key
// is held until the head ends.
//
// A promotion lost to a crash or a lost answer leaves the line in the
// promote set, which every worker sweeps (PromoteLines) on its recovery
// interval: a line is then late by at most that interval, never stuck.

// errOffShard: a job with an ordering key whose ID is not on its key's
// shard (keyspace.Space.ShardFor, PlaceID), where its line is.
var errOffShard = errors.New("a job with an ordering key must be placed on its key's shard")

// errNeedsRejoin: Reopen of a job with an ordering key, which must join
// its line again with its next task (Rejoin).
var errNeedsRejoin = errors.New("a job with an ordering key is reopened with Rejoin")

// checkPlaced reports errOffShard for a job with an ordering key whose ID
// is on another shard than its key's line: its scripts would span slots.
func (s *Store) checkPlaced(j *jobs.Job) error {
	if s.ks.ShardOf(j.ID) != s.ks.ShardFor(j.Tenant, j.OrderingKey) {
		return fmt.Errorf("store job %s: %w (submit.Client.NewID with the ordering key)", j.ID, errOffShard)
	}
	return nil
}

// orderingArgs appends to the update script's keys and args those of j's
// ordering key: the line, the promote set and the waiting counts; the
// entry; and, for a replay, the task it is to have when it is the head.
func (s *Store) orderingArgs(keys []string, args []any, j *jobs.Job, line string, shard int, hasDone bool, rejoin *keyspace.TaskWrite) ([]string, []any) {
	keys = append(keys, line, s.ks.PromoteSet(shard), s.ks.OrderingWaiting(shard))
	if !hasDone {
		args = append(args, "", "", "")
	}
	args = append(args, keyspace.OrderingEntry(j.ID, j.Queue))
	if rejoin != nil {
		score := int64(0)
		if rejoin.Scheduled {
			score = rejoin.Score
		}
		args = append(args, rejoin.Msg, score)
	} else {
		args = append(args, "", 0)
	}
	return keys, args
}

// Rejoin is Reopen for a job with an ordering key: the job joins the end
// of its key's line with task, its next task, which is written when the
// job is at the head (at once when the line is empty). A job without an
// ordering key is refused (use Reopen, with its task enqueued before).
func (s *Store) Rejoin(ctx context.Context, tenant, id string, task *keyspace.TaskWrite, fn func(*jobs.Job) error) (*jobs.Job, error) {
	if task == nil {
		return nil, fmt.Errorf("rejoin job %s: no task", id)
	}
	j, _, err := s.updateDone(ctx, tenant, id, func(j *jobs.Job) error {
		if j.OrderingKey == "" {
			return fmt.Errorf("rejoin job %s: it has no ordering key", id)
		}
		return fn(j)
	}, true, nil, task)
	return j, err
}

// maxPromoteSteps bounds how many heads one promotion walks past: a head
// replaced meanwhile, or one whose record is gone.
const maxPromoteSteps = 8

// promote writes the task of entry, the head of line (of tenant's jobs),
// if it is still the head and still waits; a head that changed meanwhile
// is promoted in its place.
func (s *Store) promote(ctx context.Context, tenant, line, entry string) error {
	for range maxPromoteSteps {
		id, queue, ok := keyspace.ParseOrderingEntry(entry)
		if !ok {
			return fmt.Errorf("promote %s: bad entry %q", line, entry)
		}
		shard := s.ks.ShardOf(id)
		q := keyspace.AsynqQueue(s.ks.Queue(shard, queue))
		now := time.Now()
		f := s.ks.Fair(shard, queue)
		fair := 0
		if s.fair() {
			fair = 1
		}
		res, err := s.eval(ctx, s.updates, keyspace.Promote,
			[]string{line, s.ks.PromoteSet(shard), s.ks.Record(id), q.TaskPrefix + id, q.Pending, q.Scheduled, s.ks.OrderingWaiting(shard), f.Line, f.State},
			entry, id, tenant, now.Unix(), now.UnixNano(), fair, s.fairStep(tenant)).Result()
		if err != nil {
			return fmt.Errorf("promote %s: %w", line, err)
		}
		next, isEntry := res.(string)
		if !isEntry {
			return nil
		}
		entry = next
	}
	return nil
}

// promoteBatch bounds how many lines of one shard a sweep promotes.
const promoteBatch = 100

// PromoteLines promotes the heads of the lines in every shard's promote
// set, up to promoteBatch a shard: those whose promotion was lost (a
// process that died between a job's end and the next one's start, a lost
// answer) or could not be made yet. It returns how many lines it looked
// at. Workers call it on their recovery interval.
func (s *Store) PromoteLines(ctx context.Context) (int, error) {
	// One round trip reads every shard's set: an idle sweep costs that.
	sets := make([]*redis.StringSliceCmd, s.ks.Shards())
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := range sets {
			sets[shard] = p.SRandMemberN(ctx, s.ks.PromoteSet(shard), promoteBatch)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read promote sets: %w", err)
	}
	n := 0
	for shard, cmd := range sets {
		for _, line := range cmd.Val() {
			tenant, ok := s.ks.ParseOrderingLine(line)
			if !ok {
				continue
			}
			head, err := s.rdb.LIndex(ctx, line, 0).Result()
			if err != nil || head == "" {
				// Empty (or unread): the script checks again and takes
				// the line out of the set only if it is empty still,
				// promoting the head that came in between otherwise.
				head = keyspace.OrderingEntry(s.ks.PlaceID(noJob, shard), "-")
			}
			if err := s.promote(ctx, tenant, line, head); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// noJob is the ID of no job, placed on a shard to name an entry that is
// never at a line's head.
const noJob = "aaaaaaaaaaaaaaaaaaaaaaaaaa"

// OrderingBacklog is how many jobs wait behind another job of their
// ordering key, by tenant, over every shard; and how many lines are in the
// promote sets (heads whose task is being written, or waits to be).
// Each is read from a small per-shard hash or set, never by scanning.
func (s *Store) OrderingBacklog(ctx context.Context) (waiting map[string]int64, promoting int64, err error) {
	waiting = map[string]int64{}
	for shard := range s.ks.Shards() {
		m, err := s.rdb.HGetAll(ctx, s.ks.OrderingWaiting(shard)).Result()
		if err != nil {
			return nil, 0, fmt.Errorf("read ordering backlog: %w", err)
		}
		for t, v := range m {
			n, _ := strconv.ParseInt(v, 10, 64)
			waiting[t] += n
		}
		c, err := s.rdb.SCard(ctx, s.ks.PromoteSet(shard)).Result()
		if err != nil {
			return nil, 0, fmt.Errorf("read ordering backlog: %w", err)
		}
		promoting += c
	}
	return waiting, promoting, nil
}

// OrderingLine is the line of tenant's jobs with ordering key key: how
// many jobs it holds and the first limit of them, head first (the head
// runs, or is next to; the others wait, queued or scheduled). A job whose
// record cannot be read is left out.
func (s *Store) OrderingLine(ctx context.Context, tenant, key string, limit int) (int64, []*jobs.Job, error) {
	line := s.ks.OrderingLine(tenant, key)
	var n *redis.IntCmd
	var entries *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.LLen(ctx, line)
		entries = p.LRange(ctx, line, 0, int64(limit)-1)
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read ordering line: %w", err)
	}
	out := make([]*jobs.Job, 0, len(entries.Val()))
	for _, e := range entries.Val() {
		id, _, ok := keyspace.ParseOrderingEntry(e)
		if !ok {
			continue
		}
		j, err := s.Get(ctx, tenant, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		out = append(out, j)
	}
	return n.Val(), out, nil
}
