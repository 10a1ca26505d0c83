package promqlnames

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		expr string
		want []string
	}{
		{name: "bare name", expr: "up", want: []string{"up"}},
		{name: "selector", expr: `samplecrd_backend_ready{job="samplecrd-controller-metrics", backend!~"x|y"} == 0`,
			want: []string{"samplecrd_backend_ready"}},
		{name: "histogram quantile with by before",
			expr: `histogram_quantile(0.99, sum by (le, controller) (rate(samplecrd_reconcile_duration_seconds_bucket[5m])))`,
			want: []string{"samplecrd_reconcile_duration_seconds_bucket"}},
		{name: "by after, two metrics, division",
			expr: `sum(rate(samplecrd_reconcile_errors_total[5m])) by (controller) / sum(rate(samplecrd_reconcile_total[5m])) by (controller) > 0.05`,
			want: []string{"samplecrd_reconcile_errors_total", "samplecrd_reconcile_total"}},
		{name: "vector matching",
			expr: "workqueue_depth * on (namespace, pod) group_left () (samplecrd_leader == 1) > 100",
			want: []string{"samplecrd_leader", "workqueue_depth"}},
		{name: "group_left with labels and ignoring",
			expr: "a / ignoring(code) group_left(instance) b", want: []string{"a", "b"}},
		{name: "without and keywords",
			expr: "sum without (instance) (x) and on() y or z unless w > bool 0", want: []string{"w", "x", "y", "z"}},
		{name: "offset, @ and a subquery",
			expr: "max_over_time(rate(x_total[5m])[1h:1m] offset 1h30m @ start())", want: []string{"x_total"}},
		{name: "absent and vector", expr: `absent(up{job="a"} == 1) or (sum(samplecrd_leader) or vector(0)) < 1`,
			want: []string{"samplecrd_leader", "up"}},
		{name: "strings are not names", expr: `label_replace(rate(a[1m]), "dst", "$1", "src", "(.*)")`, want: []string{"a"}},
		{name: "__name__ matcher", expr: `{__name__="go_goroutines", job="x"}`, want: []string{"go_goroutines"}},
		{name: "__name__ regex names nothing", expr: `count({__name__=~"go_.*"})`, want: []string{}},
		{name: "Grafana variables", expr: `sum(rate(samplecrd_rest_client_requests_total{namespace="$namespace", pod=~"${pod:regex}"}[$__rate_interval])) by (code) / $scale [[x]]`,
			want: []string{"samplecrd_rest_client_requests_total"}},
		{name: "numbers, Inf and NaN", expr: "x > 1e3 or y < -Inf or z != NaN or w == 0x1F", want: []string{"w", "x", "y", "z"}},
		{name: "recording rule name", expr: "job:samplecrd_reconcile_total:rate5m", want: []string{"job:samplecrd_reconcile_total:rate5m"}},
		{name: "comment", expr: "x # not y\n + z", want: []string{"x", "z"}},
		{name: "duplicates once", expr: "a + a", want: []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MetricNames(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("MetricNames(%q) (-want +got):\n%s", tc.expr, diff)
			}
		})
	}
}

func TestMetricNamesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, expr, want string
	}{
		{name: "unterminated string", expr: `x{a="b}`, want: "unterminated"},
		{name: "unterminated brace", expr: `x{a="b"`, want: "unterminated {"},
		{name: "unterminated bracket", expr: `rate(x[5m)`, want: "unterminated ["},
		{name: "matcher without value", expr: `x{a}`, want: "without an operator"},
		{name: "foreign character", expr: `x ; y`, want: "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := MetricNames(tc.expr); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("MetricNames(%q) = %v, %v; want an error saying %q", tc.expr, got, err, tc.want)
			}
		})
	}
}
