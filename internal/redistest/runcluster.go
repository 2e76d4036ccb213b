package redistest

import (
	"fmt"
	"os"
	"os/exec"
)

// RunCluster starts a Redis Cluster as StartCluster does, for a program
// that is not a test (the bench harness): opts as StartCluster's
// (WithMasters, WithReplicas, WithArgs), redis-server from PATH, each
// node's files in a directory of its own made under dir. It returns once
// the cluster serves every slot, within 30s. The caller must call Close,
// which kills every node by PID; on an error RunCluster has killed the
// nodes it started.
func RunCluster(dir string, opts ...Option) (*Cluster, error) {
	bin, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w (install redis-server: scripts/ensure-redis.sh)", err)
	}
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	d, err := startCluster(bin, c, func() (string, error) { return os.MkdirTemp(dir, "node-") })
	if err != nil {
		if d != nil {
			d.kill()
		}
		return nil, fmt.Errorf("redistest: %w", err)
	}
	return d, nil
}

// Close kills every node of a cluster from RunCluster with SIGKILL and
// waits for each to exit. Its files stay in their directories.
func (d *Cluster) Close() { d.kill() }
