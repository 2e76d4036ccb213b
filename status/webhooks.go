package status

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/jobs"
)

// The webhook side of the store: the outbox of events to send (written by
// the record scripts, see acceptScript), the deliveries made for each job,
// and the endpoints that asked to hear no more (410 Gone).

// registerOutbox adds tenant to the set of outboxes. A Store does so at
// most once a minute per tenant (the set is only ever added to; the
// minute bounds how long a set lost with Redis's data stays incomplete).
func (s *Store) registerOutbox(ctx context.Context, tenant string) error {
	if at, ok := s.outboxes.Load(tenant); ok && time.Since(at.(time.Time)) < time.Minute {
		return nil
	}
	if err := s.rdb.SAdd(ctx, s.ks.OutboxTenants(), tenant).Err(); err != nil {
		return fmt.Errorf("register outbox: %w", err)
	}
	s.outboxes.Store(tenant, time.Now())
	return nil
}

// callbackStates encodes the states a callback hears of as the scripts
// match them: ",a,b,".
func callbackStates(states []jobs.State) string {
	if len(states) == 0 {
		return ","
	}
	var b strings.Builder
	b.WriteByte(',')
	for _, st := range states {
		b.WriteString(string(st))
		b.WriteByte(',')
	}
	return b.String()
}

// OutboxEntry is an event waiting to be turned into a webhook delivery.
type OutboxEntry struct {
	Tenant string
	JobID  string
	Seq    int64
	// Shard is the shard whose outbox holds the entry (the job's).
	Shard  int
	member string
}

// OutboxTenants returns the tenants whose outboxes may hold entries.
func (s *Store) OutboxTenants(ctx context.Context) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, s.ks.OutboxTenants()).Result()
	if err != nil {
		return nil, fmt.Errorf("read outbox tenants: %w", err)
	}
	return ts, nil
}

// AckOutbox removes an entry from its outbox.
func (s *Store) AckOutbox(ctx context.Context, e OutboxEntry) error {
	if err := s.rdb.ZRem(ctx, s.ks.Outbox(e.Shard, e.Tenant), e.member).Err(); err != nil {
		return fmt.Errorf("ack outbox: %w", err)
	}
	return nil
}

// OutboxSize counts the entries of a tenant's outbox, on every shard.
func (s *Store) OutboxSize(ctx context.Context, tenant string) (int64, error) {
	cmds := make([]*redis.IntCmd, s.ks.Shards())
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for shard := range cmds {
			cmds[shard] = p.ZCard(ctx, s.ks.Outbox(shard, tenant))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read outbox size: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// Callback is what an outbox entry is to send: the event and where.
type Callback struct {
	URL   string
	Event jobs.Event
}

// OutboxCallback reads the event of an outbox entry and the job's callback
// URL. It returns ErrNotFound when the job or the event is gone (expired).
func (s *Store) OutboxCallback(ctx context.Context, e OutboxEntry) (*Callback, error) {
	key := s.ks.Record(e.JobID)
	var rec *redis.SliceCmd
	var listed *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HMGet(ctx, key, "cb", "state", "seq", "doc", "t")
		listed = p.LIndex(ctx, keyspace.EventList(key), e.Seq-1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read callback: %w", err)
	}
	v := rec.Val()
	url, _ := v[0].(string)
	ev, ok := latestEvent(v[1:], e.Tenant, e.JobID)
	switch {
	case !ok || url == "" || !owned(v[4], e.Tenant):
		return nil, ErrNotFound // the job expired
	case listed.Err() == nil:
		kind, data, _ := strings.Cut(listed.Val(), "\n")
		ev = jobs.Event{Seq: e.Seq, Tenant: e.Tenant, JobID: e.JobID, Kind: kind, Data: []byte(data)}
	case ev.Seq != e.Seq:
		return nil, ErrNotFound
	}
	return &Callback{URL: url, Event: ev}, nil
}

// AddDelivery notes that delivery deliveryID carries event seq of job id.
// The list lives as long as the job's record.
func (s *Store) AddDelivery(ctx context.Context, tenant, id string, seq int64, deliveryID string) error {
	record := s.ks.Record(id)
	err := keyspace.AddDelivery.Run(ctx, s.rdb, []string{record, keyspace.Deliveries(record)}, seq, deliveryID).Err()
	if err != nil {
		return fmt.Errorf("note delivery: %w", err)
	}
	return nil
}

// Deliveries returns the webhook deliveries made for a job, oldest event
// first. A delivery whose record expired is left out.
func (s *Store) Deliveries(ctx context.Context, tenant, id string) ([]*jobs.Job, error) {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	ids, err := s.rdb.ZRange(ctx, keyspace.Deliveries(s.ks.Record(id)), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	docs := make([]*redis.StringCmd, len(ids))
	for i, d := range ids {
		docs[i] = pipe.HGet(ctx, s.ks.Record(d), "doc")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	out := make([]*jobs.Job, 0, len(ids))
	for _, doc := range docs {
		b, err := doc.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // expired
		}
		j, err := decodeDoc(b, tenant)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// DisabledEndpoint is a callback URL that answered 410 Gone: no more
// deliveries are sent to it for its tenant until it is enabled again.
type DisabledEndpoint struct {
	Tenant     string    `json:"tenant"`
	URL        string    `json:"url"`
	DisabledAt time.Time `json:"disabled_at"`
	// Delivery is the delivery that was answered 410.
	Delivery string `json:"delivery"`
}

// DisableEndpoint stops deliveries to url for tenant.
func (s *Store) DisableEndpoint(ctx context.Context, d DisabledEndpoint) error {
	b, _ := json.Marshal(d)
	if err := s.rdb.SAdd(ctx, s.ks.DisabledTenants(), d.Tenant).Err(); err != nil {
		return fmt.Errorf("register disabled endpoint: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.ks.DisabledEndpoints(d.Tenant), d.URL, b).Err(); err != nil {
		return fmt.Errorf("disable endpoint: %w", err)
	}
	return nil
}

// EndpointDisabled returns the record of a disabled endpoint, or nil.
func (s *Store) EndpointDisabled(ctx context.Context, tenant, url string) (*DisabledEndpoint, error) {
	b, err := s.rdb.HGet(ctx, s.ks.DisabledEndpoints(tenant), url).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read disabled endpoint: %w", err)
	}
	var d DisabledEndpoint
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode disabled endpoint: %w", err)
	}
	return &d, nil
}

// EnableEndpoint lets deliveries to url go out again. It reports whether
// the endpoint was disabled.
func (s *Store) EnableEndpoint(ctx context.Context, tenant, url string) (bool, error) {
	n, err := s.rdb.HDel(ctx, s.ks.DisabledEndpoints(tenant), url).Result()
	if err != nil {
		return false, fmt.Errorf("enable endpoint: %w", err)
	}
	return n == 1, nil
}

// DisabledEndpoints lists the disabled endpoints of every tenant (tenant
// "" ) or of one.
func (s *Store) DisabledEndpoints(ctx context.Context, tenant string) ([]DisabledEndpoint, error) {
	tenants := []string{tenant}
	if tenant == "" {
		var err error
		if tenants, err = s.rdb.SMembers(ctx, s.ks.DisabledTenants()).Result(); err != nil {
			return nil, fmt.Errorf("read disabled endpoints: %w", err)
		}
	}
	var out []DisabledEndpoint
	for _, t := range tenants {
		m, err := s.rdb.HGetAll(ctx, s.ks.DisabledEndpoints(t)).Result()
		if err != nil {
			return nil, fmt.Errorf("read disabled endpoints: %w", err)
		}
		for _, v := range m {
			var d DisabledEndpoint
			if json.Unmarshal([]byte(v), &d) == nil {
				out = append(out, d)
			}
		}
	}
	slices.SortFunc(out, func(a, b DisabledEndpoint) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.URL, b.URL))
	})
	return out, nil
}
