package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/samplecrd/samplecrd-controller/internal/scrape"
)

// metricSet is a scrape of a /metrics page.
type metricSet = scrape.Samples

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
	set, err := scrape.Parse(strings.NewReader(string(raw)))
	if err != nil {
		return nil, err
	}
	out := requestCounts{}
	for _, s := range set {
		if s.Name != "apiserver_request_total" {
			continue
		}
		res := s.Labels["resource"]
		if sub := s.Labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[request{verb: s.Labels["verb"], resource: res}] += s.Value
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
