// Package opskit reads the operations kit shipped in configs/ (the
// Prometheus alerting rules and the Grafana dashboard) for the tests that
// hold it to what asyncgw exports: every metric it reads must exist, from
// the first scrape, and no alert may fire for a healthy deployment.
package opskit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Paths of the kit from the repository's root.
const (
	AlertsFile    = "configs/prometheus/alerts.yml"
	ScrapeFile    = "configs/prometheus/prometheus.yml"
	DashboardFile = "configs/grafana/asyncgw-dashboard.json"
)

// Query is one PromQL expression of the kit.
type Query struct {
	// Where names it: "alert X", "panel "Y" target A" or "variable Z".
	Where string
	// Expr is the expression, with Grafana's variables replaced so that
	// it parses.
	Expr string
}

// Rules reads the alerting and recording rules of an alerts file.
func Rules(path string) ([]rulefmt.Rule, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errs[0])
	}
	var out []rulefmt.Rule
	for _, g := range groups.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// AlertQueries returns the expression of every rule in the alerts file.
func AlertQueries(path string) ([]Query, error) {
	rules, err := Rules(path)
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, r := range rules {
		where := "alert " + r.Alert
		if r.Alert == "" {
			where = "record " + r.Record
		}
		out = append(out, Query{Where: where, Expr: r.Expr})
	}
	return out, nil
}

// Dashboard is a Grafana dashboard, as far as the kit's tests read it.
type Dashboard map[string]any

// ReadDashboard reads a dashboard's JSON model.
func ReadDashboard(path string) (Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Panels calls f with every query target of every panel, rows' panels
// included.
func (d Dashboard) Panels(f func(title string, target map[string]any)) { panels(d["panels"], f) }

func panels(v any, f func(title string, target map[string]any)) {
	list, _ := v.([]any)
	for _, p := range list {
		p, _ := p.(map[string]any)
		title, _ := p["title"].(string)
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			if tg, ok := tg.(map[string]any); ok {
				f(title, tg)
			}
		}
		panels(p["panels"], f)
	}
}

// Queries returns the expression of every panel target and the selector
// of every label_values(selector, label) variable, expanded.
func (d Dashboard) Queries() []Query {
	var out []Query
	d.Panels(func(title string, target map[string]any) {
		expr, _ := target["expr"].(string)
		out = append(out, Query{Where: fmt.Sprintf("panel %q target %v", title, target["refId"]), Expr: Expand(expr)})
	})
	templating, _ := d["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	for _, v := range vars {
		v, _ := v.(map[string]any)
		q, _ := v["query"].(string)
		if m, ok := v["query"].(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		sel, ok := strings.CutPrefix(q, "label_values(")
		if i := strings.LastIndexByte(sel, ','); ok && i > 0 {
			out = append(out, Query{Where: fmt.Sprintf("variable %v", v["name"]), Expr: Expand(sel[:i])})
		}
	}
	return out
}

var (
	// builtins are Grafana's interval variables, replaced by durations.
	builtins = strings.NewReplacer(
		"${__rate_interval}", "5m", "$__rate_interval", "5m",
		"${__interval}", "1m", "$__interval", "1m",
		"${__range}", "1h", "$__range", "1h",
	)
	// variable is any other template variable; it only appears inside
	// label values here.
	variable = regexp.MustCompile(`\$\{\w+(:\w+)?\}|\$\w+|\[\[\w+\]\]`)
)

// Expand makes a Grafana query parseable PromQL.
func Expand(q string) string {
	return variable.ReplaceAllString(builtins.Replace(q), "x")
}

// Metrics returns the sorted metric names that expr selects.
func Metrics(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			if name := SelectorName(vs); name != "" {
				out = append(out, name)
			}
		}
		return nil
	})
	slices.Sort(out)
	return slices.Compact(out), nil
}

// SelectorName is the metric name a selector matches exactly, or "".
func SelectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}
