package scrape

import (
	"strings"
	"testing"
)

const exposition = `# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",resource="networks",verb="POST"} 10
apiserver_request_total{code="200",resource="networks",subresource="status",verb="PATCH"} 7
apiserver_request_total{code="200",resource="networks",verb="LIST"} 3
# HELP samplecrd_reconcile_duration_seconds Time per sync.
# TYPE samplecrd_reconcile_duration_seconds histogram
samplecrd_reconcile_duration_seconds_bucket{controller="network-controller",le="0.1"} 4
samplecrd_reconcile_duration_seconds_bucket{controller="network-controller",le="+Inf"} 5
samplecrd_reconcile_duration_seconds_sum{controller="network-controller"} 0.75
samplecrd_reconcile_duration_seconds_count{controller="network-controller"} 5
# HELP samplecrd_leader 1 while leading.
# TYPE samplecrd_leader gauge
samplecrd_leader 1
`

func TestParseMetricsAndSum(t *testing.T) {
	set, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{name: "apiserver_request_total", want: 20},
		{name: "apiserver_request_total", match: map[string]string{"resource": "networks", "verb": "POST"}, want: 10},
		{name: "apiserver_request_total", match: map[string]string{"subresource": "status"}, want: 7},
		{name: "apiserver_request_total", match: map[string]string{"verb": "DELETE"}, want: 0},
		{name: "samplecrd_reconcile_duration_seconds_sum", want: 0.75},
		{name: "samplecrd_reconcile_duration_seconds_count", match: map[string]string{"controller": "network-controller"}, want: 5},
		{name: "samplecrd_leader", want: 1},
	}
	for _, tc := range tests {
		if got := set.Sum(tc.name, tc.match); got != tc.want {
			t.Errorf("sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
	if got := len(set.Matching("apiserver_request_total", map[string]string{"resource": "networks"})); got != 3 {
		t.Errorf("%d samples match, want 3", got)
	}
	if _, err := Parse(strings.NewReader("not a metric line {\n")); err == nil {
		t.Error("a malformed exposition parsed without error")
	}
}
