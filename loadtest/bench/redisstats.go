package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/loadtest/child"
)

// redisNode is one redis-server whose cost the harness counts: its
// process, for CPU time, and a client of it alone, for INFO.
type redisNode struct {
	addr string
	pid  int
	rdb  *redis.Client
}

func newRedisNode(addr string, pid int) *redisNode {
	return &redisNode{addr: addr, pid: pid, rdb: redis.NewClient(&redis.Options{
		Addr: addr, PoolSize: 2, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 5 * time.Second,
	})}
}

func (n *redisNode) close() { _ = n.rdb.Close() }

// nodeCount is what one node had counted at one moment.
type nodeCount struct {
	// cpu is the process's user and system time.
	cpu time.Duration
	// commands is INFO's total_commands_processed: every command, those
	// that scripts run included.
	commands int64
	// calls is INFO commandstats' calls by command (such as "evalsha",
	// "hmget", "cluster|slots").
	calls map[string]int64
}

// count reads the node's counters: one INFO call, then its CPU time.
func (n *redisNode) count(ctx context.Context) (nodeCount, error) {
	info, err := n.rdb.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return nodeCount{}, fmt.Errorf("%s: INFO: %w", n.addr, err)
	}
	c := nodeCount{cpu: child.CPUTime(n.pid), calls: map[string]int64{}}
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			c.commands, _ = strconv.ParseInt(v, 10, 64)
			continue
		}
		name, fields, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				c.calls[name], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return c, nil
}

// sub is what the node counted between an earlier count and c.
func (c nodeCount) sub(before nodeCount) nodeCount {
	d := nodeCount{cpu: c.cpu - before.cpu, commands: c.commands - before.commands, calls: map[string]int64{}}
	for name, n := range c.calls {
		if n -= before.calls[name]; n > 0 {
			d.calls[name] = n
		}
	}
	return d
}

// countAll counts every node at once.
func countAll(ctx context.Context, nodes []*redisNode) ([]nodeCount, error) {
	out := make([]nodeCount, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { out[i], errs[i] = n.count(ctx) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// subAll is each node's counts between before and after.
func subAll(after, before []nodeCount) []nodeCount {
	out := make([]nodeCount, len(after))
	for i := range after {
		out[i] = after[i].sub(before[i])
	}
	return out
}

// scriptNames names the scripts by SHA-1: asyncgw's (internal/keyspace)
// and the asynq scripts its worker serves itself.
func scriptNames() map[string]string {
	names := map[string]string{
		keyspace.AsynqDequeueSHA:          "asynq dequeue",
		keyspace.AsynqDoneSHA:             "asynq done",
		keyspace.AsynqListLeaseExpiredSHA: "asynq lease-expired",
	}
	for _, name := range keyspace.ScriptNames() {
		sum := sha1.Sum([]byte(keyspace.Source(name)))
		names[hex.EncodeToString(sum[:])] = name
	}
	return names
}

// sampleScripts watches every node with MONITOR for d and counts the
// scripts clients ran (EVALSHA by name; EVAL, which go-redis sends only
// when a node lacks the script, as "(eval)"). Commands that scripts run
// are not counted. MONITOR costs Redis time of its own: sample outside a
// measured window.
func sampleScripts(ctx context.Context, nodes []*redisNode, d time.Duration) (map[string]int, error) {
	names := scriptNames()
	out := map[string]int{}
	var mu sync.Mutex
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			counts, err := monitorScripts(ctx, n.addr, d, names)
			mu.Lock()
			defer mu.Unlock()
			errs[i] = err
			for name, c := range counts {
				out[name] += c
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// monitorScripts is sampleScripts on one node.
func monitorScripts(ctx context.Context, addr string, d time.Duration, names map[string]string) (map[string]int, error) {
	conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: MONITOR: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		return nil, fmt.Errorf("%s: MONITOR: %w", addr, err)
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		return nil, fmt.Errorf("%s: MONITOR answered %q: %v", addr, l, err)
	}
	counts := map[string]int{}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return counts, nil // the sample's end
			}
			return counts, fmt.Errorf("%s: MONITOR: %w", addr, err)
		}
		if name, ok := scriptOf(l, names); ok {
			counts[name]++
		}
	}
}

// scriptOf reads a MONITOR line, `+<time> [<db> <client>] "cmd" "arg" …`,
// and names the script a client ran with it, if it ran one: EVALSHA by
// its SHA-1, EVAL by its source's, "eval " before the name. A script that
// is not asyncgw's is asynq's.
func scriptOf(line string, names map[string]string) (string, bool) {
	args, fromScript, ok := redistest.ParseMonitorLine(line)
	if !ok || fromScript || len(args) < 2 {
		return "", false // not a command, or one a script ran
	}
	cmd, arg := args[0], args[1]
	prefix := ""
	switch strings.ToLower(cmd) {
	case "evalsha":
		arg = strings.ToLower(arg)
	case "eval":
		sum := sha1.Sum([]byte(arg))
		arg, prefix = hex.EncodeToString(sum[:]), "eval "
	default:
		return "", false
	}
	if name, ok := names[arg]; ok {
		return prefix + name, true
	}
	return prefix + "asynq " + arg[:min(len(arg), 8)], true
}
