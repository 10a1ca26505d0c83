package app

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"

	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// fakeAuthorizer answers SelfSubjectAccessReviews: everything is allowed but denied, and failing
// makes the request itself fail.
type fakeAuthorizer struct {
	mu      sync.Mutex
	denied  map[authorizationv1.ResourceAttributes]bool
	failing bool
	asked   int
}

func (a *fakeAuthorizer) set(denied []authorizationv1.ResourceAttributes, failing bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.denied = map[authorizationv1.ResourceAttributes]bool{}
	for _, d := range denied {
		a.denied[d] = true
	}
	a.failing = failing
}

func (a *fakeAuthorizer) client() *fake.Clientset {
	client := fake.NewClientset()
	client.PrependReactor("create", "selfsubjectaccessreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.asked++
		if a.failing {
			return true, nil, errors.New("connection refused")
		}
		review := action.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview).DeepCopy()
		review.Status.Allowed = !a.denied[*review.Spec.ResourceAttributes]
		return true, review, nil
	})
	return client
}

// TestPermissionChecker checks the network and podcount controllers' and the leader election's
// permissions against a fake authorizer: what is denied fails readiness by name and sets its
// gauge; a check that cannot ask keeps the last answers; a grant clears both.
func TestPermissionChecker(t *testing.T) {
	metrics.Register()
	o := NewOptions()
	o.Controllers = []string{"network", "podcount", "nodewatch"} // nodewatch asks nothing podcount does not
	o.LeaderElection.Namespace = "ops"
	statusPatch := authorizationv1.ResourceAttributes{Verb: "patch", Group: "samplecrd.k8s.io", Resource: "networks", Subresource: "status"}
	leaseUpdate := authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "ops", Name: "samplecrd-controller"}
	nodeEvents := authorizationv1.ResourceAttributes{Verb: "create", Resource: "events", Namespace: "default"}

	tests := []struct {
		name      string
		denied    []authorizationv1.ResourceAttributes
		failing   bool
		wantReady string
		wantErr   bool
		// wantGauges are samplecrd_missing_permissions by controller, verb and resource.
		wantGauges map[[3]string]float64
	}{{
		name:      "three denied",
		denied:    []authorizationv1.ResourceAttributes{statusPatch, leaseUpdate, nodeEvents},
		wantReady: "missing patch networks.samplecrd.k8s.io/status cluster-wide (network-controller); missing create events in namespace default (podcount-controller); missing update leases.coordination.k8s.io samplecrd-controller in namespace ops (leader-election)",
		wantGauges: map[[3]string]float64{
			{"network-controller", "patch", "networks.samplecrd.k8s.io/status"}: 1,
			{"network-controller", "patch", "networks.samplecrd.k8s.io"}:        0,
			{"podcount-controller", "create", "events"}:                         1,
			{"leader-election", "update", "leases.coordination.k8s.io"}:         1,
			{"leader-election", "create", "events"}:                             0,
		},
	}, {
		name:    "API server away: the last answers stay",
		failing: true, wantErr: true,
		wantReady: "missing patch networks.samplecrd.k8s.io/status cluster-wide (network-controller); missing create events in namespace default (podcount-controller); missing update leases.coordination.k8s.io samplecrd-controller in namespace ops (leader-election)",
		wantGauges: map[[3]string]float64{
			{"network-controller", "patch", "networks.samplecrd.k8s.io/status"}: 1,
		},
	}, {
		name:      "all granted",
		wantReady: "",
		wantGauges: map[[3]string]float64{
			{"network-controller", "patch", "networks.samplecrd.k8s.io/status"}: 0,
			{"podcount-controller", "create", "events"}:                         0,
			{"leader-election", "update", "leases.coordination.k8s.io"}:         0,
		},
	}}
	auth := &fakeAuthorizer{}
	checker := newPermissionChecker(auth.client().AuthorizationV1().SelfSubjectAccessReviews(), neededPermissions(o))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			auth.set(tc.denied, tc.failing)
			auth.asked = 0
			err := checker.check(ctx)
			if (err != nil) != tc.wantErr {
				t.Errorf("check returned %v, want an error: %v", err, tc.wantErr)
			}
			got := ""
			if err := checker.ready(); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.wantReady, got); diff != "" {
				t.Errorf("ready() (-want +got):\n%s", diff)
			}
			for labels, want := range tc.wantGauges {
				if got := testutil.ToFloat64(metrics.MissingPermissions.WithLabelValues(labels[:]...)); got != want {
					t.Errorf("samplecrd_missing_permissions%v = %v, want %v", labels, got, want)
				}
			}
			// One review per distinct permission: network 7, podcount 7 (nodewatch's 2 among them),
			// leader election 5, the secure metrics server 2.
			if !tc.failing && auth.asked != 21 {
				t.Errorf("asked %d reviews, want 21", auth.asked)
			}
		})
	}
}

// TestNeededPermissions follows the options: podwatch's namespace, podcount's event mode, and
// leader election off.
func TestNeededPermissions(t *testing.T) {
	o := NewOptions()
	o.Controllers = []string{"podwatch", "podcount"}
	o.PodWatchNamespace = "watched"
	o.PodCount.EventMode = "all"
	o.LeaderElection.Enabled = false
	var got []string
	for _, n := range neededPermissions(o) {
		got = append(got, n.owner+": "+n.permission.String())
	}
	want := []string{
		"podcount-controller: list pods cluster-wide",
		"podcount-controller: watch pods cluster-wide",
		"podcount-controller: list nodes cluster-wide",
		"podcount-controller: watch nodes cluster-wide",
		"podcount-controller: patch nodes cluster-wide",
		"podcount-controller: create events cluster-wide",
		"podcount-controller: patch events cluster-wide",
		"podwatch-controller: list pods in namespace watched",
		"podwatch-controller: watch pods in namespace watched",
		"metrics-server: create tokenreviews.authentication.k8s.io cluster-wide",
		"metrics-server: create subjectaccessreviews.authorization.k8s.io cluster-wide",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("neededPermissions (-want +got):\n%s", diff)
	}

	// Plain HTTP metrics, or none, review nothing.
	for _, change := range []func(){func() { o.Metrics.Secure = false }, func() { o.Metrics.Secure = true; o.MetricsBindAddress = "0" }} {
		change()
		for _, n := range neededPermissions(o) {
			if n.owner == metricsServerName {
				t.Errorf("metrics secure %v on %q: the metrics server needs %s", o.Metrics.Secure, o.MetricsBindAddress, n.permission)
			}
		}
	}
}
