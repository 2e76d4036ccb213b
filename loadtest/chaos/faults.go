package chaos

import (
	"fmt"
	"slices"
	"time"
)

// Target is what a fault kills, or does.
type Target string

// The processes a fault can kill, and the failover it can ask for.
const (
	// Worker kills the worker process with SIGKILL and starts a new one.
	Worker Target = "worker"
	// RedisNode kills the Redis node that takes writes with SIGKILL and
	// restarts it (Redis.Kill, Redis.Restart).
	RedisNode Target = "redis"
	// Gateway kills the gateway process with SIGKILL and starts a new
	// one on the same address.
	Gateway Target = "gateway"
	// Failover kills nothing: it asks the Redis deployment to hand the
	// master's role to a replica (SENTINEL FAILOVER) and waits until it
	// has settled (Failoverer). Down does not apply.
	Failover Target = "failover"
	// Migrate kills nothing: it moves the slot of the shard asyncgw
	// writes to onto another master, with its keys, under load
	// (Migrator), and returns once every node agrees. Down does not
	// apply.
	Migrate Target = "migrate"
)

// Fault is one kill -9 during the load, and the restart after it (or
// one failover, and the wait for it to be over).
type Fault struct {
	// Target is the process to kill.
	Target Target
	// At is when to kill it, from the start of the load.
	At time.Duration
	// Down is how long it stays down before it is started again.
	// Defaults to 1s.
	Down time.Duration
	// ResumeWithin, when not zero, bounds Resumed: Report.Check fails the
	// soak if accepts took longer to come back. Not for the worker.
	ResumeWithin time.Duration
	// Busy, for a worker, waits (up to busyWait) until the upstream is
	// being called, and holds the upstream's answers until the worker is
	// dead, so that the kill interrupts running jobs: each must run
	// again, and its upstream is called twice.
	Busy bool
}

// busyWait bounds how long a Busy fault waits for a running job.
const busyWait = 5 * time.Second

func (f Fault) String() string {
	switch f.Target {
	case Failover:
		return fmt.Sprintf("SENTINEL FAILOVER at %s", f.At)
	case Migrate:
		return fmt.Sprintf("slot migrated to another master at %s", f.At)
	}
	busy := ""
	if f.Busy {
		busy = " while a job runs"
	}
	return fmt.Sprintf("%s kill -9 at %s%s, down %s", f.Target, f.At, busy, f.Down)
}

// FaultResult is what a fault did.
type FaultResult struct {
	Fault
	// Killed is when the process was gone (for a failover: when it was
	// asked for; for a migration: when it began); Restarted when its
	// successor was started (for the gateway and Redis: ready; for Redis
	// with replicas and a failover: settled, see Failoverer.Settle; for a
	// migration: when every node agreed on the slot's new master).
	Killed, Restarted time.Time
	// Recovered is how long after the kill the deployment did its job
	// again: for the gateway and Redis, the first 202 to a write sent
	// after the kill; for the worker, the first upstream call after the
	// restart. Zero if it never did within the soak.
	Recovered time.Duration
	// Resumed, for all but the worker, is how long after the kill accepts
	// were back: the first 202 to a try sent no earlier than the last
	// failed try (no answer, a 5xx) of the outage, the first burst of
	// failed tries after the kill. It is Recovered when no try failed
	// after the first 202, and zero when accepts never came back. A
	// failover may go on answering 202 for a moment before it refuses:
	// Recovered says little of it, Resumed does. Stray counts the tries
	// that failed after the outage, before the next fault.
	Resumed time.Duration
	Stray   int
	// Interrupted lists the jobs whose upstream calls were in progress
	// at the kill of a Busy fault; RanAgain is how long after the kill the
	// last of them was called again (zero if one never was).
	Interrupted []string
	RanAgain    time.Duration
	// Codes counts the answers to tries sent between the kill and the
	// recovery (Resumed, or for the worker Recovered; to the end of the
	// load if it never recovered), by status code and problem type, "no
	// answer" for none.
	Codes map[string]int
}

// apply runs one fault: kill, wait Down, restart.
func (s *soak) apply(f Fault) FaultResult {
	t := s.t
	t.Helper()
	r := FaultResult{Fault: f}
	release := func() {}
	if f.Busy && f.Target == Worker {
		// Hold the upstream's answers, so that the calls in progress are
		// still in progress when the worker dies.
		release = s.up.hold()
		defer release()
		deadline := time.Now().Add(busyWait)
		for len(s.up.Running()) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		r.Interrupted = s.up.Running()
	}
	switch f.Target {
	case Worker:
		s.dep.killWorker()
	case Gateway:
		s.dep.killGateway()
	case RedisNode:
		s.redis.Kill(t)
	case Failover:
		s.failoverer(f).Failover(t)
	case Migrate:
		// The whole migration is the fault: it is under way from the
		// first SETSLOT to the last.
		mig := s.migrator(f)
		r.Killed = time.Now()
		mig.Migrate(t)
		r.Restarted = time.Now()
		s.logf("%s: done after %s", f, r.Restarted.Sub(r.Killed).Round(time.Millisecond))
		return r
	default:
		t.Fatalf("chaos: unknown fault target %q", f.Target)
	}
	r.Killed = time.Now()
	release()
	if f.Target == Failover {
		s.logf("%s: asked", f)
	} else {
		s.logf("%s: killed", f)
		time.Sleep(f.Down) // the outage itself, not a wait for an event
	}
	var err error
	switch f.Target {
	case Worker:
		err = s.dep.startWorker(false)
	case Gateway:
		err = s.dep.startGateway()
	case RedisNode:
		s.redis.Restart(t)
	case Failover:
		s.failoverer(f).Settle(t)
	}
	if err != nil {
		t.Fatalf("chaos: restart after %s: %v\n%s", f, err, s.dep.output())
	}
	r.Restarted = time.Now()
	s.logf("%s: restarted after %s", f, r.Restarted.Sub(r.Killed).Round(time.Millisecond))
	return r
}

// failoverer returns the deployment as a Failoverer, or fails t.
func (s *soak) failoverer(f Fault) Failoverer {
	fo, ok := s.redis.(Failoverer)
	if !ok {
		s.t.Fatalf("chaos: %s needs a Redis deployment with replicas that can fail over (such as Sentinel), not %T", f, s.redis)
	}
	return fo
}

// migrator returns the deployment as a Migrator, or fails t.
func (s *soak) migrator(f Fault) Migrator {
	m, ok := s.redis.(Migrator)
	if !ok {
		s.t.Fatalf("chaos: %s needs a Redis deployment whose slots can move (such as Cluster), not %T", f, s.redis)
	}
	return m
}

// measure fills in the recovery and the answers during the fault, once
// the load is over. next is when the next fault struck (zero for none):
// tries from then on are the next fault's.
func (s *soak) measure(r *FaultResult, tries []Try, loadEnd, next time.Time) {
	var back time.Time
	switch r.Target {
	case Worker:
		back, _ = s.up.FirstCallAfter(r.Restarted)
	default:
		for _, t := range tries {
			if t.Code == 202 && !t.Start.Before(r.Killed) && (back.IsZero() || t.End.Before(back)) {
				back = t.End
			}
		}
	}
	for _, id := range r.Interrupted {
		var again time.Time
		for _, c := range s.up.Calls(id) {
			if c.At.After(r.Killed) && (again.IsZero() || c.At.Before(again)) {
				again = c.At
			}
		}
		if again.IsZero() {
			r.RanAgain = 0
			break
		}
		r.RanAgain = max(r.RanAgain, again.Sub(r.Killed))
	}
	end := loadEnd
	if !back.IsZero() {
		r.Recovered = back.Sub(r.Killed)
		end = back
	}
	if r.Target != Worker && !back.IsZero() {
		if resumed, stray, ok := resumedAt(tries, r.Killed, next); ok {
			r.Resumed, r.Stray = resumed.Sub(r.Killed), stray
			end = resumed
		}
	}
	r.Codes = map[string]int{}
	for _, t := range tries {
		if !t.Start.Before(r.Killed) && t.Start.Before(end) {
			r.Codes[t.answer()]++
		}
	}
}

// burstGap is the longest pause between two failed tries of one outage:
// clients retry at least every second, so during an outage failures come
// far closer together than this.
const burstGap = 2 * time.Second

// resumedAt returns when accepts were back after from, and how many tries
// failed after that. The outage is the first burst of failed tries (no
// answer, a 5xx) sent in [from, next) (next zero for no end): failures each
// less than burstGap after the one before. Accepts were back at the end of
// the first 202 to a try sent at or after the start of the burst's last
// failure (with no failure, at or after from). False if no such 202 came.
func resumedAt(tries []Try, from, next time.Time) (back time.Time, stray int, ok bool) {
	var fails []time.Time
	for _, t := range tries {
		if !t.Start.Before(from) && (next.IsZero() || t.Start.Before(next)) && (t.Code == NoAnswer || t.Code >= 500) {
			fails = append(fails, t.Start)
		}
	}
	slices.SortFunc(fails, time.Time.Compare)
	lastFail := from
	for i, at := range fails {
		if i > 0 && at.Sub(fails[i-1]) >= burstGap {
			stray = len(fails) - i
			break
		}
		lastFail = at
	}
	for _, t := range tries {
		if t.Code == 202 && !t.Start.Before(lastFail) && (back.IsZero() || t.End.Before(back)) {
			back = t.End
		}
	}
	return back, stray, !back.IsZero()
}
