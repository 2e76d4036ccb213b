package main

// A small Prometheus for the tests: scrapes of real asyncgw processes laid
// out on a timeline as Prometheus would store them, and the shipped
// alerting rules evaluated over it with Prometheus' own PromQL engine.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// scrapeInterval is the timeline's step, as in configs/prometheus.
const scrapeInterval = 15 * time.Second

// target is one scraped process: its scrape, and the labels Prometheus
// adds to it (configs/prometheus/prometheus.yml).
type target struct {
	instance, role string
	samples        map[string]float64 // as scrape returns them
}

// timeline holds the series of the scrapes laid out so far.
type timeline struct {
	end    time.Duration // of what is laid out, from time 0
	series map[string]*memSeries
}

type memSeries struct {
	lset    labels.Labels
	samples []chunks.Sample
}

func newTimeline() *timeline { return &timeline{series: map[string]*memSeries{}} }

// hold lays the targets' scrapes out for d: every scrape interval,
// Prometheus reads the same values (and up = 1) from each target.
func (tl *timeline) hold(t *testing.T, d time.Duration, targets ...target) {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	type parsed struct {
		lset labels.Labels
		v    float64
	}
	var all []parsed
	for _, tg := range targets {
		extra := []string{"job", "asyncgw", "instance", tg.instance, "role", tg.role}
		all = append(all, parsed{labels.FromStrings(append([]string{"__name__", "up"}, extra...)...), 1})
		for key, v := range tg.samples {
			ls, err := p.ParseMetric(key)
			if err != nil {
				t.Fatalf("sample %s: %v", key, err)
			}
			b := labels.NewBuilder(ls)
			for i := 0; i < len(extra); i += 2 {
				b.Set(extra[i], extra[i+1])
			}
			all = append(all, parsed{b.Labels(), v})
		}
	}
	start := tl.end
	for at := start; at < start+d; at += scrapeInterval {
		for _, s := range all {
			key := s.lset.String()
			ms := tl.series[key]
			if ms == nil {
				ms = &memSeries{lset: s.lset}
				tl.series[key] = ms
			}
			ms.samples = append(ms.samples, floatSample{t: at.Milliseconds(), f: s.v})
		}
	}
	tl.end = start + d
}

// firing is an alert that fired, with the labels of its series.
type firing struct {
	alert  string
	labels labels.Labels
	at     time.Duration // when it first fired
	value  float64
}

func (f firing) String() string {
	return fmt.Sprintf("%s%s = %g from %v", f.alert, f.labels, f.value, f.at)
}

// fired evaluates every alerting rule at every scrape interval of the
// timeline, as Prometheus' rule manager would, and returns the alerts that
// fired: whose expression returned the same series at every evaluation for
// the rule's whole "for" duration.
func (tl *timeline) fired(t *testing.T, rules []rulefmt.Rule) []firing {
	t.Helper()
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute,
		Parser: parser.NewParser(parser.Options{}),
	})
	start, end := time.UnixMilli(0), time.UnixMilli((tl.end - scrapeInterval).Milliseconds())
	var out []firing
	for _, r := range rules {
		if r.Alert == "" {
			continue
		}
		q, err := engine.NewRangeQuery(t.Context(), tl, nil, r.Expr, start, end, scrapeInterval)
		if err != nil {
			t.Fatalf("alert %s: %v", r.Alert, err)
		}
		res := q.Exec(t.Context())
		if res.Err != nil {
			t.Fatalf("alert %s: %v", r.Alert, res.Err)
		}
		m, err := res.Matrix()
		if err != nil {
			t.Fatalf("alert %s: %v", r.Alert, err)
		}
		hold := time.Duration(r.For)
		for _, s := range m {
			// Runs of consecutive evaluations that returned the series.
			var since int64 = -1
			for i, pt := range s.Floats {
				if i == 0 || pt.T-s.Floats[i-1].T != scrapeInterval.Milliseconds() {
					since = pt.T
				}
				if time.Duration(pt.T-since)*time.Millisecond >= hold {
					out = append(out, firing{alert: r.Alert, labels: s.Metric, at: time.Duration(pt.T) * time.Millisecond, value: pt.F})
					break
				}
			}
		}
		q.Close()
	}
	return out
}

// Querier makes the timeline a storage.Queryable.
func (tl *timeline) Querier(mint, maxt int64) (storage.Querier, error) {
	return timelineQuerier{tl, mint, maxt}, nil
}

type timelineQuerier struct {
	tl         *timeline
	mint, maxt int64
}

func (q timelineQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range q.tl.series {
		if !matches(s.lset, ms) {
			continue
		}
		var in []chunks.Sample
		for _, x := range s.samples {
			if x.T() >= q.mint && x.T() <= q.maxt {
				in = append(in, x)
			}
		}
		if len(in) > 0 {
			out = append(out, storage.NewListSeries(s.lset, in))
		}
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &sliceSeriesSet{series: out, i: -1}
}

func matches(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (q timelineQuerier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var out []string
	for _, s := range q.tl.series {
		if v := s.lset.Get(name); v != "" && matches(s.lset, ms) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (q timelineQuerier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var out []string
	for _, s := range q.tl.series {
		if matches(s.lset, ms) {
			s.lset.Range(func(l labels.Label) { out = append(out, l.Name) })
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (timelineQuerier) Close() error { return nil }

type sliceSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSeriesSet) Next() bool                      { s.i++; return s.i < len(s.series) }
func (s *sliceSeriesSet) At() storage.Series              { return s.series[s.i] }
func (*sliceSeriesSet) Err() error                        { return nil }
func (*sliceSeriesSet) Warnings() annotations.Annotations { return nil }

// floatSample is a chunks.Sample of a float value.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                    { return s.t }
func (floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                  { return s.f }
func (floatSample) H() *histogram.Histogram       { return nil }
func (floatSample) FH() *histogram.FloatHistogram { return nil }
func (floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample         { return s }

// alertNames lists the names of fs, sorted and without repeats.
func alertNames(fs []firing) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.alert)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// describe lists fs one per line.
func describe(fs []firing) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("\n  " + f.String())
	}
	return b.String()
}
