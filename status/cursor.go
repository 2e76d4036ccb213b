package status

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// ErrBadEventID is a tenant event cursor (a Last-Event-ID of GET
// /v1/events) that this deployment never gave out.
var ErrBadEventID = errors.New("not an event id of this stream")

// A tenant's events are kept in one stream per shard, each with stream IDs
// of its own (on a cluster, from its own master's clock). A Cursor is a
// position in all of them at once: per shard, the ID of the last event
// read. Reading after a cursor gives every later event of every shard
// exactly once, in each shard's order, whatever order the shards' events
// were read in before.
//
// Its text form is what GET /v1/events sends as an event's id and takes as
// Last-Event-ID. With one shard it is the stream ID itself ("ms-n"), as it
// was before shards. With more, it is one position per shard, in shard
// order, joined by '.': each the ID's milliseconds in base 36, followed by
// '-' and its sequence number in base 36 when that is not 0 ("0" for no
// event yet). Only [0-9a-z.-]: URL-safe and compact (16 shards take about
// 150 characters).
type Cursor struct {
	ks *keyspace.Space
	// pos is, per shard, the last event read; nil means before the
	// oldest kept (no position given).
	pos []streamID
}

// streamID is a Redis stream ID, "ms-n".
type streamID struct{ ms, n uint64 }

func (a streamID) compare(b streamID) int {
	if c := cmp.Compare(a.ms, b.ms); c != 0 {
		return c
	}
	return cmp.Compare(a.n, b.n)
}

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.n, 10)
}

// parseStreamID parses "ms-n" (decimal, as Redis writes it).
func parseStreamID(s string) (streamID, bool) {
	ms, n, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, false
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(n, 10, 64)
	return streamID{a, b}, err1 == nil && err2 == nil
}

// ParseCursor reads a cursor that String gave out; "" (and, with one
// shard, "0") is the start: before the oldest event kept. Anything else
// is ErrBadEventID.
func (s *Store) ParseCursor(v string) (*Cursor, error) {
	c := &Cursor{ks: s.ks}
	n := s.ks.Shards()
	if v == "" || n == 1 && v == "0" {
		return c, nil
	}
	c.pos = make([]streamID, n)
	if n == 1 {
		id, ok := parseStreamID(v)
		if !ok {
			return nil, fmt.Errorf("cursor %q: %w", v, ErrBadEventID)
		}
		c.pos[0] = id
		return c, nil
	}
	parts := strings.Split(v, ".")
	if len(parts) != n {
		return nil, fmt.Errorf("cursor %q: %d positions for %d shards: %w", v, len(parts), n, ErrBadEventID)
	}
	for i, p := range parts {
		ms, seq, hasSeq := strings.Cut(p, "-")
		a, err := strconv.ParseUint(ms, 36, 64)
		if err != nil || ms != strconv.FormatUint(a, 36) {
			return nil, fmt.Errorf("cursor %q: %w", v, ErrBadEventID)
		}
		var b uint64
		if hasSeq {
			b, err = strconv.ParseUint(seq, 36, 64)
			if err != nil || b == 0 || seq != strconv.FormatUint(b, 36) {
				return nil, fmt.Errorf("cursor %q: %w", v, ErrBadEventID)
			}
		}
		c.pos[i] = streamID{a, b}
	}
	return c, nil
}

// String is the cursor's text form ("" for the start).
func (c *Cursor) String() string {
	switch {
	case c.pos == nil:
		return ""
	case len(c.pos) == 1:
		return c.pos[0].String()
	}
	b := make([]byte, 0, len(c.pos)*10)
	for i, p := range c.pos {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, p.ms, 36)
		if p.n != 0 {
			b = append(b, '-')
			b = strconv.AppendUint(b, p.n, 36)
		}
	}
	return string(b)
}

// start reports whether the cursor is before the oldest event kept.
func (c *Cursor) start() bool { return c.pos == nil }

// Advance moves the cursor past ev (an event of the tenant, read from the
// store or heard live) and reports whether ev lay after it; an event at
// or before the cursor on its shard has been read already, and Advance
// leaves the cursor as it is.
func (c *Cursor) Advance(ev jobs.Event) bool {
	id, ok := parseStreamID(ev.StreamID)
	if !ok {
		return false
	}
	shard := c.ks.ShardOf(ev.JobID)
	if c.pos == nil {
		c.pos = make([]streamID, c.ks.Shards())
	} else if id.compare(c.pos[shard]) <= 0 {
		return false
	}
	c.pos[shard] = id
	return true
}

// After reports whether c is later in the tenant's stream than d: at or
// past d on every shard, and past it on one.
func (c *Cursor) After(d *Cursor) bool {
	if c.pos == nil {
		return false
	}
	if d.pos == nil {
		return !c.Empty()
	}
	past := false
	for i := range c.pos {
		switch c.pos[i].compare(d.pos[i]) {
		case -1:
			return false
		case 1:
			past = true
		}
	}
	return past
}

// Empty reports whether c is before every event: the start, or the tail
// of a stream that holds none (every position 0).
func (c *Cursor) Empty() bool {
	for _, p := range c.pos {
		if p != (streamID{}) {
			return false
		}
	}
	return true
}

// Clone is a copy of c that moves on its own.
func (c *Cursor) Clone() *Cursor {
	d := &Cursor{ks: c.ks}
	if c.pos != nil {
		d.pos = append([]streamID(nil), c.pos...)
	}
	return d
}

// ValidStreamID reports whether id looks like a Redis stream ID ("ms-n").
func ValidStreamID(id string) bool {
	_, ok := parseStreamID(id)
	return ok
}

// CompareStreamIDs orders two stream IDs ("ms-n"): -1, 0 or +1. Malformed
// IDs sort first.
func CompareStreamIDs(a, b string) int {
	x, _ := parseStreamID(a)
	y, _ := parseStreamID(b)
	return x.compare(y)
}
