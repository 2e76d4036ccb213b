package status

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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

// Hub holds this process's one Redis subscription to the event channel and
// fans events out in memory to the subscribers of single jobs and of whole
// tenants. A slow subscriber never stalls the others: when its buffer is
// full, further events are dropped for it and it is told to resync from the
// store, where every event is kept.
type Hub struct {
	// HealthInterval is how long the subscription may stay silent before
	// the hub pings it; a ping unanswered for as long again means the
	// connection is dead, and the hub subscribes anew. Set it before Start.
	// Defaults to 15s.
	HealthInterval time.Duration

	rdb     redis.UniversalClient
	channel string
	log     *slog.Logger

	mu       sync.RWMutex
	byJob    map[string]map[*Subscription]struct{}
	byTenant map[string]map[*Subscription]struct{}
	closed   bool

	subscribed atomic.Bool
	delivered  atomic.Int64
	ps         *redis.PubSub
	done       chan struct{}
}

// NewHub returns a Hub for the channel of store s. logger may be nil.
func NewHub(rdb redis.UniversalClient, s *Store, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Hub{
		rdb: rdb, channel: s.Channel(), log: logger,
		HealthInterval: 15 * time.Second,
		byJob:          make(map[string]map[*Subscription]struct{}),
		byTenant:       make(map[string]map[*Subscription]struct{}),
		done:           make(chan struct{}),
	}
}

// Start subscribes and returns once the subscription is live, so that any
// event published after Start returns reaches the subscribers.
func (h *Hub) Start(ctx context.Context) error {
	h.ps = h.rdb.Subscribe(ctx, h.channel)
	if _, err := h.ps.Receive(ctx); err != nil {
		_ = h.ps.Close()
		return fmt.Errorf("subscribe to %s: %w", h.channel, err)
	}
	h.subscribed.Store(true)
	go h.loop()
	return nil
}

// Ready reports whether the subscription is live.
func (h *Hub) Ready() bool { return h.subscribed.Load() }

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
	ps := h.ps
	h.mu.Unlock()
	var err error
	if ps != nil {
		err = ps.Close()
		<-h.done
	}
	return err
}

func (h *Hub) loop() {
	defer close(h.done)
	ctx := context.Background()
	pinged := false
	for {
		ps := h.pubsub()
		msg, err := ps.ReceiveTimeout(ctx, h.HealthInterval)
		if err != nil {
			if h.isClosed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !pinged && ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
				// No answer to a ping for a whole interval: the connection
				// may be dead without an error (a host gone, a partition).
				// Start over on a fresh one.
				h.lost(err)
				h.resubscribe(ctx)
				pinged = false
				continue
			}
			h.lost(err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			// A (re)subscription: events may have been missed before it.
			if !h.subscribed.Swap(true) {
				h.log.Info("event subscription restored")
			}
			h.resyncAll()
		case *redis.Message:
			// Most events have no subscriber in this process: look at
			// whom an event is for before decoding it.
			if !h.wanted(m.Payload) {
				continue
			}
			if ev, ok := parseMessage(m.Payload); ok {
				h.dispatch(ev)
			}
		}
	}
}

// lost marks the subscription down and tells subscribers to catch up.
func (h *Hub) lost(err error) {
	if h.subscribed.Swap(false) {
		h.log.Warn("event subscription lost", "err", err)
	}
	h.resyncAll()
}

func (h *Hub) pubsub() *redis.PubSub {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.ps
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// resubscribe replaces the subscription with one on a new connection.
func (h *Hub) resubscribe(ctx context.Context) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	old := h.ps
	h.ps = h.rdb.Subscribe(ctx, h.channel)
	h.mu.Unlock()
	_ = old.Close()
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

// SubscribeJob subscribes to the events of one job.
func (h *Hub) SubscribeJob(tenant, id string) *Subscription {
	return h.subscribe(&h.byJob, jobKey(tenant, id), jobBuffer)
}

// SubscribeTenant subscribes to the events of all of a tenant's jobs.
func (h *Hub) SubscribeTenant(tenant string) *Subscription {
	return h.subscribe(&h.byTenant, tenant, tenantBuffer)
}

func (h *Hub) subscribe(set *map[string]map[*Subscription]struct{}, key string, buffer int) *Subscription {
	sub := &Subscription{
		ch:     make(chan jobs.Event, buffer),
		resync: make(chan struct{}, 1),
		hub:    h, set: set, key: key,
	}
	sub.C = sub.ch
	sub.Resync = sub.resync
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub
	}
	if (*set)[key] == nil {
		(*set)[key] = make(map[*Subscription]struct{})
	}
	(*set)[key][sub] = struct{}{}
	return sub
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
	hub    *Hub
	set    *map[string]map[*Subscription]struct{}
	key    string
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
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	subs := (*s.set)[s.key]
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(*s.set, s.key)
	}
	close(s.ch)
}
