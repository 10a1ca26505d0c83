package manager

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/samplecrd/samplecrd-controller/internal/scrape"
	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// The shipped ClusterRoles of the metrics server's readers.
const (
	metricsReaderRole = "samplecrd-controller-metrics-reader"
	pprofReaderRole   = "samplecrd-controller-pprof-reader"
)

// TestMetricsAuthentication runs the manager as its service account under the shipped RBAC, with
// the metrics server's defaults (HTTPS, authentication and authorization by the API server) and
// pprof: only the holder of a token bound to the reader role of a path reads it, and the probe
// port serves the probes, to anyone, and nothing else.
func TestMetricsAuthentication(t *testing.T) {
	admin := env.KubeClient(t)
	ctx := context.Background()
	ns := framework.CreateNamespace(t, admin)
	// The manager runs as its service account under config/rbac, whose metrics_auth_role.yaml and
	// its binding let it create TokenReviews and SubjectAccessReviews; the reader roles are
	// installed with the rest, under names ending in the namespace.
	kubeconfig, _ := installRBAC(t, admin, ns, nil)
	m := framework.StartProcess(t, "manager", managerBin,
		"--kubeconfig="+kubeconfig, "--logging-format=json",
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
		"--controllers=podwatch", "--leader-elect=false", "--podwatch-namespace="+ns, "--enable-pprof")
	metricsAddr := m.ServingAddress(t, "metrics", timeout)
	probes := m.ServingAddress(t, "health probes", timeout)

	token := func(name string, roles ...string) string {
		t.Helper()
		token, err := testenv.ServiceAccountToken(ctx, admin, ns, name, time.Hour, roles...)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	reader := token("metrics-reader", metricsReaderRole+"-"+ns)
	profiler := token("profiler", pprofReaderRole+"-"+ns)
	nobody := token("nobody")

	for _, tc := range []struct {
		name, token, path string
		want              int
	}{
		{name: "no token", path: "/metrics", want: http.StatusUnauthorized},
		{name: "a token without a reader role", token: nobody, path: "/metrics", want: http.StatusForbidden},
		{name: "the metrics reader", token: reader, path: "/metrics", want: http.StatusOK},
		{name: "pprof without a token", path: "/debug/pprof/cmdline", want: http.StatusUnauthorized},
		{name: "pprof to the metrics reader", token: reader, path: "/debug/pprof/cmdline", want: http.StatusForbidden},
		{name: "the pprof index to the metrics reader", token: reader, path: "/debug/pprof/", want: http.StatusForbidden},
		{name: "pprof to a token without a reader role", token: nobody, path: "/debug/pprof/heap", want: http.StatusForbidden},
		{name: "the pprof reader", token: profiler, path: "/debug/pprof/cmdline", want: http.StatusOK},
		{name: "metrics to the pprof reader", token: profiler, path: "/metrics", want: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, header, body := getWithToken(t, "https://"+metricsAddr+tc.path, tc.token)
			if code != tc.want {
				t.Fatalf("GET %s answered %d, want %d: %s", tc.path, code, tc.want, body)
			}
			if code != http.StatusOK {
				if strings.Contains(body, "samplecrd_") || strings.Contains(body, managerBin) {
					t.Errorf("a refused GET %s answered the page:\n%s", tc.path, body)
				}
				return
			}
			switch tc.path {
			case "/metrics":
				if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("/metrics Content-Type %q, want the Prometheus text format", ct)
				}
				samples, err := scrape.Parse(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{"samplecrd_leader", "go_goroutines", "workqueue_adds_total"} {
					if len(samples.Matching(name, nil)) == 0 {
						t.Errorf("/metrics has no %s", name)
					}
				}
			case "/debug/pprof/cmdline":
				if !strings.Contains(body, managerBin) {
					t.Errorf("/debug/pprof/cmdline does not name the manager's binary: %q", body)
				}
			}
		})
	}

	t.Run("an invalid token", func(t *testing.T) {
		// Refused, though with 500 "Authentication failed" rather than 401: controller-runtime's
		// filter takes the API server's rejection of a token for an error (docs/manager.md).
		code, _, body := getWithToken(t, "https://"+metricsAddr+"/metrics", "not-a-token")
		if code == http.StatusOK || strings.Contains(body, "samplecrd_") {
			t.Errorf("an invalid token got %d:\n%s", code, body)
		}
	})
	t.Run("plain HTTP on the metrics port", func(t *testing.T) {
		if code, body := get(t, "http://"+metricsAddr+"/metrics"); code == http.StatusOK {
			t.Errorf("plain HTTP got the metrics:\n%s", body)
		}
	})
	t.Run("the probe port", func(t *testing.T) {
		waitUntil(t, "/readyz to answer 200 without a token", timeout, func() bool {
			code, _ := get(t, "http://"+probes+"/readyz")
			return code == http.StatusOK
		})
		if code, _ := get(t, "http://"+probes+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz on the probe port answered %d, want 200", code)
		}
		for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
			if code, body := get(t, "http://"+probes+path); code != http.StatusNotFound {
				t.Errorf("GET %s on the probe port answered %d, want 404: %s", path, code, body)
			}
		}
	})
	if strings.Contains(strings.ToLower(m.Stderr()), "forbidden") {
		t.Errorf("the manager was refused something:\n%s", grepLines(m.Stderr(), "forbidden"))
	}
}

// TestMetricsAuthNeedsItsRole runs the manager as a user without the metrics-auth role: it cannot
// ask the API server about a token, so even the metrics reader is refused.
func TestMetricsAuthNeedsItsRole(t *testing.T) {
	admin := env.KubeClient(t)
	ns := framework.CreateNamespace(t, admin)
	if err := testenv.ApplyClusterRoles(context.Background(), admin, filepath.Join(testenv.RBACDir(framework.RepoRoot()), "metrics_reader_role.yaml")); err != nil {
		t.Fatal(err)
	}
	reader, err := testenv.ServiceAccountToken(context.Background(), admin, ns, "metrics-reader", time.Hour, metricsReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	m := framework.StartProcess(t, "manager", managerBin,
		"--kubeconfig="+env.KubeconfigFor(t, envtest.User{Name: "metrics-without-auth"}), "--logging-format=json",
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
		// It may not watch pods either, which only makes it log; with no controller it would exit.
		"--controllers=podwatch", "--leader-elect=false", "--podwatch-namespace="+ns)
	metricsAddr := m.ServingAddress(t, "metrics", timeout)
	code, _, body := getWithToken(t, "https://"+metricsAddr+"/metrics", reader)
	if code != http.StatusInternalServerError {
		t.Errorf("the metrics reader got %d from a manager that may not create TokenReviews, want 500:\n%s", code, body)
	}
	// The refusal is logged as the request is answered: wait for the line to be read.
	waitUntil(t, "the manager to log that it may not create TokenReviews", timeout, func() bool {
		return strings.Contains(m.Stderr(), "tokenreviews.authentication.k8s.io is forbidden")
	})
}

// getWithToken fetches an https URL of the manager's metrics server with a bearer token (none
// when empty), and returns the status code, the header and the body.
func getWithToken(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	client := scrape.NewClient(token)
	defer client.HTTP.CloseIdleConnections()
	resp, err := client.Do(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}
