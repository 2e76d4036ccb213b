// Package memredis runs an in-process, in-memory Redis for trying asyncgw
// out with nothing else installed. It keeps nothing across restarts and is
// far slower than a real Redis: never use it for real work.
package memredis

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Server is an embedded Redis listening on 127.0.0.1.
type Server struct {
	m    *miniredis.Miniredis
	stop chan struct{}
}

// Start starts an embedded Redis on a free loopback port.
func Start() (*Server, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	s := &Server{m: m, stop: make(chan struct{})}
	go s.tick()
	return s, nil
}

// tick lets keys expire: miniredis only counts TTLs down when told to.
func (s *Server) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.m.FastForward(time.Second)
		case <-s.stop:
			return
		}
	}
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.m.Addr() + "/0" }

// Close stops the server; everything in it is gone.
func (s *Server) Close() {
	close(s.stop)
	s.m.Close()
}
