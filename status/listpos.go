package status

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/asyncgw/asyncgw/jobs"
)

// listPos is a place in a listing that merges shards and tenants: a time
// (unix ms), then a tenant, then a job ID. The dead-letter queue reads
// it oldest first (dlqPos), the job listings newest first (jobPos).
type listPos struct {
	ms     int64
	tenant string
	id     string
}

type (
	dlqPos = listPos
	jobPos = listPos
)

// less orders places oldest first.
func (a listPos) less(b listPos) bool {
	if a.ms != b.ms {
		return a.ms < b.ms
	}
	if a.tenant != b.tenant {
		return a.tenant < b.tenant
	}
	return a.id < b.id
}

// before reports whether a comes before b newest first.
func (a listPos) before(b listPos) bool { return b.less(a) }

// cursor is the place as an opaque cursor; tag ("" for the dead-letter
// queue, "j" for job listings) keeps one listing's cursor from being
// taken for another's.
func (a listPos) cursor(tag string) string {
	s := strconv.FormatInt(a.ms, 10) + "/" + a.tenant + "/" + a.id
	if tag != "" {
		s = tag + "/" + s
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// parseCursor reads a cursor that cursor(tag) made, or fails with
// ErrBadCursor.
func parseCursor(c, tag string) (listPos, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return listPos{}, ErrBadCursor
	}
	parts := strings.Split(string(b), "/")
	if tag != "" {
		if len(parts) == 0 || parts[0] != tag {
			return listPos{}, ErrBadCursor
		}
		parts = parts[1:]
	}
	if len(parts) != 3 {
		return listPos{}, ErrBadCursor
	}
	ms, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || ms < 0 || !ValidTenant(parts[1]) || !jobs.ValidID(parts[2]) {
		return listPos{}, ErrBadCursor
	}
	return listPos{ms: ms, tenant: parts[1], id: parts[2]}, nil
}

// The tags of the listings' cursors.
const (
	dlqCursorTag = ""
	jobCursorTag = "j"
)
