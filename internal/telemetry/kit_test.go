package telemetry

// Tests of the operations kit in configs/: the alerting rules, the scrape
// configuration and the Grafana dashboard must parse, and every metric and
// label they name must be one that NewMetrics exports, so that renaming a
// metric or a label breaks this test instead of an alert in production.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/asyncgw/asyncgw/internal/opskit"
)

// Paths from this package's directory.
const (
	kitAlerts     = "../../configs/prometheus/alerts.yml"
	kitScrape     = "../../configs/prometheus/prometheus.yml"
	kitDashboard  = "../../configs/grafana/asyncgw-dashboard.json"
	kitOperations = "../../docs/OPERATIONS.md"
)

// kitTargetLabels are attached by Prometheus at scrape time, not by
// asyncgw; role comes from configs/prometheus/prometheus.yml.
var kitTargetLabels = map[string]bool{"job": true, "instance": true, "role": true}

var kitSeverities = []string{"critical", "warning", "info"}

// kitRunbookBase is where the shipped alerts link their runbooks: an
// absolute link to kitOperations in the repository, so that it can be
// clicked from an alert wherever the alert is shown.
const kitRunbookBase = "https://github.com/asyncgw/asyncgw/blob/main/docs/OPERATIONS.md"

func TestAlertRules(t *testing.T) {
	t.Parallel()
	p := parser.NewParser(parser.Options{})
	logger := slog.New(slog.DiscardHandler)
	groups, errs := rulefmt.ParseFile(kitAlerts, false, model.LegacyValidation, p, logger)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	cat := newKitCatalog(t)
	anchors := kitAnchors(t, kitOperations)
	seen := map[string]bool{}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = "record " + r.Record
			} else {
				alerts++
				if seen[name] {
					t.Errorf("alert %s: defined twice", name)
				}
				seen[name] = true
				kitCheckAlert(t, r, anchors)
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			for _, problem := range cat.check(expr) {
				t.Errorf("%s: %s", name, problem)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts in " + kitAlerts)
	}
}

// kitCheckAlert checks the labels and annotations every alert needs.
func kitCheckAlert(t *testing.T, r rulefmt.Rule, anchors map[string]bool) {
	t.Helper()
	if s := r.Labels["severity"]; !slices.Contains(kitSeverities, s) {
		t.Errorf("alert %s: severity %q, want one of %v", r.Alert, s, kitSeverities)
	}
	for _, k := range []string{"summary", "description", "runbook_url"} {
		if strings.TrimSpace(r.Annotations[k]) == "" {
			t.Errorf("alert %s: no %s annotation", r.Alert, k)
		}
	}
	link := r.Annotations["runbook_url"]
	doc, anchor, ok := strings.Cut(link, "#")
	switch {
	case !ok || doc != kitRunbookBase:
		t.Errorf("alert %s: runbook_url %q, want %s#<anchor>", r.Alert, link, kitRunbookBase)
	case anchor != strings.ToLower(r.Alert):
		t.Errorf("alert %s: runbook anchor %q, want %q (the alert's own section)", r.Alert, anchor, strings.ToLower(r.Alert))
	case !anchors[anchor]:
		t.Errorf("alert %s: docs/OPERATIONS.md has no heading with anchor %q", r.Alert, anchor)
	}
}

func TestScrapeConfig(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(kitScrape)
	if err != nil {
		t.Fatal(err)
	}
	type scrape struct {
		JobName string `yaml:"job_name"`
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []scrape `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", kitScrape, err)
	}
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("%s: rule_files %v do not load alerts.yml", kitScrape, cfg.RuleFiles)
	}
	if !slices.Contains(cfg.ScrapeConfigs, scrape{JobName: "asyncgw"}) {
		t.Errorf("%s: no scrape config with job_name asyncgw (the alerts select job=\"asyncgw\")", kitScrape)
	}
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(kitDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", kitDashboard, err)
	}
	if dash["uid"] != "asyncgw" {
		t.Errorf("uid %v, want asyncgw", dash["uid"])
	}
	p := parser.NewParser(parser.Options{})
	cat := newKitCatalog(t)
	check := func(where, query string) {
		t.Helper()
		expr, err := p.ParseExpr(opskit.Expand(query))
		if err != nil {
			t.Errorf("%s: %q: %v", where, query, err)
			return
		}
		for _, problem := range cat.check(expr) {
			t.Errorf("%s: %s", where, problem)
		}
	}

	n := 0
	opskit.Dashboard(dash).Panels(func(title string, target map[string]any) {
		expr, _ := target["expr"].(string)
		if strings.TrimSpace(expr) == "" {
			t.Errorf("panel %q, target %v: no expr", title, target["refId"])
			return
		}
		n++
		check(fmt.Sprintf("panel %q, target %v", title, target["refId"]), expr)
	})
	if n == 0 {
		t.Fatal("no panel targets in " + kitDashboard)
	}

	// Query variables: label_values(selector, label).
	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	names := map[string]bool{}
	for _, v := range vars {
		v, _ := v.(map[string]any)
		name, _ := v["name"].(string)
		names[name] = true
		if v["type"] != "query" {
			continue
		}
		q, _ := v["query"].(string)
		if m, ok := v["query"].(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		sel, ok := strings.CutPrefix(q, "label_values(")
		i := strings.LastIndexByte(sel, ',')
		if !ok || i < 0 || !strings.HasSuffix(sel, ")") {
			t.Errorf("variable %s: query %q, want label_values(selector, label)", name, q)
			continue
		}
		check("variable "+name, sel[:i])
		label := strings.TrimSpace(strings.TrimSuffix(sel[i+1:], ")"))
		if expr, err := p.ParseExpr(opskit.Expand(sel[:i])); err == nil {
			if vs, ok := expr.(*parser.VectorSelector); !ok || !cat.hasLabel(opskit.SelectorName(vs), label) {
				t.Errorf("variable %s: %q: the selector has no label %q", name, q, label)
			}
		}
	}
	for _, want := range []string{"instance", "queue"} {
		if !names[want] {
			t.Errorf("no template variable %q", want)
		}
	}
}

// kitCatalog is what NewMetrics exports: metric names and their labels.
type kitCatalog struct {
	labels     map[string]map[string]bool // metric → label names
	histograms map[string]bool
}

func newKitCatalog(t *testing.T) kitCatalog {
	t.Helper()
	m := NewMetrics("test")
	kitTouch(t, m)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := kitCatalog{labels: map[string]map[string]bool{}, histograms: map[string]bool{}}
	for _, name := range m.Names() {
		c.labels[name] = map[string]bool{}
	}
	for _, mf := range mfs {
		ls, ok := c.labels[mf.GetName()]
		if !ok {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				ls[lp.GetName()] = true
			}
		}
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			c.histograms[mf.GetName()] = true
		}
	}
	if len(c.labels) == 0 {
		t.Fatal("NewMetrics exports no asyncgw_ metrics")
	}
	return c
}

// kitTouch gives every vector of m a child, so that the registry gathers
// it: a vector without children is not exported at all.
func kitTouch(t *testing.T, m *Metrics) {
	t.Helper()
	touchFields(t, reflect.ValueOf(m).Elem())
}

// touchFields is kitTouch for the fields of struct v, and of the structs
// embedded in it (such as upstreamMetrics).
func touchFields(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		field := v.Type().Field(i)
		if field.Anonymous && field.Type.Kind() == reflect.Struct {
			touchFields(t, v.Field(i))
			continue
		}
		if !field.IsExported() {
			continue
		}
		var get func(lvs []string) error
		switch c := v.Field(i).Interface().(type) {
		case *prometheus.Registry, prometheus.Counter, prometheus.Gauge, prometheus.Histogram:
			continue // no labels: always gathered
		case *prometheus.CounterVec:
			get = func(lvs []string) error { _, err := c.GetMetricWithLabelValues(lvs...); return err }
		case *prometheus.GaugeVec:
			get = func(lvs []string) error { _, err := c.GetMetricWithLabelValues(lvs...); return err }
		case *prometheus.HistogramVec:
			get = func(lvs []string) error { _, err := c.GetMetricWithLabelValues(lvs...); return err }
		case *prometheus.SummaryVec:
			get = func(lvs []string) error { _, err := c.GetMetricWithLabelValues(lvs...); return err }
		default:
			t.Fatalf("Metrics.%s is a %T: teach kitTouch to give it a child", field.Name, c)
		}
		// The number of labels is not exported; the vector refuses every
		// other count.
		touched := false
		for n := 1; n <= 10 && !touched; n++ {
			touched = get(slices.Repeat([]string{"x"}, n)) == nil
		}
		if !touched {
			t.Fatalf("Metrics.%s: no child with 1 to 10 label values", field.Name)
		}
	}
}

// foreign reports metrics that asyncgw does not define but may use: the
// scrape's up, and the Go runtime and process collectors.
func (kitCatalog) foreign(name string) bool {
	return name == "up" || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// resolve maps a series name to the metric that exports it, and whether it
// is a histogram's _bucket series (which adds the le label).
func (c kitCatalog) resolve(name string) (metric string, bucket, ok bool) {
	if _, ok := c.labels[name]; ok {
		return name, false, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, cut := strings.CutSuffix(name, suffix); cut && c.histograms[base] {
			return base, suffix == "_bucket", true
		}
	}
	return "", false, false
}

// known reports whether series name is asyncgw's or a foreign one.
func (c kitCatalog) known(name string) bool {
	_, _, ok := c.resolve(name)
	return ok || c.foreign(name)
}

// hasLabel reports whether series name can carry label.
func (c kitCatalog) hasLabel(name, label string) bool {
	if kitTargetLabels[label] || c.foreign(name) {
		return true
	}
	metric, bucket, ok := c.resolve(name)
	return ok && (c.labels[metric][label] || bucket && label == "le")
}

// check lists what is wrong with expr: metrics asyncgw does not export,
// label matchers on labels the metric does not have, and aggregations by
// labels that none of the aggregated metrics has.
func (c kitCatalog) check(expr parser.Expr) []string {
	var problems []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			name := opskit.SelectorName(n)
			if name == "" {
				problems = append(problems, fmt.Sprintf("selector %s names no metric", n))
				return nil
			}
			if !c.known(name) {
				problems = append(problems, fmt.Sprintf("metric %s is not exported by NewMetrics", name))
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel && !c.hasLabel(name, m.Name) {
					problems = append(problems, fmt.Sprintf("%s has no label %q", name, m.Name))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			var names []string
			parser.Inspect(n.Expr, func(inner parser.Node, _ []parser.Node) error {
				if vs, ok := inner.(*parser.VectorSelector); ok {
					names = append(names, opskit.SelectorName(vs))
				}
				return nil
			})
			if slices.ContainsFunc(names, func(name string) bool { return !c.known(name) }) {
				return nil // reported at the selector
			}
			for _, label := range n.Grouping {
				if !slices.ContainsFunc(names, func(name string) bool { return c.hasLabel(name, label) }) {
					problems = append(problems, fmt.Sprintf("%s by (%s): none of %v has label %q", n.Op, label, names, label))
				}
			}
		}
		return nil
	})
	return problems
}

// kitAnchors returns the anchors of the headings of a Markdown file, made
// the way GitHub makes them.
func kitAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	count := map[string]int{}
	fenced := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if fenced || level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		a := kitSlug(strings.TrimSpace(line[level:]))
		if n := count[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		count[a]++
	}
	return anchors
}

// kitSlug is GitHub's heading anchor: lower case, spaces to hyphens, and
// punctuation other than hyphens and underscores dropped.
func kitSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func TestKitSlug(t *testing.T) {
	t.Parallel()
	for heading, want := range map[string]string{
		"AsyncgwDLQGrowing":           "asyncgwdlqgrowing",
		"Redis durability":            "redis-durability",
		"Health: `/healthz` and more": "health-healthz-and-more",
		"Upgrades and shutdown":       "upgrades-and-shutdown",
	} {
		if got := kitSlug(heading); got != want {
			t.Errorf("kitSlug(%q) = %q, want %q", heading, got, want)
		}
	}
}
