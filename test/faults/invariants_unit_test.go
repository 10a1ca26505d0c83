package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// testNetwork is a Network created second seconds after a fixed time.
func testNetwork(ns, name, cidr, gateway string, second int) samplecrdv1.Network {
	return samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID(ns + "-" + name), Generation: 1,
			CreationTimestamp: metav1.NewTime(time.Date(2025, 1, 1, 0, 0, second, 0, time.UTC)),
		},
		Spec: samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}
}

// TestExpectations checks the suite's own reading of the greedy rule on the cases of
// docs/network-controller.md.
func TestExpectations(t *testing.T) {
	conflict := func(cidr, winner, winnerCIDR string) expectation {
		return expectation{message: "cidr " + cidr + " overlaps Network " + winner + " (cidr " + winnerCIDR + "), which is programmed"}
	}
	tests := []struct {
		name     string
		networks []samplecrdv1.Network
		want     map[types.UID]expectation
	}{
		{
			name: "no cascade: a Network that overlaps only a blocked one is programmed",
			networks: []samplecrdv1.Network{
				testNetwork("a", "old", "10.20.0.0/16", "10.20.0.1", 0),
				testNetwork("a", "wide", "10.0.0.0/8", "10.0.0.1", 1),
				testNetwork("a", "narrow", "10.1.0.0/16", "10.1.0.1", 2),
			},
			want: map[types.UID]expectation{
				"a-old":    {programmed: true},
				"a-wide":   conflict("10.0.0.0/8", "old", "10.20.0.0/16"),
				"a-narrow": {programmed: true},
			},
		},
		{
			name: "same second: the name decides; namespaces never conflict",
			networks: []samplecrdv1.Network{
				testNetwork("a", "net-b", "10.30.0.0/24", "10.30.0.1", 5),
				testNetwork("a", "net-a", "10.30.0.128/25", "10.30.0.129", 5),
				testNetwork("b", "net-c", "10.30.0.0/24", "10.30.0.1", 9),
			},
			want: map[types.UID]expectation{
				"a-net-a": {programmed: true},
				"a-net-b": conflict("10.30.0.0/24", "net-a", "10.30.0.128/25"),
				"b-net-c": {programmed: true},
			},
		},
		{
			name: "the oldest programmed overlapping Network is named",
			networks: []samplecrdv1.Network{
				testNetwork("a", "x", "10.40.1.0/24", "10.40.1.1", 0),
				testNetwork("a", "y", "10.40.2.0/24", "10.40.2.1", 1),
				testNetwork("a", "z", "10.40.0.0/22", "10.40.0.1", 2),
			},
			want: map[types.UID]expectation{
				"a-x": {programmed: true},
				"a-y": {programmed: true},
				"a-z": conflict("10.40.0.0/22", "x", "10.40.1.0/24"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := expectations(tc.networks)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(expectation{})); diff != "" {
				t.Errorf("expectations (-want +got):\n%s", diff)
			}
		})
	}
}

// programmedFixture is one programmed Network and the rows the backend writes for it.
func programmedFixture() (samplecrdv1.Network, framework.OVNRows) {
	n := testNetwork("ns", "net", "10.50.0.0/24", "10.50.0.1", 0)
	n.Finalizers = []string{network.Finalizer}
	ids := map[string]string{ovn.OwnerKey: cluster, ovn.NamespaceKey: "ns", ovn.NameKey: "net", ovn.UIDKey: string(n.UID)}
	switchIDs := map[string]string{ovn.CIDRKey: "10.50.0.0/24", ovn.GatewayKey: "10.50.0.1"}
	for k, v := range ids {
		switchIDs[k] = v
	}
	rows := framework.OVNRows{
		Switches: []nbdb.LogicalSwitch{{UUID: "ls", Name: ovn.SwitchName(cluster, "ns", "net"), Ports: []string{"lsp"},
			OtherConfig: map[string]string{ovn.SubnetKey: "10.50.0.0/24", ovn.ExcludeIPsKey: "10.50.0.1"}, ExternalIDs: switchIDs}},
		SwitchPorts: []nbdb.LogicalSwitchPort{{UUID: "lsp", Name: ovn.SwitchPortName(cluster, n.UID), Type: "router",
			Addresses: []string{"router"}, Options: map[string]string{ovn.RouterPortKey: ovn.RouterPortName(cluster, n.UID)}, ExternalIDs: ids}},
		RouterPorts: []nbdb.LogicalRouterPort{{UUID: "lrp", Name: ovn.RouterPortName(cluster, n.UID), Networks: []string{"10.50.0.1/24"},
			MAC: ovn.RouterPortMAC(n.UID), ExternalIDs: ids}},
		Routers: []nbdb.LogicalRouter{{UUID: "lr", Name: ovn.RouterName(cluster, "ns"), Ports: []string{"lrp"},
			ExternalIDs: map[string]string{ovn.OwnerKey: cluster, ovn.RoleKey: ovn.RoleNamespaceRouter, ovn.NamespaceKey: "ns"}}},
	}
	n.Status = samplecrdv1.NetworkStatus{ObservedGeneration: 1, Backend: &samplecrdv1.NetworkBackendStatus{Type: "ovn", Name: rows.Switches[0].Name, ID: "ls"}}
	meta.SetStatusCondition(&n.Status.Conditions, metav1.Condition{Type: samplecrdv1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: samplecrdv1.ReasonSynced, Message: network.MessageSynced, ObservedGeneration: 1})
	return n, rows
}

// TestCheckInvariants checks that checkInvariants passes a correct state and names each kind of
// wrong one.
func TestCheckInvariants(t *testing.T) {
	tests := []struct {
		name string
		// change breaks the correct state.
		change func(n *samplecrdv1.Network, rows *framework.OVNRows)
		// want is a part of the problem expected; "" for none.
		want                     string
		lost, leaked, duplicated int
	}{
		{name: "correct", change: func(*samplecrdv1.Network, *framework.OVNRows) {}},
		{name: "stale generation", change: func(n *samplecrdv1.Network, _ *framework.OVNRows) { n.Generation = 2 },
			want: "generation 2", lost: 1},
		{name: "wrong condition", change: func(n *samplecrdv1.Network, _ *framework.OVNRows) {
			n.Status.Conditions[0].Status, n.Status.Conditions[0].Reason = metav1.ConditionFalse, samplecrdv1.ReasonBackendError
		}, want: "Ready=False/BackendError", lost: 1},
		{name: "stuck deleting", change: func(n *samplecrdv1.Network, _ *framework.OVNRows) {
			now := metav1.Now()
			n.DeletionTimestamp = &now
		}, want: "stuck deleting", lost: 1},
		{name: "switch missing", change: func(_ *samplecrdv1.Network, r *framework.OVNRows) { r.Switches = nil },
			want: "0 switches", lost: 1},
		{name: "subnet altered", change: func(_ *samplecrdv1.Network, r *framework.OVNRows) {
			r.Switches[0].OtherConfig = map[string]string{ovn.SubnetKey: "10.99.0.0/24", ovn.ExcludeIPsKey: "10.50.0.1"}
		}, want: "switch IPAM other_config", lost: 1},
		{name: "router port on another router", change: func(_ *samplecrdv1.Network, r *framework.OVNRows) {
			r.Routers[0].Ports = nil
			r.Routers = append(r.Routers, nbdb.LogicalRouter{UUID: "other", Name: "x", Ports: []string{"lrp"}})
		}, want: "not on the namespace's router", lost: 1},
		{name: "duplicate switch", change: func(_ *samplecrdv1.Network, r *framework.OVNRows) {
			dup := r.Switches[0]
			dup.UUID = "ls2"
			r.Switches = append(r.Switches, dup)
		}, want: "duplicated rows", duplicated: 2},
		{name: "orphan", change: func(_ *samplecrdv1.Network, r *framework.OVNRows) {
			r.SwitchPorts = append(r.SwitchPorts, nbdb.LogicalSwitchPort{UUID: "x", Name: "faults.lsp.gone",
				ExternalIDs: map[string]string{ovn.OwnerKey: cluster, ovn.UIDKey: "gone"}})
		}, want: "belongs to no Network", leaked: 1},
		{name: "another owner's rows are not ours", change: func(_ *samplecrdv1.Network, r *framework.OVNRows) {
			r.Switches = append(r.Switches, nbdb.LogicalSwitch{UUID: "x", Name: "faults.ns.net",
				ExternalIDs: map[string]string{ovn.OwnerKey: "other", ovn.UIDKey: "gone"}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, rows := programmedFixture()
			tc.change(&n, &rows)
			v := checkInvariants(checkInput{cluster: cluster, networks: []samplecrdv1.Network{n}, want: 1, rows: &rows})
			if tc.want == "" {
				if !v.ok() {
					t.Errorf("want no problem, got %s", v)
				}
				return
			}
			if v.ok() || !strings.Contains(v.String(), tc.want) {
				t.Errorf("want a problem with %q, got %s", tc.want, v)
			}
			if v.lost != tc.lost || v.leaked != tc.leaked || v.duplicated != tc.duplicated {
				t.Errorf("lost %d, leaked %d, duplicated %d; want %d, %d, %d", v.lost, v.leaked, v.duplicated, tc.lost, tc.leaked, tc.duplicated)
			}
		})
	}
}
