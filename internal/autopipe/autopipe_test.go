package autopipe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// pipelineGate counts the pipelines sent to Redis and the commands in
// them, and can hold every pipeline back until released.
type pipelineGate struct {
	pipelines, commands atomic.Int64
	mu                  sync.Mutex
	hold                chan struct{} // nil: not holding
	arrived             chan struct{} // told when a pipeline reaches the gate
}

func (g *pipelineGate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *pipelineGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

func (g *pipelineGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && (cmds[0].Name() == "hello" || cmds[0].Name() == "client") {
			return next(ctx, cmds) // a new connection's handshake
		}
		g.pipelines.Add(1)
		g.commands.Add(int64(len(cmds)))
		g.mu.Lock()
		hold, arrived := g.hold, g.arrived
		g.mu.Unlock()
		if arrived != nil {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
		if hold != nil {
			<-hold
		}
		return next(ctx, cmds)
	}
}

// holdPipelines makes pipelines wait at the gate until the returned func
// is called.
func (g *pipelineGate) holdPipelines() (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold, g.arrived = make(chan struct{}), make(chan struct{}, 1)
	hold := g.hold
	return func() {
		g.mu.Lock()
		g.hold = nil
		g.mu.Unlock()
		close(hold)
	}
}

var _ redis.Hook = (*pipelineGate)(nil)

func newClient(t *testing.T) (*redis.Client, *pipelineGate, string) {
	t.Helper()
	rdb := redistest.Shared(t).Client(t)
	g := &pipelineGate{}
	rdb.AddHook(g)
	return rdb, g, redistest.Prefix(t)
}

// queued reports how many calls wait for a pipeline.
func (p *Pipe) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// TestPipeAnswersEachCaller: many goroutines, each with commands of its
// own, on few slots; every command gets its own answer, the pipelines
// are fewer than the commands, and the Pipe ends idle.
func TestPipeAnswersEachCaller(t *testing.T) {
	rdb, gate, prefix := newClient(t)
	p := New(rdb, 2, 16)
	const workers, each = 40, 50
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("%s:n:%d", prefix, w)
			for i := range each {
				var incr *redis.IntCmd
				var echo *redis.StringCmd
				msg := fmt.Sprintf("%d/%d", w, i)
				if err := p.Do(ctx, func(pipe redis.Pipeliner) {
					incr = pipe.Incr(ctx, key)
					echo = pipe.Echo(ctx, msg)
				}); err != nil {
					t.Error(err)
					return
				}
				if n, err := incr.Result(); err != nil || n != int64(i+1) {
					t.Errorf("%s: INCR = %d, %v; want %d", key, n, err, i+1)
					return
				}
				if got, err := echo.Result(); err != nil || got != msg {
					t.Errorf("ECHO %q = %q, %v", msg, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if cmds, pipes := gate.commands.Load(), gate.pipelines.Load(); cmds != 2*workers*each || pipes >= workers*each {
		t.Errorf("%d commands in %d pipelines; want %d commands in fewer pipelines than calls", cmds, pipes, 2*workers*each)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free != 2 || len(p.queue) != 0 {
		t.Errorf("after the calls: %d slots free, %d calls queued; want 2 and 0", p.free, len(p.queue))
	}
}

// TestPipeBatchesWhileBusy: calls made while the only slot is carrying a
// pipeline go together in the next one, at most batch at a time.
func TestPipeBatchesWhileBusy(t *testing.T) {
	rdb, gate, prefix := newClient(t)
	p := New(rdb, 1, 8)
	ctx := context.Background()
	release := gate.holdPipelines()
	var wg sync.WaitGroup
	do := func(i int) {
		if err := p.Do(ctx, func(pipe redis.Pipeliner) { pipe.Set(ctx, prefix+":k:"+strconv.Itoa(i), i, 0) }); err != nil {
			t.Error(err)
		}
	}
	wg.Go(func() { do(0) })
	<-gate.arrived // the first pipeline, of one call, is held
	for i := 1; i <= 20; i++ {
		wg.Go(func() { do(i) })
	}
	testutil.WaitFor(t, 10*time.Second, "20 calls queued", func() bool { return p.queued() == 20 })
	release()
	wg.Wait()
	// 1 + 20 calls: the first alone, then 8, 8 and 4.
	if pipes := gate.pipelines.Load(); pipes != 4 {
		t.Errorf("%d pipelines; want 4 (1, then 20 calls 8 at a time)", pipes)
	}
	for i := 0; i <= 20; i++ {
		if v, err := rdb.Get(ctx, prefix+":k:"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Errorf("key %d: %d, %v", i, v, err)
		}
	}
}

// TestPipeDropsEndedCalls: a call whose context ends while it waits is
// answered with the context's error and its command never runs; the
// others in its pipeline run.
func TestPipeDropsEndedCalls(t *testing.T) {
	rdb, gate, prefix := newClient(t)
	p := New(rdb, 1, 8)
	ctx := context.Background()
	release := gate.holdPipelines()
	first := make(chan error, 1)
	go func() {
		first <- p.Do(ctx, func(pipe redis.Pipeliner) { pipe.Incr(ctx, prefix+":first") })
	}()
	<-gate.arrived

	cctx, cancel := context.WithCancel(ctx)
	dropped := make(chan error, 1)
	go func() {
		dropped <- p.Do(cctx, func(pipe redis.Pipeliner) { pipe.Incr(cctx, prefix+":dropped") })
	}()
	kept := make(chan error, 1)
	go func() {
		kept <- p.Do(ctx, func(pipe redis.Pipeliner) { pipe.Incr(ctx, prefix+":kept") })
	}()
	testutil.WaitFor(t, 10*time.Second, "2 calls queued", func() bool { return p.queued() == 2 })
	cancel()
	release()
	for name, ch := range map[string]chan error{"first": first, "kept": kept} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if n, err := rdb.Get(ctx, prefix+":"+name).Int(); err != nil || n != 1 {
			t.Errorf("%s: counter %d, %v; want 1", name, n, err)
		}
	}
	if err := <-dropped; !errors.Is(err, context.Canceled) {
		t.Errorf("dropped call: %v; want context.Canceled", err)
	}
	if n, err := rdb.Exists(ctx, prefix+":dropped").Result(); err != nil || n != 0 {
		t.Errorf("the dropped call's command ran (%d, %v)", n, err)
	}
}

// TestPipeCommandErrorsStayTheirOwn: a command that fails in Redis fails
// alone; the others in its pipeline are answered.
func TestPipeCommandErrorsStayTheirOwn(t *testing.T) {
	rdb, gate, prefix := newClient(t)
	p := New(rdb, 1, 8)
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+":str", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	release := gate.holdPipelines()
	go func() { _ = p.Do(ctx, func(pipe redis.Pipeliner) { pipe.Ping(ctx) }) }()
	<-gate.arrived
	var bad, good *redis.IntCmd
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = p.Do(ctx, func(pipe redis.Pipeliner) { bad = pipe.LPush(ctx, prefix+":str", "y") })
	})
	wg.Go(func() {
		_ = p.Do(ctx, func(pipe redis.Pipeliner) { good = pipe.Incr(ctx, prefix+":n") })
	})
	testutil.WaitFor(t, 10*time.Second, "2 calls queued", func() bool { return p.queued() == 2 })
	release()
	wg.Wait()
	if err := bad.Err(); err == nil || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		t.Errorf("LPUSH on a string: %v; want WRONGTYPE", err)
	}
	if n, err := good.Result(); err != nil || n != 1 {
		t.Errorf("INCR beside it: %d, %v", n, err)
	}
}

// TestPipeRedisDown: with Redis unreachable, each call gets the
// connection's error in its commands, in bounded time, and the Pipe is
// usable again after.
func TestPipeRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1})
	defer rdb.Close()
	p := New(rdb, 2, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			var cmd *redis.StatusCmd
			if err := p.Do(ctx, func(pipe redis.Pipeliner) { cmd = pipe.Ping(ctx) }); err != nil {
				t.Error(err)
				return
			}
			if cmd.Err() == nil {
				t.Error("PING answered with no Redis listening")
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free != 2 || len(p.queue) != 0 {
		t.Errorf("%d slots free, %d queued; want 2 and 0", p.free, len(p.queue))
	}
}
