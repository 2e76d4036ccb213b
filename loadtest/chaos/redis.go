package chaos

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
)

// Redis is the Redis deployment a soak runs against, behind the little
// the harness needs of it: the configuration that points asyncgw at it, a
// client for the final checks, and its fault. Single is one redis-server;
// a Sentinel topology fits the same interface, with Kill killing the
// master (a failover follows) and Restart bringing the killed node back
// as a replica.
//
// The harness calls Kill and Restart from the test's goroutine, so they
// may fail t.
type Redis interface {
	// Section returns the keys of asyncgw's redis: section that reach the
	// deployment, as YAML lines without indentation, such as
	// "url: redis://127.0.0.1:6379/0".
	Section() string
	// Client returns a client of the node that takes writes now, closed
	// when t ends.
	Client(t testing.TB) redis.UniversalClient
	// Kill kills the node that takes writes now with SIGKILL and returns
	// once it is gone.
	Kill(t testing.TB)
	// Restart starts the killed node again, on its port and data
	// directory, and returns once it answers.
	Restart(t testing.TB)
}

// Single is one redis-server run as the documented production setup
// asks: AOF with appendfsync always, maxmemory-policy noeviction. What it
// acknowledged survives Kill and is there again after Restart.
type Single struct {
	srv *redistest.Server
}

var _ Redis = (*Single)(nil)

// NewSingle starts a redis-server for t on a free port of 127.0.0.1, with
// its data in a directory of t.TempDir. It is killed when t ends.
func NewSingle(t testing.TB) *Single {
	t.Helper()
	return &Single{srv: redistest.Start(t, redistest.WithAOF(),
		redistest.WithArgs("--maxmemory-policy", "noeviction"))}
}

// Section is "url: redis://127.0.0.1:<port>/0".
func (s *Single) Section() string { return "url: " + s.srv.URL() }

// Client returns a client of the server.
func (s *Single) Client(t testing.TB) redis.UniversalClient { return s.srv.Client(t) }

// Kill kills the server with SIGKILL.
func (s *Single) Kill(testing.TB) { s.srv.Kill() }

// Restart starts the server again on its port and data directory.
func (s *Single) Restart(t testing.TB) { s.srv.Restart(t) }
