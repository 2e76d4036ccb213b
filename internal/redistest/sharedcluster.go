package redistest

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// The cluster shared by the tests of one binary.
var sharedCluster struct {
	once sync.Once
	d    *Cluster
	dir  string // temporary directory of the nodes' directories
	err  error
}

// SharedCluster returns the Redis Cluster shared by all tests of the test
// binary, starting it on first use: 3 masters with 1 replica each, as
// StartCluster starts them, persisting nothing. Tests must not kill,
// restart or migrate anything of it, and should confine themselves to
// keys under Prefix and queues from Queue, as with Shared.
//
// The package's TestMain must call Main (or Run), which removes the
// cluster when the tests are done; SharedCluster fails t otherwise.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	if !shared.mainRan {
		t.Fatalf("redistest: SharedCluster needs the package's tests to run through redistest.Main; add\n" +
			"\tfunc TestMain(m *testing.M) { redistest.Main(m) }")
	}
	sc := &sharedCluster
	sc.once.Do(func() {
		bin, err := exec.LookPath(binary)
		if err != nil {
			sc.err = err
			return
		}
		if sc.dir, err = os.MkdirTemp("", "redistest-cluster-"); err != nil {
			sc.err = err
			return
		}
		sc.d, sc.err = startCluster(bin, config{}, func() (string, error) { return os.MkdirTemp(sc.dir, "node-") })
	})
	if sc.err != nil {
		if errors.Is(sc.err, exec.ErrNotFound) {
			lookPath(t)
		}
		t.Fatalf("redistest: shared cluster: %v", sc.err)
	}
	return sc.d
}

// removeSharedCluster kills the shared cluster's nodes, if it was
// started, and removes their directories.
func removeSharedCluster() {
	sc := &sharedCluster
	if sc.d != nil {
		sc.d.kill()
	}
	if sc.dir != "" {
		_ = os.RemoveAll(sc.dir)
	}
}
