package manager

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/samplecrd/samplecrd-controller/internal/scrape"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// timeout bounds every wait that has no tighter bound of its own.
const timeout = 60 * time.Second

// startManager starts the manager binary with the test's kubeconfig, JSON logs, servers on free
// loopback ports, metrics over plain HTTP (the tests that read them poll them often;
// metricsauth_test.go tests the default, authenticated HTTPS), and args.
func startManager(t *testing.T, name string, args ...string) *framework.Process {
	t.Helper()
	base := []string{
		"--kubeconfig=" + env.Kubeconfig(t),
		"--logging-format=json",
		"--metrics-bind-address=127.0.0.1:0",
		"--metrics-secure=false",
		"--health-probe-bind-address=127.0.0.1:0",
	}
	return framework.StartProcess(t, name, managerBin, append(base, args...)...)
}

// get fetches an http URL and returns the status code and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metricValue returns the sum of the series of name whose labels include every label of match,
// or -1 when there is no such series.
func metricValue(t *testing.T, metricsAddr, name string, match map[string]string) float64 {
	t.Helper()
	samples, err := scrape.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", metricsAddr, err)
	}
	if len(samples.Matching(name, match)) == 0 {
		return -1
	}
	return samples.Sum(name, match)
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func createNode(t *testing.T, client kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	_, err := client.CoreV1().Nodes().Create(context.Background(), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// createPods creates count pods in ns. With no scheduler and no kubelet they stay Pending, which is
// all a count needs.
func createPods(t *testing.T, client kubernetes.Interface, ns, prefix string, count int) {
	t.Helper()
	for i := range count {
		_, err := client.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a pod: %v", err)
		}
	}
}

// podTotal is the number of pods in the cluster, which podcount must put on the label.
func podTotal(t *testing.T, client kubernetes.Interface) int {
	t.Helper()
	pods, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

func nodeLabel(t *testing.T, client kubernetes.Interface, node, key string) (string, string) {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Labels[key], n.ResourceVersion
}
