package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/testutil"
)

// syncTimeout bounds how long a replica may take to sync with its master.
const syncTimeout = 15 * time.Second

// StartReplica starts a redis-server that replicates master
// (--replicaof) and waits until its link to the master is up, so that
// what master has is on the replica. Like Start, it is killed when t ends;
// Stop and Restart it to take it away from its master and bring it back
// (then WaitLinkUp). opts are those of Start.
//
// The master is told to sync replicas at once (repl-diskless-sync-delay
// 0), not after Redis's default five seconds.
func StartReplica(t testing.TB, master *Server, opts ...Option) *Server {
	t.Helper()
	host, port, err := net.SplitHostPort(master.Addr())
	if err != nil {
		t.Fatalf("redistest: master address %q: %v", master.Addr(), err)
	}
	mc := master.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := mc.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatalf("redistest: configure master %s for replicas: %v", master.Addr(), err)
	}
	r := Start(t, append(opts, WithArgs("--replicaof", host, port))...)
	r.WaitLinkUp(t)
	return r
}

// WaitLinkUp waits until the replica s is in sync with its master: its
// link is up (INFO replication: master_link_status:up), the master lists
// it online, and a write on the master is confirmed by WAIT for all its
// replicas. It fails t after a bound.
func (s *Server) WaitLinkUp(t testing.TB) {
	t.Helper()
	c := s.Client(t)
	_, port, _ := net.SplitHostPort(s.Addr())
	testutil.WaitForWhy(t, syncTimeout, "replica "+s.Addr()+" to sync with its master", func() (bool, string) {
		return inSync(c, port)
	})
}

// inSync reads a replica's INFO replication and then its master's: whether
// the link is up and the master has the replica (on port) online, and
// what it says otherwise.
func inSync(c *redis.Client, port string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return false, err.Error()
	}
	f := infoFields(info)
	if f["master_link_status"] != "up" {
		return false, "master_link_status:" + f["master_link_status"]
	}
	mc := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(f["master_host"], f["master_port"])})
	defer mc.Close()
	minfo, err := mc.Info(ctx, "replication").Result()
	if err != nil {
		return false, "master: " + err.Error()
	}
	mf := infoFields(minfo)
	listed := false
	for k, v := range mf {
		if strings.HasPrefix(k, "slave") && strings.Contains(","+v+",", ",port="+port+",") {
			if !strings.Contains(v, "state=online") {
				return false, "master has it as " + v
			}
			listed = true
		}
	}
	if !listed {
		return false, "the master does not list it yet"
	}
	// Online is not enough: after a sync, the master streams nothing to
	// the replica until the replica's first acknowledgement (up to a
	// second later), and a WAIT meanwhile finds no replica. What tests
	// need is that a write is confirmed: a write, then WAIT for it on the
	// same connection.
	n, _ := strconv.Atoi(mf["connected_slaves"])
	var wait *redis.Cmd
	_, err = mc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, syncProbeKey)
		wait = p.Do(ctx, "wait", n, 100)
		return nil
	})
	if got, _ := wait.Int(); err != nil || got < n {
		return false, fmt.Sprintf("a write confirmed by %d of %d replicas (%v)", got, n, err)
	}
	return true, ""
}

// syncProbeKey is the key WaitLinkUp writes on the master to see that its
// replicas confirm writes.
const syncProbeKey = "redistest:replica-sync"

// infoFields splits an INFO answer into its key:value lines.
func infoFields(info string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// CommandCalls returns how many times the server has run command (INFO
// commandstats, lower case: "wait", "evalsha"), 0 if never.
func (s *Server) CommandCalls(t testing.TB, command string) int64 {
	t.Helper()
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatalf("redistest: INFO commandstats of %s: %v", s.Addr(), err)
	}
	return commandCalls(info, command)
}

// commandCalls finds calls=N on the cmdstat_<command> line of INFO
// commandstats.
func commandCalls(info, command string) int64 {
	prefix := "cmdstat_" + strings.ToLower(command) + ":"
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		for _, field := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
	}
	return 0
}
