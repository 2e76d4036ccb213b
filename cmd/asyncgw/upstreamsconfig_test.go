package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	ups "github.com/asyncgw/asyncgw/upstream"
	"github.com/asyncgw/asyncgw/webhook"
)

func TestUpstreamsConfig(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", `upstreams:
  "payments.internal:8443": {concurrency: 4, rate: 20, burst: 5}
  "Slow.Example": {concurrency: 8, adaptive: true}
  api.example: {rate: 2.5}
  quiet.example: {}
`)
	cfg, err := loadConfig(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ups.Limit{
		"payments.internal:8443": {Concurrency: 4, Rate: 20, Burst: 5},
		"Slow.Example":           {Concurrency: 8, Adaptive: true},
		"api.example":            {Rate: 2.5},
		"quiet.example":          {},
	}
	if len(cfg.Upstreams) != len(want) {
		t.Fatalf("upstreams %+v", cfg.Upstreams)
	}
	for h, l := range want {
		if cfg.Upstreams[h] != l {
			t.Errorf("upstreams[%q] = %+v, want %+v", h, cfg.Upstreams[h], l)
		}
	}
}

func TestBadUpstreamsConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ yaml, want string }{
		{`"payments.internal:8443": {concurrency: 0}`, `upstreams."payments.internal:8443".concurrency: 0 must be between 1 and 100000`},
		{`a: {concurrency: -3}`, `upstreams."a".concurrency: -3 must be between 1 and 100000`},
		{`a: {rate: 0}`, `upstreams."a".rate: 0 must be above 0`},
		{`a: {rate: -1}`, `upstreams."a".rate: -1 must be above 0`},
		{`a: {rate: 1, burst: 0}`, `upstreams."a".burst: 0 must be between 1 and 1000000`},
		{`a: {burst: 3}`, `upstreams."a".burst: needs rate`},
		{`a: {adaptive: true}`, `upstreams."a".adaptive: needs concurrency`},
		{`a: {rate: 1, adaptive: true}`, `upstreams."a".adaptive: needs concurrency`},
		{`"http://a.example": {rate: 1}`, `upstreams."http://a.example": must be a host or host:port`},
		{`"a.example/x": {rate: 1}`, `upstreams."a.example/x": must be a host or host:port`},
		{`"{a}": {rate: 1}`, `upstreams."{a}": must be a host or host:port`},
		{`a: {concurrency: ten}`, `upstreams.a.concurrency: must be an integer, not "ten"`},
		{`a: {concurency: 1}`, `unknown key "upstreams.a.concurency"`},
	} {
		path := writeFile(t, "asyncgw.yaml", "upstreams:\n  "+c.yaml+"\n")
		_, err := loadConfig(path, env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.yaml, err, c.want)
		}
	}
}

// TestUpstreamsReload: SIGHUP's reload applies the upstreams section to
// the running limiter, and a bad one keeps the running limits.
func TestUpstreamsReload(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "asyncgw.yaml", "upstreams:\n  a.example: {concurrency: 2}\n")
	cfg, err := loadConfig(path, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.reload = func() (*config, error) { return loadConfig(path, env(nil)) }
	limits, err := ups.New(nil, ups.Config{Limits: cfg.Upstreams}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	hooks, err := webhook.New(cfg.Webhooks)
	if err != nil {
		t.Fatal(err)
	}
	r := &reloader{load: cfg.reload, running: cfg, hooks: hooks, limits: limits, log: newLogger(cfg, &logs)}
	rewrite := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite("upstreams:\n  a.example: {concurrency: 5}\n  b.example: {rate: 1}\n")
	r.reload()
	if got := limits.Limits(); got["a.example"].Concurrency != 5 || got["b.example"].Rate != 1 {
		t.Errorf("limits after a reload: %+v\n%s", got, logs.String())
	}
	rewrite("upstreams:\n  a.example: {concurrency: 0}\n")
	r.reload()
	if got := limits.Limits(); got["a.example"].Concurrency != 5 || !strings.Contains(logs.String(), "config reload failed") {
		t.Errorf("limits after a bad reload: %+v\n%s", got, logs.String())
	}
}
