package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// conditionOf returns n's Ready condition message when its reason is reason, else "".
func conditionOf(n *samplecrdv1.Network, reason string) string {
	for _, c := range n.Status.Conditions {
		if c.Type == samplecrdv1.ConditionReady && c.Reason == reason && c.ObservedGeneration == n.Generation {
			return c.Message
		}
	}
	return ""
}

// TestNameConflict: a switch of another owner under the name a Network's switch would have: the
// Network says NameConflict naming it and nothing is created; once the row goes, the Network is
// programmed without being touched.
func TestNameConflict(t *testing.T) {
	s := newSetup(t)
	foreign := s.db.NBCtl(t, "create", "Logical_Switch", "name="+ovn.SwitchName(cluster, s.ns, "taken"),
		"external_ids:samplecrd.k8s.io/owner=someone-else")
	s.startController(t, nil)

	s.create(t, "taken", "10.30.0.0/24", "10.30.0.1")
	n := s.waitFor(t, "taken", "NameConflict", func(n *samplecrdv1.Network) bool {
		return ready(n) == "False/"+samplecrdv1.ReasonNameConflict
	})
	msg := conditionOf(n, samplecrdv1.ReasonNameConflict)
	for _, want := range []string{ovn.SwitchName(cluster, s.ns, "taken"), foreign, `owner "someone-else"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the NameConflict message %q does not name %s", msg, want)
		}
	}
	if got := owned(s.db.Dump(t), n.UID); len(got.Switches)+len(got.SwitchPorts)+len(got.RouterPorts)+len(got.Routers) != 0 {
		t.Errorf("rows were created despite the conflict: %+v", got)
	}

	s.db.NBCtl(t, "destroy", "Logical_Switch", foreign)
	n = s.waitReady(t, "taken")
	checkProgrammed(t, s.db.Dump(t), n)
}

// TestSwitchUIDChangedOutOfBand: the Network's switch has its UID external_id changed out of band:
// the controller replaces it in one transaction, and there is one switch of the name afterwards.
func TestSwitchUIDChangedOutOfBand(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	s.create(t, "net", "10.31.0.0/24", "10.31.0.1")
	n := s.waitReady(t, "net")
	before := statusID(n)

	s.db.NBCtl(t, "set", "Logical_Switch", before, "external_ids:samplecrd.k8s.io/uid=not-a-network")
	n = s.waitFor(t, "net", "Ready on a new switch", func(n *samplecrdv1.Network) bool {
		return ready(n) == "True/Synced" && statusID(n) != before
	})
	rows := s.db.Dump(t)
	checkProgrammed(t, rows, n)
	var named []string
	for _, ls := range rows.Switches {
		if ls.Name == ovn.SwitchName(cluster, s.ns, "net") {
			named = append(named, ls.UUID)
		}
	}
	if !slices.Equal(named, []string{statusID(n)}) {
		t.Errorf("switches named %s: %v, want only %s", ovn.SwitchName(cluster, s.ns, "net"), named, statusID(n))
	}
}

// TestOrphanWithoutName: rows of this cluster with a UID but no namespace or name are removed by
// the orphan sweep, without a failed sync.
func TestOrphanWithoutName(t *testing.T) {
	s := newSetup(t)
	s.db.NBCtl(t, "create", "Logical_Switch", "name=nameless",
		"external_ids:samplecrd.k8s.io/owner="+cluster, "external_ids:samplecrd.k8s.io/uid=0d0d0d0d-0000-0000-0000-00000000000a")
	s.db.NBCtl(t, "create", "Logical_Switch", "name=no-namespace",
		"external_ids:samplecrd.k8s.io/owner="+cluster, "external_ids:samplecrd.k8s.io/uid=0d0d0d0d-0000-0000-0000-00000000000b",
		"external_ids:samplecrd.k8s.io/name=gone")
	c := s.startController(t, nil)
	s.waitRows(t, "the nameless orphans removed", func(r framework.OVNRows) bool { return len(r.Switches) == 0 })
	for _, key := range []cache.ObjectName{{}, {Name: "gone"}} {
		if errs := c.syncs.failures(key); len(errs) > 0 {
			t.Errorf("syncs of %q failed: %v", key, errs)
		}
	}
}

// TestRouterRoleKeyRemoved: the namespace router's role key removed out of band is put back on the
// same router: no second router, every port where it was.
func TestRouterRoleKeyRemoved(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	s.create(t, "a", "10.32.0.0/24", "10.32.0.1")
	s.create(t, "b", "10.33.0.0/24", "10.33.0.1")
	s.waitReady(t, "a")
	s.waitReady(t, "b")
	router, _ := s.db.Dump(t).NamespaceRouter(cluster, s.ns)

	s.db.NBCtl(t, "remove", "Logical_Router", router.UUID, "external_ids", ovn.RoleKey)
	rows := s.waitRows(t, "the role key back", func(r framework.OVNRows) bool {
		_, n := r.NamespaceRouter(cluster, s.ns)
		return n == 1
	})
	got, _ := rows.NamespaceRouter(cluster, s.ns)
	if diff := cmp.Diff(router, got, cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("the router (-before +after):\n%s", diff)
	}
	if len(rows.Routers) != 1 {
		t.Errorf("%d routers, want 1: %+v", len(rows.Routers), rows.Routers)
	}
}

// TestLastNetworkTakesRouter: the namespace's last Network deleted takes its router along; the
// rows of another namespace (written by another backend of the cluster, for a Network that
// exists) do not change.
func TestLastNetworkTakesRouter(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	otherNS := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(s.cfg))
	other, err := s.client.SamplecrdV1().Networks(otherNS).Create(ctx, &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "other"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.34.0.0/24", Gateway: "10.34.0.1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, beCtx := ktesting.NewTestContext(t)
	be, err := ovn.New(beCtx, ovn.Options{Endpoint: s.db.Endpoint(), ClusterName: cluster})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	s.waitRows(t, "nothing", func(framework.OVNRows) bool { return be.Ready() == nil })
	desired := backend.Network{Namespace: otherNS, Name: "other", UID: other.UID,
		CIDR: netip.MustParsePrefix(other.Spec.Cidr), Gateway: netip.MustParseAddr(other.Spec.Gateway)}
	if _, err := be.Ensure(ctx, desired); err != nil {
		t.Fatal(err)
	}
	be.Close()
	before := s.db.Dump(t)
	otherRows := owned(before, other.UID)
	otherRouter, _ := before.NamespaceRouter(cluster, otherNS)

	s.startController(t, nil)
	s.create(t, "a", "10.34.0.0/24", "10.34.0.1") // the same CIDR: another namespace
	s.create(t, "b", "10.35.0.0/24", "10.35.0.1")
	s.waitReady(t, "a")
	s.waitReady(t, "b")
	if _, n := s.db.Dump(t).NamespaceRouter(cluster, s.ns); n != 1 {
		t.Fatalf("%d routers for %s, want 1", n, s.ns)
	}
	for _, name := range []string{"a", "b"} {
		if err := s.client.SamplecrdV1().Networks(s.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitGone(t, name)
	}
	after := s.waitRows(t, fmt.Sprintf("%s's router gone", s.ns), func(r framework.OVNRows) bool {
		_, n := r.NamespaceRouter(cluster, s.ns)
		return n == 0
	})
	if diff := cmp.Diff(otherRows, owned(after, other.UID), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the other namespace's rows changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff([]any{otherRouter}, []any{after.Routers[0]}, cmpopts.EquateEmpty()); len(after.Routers) != 1 || diff != "" {
		t.Errorf("routers afterwards: %+v, want only the other namespace's as it was", after.Routers)
	}
	if err := s.client.SamplecrdV1().Networks(otherNS).Delete(ctx, "other", metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
}
