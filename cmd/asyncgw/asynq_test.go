package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
	"github.com/asyncgw/asyncgw/jobs"
)

// TestAsynqDirectSwitch: the built binary finds the asynq it links is the
// version internal/keyspace/asynq.go describes and takes the direct path
// without a word; with redis.asynq_direct: false (here from the
// environment) a gateway and a worker process keep to asynq's public API,
// say so, and jobs run all the same.
func TestAsynqDirectSwitch(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	env := map[string]string{"ASYNCGW_REDIS_ASYNQ_DIRECT": "false"}
	gw := startAsyncgw(t, env, "gateway", "--config", s.config)
	wk := startAsyncgw(t, env, "worker", "--config", s.config)
	base := gw.baseURL(t)
	wk.waitLog(t, "workers started", 30*time.Second)
	gw.waitLog(t, "asyncgw uses asynq's public API only", 5*time.Second)
	wk.waitLog(t, "asyncgw uses asynq's public API only", 5*time.Second)

	id := postJob(t, base+"/v1/work", `{"sku":"A-1"}`)
	evs, err := openEvents(t, base+"/v1/jobs/"+id+"/events").rest(t, 30*time.Second)
	if err != io.EOF {
		t.Errorf("event stream ended with %v, want EOF", err)
	}
	if got := kinds(evs); len(got) == 0 || got[len(got)-1] != "succeeded" {
		t.Fatalf("events %q, want them to end in succeeded", got)
	}
	if j := getJob(t, base, id); j.State != jobs.StateSucceeded || j.Attempt != 1 {
		t.Errorf("job %+v", j)
	}

	direct := startAsyncgw(t, nil, "gateway", "--config", s.config)
	direct.baseURL(t)
	if log := direct.stderr.String(); strings.Contains(log, "public API") {
		t.Errorf("the binary did not recognise the asynq it links:\n%s", log)
	}
}

// TestPublicWorkerAfterDirectGateway: a gateway on the direct path puts
// new jobs in the fair lines, which asynq's own dequeue never reads; a
// worker switched to asynq's public API (a deployment turning the direct
// path off, one process at a time) moves them to the queue and runs them.
// Nothing accepted is stranded.
func TestPublicWorkerAfterDirectGateway(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	s := newSetup(t, redistest.Shared(t), up.URL+"/orders")
	gw := startAsyncgw(t, nil, "gateway", "--config", s.config)
	base := gw.baseURL(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, postJob(t, base+"/v1/work", fmt.Sprintf(`{"n":%d}`, i)))
	}
	wk := startAsyncgw(t, map[string]string{"ASYNCGW_REDIS_ASYNQ_DIRECT": "false"}, "worker", "--config", s.config)
	wk.waitLog(t, "moved jobs from the fair lines to their queues", 30*time.Second)
	for _, id := range ids {
		testutil.WaitFor(t, 30*time.Second, "job "+id+" succeeded", func() bool {
			return getJob(t, base, id).State == jobs.StateSucceeded
		})
	}
}
