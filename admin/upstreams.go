package admin

import (
	"context"

	"github.com/asyncgw/asyncgw/upstream"
)

// WithUpstreams makes the service report the upstream hosts' limits and
// their use, read through l (nil: none). It returns s.
func (s *Service) WithUpstreams(l *upstream.Limiter) *Service {
	s.upstreams = l
	return s
}

// Upstreams reports every upstream host with limits: the limits and what
// is in use now, across every worker process, sorted by host.
func (s *Service) Upstreams(ctx context.Context) ([]upstream.Usage, error) {
	us, err := s.upstreams.Usage(ctx)
	if us == nil && err == nil {
		us = []upstream.Usage{}
	}
	return us, err
}
