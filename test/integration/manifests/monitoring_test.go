package manifests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/samplecrd/samplecrd-controller/internal/manifests"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const (
	// metricsService is the Service the ServiceMonitor scrapes, in config/manager.
	metricsService = "samplecrd-controller-metrics"
	// dashboardFile is the Grafana dashboard, in config/grafana and in its ConfigMap.
	dashboardFile = "samplecrd-controller.json"
)

// TestMonitoringObjects installs the Prometheus Operator's CRDs, generated from the pinned
// github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring module, and applies
// config/prometheus and config/grafana as make manifests renders them with server-side dry-run.
// The ServiceMonitor must select the metrics Service of config/default and scrape it over HTTPS
// with Prometheus' own ServiceAccount token.
func TestMonitoringObjects(t *testing.T) {
	installPrometheusOperatorCRDs(t)
	install := render(t, testImage, manifests.Install...)
	objs := render(t, "", manifests.Monitoring...)
	a := newApplier(t)
	applyNamespaces(t, a, install)
	dryRunAll(t, a, objs)

	var monitor monitoringv1.ServiceMonitor
	toTyped(t, find(t, objs, monitoringv1.ServiceMonitorsKind, "samplecrd-controller"), &monitor)
	var rule monitoringv1.PrometheusRule
	toTyped(t, find(t, objs, monitoringv1.PrometheusRuleKind, "samplecrd-controller"), &rule)
	var svc corev1.Service
	toTyped(t, find(t, install, "Service", metricsService), &svc)

	sel, err := metav1.LabelSelectorAsSelector(&monitor.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	namespaceOK := monitor.Namespace == svc.Namespace && !monitor.Spec.NamespaceSelector.Any && len(monitor.Spec.NamespaceSelector.MatchNames) == 0
	if !namespaceOK || sel.Empty() || !sel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("the ServiceMonitor %s/%s (selector %q) does not select the Service %s/%s (labels %q) alone",
			monitor.Namespace, monitor.Name, sel, svc.Namespace, svc.Name, svc.Labels)
	}
	if len(monitor.Spec.Endpoints) != 1 {
		t.Fatalf("the ServiceMonitor has %d endpoints, want 1", len(monitor.Spec.Endpoints))
	}
	ep := monitor.Spec.Endpoints[0]
	servicePorts := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		servicePorts[p.Name] = true
	}
	if !servicePorts[ep.Port] {
		t.Errorf("the ServiceMonitor scrapes the port %q, which the Service %s does not have (it has %v)", ep.Port, svc.Name, svc.Spec.Ports)
	}
	if ep.Scheme == nil || *ep.Scheme != "https" || ep.Path != "/metrics" {
		t.Errorf("the ServiceMonitor scrapes %v://...%s, want https and /metrics", ep.Scheme, ep.Path)
	}
	//lint:ignore SA1019 bearerTokenFile is how Prometheus sends its own ServiceAccount's token (docs/monitoring.md).
	if ep.BearerTokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" && ep.Authorization == nil {
		t.Errorf("the ServiceMonitor sends no bearer token: the manager answers /metrics only to authorized callers")
	}
	if ep.TLSConfig == nil || ep.TLSConfig.InsecureSkipVerify == nil || !*ep.TLSConfig.InsecureSkipVerify {
		t.Errorf("the ServiceMonitor verifies the manager's self-signed certificate: %+v", ep.TLSConfig)
	}

	if len(rule.Spec.Groups) == 0 || len(rule.Spec.Groups[0].Rules) == 0 {
		t.Fatal("the PrometheusRule has no rule")
	}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("the rule %q lacks a name, a severity, a summary or a description", r.Alert)
			}
		}
	}

	var dashboard corev1.ConfigMap
	toTyped(t, find(t, objs, "ConfigMap", "samplecrd-controller-dashboard"), &dashboard)
	file, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "config", "grafana", dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	if dashboard.Data[dashboardFile] != string(file) || dashboard.Labels["grafana_dashboard"] != "1" {
		t.Errorf("the dashboard ConfigMap does not hold %s with the label grafana_dashboard=1", dashboardFile)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []any  `json:"panels"`
	}
	if err := json.Unmarshal(file, &d); err != nil || d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Errorf("%s is not a dashboard with a uid, a title and panels: %v", dashboardFile, err)
	}
}

// installPrometheusOperatorCRDs generates the monitoring.coreos.com CRDs with controller-gen from
// the Go types of the pinned module and installs those of ServiceMonitor and PrometheusRule.
func installPrometheusOperatorCRDs(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	pkg := reflect.TypeFor[monitoringv1.ServiceMonitor]().PkgPath()
	// maxDescLen=0: the descriptions make the CRDs several times larger and validate nothing.
	cmd := exec.Command("go", "tool", "controller-gen", "crd:maxDescLen=0", "paths="+pkg, "output:crd:dir="+dir)
	cmd.Dir = framework.RepoRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("generating the CRDs of %s: %v\n%s", pkg, err, out.String())
	}
	paths := []string{
		filepath.Join(dir, "monitoring.coreos.com_servicemonitors.yaml"),
		filepath.Join(dir, "monitoring.coreos.com_prometheusrules.yaml"),
	}
	if _, err := envtest.InstallCRDs(env.Config(t), envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
}
