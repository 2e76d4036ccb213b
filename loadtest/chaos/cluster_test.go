package chaos

import (
	"testing"
	"time"
)

// shortClusterSoak is the Cluster soak of the test suite: 20 writes/s for
// 15 s through a kill -9 of the master of the shard's slot (its replica
// takes over; the killed node comes back as a replica) and a migration of
// that slot to another master.
func shortClusterSoak() Options {
	return Options{
		Rate: 20, Duration: 15 * time.Second,
		Faults: []Fault{
			{Target: RedisNode, At: time.Second, ResumeWithin: killResume},
			{Target: Migrate, At: 2 * time.Second, ResumeWithin: killResume},
		},
		Settle: time.Minute,
	}
}

// longClusterSoak is the soak of make chaos-cluster: 100 writes/s for
// three minutes through two kills of the shard's master, two migrations
// of its slot, a worker kill while jobs run and a gateway kill.
func longClusterSoak() Options {
	return Options{
		Rate: 100, Duration: 3 * time.Minute,
		Faults: []Fault{
			{Target: RedisNode, At: 20 * time.Second, ResumeWithin: killResume},
			{Target: Migrate, At: 45 * time.Second, ResumeWithin: killResume},
			{Target: Worker, At: 70 * time.Second, Busy: true},
			{Target: Gateway, At: 95 * time.Second},
			{Target: Migrate, At: 120 * time.Second, ResumeWithin: killResume},
			{Target: RedisNode, At: 145 * time.Second, ResumeWithin: killResume},
		},
		Settle: 4 * time.Minute,
	}
}

// TestSoakCluster runs the soak against a Redis Cluster (3 masters, 1
// replica each) with redis.min_replicas_ack: 1: the master of the shard's
// slot killed with SIGKILL (its replica takes over), the slot migrated to
// another master under load (ASK and TRYAGAIN answered as 503 at worst),
// and in the long form (make chaos-cluster) a worker and a gateway kill
// too. The ledger must show every 202's job there after every fault and
// ended exactly once, no job nobody was told about, every write accepted
// in the end, and accepts back within 6 s of each fault.
func TestSoakCluster(t *testing.T) {
	t.Parallel()
	opt, mode := fromEnv(t, shortClusterSoak(), longClusterSoak())
	began := time.Now()
	opt.Redis = NewCluster(t)
	rep := Run(t, opt)
	report(t, "Cluster soak ("+mode+")", began, rep)
	rep.Check(t)
}
