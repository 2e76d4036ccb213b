package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/keyspace"
	"github.com/asyncgw/asyncgw/internal/redisconn"
	"github.com/asyncgw/asyncgw/jobs"
)

// How many events a subscriber may fall behind before the hub stops
// queuing for it and asks it to catch up from the store. A job has few
// events, and an idle event stream should cost little memory (each
// buffered slot is an Event, about 100 bytes); a tenant's stream carries
// many.
const (
	jobBuffer    = 8
	tenantBuffer = 64
)

// Hub holds this process's Redis subscription to the events of every job
// and fans them out in memory to the subscribers of single jobs and of
// whole tenants.
//
// Events are published on one channel per shard (Store.EventChannel), with
// SPUBLISH inside the writing script's slot, the tenant named in each
// message. The hub listens on all of them from Start to Stop, with
// SSUBSCRIBE: on one node (or Sentinel's master) on one connection; on a
// cluster on one connection per master, each with the channels of the
// shards whose slots that master serves, moved when the slots move or a
// master fails over. It looks at whom an event is for before decoding it,
// and drops an event no subscriber of this process wants. A subscriber
// costs no Redis command: subscribing is a map insert.
//
// A slow subscriber never stalls the others: when its buffer is full,
// further events are dropped for it and it is told to resync from the
// store, where every event is kept; so is every subscriber when the
// subscription was lost or moved.
type Hub struct {
	// HealthInterval is how long a subscription connection may stay silent
	// before the hub pings it; a ping unanswered for as long again means
	// the connection is dead, and the hub subscribes anew. Set it before
	// Start. It is also how often the hub checks that its subscription is
	// on the node its client writes to (see Switches); on a cluster, that
	// each connection is on the master of its channels' slots, which it
	// checks at least every second. Defaults to 15s.
	HealthInterval time.Duration
	// Switches, when set, tells the hub at once that the Redis master has
	// switched, so that it moves its subscription to the new one. Without
	// it the hub notices within HealthInterval. Set it before Start.
	Switches Switches

	rdb redis.UniversalClient
	// cluster is rdb on a cluster, else nil.
	cluster *redis.ClusterClient
	// channels are the event channels, one per shard; sharded says
	// whether they are shard channels (SSUBSCRIBE) or plain ones.
	channels []string
	sharded  bool
	// probe is a channel of this hub alone: how many subscribers it has on
	// the node the client writes to says whether the subscription is there
	// (not on a cluster, where the hub checks the slots instead).
	probe string
	log   *slog.Logger
	// tap, when set (Wake), hears every event message's payload, and ""
	// at each (re)subscription.
	tap func(payload string)
	ks  *keyspace.Space

	mu       sync.RWMutex
	byJob    map[string]map[*Subscription]struct{}
	byTenant map[string]map[*Subscription]struct{}
	closed   bool
	started  bool
	// legs are the subscription's connections.
	legs []*leg

	// moveMu orders the replacements of the legs.
	moveMu    sync.Mutex
	loops     sync.WaitGroup
	delivered atomic.Int64
	watchDone chan struct{}
	stopped   chan struct{}
}

// closedChan is ready at once.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// NewHub returns a Hub for the events of store s. logger may be nil.
func NewHub(rdb redis.UniversalClient, s *Store, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Hub{
		rdb: rdb, sharded: s.Sharded(), probe: probeChannel(s.Channel()), log: logger, ks: s.Space(),
		HealthInterval: 15 * time.Second,
		byJob:          make(map[string]map[*Subscription]struct{}),
		byTenant:       make(map[string]map[*Subscription]struct{}),
		watchDone:      make(chan struct{}),
		stopped:        make(chan struct{}),
	}
	h.cluster, _ = redisconn.ClusterOf(rdb)
	for i := range s.Space().Shards() {
		h.channels = append(h.channels, s.EventChannel(i))
	}
	return h
}

// Start subscribes and returns once every event channel is live.
// Subscriptions made before Start are told to resync then.
func (h *Hub) Start(ctx context.Context) error {
	h.moveMu.Lock()
	defer h.moveMu.Unlock()
	legs, err := h.plan(ctx)
	if err != nil {
		return fmt.Errorf("subscribe to events: %w", err)
	}
	for _, l := range legs {
		h.open(ctx, l)
	}
	for _, l := range legs {
		if err = h.confirm(ctx, l); err != nil {
			break
		}
	}
	h.mu.Lock()
	if err == nil && h.closed {
		err = ErrHubStopped
	}
	if err != nil {
		h.mu.Unlock()
		for _, l := range legs {
			_ = l.ps.Close()
		}
		return fmt.Errorf("subscribe to events: %w", err)
	}
	h.legs, h.started = legs, true
	h.loops.Add(len(legs))
	h.mu.Unlock()
	for _, l := range legs {
		l.up.Store(true)
		go h.loop(l)
	}
	go h.watch()
	h.resyncAll()
	return nil
}

// Ready reports whether the subscription is live on every connection.
func (h *Hub) Ready() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.started || h.closed {
		return false
	}
	for _, l := range h.legs {
		if !l.up.Load() {
			return false
		}
	}
	return true
}

// Delivered counts events handed to subscribers.
func (h *Hub) Delivered() int64 { return h.delivered.Load() }

// Stop closes the subscription and every subscriber's channel.
func (h *Hub) Stop(context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for _, set := range []map[string]map[*Subscription]struct{}{h.byJob, h.byTenant} {
		for _, subs := range set {
			for sub := range subs {
				close(sub.ch)
			}
		}
	}
	h.byJob, h.byTenant = nil, nil
	legs, started := h.legs, h.started
	close(h.stopped)
	h.mu.Unlock()
	var err error
	for _, l := range legs {
		l.gone.Store(true)
		if e := l.ps.Close(); err == nil {
			err = e
		}
	}
	h.loops.Wait()
	if started {
		<-h.watchDone
	}
	return err
}

// handle acts on one message of leg l's connection.
func (h *Hub) handle(l *leg, msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind != "subscribe" && m.Kind != "ssubscribe" || m.Channel == h.probe || l.gone.Load() {
			return
		}
		// A (re)subscription: events may have been missed before it.
		if !l.up.Swap(true) && h.Ready() {
			h.log.Info("event subscription restored")
		}
		if h.tap != nil {
			h.tap("")
		}
		h.resyncAll()
	case *redis.Message:
		if h.tap != nil {
			h.tap(m.Payload)
		}
		// Every tenant's events come here: look at whom an event is for
		// before decoding it.
		if !h.wanted(m.Payload) {
			return
		}
		if ev, ok := parseMessage(m.Payload); ok {
			h.dispatch(ev)
		}
	}
}

// lost marks leg l down and tells subscribers to catch up.
func (h *Hub) lost(l *leg, err error) {
	if l.up.Swap(false) {
		h.log.Warn("event subscription lost", "err", err)
	}
	h.resyncAll()
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

func (h *Hub) dispatch(ev jobs.Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for sub := range h.byJob[jobKey(ev.Tenant, ev.JobID)] {
		sub.deliver(ev)
	}
	for sub := range h.byTenant[ev.Tenant] {
		sub.deliver(ev)
	}
}

// wanted reports whether a published event ("tenant\nid\n…") has a
// subscriber here.
func (h *Hub) wanted(payload string) bool {
	tenant, rest, ok := strings.Cut(payload, "\n")
	if !ok {
		return false
	}
	id, _, _ := strings.Cut(rest, "\n")
	var buf [192]byte
	key := appendJobKey(buf[:0], tenant, id)
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.byJob[string(key)]) > 0 || len(h.byTenant[tenant]) > 0
}

func (h *Hub) resyncAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range []map[string]map[*Subscription]struct{}{h.byJob, h.byTenant} {
		for _, subs := range set {
			for sub := range subs {
				sub.signalResync()
			}
		}
	}
}

// jobKey is the key of a job's subscribers: tenant, NUL, ID.
func jobKey(tenant, id string) string { return string(appendJobKey(nil, tenant, id)) }

func appendJobKey(dst []byte, tenant, id string) []byte {
	return append(append(append(dst, tenant...), 0), id...)
}

// SubscribeJob subscribes to the events of one job. Events published
// before the subscription's Wait has returned may not reach it.
func (h *Hub) SubscribeJob(tenant, id string) *Subscription {
	return h.subscribe(&h.byJob, jobKey(tenant, id), tenant, jobBuffer)
}

// SubscribeTenant subscribes to the events of all of a tenant's jobs.
// Events published before the subscription's Wait has returned may not
// reach it.
func (h *Hub) SubscribeTenant(tenant string) *Subscription {
	return h.subscribe(&h.byTenant, tenant, tenant, tenantBuffer)
}

func (h *Hub) subscribe(set *map[string]map[*Subscription]struct{}, key, tenant string, buffer int) *Subscription {
	sub := &Subscription{
		ch:     make(chan jobs.Event, buffer),
		resync: make(chan struct{}, 1),
		hub:    h, set: set, key: key, tenant: tenant,
	}
	sub.C = sub.ch
	sub.Resync = sub.resync
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(sub.ch)
		// Never live: Wait reports the stop (a nil channel never
		// becomes ready).
		sub.ready = nil
		return sub
	}
	if (*set)[key] == nil {
		(*set)[key] = make(map[*Subscription]struct{})
	}
	(*set)[key][sub] = struct{}{}
	h.mu.Unlock()
	sub.ready = closedChan
	return sub
}

// ErrHubStopped is returned by Subscription.Wait when the hub has stopped.
var ErrHubStopped = errors.New("status: event hub stopped")

// Wait returns once the subscription is live: every event published after
// it returns reaches the subscriber (or, if the subscriber falls behind or
// the connection is lost, a resync signal does). Read what came before
// from the store after Wait. It fails when ctx ends or the hub stops
// first. The hub listens on every event channel already, so that a
// subscription is live as soon as it is made.
func (s *Subscription) Wait(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	default:
	}
	select {
	case <-s.ready:
		return nil
	case <-s.hub.stopped:
		return ErrHubStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscription receives events from a Hub.
type Subscription struct {
	// C carries events in the order they were published. It is closed when
	// the hub stops.
	C <-chan jobs.Event
	// Resync receives a signal when events may have been missed (this
	// subscriber fell behind, or the hub's connection was restored): read
	// the store for what came after the last event seen.
	Resync <-chan struct{}

	ch     chan jobs.Event
	resync chan struct{}
	ready  <-chan struct{}
	hub    *Hub
	set    *map[string]map[*Subscription]struct{}
	key    string
	tenant string
}

func (s *Subscription) deliver(ev jobs.Event) {
	select {
	case s.ch <- ev:
		s.hub.delivered.Add(1)
	default:
		s.signalResync()
	}
}

func (s *Subscription) signalResync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	subs := (*s.set)[s.key]
	if _, ok := subs[s]; !ok {
		h.mu.Unlock()
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(*s.set, s.key)
	}
	close(s.ch)
	h.mu.Unlock()
}
