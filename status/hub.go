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

// Hub holds this process's one Redis subscription connection and fans
// events out in memory to the subscribers of single jobs and of whole
// tenants. Events are published on one channel per tenant, and the hub
// listens on a tenant's channel only while it has a subscriber of that
// tenant, so that a process without subscribers receives nothing. A slow
// subscriber never stalls the others: when its buffer is full, further
// events are dropped for it and it is told to resync from the store, where
// every event is kept.
type Hub struct {
	// HealthInterval is how long the subscription may stay silent before
	// the hub pings it; a ping unanswered for as long again means the
	// connection is dead, and the hub subscribes anew. Set it before Start.
	// It is also how often the hub checks that its subscription is on the
	// node its client writes to (see Switches). Defaults to 15s.
	HealthInterval time.Duration
	// Switches, when set, tells the hub at once that the Redis master has
	// switched, so that it moves its subscription to the new one. Without
	// it the hub notices within HealthInterval. Set it before Start.
	Switches Switches

	rdb     redis.UniversalClient
	channel string
	// probe is a channel of this hub alone: how many subscribers it has on
	// the node the client writes to says whether the subscription is there.
	probe string
	log   *slog.Logger

	mu       sync.RWMutex
	byJob    map[string]map[*Subscription]struct{}
	byTenant map[string]map[*Subscription]struct{}
	closed   bool

	// subMu orders the SUBSCRIBE and UNSUBSCRIBE commands of tenant
	// channels and guards tenants and cmds. It is taken before mu.
	subMu   sync.Mutex
	tenants map[string]*tenantSub
	// cmds are the commands decided and not yet sent, in order: one
	// goroutine (send) writes them, so that no one waits on a write to
	// Redis while holding subMu.
	cmds []channelCmd
	kick chan struct{}

	subscribed atomic.Bool
	delivered  atomic.Int64
	ps         *redis.PubSub
	done       chan struct{}
	watchDone  chan struct{}
	stopped    chan struct{}
}

// tenantSub is the hub's subscription to one tenant's channel.
type tenantSub struct {
	// refs counts this process's subscribers of the tenant (of its jobs or
	// its stream); the channel is subscribed while it is above zero.
	refs int
	// pending holds, in the order the commands were sent, a channel per
	// SUBSCRIBE not yet confirmed, closed by its confirmation. ready is
	// the latest: subscribers wait on it.
	pending []chan struct{}
	ready   chan struct{}
}

// channelCmd is a SUBSCRIBE (or, when !subscribe, UNSUBSCRIBE) of channel.
type channelCmd struct {
	channel   string
	subscribe bool
}

// closedChan is ready at once.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// NewHub returns a Hub for the channel of store s. logger may be nil.
func NewHub(rdb redis.UniversalClient, s *Store, logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Hub{
		rdb: rdb, channel: s.Channel(), probe: probeChannel(s.Channel()), log: logger,
		HealthInterval: 15 * time.Second,
		byJob:          make(map[string]map[*Subscription]struct{}),
		byTenant:       make(map[string]map[*Subscription]struct{}),
		tenants:        make(map[string]*tenantSub),
		kick:           make(chan struct{}, 1),
		done:           make(chan struct{}),
		watchDone:      make(chan struct{}),
		stopped:        make(chan struct{}),
	}
}

// tenantChannel is the channel of a tenant's events (Store.TenantChannel).
func (h *Hub) tenantChannel(tenant string) string { return h.channel + ":" + tenant }

// channels lists the hub's probe and own channels and those of the
// tenants it has subscribers of. The caller holds subMu.
func (h *Hub) channels() []string {
	chs := []string{h.probe, h.channel}
	for tenant, ts := range h.tenants {
		if ts.refs > 0 {
			chs = append(chs, h.tenantChannel(tenant))
		}
	}
	return chs
}

// Start subscribes and returns once the hub's connection is live.
// Subscriptions made before Start are told to resync once their tenants'
// channels are live.
func (h *Hub) Start(ctx context.Context) error {
	h.subMu.Lock()
	ps := h.rdb.Subscribe(ctx, h.channels()...)
	h.mu.Lock()
	h.ps = ps
	h.mu.Unlock()
	h.subMu.Unlock()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			_ = ps.Close()
			return fmt.Errorf("subscribe to %s: %w", h.channel, err)
		}
		if m, ok := msg.(*redis.Subscription); ok && m.Channel == h.channel {
			break
		}
		h.handle(msg)
	}
	h.subscribed.Store(true)
	go h.send()
	go h.loop()
	go h.watch()
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
	close(h.stopped)
	h.mu.Unlock()
	var err error
	if ps != nil {
		err = ps.Close()
		<-h.done
		<-h.watchDone
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
			if h.pubsub() != ps {
				// Replaced (the master switched): go on with the new one.
				pinged = false
				continue
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
		h.handle(msg)
	}
}

// handle acts on one message of the subscription.
func (h *Hub) handle(msg any) {
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind != "subscribe" || m.Channel == h.probe {
			return
		}
		if m.Channel == h.channel {
			// A (re)subscription: events may have been missed before it.
			if !h.subscribed.Swap(true) {
				h.log.Info("event subscription restored")
			}
			h.resyncAll()
			return
		}
		h.confirmed(strings.TrimPrefix(m.Channel, h.channel+":"))
	case *redis.Message:
		// A process may have subscribers of a tenant's jobs but not of
		// this one: look at whom an event is for before decoding it.
		if !h.wanted(m.Payload) {
			return
		}
		if ev, ok := parseMessage(m.Payload); ok {
			h.dispatch(ev)
		}
	}
}

// confirmed handles the confirmation of a SUBSCRIBE to a tenant's channel:
// the oldest waiting one is live. A confirmation no one waits for is a
// subscription renewed on a new connection, after which the tenant's
// subscribers must catch up on what they may have missed.
func (h *Hub) confirmed(tenant string) {
	h.subMu.Lock()
	if ts := h.tenants[tenant]; ts != nil && len(ts.pending) > 0 {
		close(ts.pending[0])
		ts.pending = ts.pending[1:]
		h.forget(tenant, ts)
		h.subMu.Unlock()
		return
	}
	h.subMu.Unlock()
	h.resyncTenant(tenant)
}

// forget drops the record of a tenant with neither subscribers nor
// commands awaiting confirmation. The caller holds subMu.
func (h *Hub) forget(tenant string, ts *tenantSub) {
	if ts.refs == 0 && len(ts.pending) == 0 {
		delete(h.tenants, tenant)
	}
}

// retain counts a subscriber of tenant, subscribing to its channel for the
// first, and returns a channel closed once the tenant's channel is live.
func (h *Hub) retain(tenant string) <-chan struct{} {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	ts := h.tenants[tenant]
	if ts == nil {
		ts = &tenantSub{}
		h.tenants[tenant] = ts
	}
	if ts.refs++; ts.refs > 1 {
		return ts.ready
	}
	ps := h.pubsub()
	if ps == nil { // not started: Start subscribes
		ts.ready = closedChan
		return ts.ready
	}
	ts.ready = make(chan struct{})
	ts.pending = append(ts.pending, ts.ready)
	h.queue(channelCmd{h.tenantChannel(tenant), true})
	return ts.ready
}

// release uncounts a subscriber of tenant, leaving its channel after the
// last.
func (h *Hub) release(tenant string) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	ts := h.tenants[tenant]
	if ts == nil {
		return
	}
	if ts.refs--; ts.refs > 0 {
		return
	}
	if h.pubsub() != nil {
		h.queue(channelCmd{h.tenantChannel(tenant), false})
	}
	h.forget(tenant, ts)
}

// queue hands cmd to send. The caller holds subMu.
func (h *Hub) queue(cmd channelCmd) {
	h.cmds = append(h.cmds, cmd)
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// send writes the queued commands in order until the hub stops, each run
// of one kind as one command. A write is bounded by HealthInterval. On a
// failed one the client keeps the channels it was given and subscribes to
// them again on its next connection, whose confirmations release the
// waiters; a connection given up releases them at once (lost).
func (h *Hub) send() {
	for {
		select {
		case <-h.stopped:
			return
		case <-h.kick:
		}
		h.subMu.Lock()
		cmds := h.cmds
		h.cmds = nil
		h.subMu.Unlock()
		for len(cmds) > 0 {
			n := 1
			for n < len(cmds) && cmds[n].subscribe == cmds[0].subscribe {
				n++
			}
			chs := make([]string, n)
			for i, c := range cmds[:n] {
				chs[i] = c.channel
			}
			ctx, cancel := context.WithTimeout(context.Background(), h.HealthInterval)
			if ps := h.pubsub(); cmds[0].subscribe {
				_ = ps.Subscribe(ctx, chs...)
			} else {
				_ = ps.Unsubscribe(ctx, chs...)
			}
			cancel()
			cmds = cmds[n:]
		}
	}
}

// releaseWaiters lets every subscriber waiting for its tenant's channel go
// on: the connection was given up, and the channels' renewal on the next
// one tells them to catch up.
func (h *Hub) releaseWaiters() {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for tenant, ts := range h.tenants {
		for _, w := range ts.pending {
			close(w)
		}
		ts.pending = nil
		h.forget(tenant, ts)
	}
}

// lost marks the subscription down and tells subscribers to catch up.
func (h *Hub) lost(err error) {
	if h.subscribed.Swap(false) {
		h.log.Warn("event subscription lost", "err", err)
	}
	h.releaseWaiters()
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

// resubscribe replaces the subscription with one on a new connection,
// which the client dials now (after a master switch: to the new master).
// The dial holds subMu, which orders channel commands, but not mu, which
// deliveries and new subscribers need.
func (h *Hub) resubscribe(ctx context.Context) {
	h.subMu.Lock()
	if h.isClosed() {
		h.subMu.Unlock()
		return
	}
	ps := h.rdb.Subscribe(ctx, h.channels()...)
	h.mu.Lock()
	old := h.ps
	if h.closed {
		old = ps // Stop has closed the one it saw
	} else {
		h.ps = ps
	}
	h.mu.Unlock()
	h.subMu.Unlock()
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

// resyncTenant tells the subscribers of a tenant's jobs and stream to
// catch up.
func (h *Hub) resyncTenant(tenant string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for sub := range h.byTenant[tenant] {
		sub.signalResync()
	}
	for _, subs := range h.byJob {
		for sub := range subs {
			if sub.tenant == tenant {
				sub.signalResync()
			}
		}
	}
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
	sub.ready = h.retain(tenant)
	return sub
}

// ErrHubStopped is returned by Subscription.Wait when the hub has stopped.
var ErrHubStopped = errors.New("status: event hub stopped")

// Wait returns once the subscription is live: every event published after
// it returns reaches the subscriber (or, if the subscriber falls behind or
// the connection is lost, a resync signal does). Read what came before
// from the store after Wait. It fails when ctx ends or the hub stops
// first.
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
	h.release(s.tenant)
}
