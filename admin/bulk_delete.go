package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asyncgw/asyncgw/status"
)

// BulkDelete asks to delete every dead letter matching Filter.
type BulkDelete struct {
	Filter status.DLQFilter
	// DryRun only counts and samples.
	DryRun bool
	// Limit caps how many jobs this call deletes (1–MaxBulk, default
	// MaxBulk); call again for the rest.
	Limit int
}

// BulkDeleteResult says what a bulk delete matched and did.
type BulkDeleteResult struct {
	// Matched counts the dead letters that matched, whether deleted or not.
	Matched int `json:"matched"`
	// Sample shows the first few matches, oldest first.
	Sample []status.DeadLetter `json:"sample"`
	// DryRun echoes the request.
	DryRun bool `json:"dry_run"`
	// Deleted counts the jobs taken out of the dead-letter queue.
	Deleted int `json:"deleted"`
	// Skipped counts matches that left the dead-letter queue meanwhile.
	Skipped int `json:"skipped"`
	// Remaining counts matches left for another call (over Limit).
	Remaining int `json:"remaining"`
	// FailedCount counts deletions that could not be made; Failed lists
	// the first 100 of them.
	FailedCount int       `json:"failed_count"`
	Failed      []Failure `json:"failed"`
}

// Validate checks a bulk delete request.
func (b BulkDelete) Validate() error {
	if b.Limit < 0 || b.Limit > MaxBulk {
		return fmt.Errorf("limit %d: must be from 1 to %d (0: %d)", b.Limit, MaxBulk, MaxBulk)
	}
	return nil
}

// DeleteMatching deletes the dead letters matching the request, oldest
// first, as Delete does one. Like ReplayMatching, only jobs that died
// before the call are considered, so a job that dies during the call is
// left alone.
func (s *Service) DeleteMatching(ctx context.Context, b BulkDelete) (*BulkDeleteResult, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	b.Limit = cmp.Or(b.Limit, MaxBulk)
	m, err := s.matchDead(ctx, b.Filter, time.Now(), b.DryRun, b.Limit)
	if err != nil {
		return nil, err
	}
	res := &BulkDeleteResult{Matched: m.matched, Sample: m.sample, DryRun: b.DryRun, Failed: []Failure{}}
	if b.DryRun {
		return res, nil
	}
	res.Remaining = res.Matched - len(m.todo)
	for _, d := range m.todo {
		err := s.store.DeleteDeadLetter(ctx, d.Tenant, d.Job.Queue, d.Job.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			res.Skipped++
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			res.FailedCount++
			if len(res.Failed) < maxFailures {
				res.Failed = append(res.Failed, Failure{ID: d.Job.ID, Error: err.Error()})
			}
		default:
			res.Deleted++
		}
	}
	s.log.Info("bulk delete from the dead-letter queue", "matched", res.Matched, "deleted", res.Deleted,
		"skipped", res.Skipped, "failed", res.FailedCount)
	return res, nil
}
