package keyspace

// asynq's private layout, as read from asynq v0.26.0 (internal/base/base.go
// for the keys, internal/rdb/rdb.go for the scripts, internal/proto for the
// task message). It is the one place in asyncgw that depends on it: the
// accept script writes a task as asynq's client does, the worker's take
// serves asynq's dequeue in batches, and the record script retires a task
// as asynq's Done does. None of it is asynq's documented surface, so at
// start-up AsynqDirect checks that the asynq linked in is the version
// described here; when it is not, asyncgw keeps to asynq's public API.
// TestAsynqVersionMatchesGoMod fails when go.mod moves asynq without this
// file being read again.

import (
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// AsynqVersion is the asynq version this file describes.
const AsynqVersion = "v0.26.0"

const asynqModule = "github.com/hibiken/asynq"

// AsynqLinked is the version of asynq linked into this binary ("" when the
// binary carries no build information). A test binary carries none: its
// asynq is go.mod's, which TestAsynqVersionMatchesGoMod holds to
// AsynqVersion.
func AsynqLinked() string {
	info, ok := debug.ReadBuildInfo()
	if ok {
		for _, d := range info.Deps {
			if d.Path == asynqModule {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	if testing.Testing() && (!ok || len(info.Deps) == 0) {
		return AsynqVersion
	}
	return ""
}

// AsynqDirect reports whether asyncgw may write asynq's tasks and serve
// its scripts directly: the asynq linked in is the one this file
// describes, and AsynqPublicOnly was not called. Otherwise asyncgw uses
// asynq's public API only.
func AsynqDirect() bool { return !publicOnly.Load() && linkedIsDescribed() }

var (
	linkedIsDescribed = sync.OnceValue(func() bool { return AsynqLinked() == AsynqVersion })
	publicOnly        atomic.Bool
)

// AsynqPublicOnly makes AsynqDirect false for the rest of the process: the
// operators' switch (ASYNCGW_ASYNQ_DIRECT=off) for when the direct path is
// suspected of a fault.
func AsynqPublicOnly() { publicOnly.Store(true) }

// asynq v0.26 script SHA-1s that the worker serves itself (see jobs'
// takeClient): the dequeue of one task, the Done of a task without a
// uniqueness lock, and the listing of a queue's lease-expired tasks.
const (
	AsynqDequeueSHA          = "a8153319360adc71cdc370107f8ab9786f204765"
	AsynqDoneSHA             = "1241eaa1c73409baaf1fea0c08d203a4911bda15"
	AsynqListLeaseExpiredSHA = "16988a462595f6ee317be300951533b004f27f5c"
)

// asynq v0.26 script SHA-1s that the worker lets through to Redis only when
// they may have work (see jobs' queueWatch): the forwarder's move of due
// scheduled or retried tasks of one queue to its pending list, and the
// janitor's deletion of a queue's expired completed tasks.
const (
	AsynqForwardSHA         = "522b1a6ae66fe79ea2f24a9af58798ab71879035"
	AsynqDeleteCompletedSHA = "49c4326d80c1db9c476da2aa7f4438d03688f82b"
)

// AsynqLease is how long asynq leases a running task (renewed every 5s);
// a worker that died leaves its tasks leased for up to that long.
const AsynqLease = 30 * time.Second

// asynqStatsTTL is how long asynq keeps a queue's count of the tasks
// processed on one day.
const asynqStatsTTL = 90 * 24 * time.Hour

// Queue is the asynq queue of priority (a configured queue name, such as
// "default") on shard: "<tag>}<priority>". asynq names its keys
// "asynq:{<queue>}:…", so every key of the queue carries the shard's tag,
// and every priority of a shard shares one slot with the shard's keys.
func (s *Space) Queue(shard int, priority string) string {
	return s.tags[shard] + "}" + priority
}

// JobQueue is the asynq queue of a job of priority with ID id.
func (s *Space) JobQueue(id, priority string) string {
	return s.Queue(s.ShardOf(id), priority)
}

// Queues is every asynq queue of priority, one per shard.
func (s *Space) Queues(priority string) []string {
	out := make([]string, len(s.tags))
	for i := range s.tags {
		out[i] = s.Queue(i, priority)
	}
	return out
}

// ParseQueue splits an asynq queue name made by Queue into the shard and
// the priority; ok is false for a queue that is not one of this layout's.
func (s *Space) ParseQueue(queue string) (shard int, priority string, ok bool) {
	tag, priority, found := strings.Cut(queue, "}")
	if !found || priority == "" {
		return 0, "", false
	}
	for i, t := range s.tags {
		if t == tag {
			return i, priority, true
		}
	}
	return 0, "", false
}

// AsynqQueueKeys are the keys of one asynq queue.
type AsynqQueueKeys struct {
	Pending, Active, Lease, Scheduled, Retry, Completed, Paused string
	// Processed counts the tasks done, in all (asynq's "processed_total").
	Processed string
	// TaskPrefix followed by a task ID is the task's hash.
	TaskPrefix string
}

// AsynqQueue returns the keys of asynq queue queue.
func AsynqQueue(queue string) AsynqQueueKeys {
	base := "asynq:{" + queue + "}:"
	return AsynqQueueKeys{
		Pending: base + "pending", Active: base + "active", Lease: base + "lease",
		Scheduled: base + "scheduled", Retry: base + "retry", Completed: base + "completed",
		Paused: base + "paused", Processed: base + "processed", TaskPrefix: base + "t:",
	}
}

// AsynqTaskKey is the hash of task id on asynq queue queue: the same as
// AsynqQueue(queue).TaskPrefix + id.
func AsynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// ParseAsynqKey splits a key of an asynq queue ("asynq:{<queue>}:<kind>",
// such as asynq:{s0}default}:pending) into the queue and the kind
// ("pending", "active", "lease", "t:<id>", …); ok is false for any other
// key. The worker uses it to recognise the keys of asynq's script calls.
func ParseAsynqKey(key string) (queue, kind string, ok bool) {
	rest, found := strings.CutPrefix(key, "asynq:{")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "}:")
	if i < 0 || strings.Contains(rest[i+2:], "}") {
		return "", "", false
	}
	return rest[:i], rest[i+2:], true
}

// AsynqQueuesKey is asynq's set of every queue's name. asynq's client adds
// a queue to it with each task; asyncgw adds its queues when a process
// starts (RegisterQueues), not in the accept script, whose keys all share
// the job's slot.
const AsynqQueuesKey = "asynq:queues"

// asynq's TaskMessage field numbers (internal/proto/asynq.proto).
const (
	fieldType    = 1
	fieldPayload = 2
	fieldID      = 3
	fieldQueue   = 4
	fieldRetry   = 5
	fieldTimeout = 8
)

// TaskWrite is a job's asynq task, ready to be written by the accept
// script, so that a job is accepted in one step: task, record, first
// event and Idempotency-Key mapping together, or nothing. It writes what
// asynq's own client writes: the task hash with msg, state and
// pending_since, the task ID on the queue's pending list (or its
// scheduled set, scored by the due time in unix seconds).
type TaskWrite struct {
	// Key is the task hash; List the pending list or the scheduled set.
	Key, List string
	Queue, ID string
	// Msg is the encoded task message.
	Msg []byte
	// Scheduled: List is the scheduled set and Score the due time (unix
	// seconds). Otherwise PendingSince is now (unix ns).
	Scheduled    bool
	Score        int64
	PendingSince int64
}

// Task is what asyncgw puts in an asynq task.
type Task struct {
	Type    string
	Payload []byte
	ID      string
	// Queue is the asynq queue (see Queue).
	Queue string
	// MaxRetry and Timeout are asynq's options of the same names.
	MaxRetry int
	Timeout  time.Duration
}

// NewTaskWrite builds the write of t, due at processAt (zero or past: now).
func NewTaskWrite(t Task, processAt, now time.Time) *TaskWrite {
	// As in asynq's client: the wire form of a TaskMessage with a timeout
	// and no deadline, fields in number order, zero values left out.
	msg := make([]byte, 0, 64+len(t.Payload)+len(t.ID)+len(t.Queue)+len(t.Type))
	msg = protowire.AppendTag(msg, fieldType, protowire.BytesType)
	msg = protowire.AppendString(msg, t.Type)
	msg = protowire.AppendTag(msg, fieldPayload, protowire.BytesType)
	msg = protowire.AppendBytes(msg, t.Payload)
	msg = protowire.AppendTag(msg, fieldID, protowire.BytesType)
	msg = protowire.AppendString(msg, t.ID)
	msg = protowire.AppendTag(msg, fieldQueue, protowire.BytesType)
	msg = protowire.AppendString(msg, t.Queue)
	msg = protowire.AppendTag(msg, fieldRetry, protowire.VarintType)
	msg = protowire.AppendVarint(msg, uint64(t.MaxRetry))
	msg = protowire.AppendTag(msg, fieldTimeout, protowire.VarintType)
	msg = protowire.AppendVarint(msg, uint64(t.Timeout/time.Second))

	q := AsynqQueue(t.Queue)
	w := &TaskWrite{
		Key: q.TaskPrefix + t.ID, List: q.Pending,
		Queue: t.Queue, ID: t.ID, Msg: msg, PendingSince: now.UnixNano(),
	}
	if processAt.After(now) {
		w.List, w.Scheduled, w.Score = q.Scheduled, true, processAt.Unix()
	}
	return w
}

// TaskDone retires the task of a job that ended, as asynq's Done does when
// a handler returns without error: the task leaves its queue's active list
// and lease, its hash is deleted, and it is counted in the queue's
// processed totals, for the day and in all. The store does it in the
// script that records the job's end, so that a job's end costs one round
// trip instead of two; asynq's own Done for that task is then answered
// without going to Redis.
type TaskDone struct {
	// Active, Lease and Key are the queue's active list and lease and the
	// task's hash; Processed and Total its processed counts, of the day
	// and in all.
	Active, Lease, Key, Processed, Total string
	ID                                   string
	// StatsExpire is when the day's count expires (unix seconds), and
	// MaxCount the count at which the total starts again from one.
	StatsExpire, MaxCount int64
}

// NewTaskDone is the TaskDone of task id on asynq queue queue, ended at
// now.
func NewTaskDone(queue, id string, now time.Time) *TaskDone {
	q := AsynqQueue(queue)
	base := "asynq:{" + queue + "}:"
	return &TaskDone{
		Active: q.Active, Lease: q.Lease, Key: q.TaskPrefix + id,
		Processed: base + "processed:" + now.UTC().Format(time.DateOnly),
		Total:     base + "processed", ID: id,
		StatsExpire: now.Add(asynqStatsTTL).Unix(), MaxCount: math.MaxInt64,
	}
}
