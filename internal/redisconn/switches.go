package redisconn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// switchesPoll bounds how long Switches waits for a message before
	// it pings its sentinel; a sentinel silent for two of them is left
	// for the next one.
	switchesPoll = 2 * time.Second
	// switchesRetry is the pause before Switches tries the next sentinel.
	switchesRetry = 200 * time.Millisecond
)

// Switches tells of the master switches of a Sentinel deployment, and of
// the failovers that lead to them. It stays subscribed to every
// sentinel's +switch-master and failover channels (subscribing again to
// one that stops answering) and, after each (re)subscription, asks that
// sentinel for the master, so that a switch made while it was not
// listening is not missed.
//
// go-redis' failover clients close their command connections to the old
// master by themselves, but not pub/sub connections: a subscriber (such as
// the event hub) waits on Switched and resubscribes.
type Switches struct {
	c   *Connector
	log *slog.Logger

	mu     sync.Mutex
	ch     chan struct{} // closed at the next switch
	master string        // the master's host:port as last known, "" before the first answer
	// begun counts the failovers begun; one is under way until
	// failingUntil.
	begun        uint64
	failingUntil time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// Switches returns a Switches for the connector's Sentinel deployment, or
// nil for the URL form (a nil *Switches never reports a switch). Start it
// to make it listen.
func (c *Connector) Switches(log *slog.Logger) *Switches {
	if !c.Sentinel() {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Switches{c: c, log: log, ch: make(chan struct{})}
}

// Switched returns a channel that is closed at the next master switch
// after the call; call it again for the one after. A nil *Switches
// returns nil, which never fires.
func (s *Switches) Switched() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// Master returns the master's host:port as last heard from a sentinel, or
// "" before the first answer.
func (s *Switches) Master() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.master
}

// Start starts listening; it returns at once. Stop ends it.
func (s *Switches) Start(context.Context) error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
	return nil
}

// Stop stops listening and waits, at most until ctx ends, for it to end.
func (s *Switches) Stop(ctx context.Context) error {
	if s == nil || s.cancel == nil {
		return nil
	}
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saw records that master is the master now, and tells of a switch if it
// was another one before.
func (s *Switches) saw(master string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if master == s.master {
		return
	}
	was := s.master
	s.master = master
	if was == "" {
		return // the first answer is no switch
	}
	s.log.Warn("redis master switched", "master_name", s.c.failover.MasterName, "from", was, "to", master)
	close(s.ch)
	s.ch = make(chan struct{})
}

// run listens to every sentinel at once until ctx ends: a failover's
// steps are announced by the sentinel that leads it alone.
func (s *Switches) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, addr := range s.c.failover.SentinelAddrs {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := s.listen(ctx, addr); err != nil && ctx.Err() == nil {
					s.log.Debug("sentinel subscription ended", "sentinel", addr, "err", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(switchesRetry):
				}
			}
		})
	}
	wg.Wait()
}

// The sentinel channels that bound a failover: from the promotion of a
// replica to the switch of the master's address, or an abort.
const (
	failoverBegins = "+failover-state-send-slaveof-noone"
	switchMaster   = "+switch-master"
)

var failoverAborts = []string{"-failover-abort-no-good-slave", "-failover-abort-slave-timeout", "-failover-abort-not-elected"}

// failoverBound is the longest a failover is taken to be under way
// without its end heard (a lost message must not stop writes for good).
const failoverBound = 30 * time.Second

// Failover returns how many failovers of the master have begun since
// Start, and whether one is under way: from the promotion of a replica
// until the master's address switches (or the failover aborts), while the
// old master, if it still runs, takes writes that its other replicas
// confirm and that will be lost (status.FailoverFence). A nil *Switches
// never has one.
func (s *Switches) Failover() (begun uint64, underWay bool) {
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.begun, time.Now().Before(s.failingUntil)
}

// failover records what a sentinel said on one of the failover channels.
func (s *Switches) failover(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch channel {
	case failoverBegins:
		if !time.Now().Before(s.failingUntil) {
			s.begun++
			s.log.Warn("redis failover under way: writes are not confirmed until the master switches", "master_name", s.c.failover.MasterName)
		}
		s.failingUntil = time.Now().Add(failoverBound)
	default: // the switch, or an abort
		s.failingUntil = time.Time{}
	}
}

// masterOf returns the master name a sentinel event is about: the name of
// a master ("master <name> <ip> <port>"), or the one after "@" for a
// replica or sentinel ("slave <name> <ip> <port> @ <master> <ip> <port>").
func masterOf(payload string) string {
	f := strings.Fields(payload)
	if len(f) >= 2 && f[0] == "master" {
		return f[1]
	}
	if len(f) >= 6 && f[4] == "@" {
		return f[5]
	}
	return ""
}

// listen subscribes to +switch-master on the sentinel at addr and reports
// the switches of the master until the sentinel fails or ctx ends.
func (s *Switches) listen(ctx context.Context, addr string) error {
	sc := s.c.sentinelClient(addr)
	defer sc.Close()
	ps := sc.Subscribe(ctx, append([]string{switchMaster, failoverBegins}, failoverAborts...)...)
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, switchesPoll); err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, switchesPoll)
	master, err := s.c.askMaster(actx, addr)
	cancel()
	if err != nil {
		return err
	}
	s.saw(master)
	silent := 0
	for {
		msg, err := ps.ReceiveTimeout(ctx, switchesPoll)
		var nerr net.Error
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &nerr) && nerr.Timeout():
			if silent++; silent > 1 {
				return errors.New("no answer to PING")
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		silent = 0
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // the answer to a PING, or a subscription
		}
		if m.Channel != switchMaster {
			if masterOf(m.Payload) == s.c.failover.MasterName {
				s.failover(m.Channel)
			}
			continue
		}
		// <master name> <old ip> <old port> <new ip> <new port>
		f := strings.Fields(m.Payload)
		if len(f) == 5 && f[0] == s.c.failover.MasterName {
			s.saw(net.JoinHostPort(f[3], f[4]))
			s.failover(switchMaster)
		}
	}
}
