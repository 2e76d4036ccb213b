package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/asyncgw/asyncgw/loadtest/child"
)

// proc is a child process of the harness.
type proc = child.Process

// startRedis runs a redis-server without persistence on a free port.
func startRedis(dir string) (*proc, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", errors.New("redis-server not found: run ./scripts/ensure-redis.sh (make bench does)")
	}
	for range 5 {
		addr, err := child.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		_, port, _ := net.SplitHostPort(addr)
		p, err := child.Start("redis", nil, bin, "--port", port, "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--protected-mode", "no", "--maxclients", "20000")
		if err != nil {
			return nil, "", err
		}
		if child.WaitTCP(addr, p, 5*time.Second) == nil {
			return p, addr, nil
		}
		p.Stop()
	}
	return nil, "", errors.New("redis-server did not start")
}

// cpuMeter measures how busy the server under test, Redis and the harness
// itself are over a window.
type cpuMeter struct {
	groups [3][]int // server, Redis, harness
	start  [3]time.Duration
	t0     time.Time
}

func (b *bench) meter(server ...int) *cpuMeter {
	m := &cpuMeter{groups: [3][]int{server, {b.redisProc.Pid()}, {os.Getpid()}}, t0: time.Now()}
	m.start = m.sample()
	return m
}

func (m *cpuMeter) sample() (out [3]time.Duration) {
	for i, pids := range m.groups {
		for _, pid := range pids {
			out[i] += child.CPUTime(pid)
		}
	}
	return out
}

// stop says how busy each was, in cores (1.00: one core all the time).
func (m *cpuMeter) stop() string {
	end, wall := m.sample(), time.Since(m.t0)
	cores := func(i int) float64 { return float64(end[i]-m.start[i]) / float64(wall) }
	return fmt.Sprintf("server %.2f · Redis %.2f · harness %.2f", cores(0), cores(1), cores(2))
}

// pids are the process IDs of a gateway's processes.
func (g *gateway) pids() []int {
	var out []int
	for _, p := range g.procs {
		out = append(out, p.Pid())
	}
	return out
}
