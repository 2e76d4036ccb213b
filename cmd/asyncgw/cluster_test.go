package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// TestClusterServe points asyncgw at a real Redis Cluster: a node of it
// named by redis.url is refused; with redis.cluster, the durability check
// reads every master and replica, and /readyz says ready, then not ready
// while a killed master's slots have no master, then ready again once its
// replica serves them.
func TestClusterServe(t *testing.T) {
	t.Parallel()
	// The replica of the last master has the AOF off, the others on: the
	// durability check must name it alone.
	d := redistest.StartCluster(t, redistest.WithAOF())
	bad := d.Replicas()[2]
	if err := bad.Client(t).ConfigSet(t.Context(), "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	addrs := `["` + strings.Join(d.Addrs(), `", "`) + `"]`
	conf := func(extra string) string {
		return writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:0\nredis:\n  cluster: {addrs: "+addrs+"}\n  prefix: "+redistest.Prefix(t)+"\n"+extra)
	}

	t.Run("cluster node as redis.url", func(t *testing.T) {
		node := d.Masters()[0]
		path := writeFile(t, "asyncgw.yaml", "listen: 127.0.0.1:0\nredis:\n  url: "+node.URL()+"\n")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, asyncgwBin, "gateway", "--config", path)
		cmd.Env = childEnv(nil)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("asyncgw on a cluster node: %v, want exit code 1; stderr:\n%s", cmd.ProcessState, &stderr)
		}
		want := "asyncgw: redis.url: " + node.Addr() + " is a node of a Redis Cluster; use redis.cluster {addrs} to reach the cluster\n"
		if stderr.String() != want {
			t.Errorf("stderr:\n%q\nwant:\n%q", &stderr, want)
		}
	})

	t.Run("durability required", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"gateway", "--config", conf("  require_durable: true\n")}, env(nil), &stdout, &stderr)
		want := "redis.require_durable: Redis at " + bad.Addr() + " (replica) fails the durability check: " + problemNoAOF
		if err == nil || err.Error() != want {
			t.Errorf("run: %v\nwant: %s", err, want)
		}
	})

	t.Run("ready through a failover", func(t *testing.T) {
		p := startAsyncgw(t, nil, "gateway", "--config", conf(""))
		base := p.baseURL(t)
		if code, body, err := readyz(base); err != nil || code != http.StatusOK {
			t.Fatalf("/readyz: %d %v (%v), want 200", code, body, err)
		}
		victim := d.Masters()[1]
		start := time.Now()
		victim.Kill()
		var reason string
		testutil.WaitForWhy(t, 15*time.Second, "/readyz to say not ready", func() (bool, string) {
			code, body, err := readyz(base)
			if reasons, _ := body["reasons"].([]any); len(reasons) > 0 {
				reason, _ = reasons[0].(string)
			}
			return err == nil && code == http.StatusServiceUnavailable, "not yet"
		})
		if !strings.Contains(reason, "redis") {
			t.Errorf("/readyz reason %q, want one about redis", reason)
		}
		testutil.WaitForWhy(t, 15*time.Second, "/readyz to say ready again", func() (bool, string) {
			code, body, err := readyz(base)
			return err == nil && code == http.StatusOK, fmt.Sprintf("%d %v (%v)", code, body, err)
		})
		t.Logf("/readyz said not ready (%q) and was ready again %v after a master's kill -9", reason, time.Since(start).Round(time.Millisecond))
	})
}
