package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/samplecrd/samplecrd-controller/internal/manifests"
	"github.com/samplecrd/samplecrd-controller/internal/promqlnames"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// prometheusSeries are series that Prometheus itself writes for every target.
var prometheusSeries = []string{"up"}

// TestDashboardAndAlertsReadExposedMetrics starts the manager with every controller against the
// control plane and ovsdb-server, waits until it has reconciled a Network, scrapes it, and fails
// for every metric name that the alert rules or the dashboard read and the manager does not expose.
func TestDashboardAndAlertsReadExposedMetrics(t *testing.T) {
	objs := render(t, "", manifests.Monitoring...)
	var rule monitoringv1.PrometheusRule
	toTyped(t, find(t, objs, monitoringv1.PrometheusRuleKind, "samplecrd-controller"), &rule)
	exprs := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr.String()
		}
	}
	raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "config", "grafana", dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	dashboard, err := dashboardQueries(raw)
	if err != nil {
		t.Fatal(err)
	}
	for where, expr := range dashboard {
		exprs[where] = expr
	}

	ns := framework.CreateNamespace(t, env.KubeClient(t))
	db := framework.StartOVSDB(t)
	m := framework.StartProcess(t, "manager", managerBin,
		"--kubeconfig="+env.Kubeconfig(t), "--logging-format=json",
		// Plain HTTP, polled below; what a scraper needs over HTTPS is test/integration/manager's.
		"--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
		"--leader-elect-resource-namespace="+ns, "--leader-elect-resource-name=manifests",
		"--ovn-nb="+db.Endpoint(), "--cluster-name=manifests", "--podwatch-namespace="+ns)
	metricsURL := "http://" + m.ServingAddress(t, "metrics", time.Minute) + "/metrics"
	client := clientset.NewForConfigOrDie(env.Config(t))
	if _, err := client.SamplecrdV1().Networks(ns).Create(context.Background(), &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.80.0.0/16", Gateway: "10.80.0.1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Once the Network is reconciled, every controller has started and its series exist.
	var families map[string]*dto.MetricFamily
	var scrapeErr error
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		families, scrapeErr = scrape(metricsURL)
		if scrapeErr != nil {
			return false, nil
		}
		// The permission check's gauges exist once its first pass, at start-up, is done.
		if _, checked := families["samplecrd_missing_permissions"]; !checked {
			return false, nil
		}
		for _, m := range families["samplecrd_reconcile_total"].GetMetric() {
			if labelsOf(m)["controller"] == "network-controller" && labelsOf(m)["result"] == "success" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for a reconciled Network on %s: %v (last scrape error: %v)", metricsURL, err, scrapeErr)
	}

	read := 0
	for _, where := range slices.Sorted(maps.Keys(exprs)) {
		names, err := promqlnames.MetricNames(exprs[where])
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s reads no metric: %s", where, exprs[where])
		}
		read += len(names)
		for _, problem := range unexposed(families, names) {
			t.Errorf("%s: %s", where, problem)
		}
	}
	// What the checks above rest on.
	if read < 20 {
		t.Errorf("the alerts and the dashboard read %d metric names in all, want the many they have", read)
	}
	if got := unexposed(families, []string{"samplecrd_reconcile_totl"}); len(got) != 1 {
		t.Errorf("a misspelt metric name is not reported: %v", got)
	}
}

// scrape reads the manager's /metrics: the one place the test scrapes, so that a bearer token or
// a TLS client configuration is added here.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// unexposed returns a problem for each name that no family of families gives: a counter, gauge or
// untyped family by its name, a histogram by its _bucket, _sum and _count series, a summary by its
// name (quantiles), _sum and _count. Prometheus' own series pass.
func unexposed(families map[string]*dto.MetricFamily, names []string) []string {
	var problems []string
	for _, name := range names {
		if slices.Contains(prometheusSeries, name) {
			continue
		}
		if f, ok := families[name]; ok {
			if f.GetType() == dto.MetricType_HISTOGRAM {
				problems = append(problems, fmt.Sprintf("%s is a histogram: read %s_bucket, _sum or _count", name, name))
			}
			continue
		}
		found := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			f := families[base]
			if !ok || f == nil {
				continue
			}
			if f.GetType() == dto.MetricType_HISTOGRAM || (f.GetType() == dto.MetricType_SUMMARY && suffix != "_bucket") {
				found = true
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("the manager does not expose %s", name))
		}
	}
	return problems
}

// dashboardQueries returns the PromQL of a Grafana dashboard, by where it is: every panel target's
// expr, in rows too, and the template variables' queries, with Grafana's label_values(METRIC,
// LABEL) and query_result(EXPR) unwrapped to their PromQL.
func dashboardQueries(raw []byte) (map[string]string, error) {
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", dashboardFile, err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			for _, tg := range p.Targets {
				out[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				return nil, fmt.Errorf("variable %s: query %s: %w", v.Name, v.Query, err)
			}
			q = obj.Query
		}
		out["variable "+v.Name] = grafanaQuery(q)
	}
	return out, nil
}

// grafanaQuery unwraps Grafana's Prometheus template functions to their PromQL: the metric (or
// selector) of label_values(METRIC, LABEL), the expression of query_result(EXPR).
func grafanaQuery(q string) string {
	q = strings.TrimSpace(q)
	if inner, ok := strings.CutPrefix(q, "label_values("); ok {
		inner = strings.TrimSuffix(inner, ")")
		if i := strings.LastIndexByte(inner, ','); i >= 0 {
			return inner[:i]
		}
		// label_values(LABEL) reads no metric.
		return ""
	}
	if inner, ok := strings.CutPrefix(q, "query_result("); ok {
		return strings.TrimSuffix(inner, ")")
	}
	return q
}
