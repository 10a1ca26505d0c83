package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	// Its init function registers client-go's REST client hooks first, as it does in the
	// manager, which imports it through controller-runtime's metrics filters and certwatcher.
	_ "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// TestRESTClientMetricsAfterControllerRuntime checks that API requests are counted in Registry
// even though controller-runtime's metrics package claimed client-go's hooks before Register ran.
func TestRESTClientMetricsAfterControllerRuntime(t *testing.T) {
	Register()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"NamespaceList","apiVersion":"v1","items":[]}`))
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(&rest.Config{Host: srv.URL})
	before := testutil.ToFloat64(restRequests.WithLabelValues("200", "GET", u.Host))
	if _, err := client.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(restRequests.WithLabelValues("200", "GET", u.Host)) - before; got != 1 {
		t.Errorf("samplecrd_rest_client_requests_total grew by %v for one request, want 1", got)
	}
	if n := testutil.CollectAndCount(restRequestLatency); n == 0 {
		t.Error("samplecrd_rest_client_request_duration_seconds has no series after a request")
	}
}
