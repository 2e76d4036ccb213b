package chaos

import (
	"fmt"
	"time"
)

// Target is what a fault kills.
type Target string

// The processes a fault can kill.
const (
	// Worker kills the worker process with SIGKILL and starts a new one.
	Worker Target = "worker"
	// RedisNode kills the Redis node that takes writes with SIGKILL and
	// restarts it (Redis.Kill, Redis.Restart).
	RedisNode Target = "redis"
	// Gateway kills the gateway process with SIGKILL and starts a new
	// one on the same address.
	Gateway Target = "gateway"
)

// Fault is one kill -9 during the load, and the restart after it.
type Fault struct {
	// Target is the process to kill.
	Target Target
	// At is when to kill it, from the start of the load.
	At time.Duration
	// Down is how long it stays down before it is started again.
	// Defaults to 1s.
	Down time.Duration
	// Busy, for a worker, waits (up to busyWait) until the upstream is
	// being called, and holds the upstream's answers until the worker is
	// dead, so that the kill interrupts running jobs: each must run
	// again, and its upstream is called twice.
	Busy bool
}

// busyWait bounds how long a Busy fault waits for a running job.
const busyWait = 5 * time.Second

func (f Fault) String() string {
	busy := ""
	if f.Busy {
		busy = " while a job runs"
	}
	return fmt.Sprintf("%s kill -9 at %s%s, down %s", f.Target, f.At, busy, f.Down)
}

// FaultResult is what a fault did.
type FaultResult struct {
	Fault
	// Killed is when the process was gone; Restarted when its successor
	// was started (for the gateway and Redis: ready).
	Killed, Restarted time.Time
	// Recovered is how long after the kill the deployment did its job
	// again: for the gateway and Redis, the first 202 to a write sent
	// after the kill; for the worker, the first upstream call after the
	// restart. Zero if it never did within the soak.
	Recovered time.Duration
	// Interrupted lists the jobs whose upstream calls were in progress
	// at the kill of a Busy fault; RanAgain is how long after the kill the
	// last of them was called again (zero if one never was).
	Interrupted []string
	RanAgain    time.Duration
	// Codes counts the answers to tries sent between the kill and the
	// recovery (to the end of the load if it never recovered), by status
	// code, "no answer" for none.
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
	default:
		t.Fatalf("chaos: unknown fault target %q", f.Target)
	}
	r.Killed = time.Now()
	release()
	s.logf("%s: killed", f)
	time.Sleep(f.Down) // the outage itself, not a wait for an event
	var err error
	switch f.Target {
	case Worker:
		err = s.dep.startWorker(false)
	case Gateway:
		err = s.dep.startGateway()
	case RedisNode:
		s.redis.Restart(t)
	}
	if err != nil {
		t.Fatalf("chaos: restart after %s: %v\n%s", f, err, s.dep.output())
	}
	r.Restarted = time.Now()
	s.logf("%s: restarted after %s", f, r.Restarted.Sub(r.Killed).Round(time.Millisecond))
	return r
}

// measure fills in the recovery and the answers during the fault, once
// the load is over.
func (s *soak) measure(r *FaultResult, tries []Try, loadEnd time.Time) {
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
	r.Codes = map[string]int{}
	for _, t := range tries {
		if !t.Start.Before(r.Killed) && t.Start.Before(end) {
			r.Codes[codeName(t.Code)]++
		}
	}
}
