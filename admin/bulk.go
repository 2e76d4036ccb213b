package admin

import (
	"context"
	"time"

	"github.com/asyncgw/asyncgw/status"
)

// matches are the dead letters a bulk call found.
type matches struct {
	// matched counts every match; sample holds the first few.
	matched int
	sample  []status.DeadLetter
	// todo holds the first limit matches, when asked for.
	todo []status.DeadLetter
}

// matchDead scans the dead letters matching f that died before start,
// oldest first, counting and sampling them and, unless dryRun, keeping
// the first limit of them to act on.
func (s *Service) matchDead(ctx context.Context, f status.DLQFilter, start time.Time, dryRun bool, limit int) (*matches, error) {
	if f.Until.IsZero() || f.Until.After(start) {
		f.Until = start
	}
	m := &matches{sample: []status.DeadLetter{}}
	if _, err := s.store.ScanDeadLetters(ctx, f, "", 0, func(d status.DeadLetter) bool {
		m.matched++
		if len(m.sample) < sampleSize {
			m.sample = append(m.sample, d)
		}
		if !dryRun && len(m.todo) < limit {
			m.todo = append(m.todo, d)
		}
		return true
	}); err != nil {
		return nil, err
	}
	return m, nil
}
