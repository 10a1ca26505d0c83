// Package scrape reads a Prometheus /metrics page into samples that tests and the benchmark can
// add up, using Prometheus' own text parser.
package scrape

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one value of a metric family with its labels.
type Sample struct {
	// Name is the metric name; histograms and summaries give <name>_sum and <name>_count.
	Name string
	// Labels are the sample's labels.
	Labels map[string]string
	// Value is the sample's value.
	Value float64
}

// Samples is a scrape: every sample, by metric name.
type Samples []Sample

// Parse reads the Prometheus text exposition format. It keeps the values of counters, gauges and
// untyped metrics, and the sums and counts of histograms and summaries (their buckets and
// quantiles are left out).
func Parse(r io.Reader) (Samples, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	var out Samples
	for _, name := range slices.Sorted(maps.Keys(families)) {
		for _, m := range families[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(name string, v float64) { out = append(out, Sample{Name: name, Labels: labels, Value: v}) }
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

// Get scrapes url.
func Get(url string) (Samples, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Matching returns the samples of name whose labels include every label of match.
func (s Samples) Matching(name string, match map[string]string) Samples {
	var out Samples
	for _, x := range s {
		if x.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if x.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, x)
		}
	}
	return out
}

// Sum adds up the samples of name whose labels include every label of match.
func (s Samples) Sum(name string, match map[string]string) float64 {
	var total float64
	for _, x := range s.Matching(name, match) {
		total += x.Value
	}
	return total
}
