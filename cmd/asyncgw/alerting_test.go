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
// real processes (a gateway, a worker and an all-in-one asyncgw on one
// Redis). While they are healthy (fresh, then after some jobs) no alert
// fires, whether Prometheus scrapes them all or only the worker or only
// the gateway. Once Redis is gone, the processes say by themselves that
// they are not ready (nobody asks /readyz here) and AsyncgwNotReady fires
// for each of them.
func TestAlertsOnProcesses(t *testing.T) {
	t.Parallel()
	rules, err := opskit.Rules(kitAlerts)
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	up := newUpstream(t, nil)
	s := scrapedSetup(t, srv, up)
	roles := []string{"gateway", "worker", "all"}
	urls := map[string]string{}
	var base string
	for _, role := range roles {
		var b string
		_, urls[role], b = startScraped(t, s, role)
		if role == "gateway" {
			base = b
		}
	}
	scrapeAll := func() map[string]target {
		out := map[string]target{}
		for _, role := range roles {
			out[role] = target{instance: role + "-1:9090", role: role, samples: scrape(t, urls[role])}
		}
		return out
	}
	pick := func(scraped map[string]target, which ...string) []target {
		var out []target
		for _, role := range which {
			out = append(out, scraped[role])
		}
		return out
	}

	fresh := scrapeAll()
	var ids []string
	for range 5 {
		ids = append(ids, postJob(t, base+"/v1/work", `{"sku":"A-1"}`))
	}
	waitEnded(t, base, s, ids, 30*time.Second)
	busy := scrapeAll()
	for _, deployment := range [][]string{roles, {"worker"}, {"gateway"}, {"all"}} {
		tl := newTimeline()
		tl.hold(t, 20*time.Minute, pick(fresh, deployment...)...)
		tl.hold(t, 20*time.Minute, pick(busy, deployment...)...)
		if fs := tl.fired(t, rules); len(fs) > 0 {
			t.Errorf("alerts fired for healthy %v processes:%s", deployment, describe(fs))
		}
	}

	srv.Kill()
	var down map[string]target
	testutil.WaitForWhy(t, 30*time.Second, "every process to report asyncgw_ready 0", func() (bool, string) {
		down = scrapeAll()
		var ready []string
		for _, role := range roles {
			if down[role].samples["asyncgw_ready"] != 0 {
				ready = append(ready, role)
			}
		}
		return len(ready) == 0, fmt.Sprintf("still ready: %v", ready)
	})
	tl := newTimeline()
	tl.hold(t, 20*time.Minute, pick(fresh, roles...)...)
	tl.hold(t, 20*time.Minute, pick(busy, roles...)...)
	tl.hold(t, 10*time.Minute, pick(down, roles...)...)
	fs := tl.fired(t, rules)
	var notReady []string
	for _, f := range fs {
		if f.alert == "AsyncgwNotReady" {
			notReady = append(notReady, f.labels.Get("role"))
		}
	}
	slices.Sort(notReady)
	if want := []string{"all", "gateway", "worker"}; !slices.Equal(notReady, want) {
		t.Errorf("with Redis gone, AsyncgwNotReady fired for %q, want %q; fired:%s", notReady, want, describe(fs))
	}
	t.Logf("with Redis gone, these fired: %v", alertNames(fs))
}
