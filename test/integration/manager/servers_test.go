package manager

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestMetricsAndProbes checks /readyz (ready once caches sync and the backend is connected, not
// ready while the backend is down) and that /metrics carries the workqueue, reconcile, REST client,
// backend, leader, Go and process series. A backend outage shows on /readyz, on
// samplecrd_backend_ready and as one event on the leader election Lease, and so does its end.
func TestMetricsAndProbes(t *testing.T) {
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, env.KubeClient(t))
	db := framework.StartOVSDB(t)
	m := startManager(t, "manager", "--controllers=network", "--ovn-nb="+db.Endpoint(), "--cluster-name=metrics",
		"--leader-elect-resource-namespace="+ns, "--leader-elect-resource-name=metrics")
	probes := m.ServingAddress(t, "health probes", timeout)
	metricsAddr := m.ServingAddress(t, "metrics", timeout)

	waitUntil(t, "/readyz to report ready", timeout, func() bool {
		code, _ := get(t, "http://"+probes+"/readyz")
		return code == 200
	})
	_, body := get(t, "http://"+probes+"/readyz")
	for _, want := range []string{"[+]informers ok", "[+]backend-ovn ok"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz does not say %q:\n%s", want, body)
		}
	}
	if code, _ := get(t, "http://"+probes+"/healthz"); code != 200 {
		t.Errorf("/healthz answered %d", code)
	}

	client := clientset.NewForConfigOrDie(cfg)
	if _, err := client.SamplecrdV1().Networks(ns).Create(context.Background(), &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "metered"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.60.0.0/16", Gateway: "10.60.0.1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a successful network sync in the metrics", timeout, func() bool {
		return metricValue(t, metricsAddr, "samplecrd_reconcile_total", map[string]string{"controller": "network-controller", "result": "success"}) >= 1
	})
	for _, series := range []struct {
		name   string
		labels map[string]string
	}{
		{"workqueue_depth", map[string]string{"name": "network-controller"}},
		{"workqueue_adds_total", map[string]string{"name": "network-controller"}},
		{"workqueue_queue_duration_seconds_count", map[string]string{"name": "network-controller"}},
		{"workqueue_work_duration_seconds_count", map[string]string{"name": "network-controller"}},
		{"workqueue_retries_total", map[string]string{"name": "network-controller"}},
		{"workqueue_unfinished_work_seconds", map[string]string{"name": "network-controller"}},
		{"workqueue_longest_running_processor_seconds", map[string]string{"name": "network-controller"}},
		{"samplecrd_reconcile_duration_seconds_count", map[string]string{"controller": "network-controller"}},
		{"samplecrd_backend_request_duration_seconds_count", map[string]string{"backend": "ovn", "operation": "ensure"}},
		{"samplecrd_rest_client_requests_total", map[string]string{"code": "200"}},
		{"samplecrd_rest_client_request_duration_seconds_count", map[string]string{"verb": "PATCH"}},
		{"samplecrd_leader", nil},
		{"go_goroutines", nil},
		{"process_resident_memory_bytes", nil},
	} {
		if v := metricValue(t, metricsAddr, series.name, series.labels); v < 0 {
			t.Errorf("/metrics has no series %s%v", series.name, series.labels)
		}
	}

	backendReady := func() float64 {
		return metricValue(t, metricsAddr, "samplecrd_backend_ready", map[string]string{"backend": "ovn"})
	}
	if v := backendReady(); v != 1 {
		t.Errorf("samplecrd_backend_ready = %v with the backend connected, want 1", v)
	}

	// The backend goes away: not ready, saying why; it comes back: ready again.
	db.Stop(t)
	waitUntil(t, "/readyz to report the backend down", timeout, func() bool {
		code, body := get(t, "http://"+probes+"/readyz")
		return code == 500 && strings.Contains(body, "[-]backend-ovn failed")
	})
	if v := backendReady(); v != 0 {
		t.Errorf("samplecrd_backend_ready = %v with the backend down, want 0", v)
	}
	waitLeaseEvent(t, ns, "BackendUnavailable")
	db.Start(t)
	waitUntil(t, "/readyz to recover", timeout, func() bool {
		code, _ := get(t, "http://"+probes+"/readyz")
		return code == 200
	})
	if v := backendReady(); v != 1 {
		t.Errorf("samplecrd_backend_ready = %v after the backend returned, want 1", v)
	}
	waitLeaseEvent(t, ns, "BackendAvailable")
	if got := waitLeaseEvent(t, ns, "BackendUnavailable"); got != 1 {
		t.Errorf("%d BackendUnavailable events for one outage, want 1", got)
	}
}

// waitLeaseEvent waits for an event of the reason on the Lease named metrics, and returns how many
// were recorded.
func waitLeaseEvent(t *testing.T, ns, reason string) int {
	t.Helper()
	kube := env.KubeClient(t)
	selector := fields.Set{"involvedObject.kind": "Lease", "involvedObject.name": "metrics", "reason": reason}.AsSelector().String()
	count := 0
	waitUntil(t, "a "+reason+" event on the Lease", timeout, func() bool {
		list, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return false
		}
		count = 0
		for _, e := range list.Items {
			count += int(max(e.Count, 1))
		}
		return count > 0
	})
	return count
}
