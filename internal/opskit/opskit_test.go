package opskit

import (
	"slices"
	"testing"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`up{job="asyncgw"} == 0`, []string{"up"}},
		{`sum(rate(b_total[5m])) / sum(rate(a_total[5m])) > 0.1 and sum(rate(b_total[5m])) > 1`, []string{"a_total", "b_total"}},
		{`{__name__="c_seconds_bucket", le="1"}`, []string{"c_seconds_bucket"}},
		{`{__name__=~"d.*"}`, nil},
		{`vector(1)`, nil},
	} {
		got, err := Metrics(tt.expr)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Metrics(%q) = %q, %v; want %q", tt.expr, got, err, tt.want)
		}
	}
	if _, err := Metrics(`sum(`); err == nil {
		t.Error("Metrics of a broken expression: no error")
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]string{
		`rate(x{instance=~"$instance"}[$__rate_interval])`: `rate(x{instance=~"x"}[5m])`,
		`rate(x{queue=~"${queue}"}[${__rate_interval}])`:   `rate(x{queue=~"x"}[5m])`,
		`increase(x{q=~"[[queue]]"}[$__range])`:            `increase(x{q=~"x"}[1h])`,
		`sum by (le) (rate(x_bucket[$__interval]))`:        `sum by (le) (rate(x_bucket[1m]))`,
	} {
		if got := Expand(q); got != want {
			t.Errorf("Expand(%q) = %q, want %q", q, got, want)
		}
	}
}
