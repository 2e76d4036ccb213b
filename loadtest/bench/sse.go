package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asyncgw/asyncgw/sse"
)

// submitN submits n jobs through conns clients and returns their IDs.
func submitN(ctx context.Context, t *target, n, conns int) ([]string, error) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	ids := make([]string, 0, n)
	t2 := *t
	t2.accepted = func(id string, _ time.Time) {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	}
	var left atomic.Int64
	left.Store(int64(n))
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				status, err := t2.send(ctx, c)
				if err == nil && status != http.StatusAccepted {
					err = fmt.Errorf("status %d", status)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return ids, err
	}
	return ids, ctx.Err()
}

// subscriber follows one job's event stream until its terminal event.
type subscriber struct {
	id        string
	connected chan struct{}
	// streaming is set before connected is closed: the first event came.
	streaming bool
	ended     time.Time // when the terminal event arrived
	kind      string
	err       error
}

func (s *subscriber) follow(ctx context.Context, c *http.Client, url, key string) {
	defer func() {
		select {
		case <-s.connected:
		default:
			close(s.connected)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		s.err = err
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		s.err = err
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.err = fmt.Errorf("status %d", resp.StatusCode)
		return
	}
	r := sse.NewReader(resp.Body)
	first := true
	for {
		ev, err := r.Next()
		if err != nil {
			s.err = fmt.Errorf("stream ended before the job did: %w", err)
			return
		}
		if first {
			first = false
			s.streaming = true
			close(s.connected)
		}
		switch ev.Event {
		case "succeeded", "failed", "dead", "canceled":
			s.ended, s.kind = time.Now(), ev.Event
			return
		}
	}
}

// redisClients is the number of Redis connections of the processes that
// name them name (asyncgw names them by role).
func (b *bench) redisClients(ctx context.Context, name string) (int, error) {
	list, err := b.rdb.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(list) {
		if strings.Contains(line, " name="+name+" ") {
			n++
		}
	}
	return n, nil
}

// subscribers (f): N clients each follow a job's event stream while the
// jobs wait on an upstream that holds them; then the upstream lets them
// through, and each terminal event's delay from the upstream's answer to
// the subscriber is measured. The gateway runs in a process of its own, so
// its memory is the subscribers'.
func (b *bench) subscribers(ctx context.Context) error {
	n := b.opt.sse
	up := newJobUpstream(true)
	url, closeUp, err := listenUpstream(up)
	if err != nil {
		return err
	}
	defer closeUp()
	defer up.release()
	gw, err := b.startGateway(gwConfig{name: "sse", upstream: url + "/work", concurrency: 50, debug: true}, "gateway", "worker")
	if err != nil {
		return err
	}
	defer gw.stop()
	ids, err := submitN(ctx, b.gatewayTarget(gw), n, 32)
	if err != nil {
		return fmt.Errorf("submit %d jobs: %w", n, err)
	}
	time.Sleep(time.Second)
	before, err := gw.procs[0].RSS()
	if err != nil {
		return err
	}
	msBefore, err := b.memStats(gw)
	if err != nil {
		return err
	}
	clientsBefore, err := b.redisClients(ctx, "asyncgw-gateway")
	if err != nil {
		return err
	}

	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: -1, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subs := make([]*subscriber, len(ids))
	var wg sync.WaitGroup
	opening := make(chan struct{}, 200) // connections being opened at once
	for i, id := range ids {
		s := &subscriber{id: id, connected: make(chan struct{})}
		subs[i] = s
		opening <- struct{}{}
		wg.Go(func() { s.follow(sctx, client, gw.url+"/v1/jobs/"+id+"/events", b.key) })
		go func() {
			<-s.connected
			<-opening
		}()
	}
	for _, s := range subs {
		select {
		case <-s.connected:
		case <-time.After(time.Minute):
			cancel()
			wg.Wait()
			return fmt.Errorf("subscriber of %s not connected after a minute", s.id)
		}
	}
	failed := 0
	for _, s := range subs {
		if !s.streaming {
			failed++
		}
	}
	if failed > 0 {
		cancel()
		wg.Wait()
		return fmt.Errorf("%d of %d subscribers could not connect (first: %v)", failed, n, firstErr(subs))
	}
	time.Sleep(2 * time.Second)
	after, err := gw.procs[0].RSS()
	b.saveProfile(gw, "heap", "sse.heap.pprof")
	b.saveProfile(gw, "goroutine?debug=1", "sse.goroutines.txt")
	msAfter, err := b.memStats(gw)
	if err != nil {
		return err
	}
	if err != nil {
		return err
	}
	clientsAfter, err := b.redisClients(ctx, "asyncgw-gateway")
	if err != nil {
		return err
	}

	up.release()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(2 * time.Minute):
		cancel()
		<-waited
	}
	var lat []time.Duration
	for _, s := range subs {
		at, ok := up.answeredAt(s.id)
		if s.err != nil || s.kind != "succeeded" || !ok {
			failed++
			continue
		}
		lat = append(lat, s.ended.Sub(at))
	}
	if failed > 0 {
		b.wrong = append(b.wrong, fmt.Sprintf("event streams: %d of %d subscribers did not see their job succeed (first: %v)", failed, n, firstErr(subs)))
	}
	slices.Sort(lat)
	per := float64(after-before) / float64(n)
	const scen = "(f) SSE subscribers"
	b.report.add(row{scen, fmt.Sprintf("gateway memory per idle subscriber (%d, RSS %s → %s)", n, mib(before), mib(after)),
		fmt.Sprintf("%.1f KB", per/1024), "", fmt.Sprintf("≤ 32 KB: %.1f KB", per/1024), met(per <= 32*1024)})
	// What the subscribers hold once garbage is collected: live heap and
	// goroutine stacks, as the Go runtime counts them.
	perKB := func(k string) float64 { return float64(msAfter[k]-msBefore[k]) / float64(n) / 1024 }
	b.report.add(row{scen, "of which live after a GC: heap / goroutine stacks per subscriber",
		fmt.Sprintf("%.1f KB / %.1f KB", perKB("HeapInuse"), perKB("Stack")), "", "", nil})
	// The gateway's two pools (the accept path has its own) are bounded
	// at 2 × worker concurrency + 64 each: more new connections than
	// that would mean one per subscriber.
	b.report.add(row{scen, "the gateway's Redis connections before / with subscribers", fmt.Sprintf("%d / %d", clientsBefore, clientsAfter), "",
		"none per subscriber", met(clientsAfter-clientsBefore <= 2*(2*50+64))})
	p99 := quantile(lat, 0.99)
	b.report.add(row{scen, fmt.Sprintf("upstream answer → subscriber p50 / p99 / max (%d jobs ending)", len(lat)),
		fmt.Sprintf("%s / %s / %s", ms(quantile(lat, 0.5)), ms(p99), ms(quantile(lat, 1))), "",
		fmt.Sprintf("p99 ≤ 100 ms: %s", ms(p99)), met(p99 <= 100*time.Millisecond && failed == 0)})
	return nil
}

func firstErr(subs []*subscriber) error {
	for _, s := range subs {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
