// Package autopipe sends the commands of many goroutines to Redis in shared
// pipelines.
//
// A request that needs one Redis round trip pays for it twice over: a
// write and a read on its connection in the client, and the same in Redis,
// with an event-loop wake-up on each side. When many requests are in
// flight at once, a Pipe lets them share those costs: commands that arrive
// while a round trip is under way wait for it to end and then go together,
// in one pipeline. Under light load a command goes alone and at once; there
// is no timer and no background goroutine. The caller whose command finds
// a free slot carries the pipeline itself, and hands the slot to a waiting
// caller when it is done.
package autopipe

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Pipe batches commands onto rdb. At most slots pipelines are in flight
// at once, each of at most max commands.
type Pipe struct {
	rdb   redis.Cmdable
	max   int
	mu    sync.Mutex
	free  int     // slots not carrying a pipeline
	queue []*call // waiting, in arrival order
}

// call is one caller's command on its way.
type call struct {
	ctx context.Context
	add func(redis.Pipeliner)
	// wake is told when the call's command has been answered (or
	// dropped), or when the caller is to carry batch.
	wake  chan struct{}
	batch []*call
	err   error // set when the command was dropped unsent
}

var calls = sync.Pool{New: func() any { return &call{wake: make(chan struct{}, 1)} }}

// New returns a Pipe onto rdb with slots pipelines of up to batch commands
// in flight.
func New(rdb redis.Cmdable, slots, batch int) *Pipe {
	return &Pipe{rdb: rdb, max: max(batch, 1), free: max(slots, 1)}
}

// Do queues the command(s) that add puts on the pipeline it is given, and
// returns once they have been answered; their results are in the commands
// add made. add must put at least one command on the pipeline and must not
// run it. Do returns ctx's error, having sent nothing, when ctx ended
// before the command's turn came; otherwise nil (the commands hold their
// own errors). A command is not sent after its context has ended, but one
// already sent is waited for: its deadline bounds the wait.
func (p *Pipe) Do(ctx context.Context, add func(redis.Pipeliner)) error {
	c := calls.Get().(*call)
	c.ctx, c.add, c.err = ctx, add, nil
	p.mu.Lock()
	if p.free > 0 {
		// A free slot means no one is waiting: carry our own at once.
		p.free--
		p.mu.Unlock()
		p.lead([]*call{c})
	} else {
		p.queue = append(p.queue, c)
		p.mu.Unlock()
		<-c.wake
		if c.batch != nil {
			p.lead(c.batch) // our own is first in it
		}
	}
	err := c.err
	c.ctx, c.add, c.batch, c.err = nil, nil, nil, nil
	calls.Put(c)
	return err
}

// lead carries one pipeline, of batch, whose first call is the leader's
// own; then it hands the slot to the next waiting call with a batch of
// its own to carry, or frees it, and tells the others in batch that
// they are answered.
func (p *Pipe) lead(batch []*call) {
	p.send(batch)

	p.mu.Lock()
	var next *call
	if len(p.queue) > 0 {
		n := min(len(p.queue), p.max)
		next = p.queue[0]
		next.batch = make([]*call, n)
		copy(next.batch, p.queue)
		rest := copy(p.queue, p.queue[n:])
		clear(p.queue[rest:])
		p.queue = p.queue[:rest]
	} else {
		p.free++
	}
	p.mu.Unlock()
	if next != nil {
		next.wake <- struct{}{}
	}
	for _, c := range batch[1:] {
		c.wake <- struct{}{}
	}
}

// send runs the batch's commands in one pipeline. Calls whose context has
// ended are dropped unsent. The pipeline's deadline is the latest of the
// calls' deadlines (none if one has none), so that no call's command is
// cut short by another's.
func (p *Pipe) send(batch []*call) {
	pipe := p.rdb.Pipeline()
	var deadline time.Time
	bounded := true
	var ctx context.Context
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		if ctx == nil {
			ctx = c.ctx
		}
		if d, ok := c.ctx.Deadline(); !ok {
			bounded = false
		} else if d.After(deadline) {
			deadline = d
		}
		c.add(pipe)
	}
	if ctx == nil {
		return // every call was dropped
	}
	// The pipeline outlives the context of any one caller: a caller that
	// gives up waits for its answer all the same (see Do).
	ctx = context.WithoutCancel(ctx)
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	_, _ = pipe.Exec(ctx)
}
