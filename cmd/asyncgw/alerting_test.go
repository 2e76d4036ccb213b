package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/asyncgw/asyncgw/internal/opskit"
	"github.com/asyncgw/asyncgw/internal/redistest"
	"github.com/asyncgw/asyncgw/internal/testutil"
)

// TestAlertsOnProcesses evaluates the shipped alerting rules, with
// Prometheus' PromQL engine, over what Prometheus would have scraped from
// a gateway process and a worker process: while they are healthy (fresh,
// then after some jobs) no alert fires; once Redis is gone, the processes
// say by themselves that they are not ready (nobody asks /readyz here)
// and AsyncgwNotReady fires for both.
func TestAlertsOnProcesses(t *testing.T) {
	t.Parallel()
	rules, err := opskit.Rules(kitAlerts)
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	up := newUpstream(t, nil)
	s := scrapedSetup(t, srv, up)
	_, gwMetrics, base := startScraped(t, s, "gateway")
	_, wkMetrics, _ := startScraped(t, s, "worker")
	scrapeBoth := func() []target {
		return []target{
			{instance: "gateway-1:9090", role: "gateway", samples: scrape(t, gwMetrics)},
			{instance: "worker-1:9090", role: "worker", samples: scrape(t, wkMetrics)},
		}
	}

	tl := newTimeline()
	tl.hold(t, 20*time.Minute, scrapeBoth()...)
	var ids []string
	for range 5 {
		ids = append(ids, submit(t, base+"/v1/work", `{"sku":"A-1"}`))
	}
	waitEnded(t, base, s, ids, 30*time.Second)
	tl.hold(t, 20*time.Minute, scrapeBoth()...)
	if fs := tl.fired(t, rules); len(fs) > 0 {
		t.Errorf("alerts fired for a healthy gateway and worker:%s", describe(fs))
	}

	srv.Kill()
	var down []target
	testutil.WaitForWhy(t, 30*time.Second, "both processes to report asyncgw_ready 0", func() (bool, string) {
		down = scrapeBoth()
		g, w := down[0].samples["asyncgw_ready"], down[1].samples["asyncgw_ready"]
		return g == 0 && w == 0, fmt.Sprintf("gateway %v, worker %v", g, w)
	})
	tl.hold(t, 10*time.Minute, down...)
	fs := tl.fired(t, rules)
	var notReady []string
	for _, f := range fs {
		if f.alert == "AsyncgwNotReady" {
			notReady = append(notReady, f.labels.Get("role"))
		}
	}
	slices.Sort(notReady)
	if !slices.Equal(notReady, []string{"gateway", "worker"}) {
		t.Errorf("with Redis gone, AsyncgwNotReady fired for %q, want gateway and worker; fired:%s", notReady, describe(fs))
	}
	t.Logf("with Redis gone, these fired: %v", alertNames(fs))
}
