package admin

import (
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// FilterInput is a dead-letter filter as a person writes it: in the query of
// GET /admin/v1/dlq, the body of POST /admin/v1/dlq/replay, or the flags of
// `asyncgw dlq`. Times are RFC 3339.
type FilterInput struct {
	Queue  string `json:"queue"`
	Type   string `json:"type"`
	Tenant string `json:"tenant"`
	Error  string `json:"error"`
	Since  string `json:"since"`
	Until  string `json:"until"`
}

// FieldProblem is one bad field of a FilterInput.
type FieldProblem struct {
	// Name is the field's name ("since"); Value what was given.
	Name, Value string
	Detail      string
}

// ParseFilter checks a filter and returns it, or every problem with it.
func ParseFilter(in FilterInput) (status.DLQFilter, []FieldProblem) {
	var bad []FieldProblem
	f := status.DLQFilter{Queue: in.Queue, Type: in.Type, Tenant: in.Tenant, Error: in.Error}
	for _, n := range []struct{ name, v string }{{"queue", in.Queue}, {"type", in.Type}, {"tenant", in.Tenant}} {
		if n.v != "" && !jobs.ValidName(n.v) {
			bad = append(bad, FieldProblem{n.name, n.v, "must be 1-64 letters, digits, '-', '_', '.'"})
		}
	}
	if len(in.Error) > 1024 {
		bad = append(bad, FieldProblem{"error", "", "must be at most 1024 bytes"})
	}
	for _, t := range []struct {
		name, v string
		to      *time.Time
	}{{"since", in.Since, &f.Since}, {"until", in.Until, &f.Until}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			bad = append(bad, FieldProblem{t.name, t.v, "must be an RFC 3339 time such as 2026-11-21T10:00:00Z"})
			continue
		}
		*t.to = v
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		bad = append(bad, FieldProblem{"until", "", "must be after since"})
	}
	return f, bad
}
