package status

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// leg is one connection of a hub's subscription: on one node, the only
// one; on a cluster, the one to a master, with the event channels of the
// shards whose slots it serves.
type leg struct {
	ps *redis.PubSub
	// addr is the master the channels' slots were on when the leg was
	// planned (on a cluster; "" otherwise).
	addr     string
	channels []string
	// up: every channel is subscribed on the current connection.
	up atomic.Bool
	// gone: the leg was replaced or the hub stopped; its loop ends.
	gone atomic.Bool
}

// plan groups the event channels into legs: one on a single node; on a
// cluster one per master, by where the client's slot map says each
// channel's slot is.
func (h *Hub) plan(ctx context.Context) ([]*leg, error) {
	if h.cluster == nil {
		return []*leg{{channels: h.channels}}, nil
	}
	byAddr := map[string]*leg{}
	var legs []*leg
	for _, ch := range h.channels {
		node, err := h.cluster.MasterForKey(ctx, ch)
		if err != nil {
			return nil, err
		}
		addr := node.Options().Addr
		l := byAddr[addr]
		if l == nil {
			l = &leg{addr: addr}
			byAddr[addr] = l
			legs = append(legs, l)
		}
		l.channels = append(l.channels, ch)
	}
	slices.SortFunc(legs, func(a, b *leg) int { return strings.Compare(a.addr, b.addr) })
	return legs, nil
}

// samePlan reports whether the legs a and b listen on the same masters
// for the same channels.
func samePlan(a, b []*leg) bool {
	return slices.EqualFunc(a, b, func(x, y *leg) bool {
		return x.addr == y.addr && slices.Equal(x.channels, y.channels)
	})
}

// open subscribes leg l on a new connection, without waiting for the
// confirmations. On a cluster the client puts the connection on the
// master of the first channel's slot (go-redis' cluster PubSub), which is
// the leg's; each channel is subscribed by a command of its own, as a
// cluster refuses one SSUBSCRIBE of channels in several slots (CROSSSLOT).
func (h *Hub) open(ctx context.Context, l *leg) {
	switch {
	case h.cluster != nil:
		l.ps = h.cluster.SSubscribe(ctx, l.channels[0])
		for _, ch := range l.channels[1:] {
			_ = l.ps.SSubscribe(ctx, ch)
		}
	case h.sharded:
		l.ps = h.rdb.SSubscribe(ctx, l.channels...)
		_ = l.ps.Subscribe(ctx, h.probe)
	default:
		l.ps = h.rdb.Subscribe(ctx, append(slices.Clip(l.channels), h.probe)...)
	}
}

// confirm waits for the confirmation of every event channel of l, handing
// whatever else comes to handle.
func (h *Hub) confirm(ctx context.Context, l *leg) error {
	for n := 0; n < len(l.channels); {
		msg, err := l.ps.Receive(ctx)
		if err != nil {
			return err
		}
		if m, ok := msg.(*redis.Subscription); ok && (m.Kind == "subscribe" || m.Kind == "ssubscribe") && m.Channel != h.probe {
			n++
			continue
		}
		h.handle(l, msg)
	}
	return nil
}

// loop receives l's messages until l is gone. A connection that fails is
// dialed again by the client on the next receive, which subscribes its
// channels again (handle then has everyone resync); one silent for two
// health intervals is given up, and the hub subscribes anew. On a cluster
// the hub subscribes anew on any failure: go-redis would subscribe all the
// leg's channels again in one command, which a cluster refuses, and the
// master may have changed.
func (h *Hub) loop(l *leg) {
	defer h.loops.Done()
	ctx := context.Background()
	pinged := false
	for {
		msg, err := l.ps.ReceiveTimeout(ctx, h.HealthInterval)
		if l.gone.Load() {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !pinged && l.ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
				// No answer to a ping for a whole interval: the connection
				// may be dead without an error (a host gone, a partition).
				// Start over on fresh ones.
				h.lost(l, err)
				h.replace("the event subscription went silent")
				pinged = false
				continue
			}
			h.lost(l, err)
			select {
			case <-h.stopped:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if h.cluster != nil {
				h.replace("a connection to a cluster master failed")
			}
			continue
		}
		pinged = false
		h.handle(l, msg)
	}
}

// replace puts the subscription on new connections, which the client dials
// now (after a master switch: to the new master; on a cluster, to the
// masters its slot map names). The hub is not ready until they are
// confirmed, and every subscriber is told to catch up then (handle): what
// was published in between was not heard.
func (h *Hub) replace(why string) {
	h.moveMu.Lock()
	defer h.moveMu.Unlock()
	if h.isClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.HealthInterval)
	defer cancel()
	legs, err := h.plan(ctx)
	if err != nil {
		h.log.Warn("event subscription cannot move", "reason", why, "err", err)
		return
	}
	h.log.Warn("event subscription moves to the Redis master", "reason", why)
	for _, l := range legs {
		h.open(ctx, l)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		for _, l := range legs {
			_ = l.ps.Close()
		}
		return
	}
	old := h.legs
	h.legs = legs
	h.loops.Add(len(legs))
	h.mu.Unlock()
	for _, l := range old {
		l.gone.Store(true)
		_ = l.ps.Close()
	}
	for _, l := range legs {
		go h.loop(l)
	}
	h.resyncAll()
}

// placed reports whether each leg of a cluster's hub is on the master that
// its channels' slots are on now. It says true when it cannot tell.
func (h *Hub) placed() bool {
	ctx, cancel := context.WithTimeout(context.Background(), h.HealthInterval)
	defer cancel()
	want, err := h.plan(ctx)
	if err != nil {
		return true
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return samePlan(want, h.legs)
}
