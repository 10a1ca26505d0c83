package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// series is one sample of the Prometheus text format.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is a scrape: every sample, in order.
type metricSet []series

// parseMetrics reads the Prometheus text exposition format with Prometheus' own parser. It keeps
// the samples of counters, gauges and untyped metrics, and the sums and counts of histograms and
// summaries (as <name>_sum and <name>_count), which is all the bench reads.
func parseMetrics(r io.Reader) (metricSet, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	var out metricSet
	for _, name := range slices.Sorted(maps.Keys(families)) {
		for _, m := range families[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(name string, v float64) { out = append(out, series{name: name, labels: labels, value: v}) }
			switch {
			case m.Counter != nil:
				add(name, m.GetCounter().GetValue())
			case m.Gauge != nil:
				add(name, m.GetGauge().GetValue())
			case m.Untyped != nil:
				add(name, m.GetUntyped().GetValue())
			case m.Histogram != nil:
				add(name+"_sum", m.GetHistogram().GetSampleSum())
				add(name+"_count", float64(m.GetHistogram().GetSampleCount()))
			case m.Summary != nil:
				add(name+"_sum", m.GetSummary().GetSampleSum())
				add(name+"_count", float64(m.GetSummary().GetSampleCount()))
			}
		}
	}
	return out, nil
}

// sum adds up the samples of name whose labels include every label of match.
func (m metricSet) sum(name string, match map[string]string) float64 {
	var total float64
	for _, s := range m {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// request is a kind of API request: verb and resource (with its subresource, as
// "networks/status").
type request struct {
	verb, resource string
}

func (r request) String() string { return r.verb + " " + r.resource }

// requestCounts counts API requests by kind.
type requestCounts map[request]float64

// readVerbs are the verbs that write nothing.
var readVerbs = map[string]bool{"GET": true, "LIST": true, "WATCH": true, "CONNECT": true}

// apiserverRequests reads the API server's apiserver_request_total, by verb and resource.
func apiserverRequests(ctx context.Context, client kubernetes.Interface) (requestCounts, error) {
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	set, err := parseMetrics(strings.NewReader(string(raw)))
	if err != nil {
		return nil, err
	}
	out := requestCounts{}
	for _, s := range set {
		if s.name != "apiserver_request_total" {
			continue
		}
		res := s.labels["resource"]
		if sub := s.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[request{verb: s.labels["verb"], resource: res}] += s.value
	}
	return out, nil
}

// since returns the counts that grew since before.
func (c requestCounts) since(before requestCounts) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// writes keeps the requests that write, leaving out Leases: leader election and the API server's
// own identity renew them on a timer, whatever the controllers do.
func (c requestCounts) writes() requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if !readVerbs[k.verb] && k.resource != "leases" {
			out[k] = v
		}
	}
	return out
}

// of returns the counts of the given resources only.
func (c requestCounts) of(resources ...string) requestCounts {
	out := requestCounts{}
	for k, v := range c {
		if slices.Contains(resources, k.resource) {
			out[k] = v
		}
	}
	return out
}

func (c requestCounts) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

// String lists the counts, largest first, as "PATCH networks/status 2000, ...".
func (c requestCounts) String() string {
	keys := slices.Collect(maps.Keys(c))
	slices.SortFunc(keys, func(a, b request) int {
		if c[a] != c[b] {
			if c[a] > c[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a.String(), b.String())
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, formatCount(c[k])))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func formatCount(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
