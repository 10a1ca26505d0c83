package manager

import (
	"context"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestLeastPrivilegeRBAC runs every controller under config/rbac unchanged, as its service
// account with a TokenRequest token: every controller works (the Network is programmed and Ready,
// its deletion completes, an orphan goes, the pod-count label is set, events are recorded and
// repeated, the Lease is held, podwatch and nodewatch print, including what they saw by watches,
// podnetwork attaches a pod that names its Network and, once its namespace gets a default Network,
// a pod that names none), the manager is ready and reports nothing missing, nothing is refused,
// and what the controllers never do is denied. TestEveryGrantNecessary shows that each grant is
// needed.
func TestLeastPrivilegeRBAC(t *testing.T) {
	ctx := context.Background()
	node := ""
	var orphan types.UID
	c := startPermCase(t, nil, "*", func(t *testing.T, c *permCase) {
		node = "cp-" + c.ns
		createNode(t, c.admin, node, map[string]string{"node-role.kubernetes.io/control-plane": ""})
		createPods(t, c.admin, c.ns, "listed", 1)
		// Before the manager starts: a running network controller removes an orphan the moment
		// it appears (drift repair), which can be before writeOrphan's own backend sees it written.
		orphan = c.writeOrphan(t)
	}, "--podcount-event-mode=all", "--podcount-period=1s", "--orphan-sweep-interval=1s")
	c.waitLeading(t)

	c.createNetwork(t, "rbac", "10.70.0.0/16", "10.70.0.1")
	waitUntil(t, "the Network to be Ready and programmed", timeout, func() bool {
		n := c.network(t, "rbac")
		return ready(n) && framework.CheckProgrammed(c.db.Dump(t), c.ns, n).OK()
	})
	waitUntil(t, "a Synced event on the Network", timeout, func() bool {
		return len(eventsWith(t, c.ns, "Synced", "rbac")) > 0
	})
	waitUntil(t, "the orphan to be removed", timeout, func() bool { return c.rowsOf(t, orphan) == 0 })
	uid := c.network(t, "rbac").UID
	if err := c.client.SamplecrdV1().Networks(c.ns).Delete(ctx, "rbac", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the Network's deletion to complete", timeout, func() bool {
		_, err := c.client.SamplecrdV1().Networks(c.ns).Get(ctx, "rbac", metav1.GetOptions{})
		return err != nil && c.rowsOf(t, uid) == 0
	})

	waitUntil(t, "the pod count label", timeout, func() bool {
		l, _ := nodeLabel(t, c.admin, node, c.labelKey)
		return l != ""
	})
	waitUntil(t, "a repeated event (a patch) on the listed pod", timeout, func() bool {
		for _, e := range eventsOn(t, c.admin, c.ns, "listed-0") {
			if e.Count >= 2 {
				return true
			}
		}
		return false
	})
	lease, err := c.admin.CoordinationV1().Leases(c.ns).Get(ctx, "samplecrd-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := c.m.LogEntries("Waiting to become the leader")[0]["identity"].(string); lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != id {
		t.Errorf("the Lease is held by %v, want %q", lease.Spec.HolderIdentity, id)
	}
	waitUntil(t, "the leadership event on the Lease", timeout, func() bool {
		return len(eventsOn(t, c.admin, c.ns, "samplecrd-controller")) > 0
	})

	// podwatch and nodewatch: what they listed, and what came by their watches.
	c.m.WaitForOutput(t, "Sync/Add/Update for Pod listed-0\n", timeout)
	c.m.WaitForOutput(t, "nodelist:", timeout)
	createPods(t, c.admin, c.ns, "watched", 1)
	createNode(t, c.admin, "watched-"+c.ns, nil)
	c.m.WaitForOutput(t, "Sync/Add/Update for Pod watched-0\n", timeout)
	c.m.WaitForOutput(t, "add a node: watched-"+c.ns+"\n", timeout)

	// podnetwork: the allocation written on a pod that names its Network (patch pods), and on a
	// listed pod that names none once its namespace's default Network, set now, comes by the
	// namespace watch.
	c.createNetwork(t, "pods", "10.71.0.0/16", "10.71.0.1")
	c.createPod(t, "named", map[string]string{samplecrdv1.NetworkAnnotation: "pods"})
	waitUntil(t, "the pod that names its Network to be attached", timeout, func() bool { return c.allocated(t, "named") })
	c.setDefaultNetwork(t, "pods")
	waitUntil(t, "the listed pod to be attached to its namespace's default Network", timeout, func() bool {
		return c.allocated(t, "listed-0")
	})

	code, body := c.readyz(t)
	if code != 200 || !strings.Contains(body, "[+]permissions ok") || !strings.Contains(body, "[+]leader-election ok") {
		t.Errorf("/readyz answered %d:\n%s", code, body)
	}
	if v := metricValue(t, c.metrics, "samplecrd_missing_permissions", nil); v != 0 {
		t.Errorf("samplecrd_missing_permissions sums to %v, want 0", v)
	}
	if v := metricValue(t, c.metrics, "samplecrd_events_failed_total", nil); v > 0 {
		t.Errorf("samplecrd_events_failed_total is %v, want none", v)
	}
	if strings.Contains(strings.ToLower(c.m.Stderr()), "forbidden") {
		t.Errorf("the manager was refused something:\n%s", grepLines(c.m.Stderr(), "forbidden"))
	}

	// What the controllers never do, the service account may not do.
	for _, attr := range []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "nodes"},
		{Verb: "delete", Resource: "nodes"},
		{Verb: "update", Resource: "nodes"},
		{Verb: "update", Resource: "events", Namespace: c.ns},
		{Verb: "create", Group: "events.k8s.io", Resource: "events", Namespace: c.ns},
		{Verb: "get", Resource: "secrets", Namespace: c.ns},
		{Verb: "create", Resource: "pods", Namespace: c.ns},
		{Verb: "get", Resource: "pods", Namespace: c.ns},
		{Verb: "update", Resource: "pods", Namespace: c.ns},
		{Verb: "patch", Resource: "pods", Subresource: "status", Namespace: c.ns},
		{Verb: "get", Resource: "namespaces", Name: c.ns},
		{Verb: "patch", Resource: "namespaces", Name: c.ns},
		{Verb: "delete", Group: "samplecrd.k8s.io", Resource: "networks", Namespace: c.ns},
		{Verb: "create", Group: "samplecrd.k8s.io", Resource: "networks", Namespace: c.ns},
		{Verb: "update", Group: "samplecrd.k8s.io", Resource: "networks", Namespace: c.ns},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"},
		{Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Namespace: c.ns},
	} {
		review, err := c.admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: c.user, ResourceAttributes: &attr},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed {
			t.Errorf("the service account may %s %s/%s in %q; it never needs to", attr.Verb, attr.Group, attr.Resource, attr.Namespace)
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(line), substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
