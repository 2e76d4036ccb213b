package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/upstream"
)

// maxLimitWait is the longest a job waits in its worker for a slot of an
// upstream's limits (see acquireLimit); a longer wait goes back to the
// queue.
const maxLimitWait = time.Second

// limitWaiters is how many of a worker's slots may wait for upstream
// limits at once: a quarter, at least one.
func limitWaiters(concurrency int) int64 { return int64(max(1, concurrency/4)) }

// acquireLimit takes a slot of host's limits (Config.Limits) for job j's
// call: a nil Lease, at once, for a host without limits. When a limit
// holds the call back for less than maxLimitWait and few of the worker's
// slots wait so already (limitWaiters), the job waits in its worker and
// asks again: asynq keeps retry times in whole seconds, so a job put back
// for less than a second would come back at the turn of a second with
// every other, and a fast upstream would get one round of calls per
// second. Otherwise it returns the *upstream.HeldError, for
// holdForLimit.
func (w *Worker) acquireLimit(ctx context.Context, host string, j *jobs.Job) (*upstream.Lease, error) {
	if !w.cfg.Limits.Limited(host) {
		return nil, nil
	}
	job := limitTicket(ctx, j)
	lease, err := w.cfg.Limits.Acquire(ctx, host, job)
	var held *upstream.HeldError
	if err == nil || !errors.As(err, &held) || held.Wait > maxLimitWait {
		return lease, err
	}
	if w.limitWaits.Add(1) > limitWaiters(w.cfg.Concurrency) {
		w.limitWaits.Add(-1)
		return nil, err
	}
	defer w.limitWaits.Add(-1)
	deadline := time.Now().Add(maxLimitWait)
	for {
		// Until the time given, or until a call of this worker gives a
		// slot back, whichever comes first.
		wait := max(held.Wait, 5*time.Millisecond)
		t := time.NewTimer(wait + rand.N(wait/10))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		case <-w.limitFreed():
			t.Stop()
		}
		lease, err = w.cfg.Limits.Acquire(ctx, host, job)
		if err == nil || !errors.As(err, &held) || held.Wait > time.Until(deadline) {
			return lease, err
		}
	}
}

// limitFreed is closed when a call of this worker next gives back a slot
// of an upstream's limits.
func (w *Worker) limitFreed() <-chan struct{} {
	w.limitMu.Lock()
	defer w.limitMu.Unlock()
	if w.freed == nil {
		w.freed = make(chan struct{})
	}
	return w.freed
}

// LimitHandOff is how many held-back jobs a worker tries, earliest first,
// to bring one forward to a slot it gives back (upstream.Config.HandOff).
const LimitHandOff = 3

// limitTicket names job j's run to an upstream's limits: its task's key,
// from which handOff finds the task, or the job's ID outside a task.
func limitTicket(ctx context.Context, j *jobs.Job) string {
	id, ok := asynq.GetTaskID(ctx)
	queue, qok := asynq.GetQueueName(ctx)
	if !ok || !qok {
		return j.ID
	}
	return keyspace.AsynqTaskKey(queue, id)
}

// releaseLimit gives back the slot of a call that ended with err (nil
// lease: a host without limits), and wakes the jobs that wait in this
// worker for a slot; when none does (for any host), it brings forward a
// job held back for the host to take the slot (handOff), beside the job
// that ends, which need not wait for it.
func (w *Worker) releaseLimit(lease *upstream.Lease, err error) {
	if lease == nil {
		return
	}
	if waiting := lease.Release(limitOutcome(err)); len(waiting) > 0 && w.limitWaits.Load() == 0 {
		go w.handOff(waiting)
	}
	w.limitMu.Lock()
	if w.freed != nil {
		close(w.freed)
		w.freed = nil
	}
	w.limitMu.Unlock()
}

// handOff brings the first task it can of those named (limitTicket) from
// its retry set to its queue, to take an upstream's slot just given back:
// a job held back goes back to its queue for a time in whole seconds (see
// heldDelay), and would otherwise leave the slot empty until then. A task
// that is running (waiting in its worker for the slot) or pending already
// is passed over. It uses asynq's public Inspector.RunTask (two round
// trips a task), which puts the task at the back of its pending list; the
// job, brought forward, does not wait for the time its record gives
// (awaitDue) and asks the limits again.
func (w *Worker) handOff(waiting []string) {
	for _, ticket := range waiting {
		queue, kind, ok := keyspace.ParseAsynqKey(ticket)
		id, task := strings.CutPrefix(kind, "t:")
		if !ok || !task {
			continue
		}
		if err := w.insp.RunTask(queue, id); err != nil {
			w.log.Debug("held job not brought forward", "queue", queue, "task", id, "err", err)
			continue
		}
		w.take.watch.wake(keyspace.AsynqQueue(queue).Pending)
		w.log.Debug("held job brought forward to a freed upstream slot", "queue", queue, "task", id)
		return
	}
}

// holdForLimit answers a refused acquireLimit: a job held back by an
// upstream's limits goes back to its queue without using an attempt
// (holdBack), its record saying which limit holds it, for the time the
// limiter gave, stretched by up to a tenth at random and then to the turn
// of the next second: asynq hands a retried task over at the start of its
// second, and one handed over early would wait in its worker (awaitDue).
// When Redis could not be asked, the job comes back in a second, also
// without using an attempt.
func (w *Worker) holdForLimit(ctx context.Context, log runLog, j *jobs.Job, err error) error {
	var held *upstream.HeldError
	if !errors.As(err, &held) {
		return &uncounted{Delay: time.Second, Err: err}
	}
	return w.holdBack(ctx, log, j, heldDelay(time.Now(), held.Wait), held)
}

// heldDelay is how long from now a job held back for wait goes back to
// its queue (see holdForLimit).
func heldDelay(now time.Time, wait time.Duration) time.Duration {
	wait = max(wait, time.Millisecond)
	at := now.Add(wait + rand.N(wait/10+time.Millisecond))
	if s := at.Truncate(time.Second); !s.Equal(at) {
		at = s.Add(time.Second)
	}
	return at.Sub(now)
}

// limitOutcome tells an upstream's limiter how a call went, from the
// error of its attempt: a 429 or 503 (with its Retry-After) or a timeout
// is an overload; another failure says nothing of the upstream's speed.
func limitOutcome(err error) upstream.Outcome {
	var ue *upstreamError
	switch {
	case err == nil:
		return upstream.Outcome{Called: true}
	case errors.Is(err, errNotCalled) || errors.Is(err, context.Canceled):
		return upstream.Outcome{}
	case errors.As(err, &ue) && (ue.Status == http.StatusTooManyRequests || ue.Status == http.StatusServiceUnavailable):
		return upstream.Outcome{Called: true, Overload: true, RetryAfter: ue.RetryAfter}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return upstream.Outcome{Called: true, Overload: true}
	}
	return upstream.Outcome{Called: true, Failed: true}
}

// isTimeout reports a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
