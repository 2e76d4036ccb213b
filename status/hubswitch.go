package status

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Switches tells a Hub that the Redis master has switched, such as a watch
// of Sentinel's +switch-master messages.
//
// Switched returns a channel that signals the next switch, by a value or
// by being closed, once a connection the hub's client dials reaches the
// new master (go-redis' failover client asks Sentinel for the master on
// each dial). The hub calls Switched again after each signal, so a source
// may either send values on one channel (signals may be coalesced: one
// pending value is enough) or close the channel and hand out a new one
// (redisconn.Switches does). A closed channel that Switched keeps
// returning means no more signals.
//
// Why the hub needs it: go-redis' failover client closes its command
// connections on a switch but not its pub/sub connection, which stays on
// the demoted master and hears nothing published on the new one.
type Switches interface {
	Switched() <-chan struct{}
}

// recheck is how soon after moving on a signal the hub checks that its new
// subscription is on the master, in case it dialed before the client knew
// of the switch.
const recheck = time.Second

// probeChannel returns a channel name for one hub alone. A tenant's name
// has no '#', so it is never a tenant's channel (Store.TenantChannel).
func probeChannel(channel string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	return channel + "#hub-" + hex.EncodeToString(b[:])
}

// clusterCheck is how often a hub on a cluster checks that its
// connections are on the masters of their channels' slots; the cluster
// client reloads its slot map about as often (redisconn).
const clusterCheck = time.Second

// watch moves the subscription to the new master when Switches signals a
// switch, and when a check every HealthInterval finds that the node the
// client writes to does not hold it (on a cluster: every clusterCheck,
// that a slot map changed since the legs were made), until the hub stops.
//
// The check (onMaster) is one PUBSUB NUMSUB of the hub's probe channel
// through the client: on the node the client writes to, the channel has a
// subscriber only if it is the hub's subscription. It notices, without a
// signal, a subscription left on a demoted master or on a replica (a
// managed endpoint that moved), which hears events late or not at all.
// When the client's own commands still reach the old node, the check
// cannot tell; the hub then moves once the client does.
func (h *Hub) watch() {
	defer close(h.watchDone)
	var switched <-chan struct{}
	if h.Switches != nil {
		switched = h.Switches.Switched()
	}
	interval := h.HealthInterval
	if h.cluster != nil {
		interval = min(interval, clusterCheck)
	}
	check := time.NewTimer(interval)
	defer check.Stop()
	for {
		select {
		case <-h.stopped:
			return
		case _, ok := <-switched:
			next := h.Switches.Switched()
			if !ok && next == switched {
				switched = nil // closed for good
				continue
			}
			switched = next
			h.move("the Redis master switched")
			check.Reset(min(interval, recheck))
		case <-check.C:
			switch {
			case h.cluster != nil && !h.placed():
				h.move("the cluster's slots moved")
			case h.cluster == nil && !h.onMaster():
				h.move("the subscription is not on the node the client writes to")
				check.Reset(recheck)
				continue
			}
			check.Reset(interval)
		}
	}
}

// onMaster reports whether the hub's subscription is on the node its client
// writes to. It says true when it cannot tell: while the hub subscribes
// anew, or when the client gets no answer (a connection that died is the
// receive loop's to notice).
func (h *Hub) onMaster() bool {
	if !h.Ready() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.HealthInterval)
	defer cancel()
	n, err := h.rdb.PubSubNumSub(ctx, h.probe).Result()
	if err != nil || !h.Ready() {
		return true
	}
	return n[h.probe] > 0
}

// move replaces the subscription with one that the client dials now, on
// the master; every subscriber is told to catch up at once, and again
// when the new one is confirmed (handle), as after a lost connection:
// events published on the new master before were not heard.
func (h *Hub) move(why string) {
	if h.isClosed() {
		return
	}
	h.mu.RLock()
	for _, l := range h.legs {
		l.up.Store(false)
	}
	h.mu.RUnlock()
	h.resyncAll()
	h.replace(why)
}
