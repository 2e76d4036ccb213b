package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/asyncgw/asyncgw/jobs"
	"github.com/asyncgw/asyncgw/status"
)

// The tenant every write belongs to: the soak runs with auth off.
const tenant = "default"

// settlePoll is how often the soak looks again at jobs still live.
const settlePoll = 500 * time.Millisecond

// lookup is what GET /v1/jobs/{id} said of a job.
type lookup struct {
	state jobs.State
	// missing: the gateway answered 404.
	missing bool
}

// settle waits, up to timeout, until GET /v1/jobs/{id} shows every job
// of ids in a terminal state, and returns what it last saw of each. A job
// that cannot be read (no answer, 5xx) is read again; one the gateway
// does not know (404) is not.
func (s *soak) settle(ctx context.Context, ids []string, timeout time.Duration) map[string]lookup {
	seen := make(map[string]lookup, len(ids))
	live := ids
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for {
		got := s.lookupAll(ctx, live)
		var still []string
		for _, id := range live {
			l, ok := got[id]
			if ok {
				seen[id] = l
			}
			if !ok || (!l.missing && !l.state.Terminal()) {
				still = append(still, id)
			}
		}
		live = still
		if len(live) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return seen
		}
		<-tick.C
	}
}

// lookupAll reads the jobs of ids through the gateway, a few at a time;
// a job it could not read is left out.
func (s *soak) lookupAll(ctx context.Context, ids []string) map[string]lookup {
	const parallel = 8
	out := make(map[string]lookup, len(ids))
	var mu sync.Mutex
	next := make(chan string)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for id := range next {
				if l, err := s.lookup(ctx, id); err == nil {
					mu.Lock()
					out[id] = l
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	return out
}

// lookup reads one job through GET /v1/jobs/{id}.
func (s *soak) lookup(ctx context.Context, id string) (lookup, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.dep.baseURL()+"/v1/jobs/"+id, nil)
	if err != nil {
		return lookup{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return lookup{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return lookup{}, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return lookup{missing: true}, nil
	default:
		return lookup{}, fmt.Errorf("GET /v1/jobs/%s: %s", id, resp.Status)
	}
	var j jobs.Job
	if err := json.Unmarshal(b, &j); err != nil {
		return lookup{}, fmt.Errorf("GET /v1/jobs/%s: %w", id, err)
	}
	return lookup{state: j.State}, nil
}

// census is what the tenant's event stream in Redis says of every job
// ever stored: each job's events by kind. Every stored job has at least
// its first event there (the accept writes it with the job), so a job
// missing from the ledger shows up here.
type census map[string]map[string]int

// takeCensus reads the whole tenant stream.
func takeCensus(ctx context.Context, st *status.Store) (census, error) {
	c := census{}
	after := ""
	for {
		evs, err := st.TenantEvents(ctx, tenant, after, 5000)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return c, nil
		}
		for _, ev := range evs {
			if c[ev.JobID] == nil {
				c[ev.JobID] = map[string]int{}
			}
			c[ev.JobID][ev.Kind]++
		}
		after = evs[len(evs)-1].Cursor
	}
}

// terminal counts the job's terminal events.
func (c census) terminal(id string) int {
	n := 0
	for kind, k := range c[id] {
		if jobs.State(kind).Terminal() {
			n += k
		}
	}
	return n
}
