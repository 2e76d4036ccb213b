package chaos

import (
	"testing"
	"time"
)

// Bounds on how long accepts may take to come back. After a kill -9 of
// the master: 6 s, the promise. After a SENTINEL FAILOVER the
// old master takes writes until it is demoted, so the replica that still
// followed it has data the promoted one lacks and needs a full resync;
// with Redis's default repl-diskless-sync-delay of 5 s and
// min-replicas-to-write 1 the new master refuses writes meanwhile
// (measured: accepts back 6–7.5 s after the SENTINEL FAILOVER).
const (
	killResume     = 6 * time.Second
	failoverResume = 12 * time.Second
)

// shortSentinelSoak is the Sentinel soak of the test suite: 20 writes/s
// for 20 s through one SENTINEL FAILOVER and one kill -9 of the master.
// Each fault ends only when the deployment has settled (the old master a
// synced replica of the new one), which takes 15–17 s, so the kill comes
// as soon as the failover has settled. A job whose end the kill
// interrupted comes back with the recoverer, up to 40 s later, and the
// soak waits for it: 45–70 s in all.
func shortSentinelSoak() Options {
	return Options{
		Rate: 20, Duration: 20 * time.Second,
		Faults: []Fault{
			{Target: Failover, At: time.Second, ResumeWithin: failoverResume},
			{Target: RedisNode, At: 2 * time.Second, ResumeWithin: killResume},
		},
		Settle: time.Minute,
	}
}

// longSentinelSoak is the soak of make chaos-ha: 100 writes/s for three
// minutes through two kills of the master, a SENTINEL FAILOVER, a worker
// kill while jobs run and a gateway kill, 30 s apart.
func longSentinelSoak() Options {
	return Options{
		Rate: 100, Duration: 3 * time.Minute,
		Faults: []Fault{
			{Target: RedisNode, At: 20 * time.Second, ResumeWithin: killResume},
			{Target: Failover, At: 50 * time.Second, ResumeWithin: failoverResume},
			{Target: Worker, At: 80 * time.Second, Busy: true},
			{Target: Gateway, At: 110 * time.Second},
			{Target: RedisNode, At: 140 * time.Second, ResumeWithin: killResume},
		},
		Settle: 4 * time.Minute,
	}
}

// TestSoakSentinel runs the soak against a Sentinel deployment (one
// master, two replicas, three sentinels) with redis.min_replicas_ack: 1:
// the master killed with SIGKILL and restarted (it comes back as a
// replica), SENTINEL FAILOVER, and in the long form (make chaos-ha) a
// worker and a gateway kill too. The ledger must show every 202's job
// there after every failover and ended exactly once, no job nobody was
// told about, every write accepted in the end, and accepts back within 6 s
// of a kill of the master (12 s of a SENTINEL FAILOVER). Duplicate upstream calls are reported.
func TestSoakSentinel(t *testing.T) {
	t.Parallel()
	opt, mode := fromEnv(t, shortSentinelSoak(), longSentinelSoak())
	began := time.Now()
	opt.Redis = NewSentinel(t)
	rep := Run(t, opt)
	report(t, "Sentinel soak ("+mode+")", began, rep)
	rep.Check(t)
}
