// Package scrape reads a Prometheus /metrics page into samples that tests and the benchmark can
// add up, using Prometheus' own text parser.
package scrape

import (
	"crypto/tls"
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

// Get scrapes url, a metrics server that serves plain HTTP to anyone.
func Get(url string) (Samples, error) {
	return (&Client{HTTP: http.DefaultClient}).Get(url)
}

// Client reads a metrics server, with a bearer token when it asks for one.
type Client struct {
	// HTTP sends the requests.
	HTTP *http.Client
	// Token is sent as a bearer token when it is not empty.
	Token string
}

// NewClient returns a Client that sends token over HTTPS to a server whose certificate it does
// not verify: the manager's default certificate is self-signed, generated at start-up, so there
// is nothing to verify it against. Only for servers on this machine.
func NewClient(token string) *Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return &Client{HTTP: &http.Client{Transport: transport}, Token: token}
}

// Do sends a GET of url and returns the response, whatever its status.
func (c *Client) Do(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.HTTP.Do(req)
}

// Get scrapes url.
func (c *Client) Get(url string) (Samples, error) {
	resp, err := c.Do(url)
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
