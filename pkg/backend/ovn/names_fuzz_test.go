package ovn

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// dnsName returns s when valid accepts it, else s mapped onto the alphabet of DNS-1123 names and cut
// to max bytes, when valid accepts that; ok is false when neither is valid. The mapping lets the
// fuzzer reach long and odd valid names from any bytes.
func dnsName(s string, max int, dots bool, valid func(string) []string) (string, bool) {
	if len(valid(s)) == 0 {
		return s, true
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-."
	n := len(alphabet)
	if !dots {
		n--
	}
	b := []byte(s)
	if len(b) > max {
		b = b[:max]
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%n]
	}
	mapped := string(b)
	if len(valid(mapped)) != 0 {
		return "", false
	}
	return mapped, true
}

// fuzzNetwork is one Network's identity, made valid for Kubernetes from fuzz input.
type fuzzNetwork struct {
	namespace, name string
	uid             types.UID
}

func newFuzzNetwork(namespace, name, uid string) (fuzzNetwork, bool) {
	ns, ok1 := dnsName(namespace, validation.DNS1123LabelMaxLength, false, validation.IsDNS1123Label)
	n, ok2 := dnsName(name, validation.DNS1123SubdomainMaxLength, true, validation.IsDNS1123Subdomain)
	// The API server makes UIDs (UUIDs); the names must work for any non-empty one.
	return fuzzNetwork{namespace: ns, name: n, uid: types.UID(uid)}, ok1 && ok2 && uid != ""
}

// FuzzNames checks the names and external_ids that names.go derives for two Networks of one
// cluster: each name maps back through nameOwner to the Network it was made for, and to nothing in
// the other tables; the rows' external_ids map back through ownerOf; two different Networks never
// share a switch or port name, two namespaces never share a router, and no router name is a switch
// name; the router port's MAC is a locally administered unicast address. The UIDs are pods' too:
// a pod port's name maps back through podNameOwner to the pod, never reads as a Network's, and is
// never the name of another pod's port nor of a Network's switch port.
func FuzzNames(f *testing.F) {
	f.Fuzz(func(t *testing.T, cluster, ns1, name1, uid1, ns2, name2, uid2 string) {
		if validateCluster(cluster) != nil {
			t.Skip()
		}
		a, okA := newFuzzNetwork(ns1, name1, uid1)
		b, okB := newFuzzNetwork(ns2, name2, uid2)
		if !okA || !okB {
			t.Skip()
		}
		checkNames(t, cluster, a)
		checkNames(t, cluster, b)

		if (a.namespace != b.namespace || a.name != b.name) && SwitchName(cluster, a.namespace, a.name) == SwitchName(cluster, b.namespace, b.name) {
			t.Errorf("Networks %s/%s and %s/%s share the switch name %q", a.namespace, a.name, b.namespace, b.name, SwitchName(cluster, a.namespace, a.name))
		}
		for _, x := range []types.UID{a.uid, b.uid} {
			for _, y := range []types.UID{a.uid, b.uid} {
				if PodPortName(cluster, x) == SwitchPortName(cluster, y) {
					t.Errorf("the port of pod %q has the name of the switch port of Network %q: %q", x, y, PodPortName(cluster, x))
				}
			}
		}
		if a.uid != b.uid {
			if PodPortName(cluster, a.uid) == PodPortName(cluster, b.uid) {
				t.Errorf("pods %q and %q share the port name %q", a.uid, b.uid, PodPortName(cluster, a.uid))
			}
			if SwitchPortName(cluster, a.uid) == SwitchPortName(cluster, b.uid) {
				t.Errorf("UIDs %q and %q share the switch port name %q", a.uid, b.uid, SwitchPortName(cluster, a.uid))
			}
			if RouterPortName(cluster, a.uid) == RouterPortName(cluster, b.uid) {
				t.Errorf("UIDs %q and %q share the router port name %q", a.uid, b.uid, RouterPortName(cluster, a.uid))
			}
		}
		if (a.namespace == b.namespace) != (RouterName(cluster, a.namespace) == RouterName(cluster, b.namespace)) {
			t.Errorf("namespaces %q and %q: router names %q and %q", a.namespace, b.namespace, RouterName(cluster, a.namespace), RouterName(cluster, b.namespace))
		}
		for _, r := range []fuzzNetwork{a, b} {
			for _, s := range []fuzzNetwork{a, b} {
				if RouterName(cluster, r.namespace) == SwitchName(cluster, s.namespace, s.name) {
					t.Errorf("the router of namespace %q has the name of the switch of %s/%s: %q", r.namespace, s.namespace, s.name, RouterName(cluster, r.namespace))
				}
			}
		}
	})
}

// checkNames checks the names and external_ids of one Network.
func checkNames(t *testing.T, cluster string, n fuzzNetwork) {
	t.Helper()
	names := map[string]string{
		nbdb.LogicalSwitchTable:     SwitchName(cluster, n.namespace, n.name),
		nbdb.LogicalSwitchPortTable: SwitchPortName(cluster, n.uid),
		nbdb.LogicalRouterPortTable: RouterPortName(cluster, n.uid),
		nbdb.LogicalRouterTable:     RouterName(cluster, n.namespace),
	}
	want := map[string]backend.Owned{
		nbdb.LogicalSwitchTable:     {Namespace: n.namespace, Name: n.name},
		nbdb.LogicalSwitchPortTable: {UID: n.uid},
		nbdb.LogicalRouterPortTable: {UID: n.uid},
		nbdb.LogicalRouterTable:     {Namespace: n.namespace},
	}
	// Tables whose names must not read as each other's: a switch's never as a router's (the
	// namespace has no dots) nor the reverse, and a switch port's never as a router port's.
	other := map[string]string{
		nbdb.LogicalSwitchTable:     nbdb.LogicalRouterTable,
		nbdb.LogicalRouterTable:     nbdb.LogicalSwitchTable,
		nbdb.LogicalSwitchPortTable: nbdb.LogicalRouterPortTable,
		nbdb.LogicalRouterPortTable: nbdb.LogicalSwitchPortTable,
	}
	for table, name := range names {
		if got, ok := nameOwner(cluster, table, name); !ok || got != want[table] {
			t.Errorf("nameOwner(%q, %s, %q) = %+v, %t; want %+v", cluster, table, name, got, ok, want[table])
		}
		if got, ok := nameOwner(cluster, other[table], name); ok {
			t.Errorf("nameOwner(%q, %s, %q) = %+v, but it is the name of a %s row", cluster, other[table], name, got, table)
		}
	}

	network := backend.Network{Namespace: n.namespace, Name: n.name, UID: n.uid,
		CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1")}
	rows := desiredRows(cluster, network)
	if rows.Switch.Name != names[nbdb.LogicalSwitchTable] || rows.SwitchPort.Name != names[nbdb.LogicalSwitchPortTable] ||
		rows.RouterPort.Name != names[nbdb.LogicalRouterPortTable] || rows.Router.Name != names[nbdb.LogicalRouterTable] {
		t.Errorf("desiredRows names %q, %q, %q, %q differ from the name functions' %v",
			rows.Switch.Name, rows.SwitchPort.Name, rows.RouterPort.Name, rows.Router.Name, names)
	}
	if rows.SwitchPort.Options[RouterPortKey] != rows.RouterPort.Name {
		t.Errorf("switch port's %s = %q, want the router port %q", RouterPortKey, rows.SwitchPort.Options[RouterPortKey], rows.RouterPort.Name)
	}
	b := &Backend{opts: Options{ClusterName: cluster}}
	owned := backend.Owned{Namespace: n.namespace, Name: n.name, UID: n.uid}
	for _, row := range []struct {
		table string
		row   model.Model
	}{
		{nbdb.LogicalSwitchTable, &rows.Switch},
		{nbdb.LogicalSwitchPortTable, &rows.SwitchPort},
		{nbdb.LogicalRouterPortTable, &rows.RouterPort},
	} {
		got, ok := b.ownerOf(row.row)
		if !ok || got != owned {
			t.Errorf("ownerOf(the %s row) = %+v, %t; want %+v", row.table, got, ok, owned)
		}
	}
	if ids := rows.Router.ExternalIDs; !ownedBy(ids, cluster) || ids[RoleKey] != RoleNamespaceRouter || ids[NamespaceKey] != n.namespace {
		t.Errorf("router external_ids %v do not mark it as namespace %q's router of cluster %q", ids, n.namespace, cluster)
	}

	// n as a pod of its own namespace, with a port on the Network.
	podName := PodPortName(cluster, n.uid)
	if got, ok := podNameOwner(cluster, podName); !ok || got != n.uid {
		t.Errorf("podNameOwner(%q, %q) = %q, %t; want %q", cluster, podName, got, ok, n.uid)
	}
	// A pod port is in the switch port table (where a switch's or router's name reads as nothing
	// either); it must not read as a Network's port of either port table.
	for _, table := range []string{nbdb.LogicalSwitchPortTable, nbdb.LogicalRouterPortTable} {
		if got, ok := nameOwner(cluster, table, podName); ok {
			t.Errorf("nameOwner(%q, %s, %q) = %+v, but it is the name of a pod's port", cluster, table, podName, got)
		}
	}
	if got, ok := podNameOwner(cluster, names[nbdb.LogicalSwitchPortTable]); ok {
		t.Errorf("podNameOwner(%q, %q) = %q, but it is the name of a Network's switch port", cluster, names[nbdb.LogicalSwitchPortTable], got)
	}
	pod := backend.PodRef{Namespace: n.namespace, Name: n.name, UID: n.uid}
	port := desiredPort(cluster, backend.Port{NetworkNamespace: n.namespace, NetworkName: n.name, NetworkUID: n.uid, Pod: pod,
		MAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0, 0, 5}, IP: netip.MustParseAddr("10.0.0.5")})
	if port.Name != podName {
		t.Errorf("desiredPort's name %q differs from PodPortName's %q", port.Name, podName)
	}
	if got, ok := b.ownerOf(&port); ok {
		t.Errorf("ownerOf(the pod port row) = %+v, but a pod port is no Network's own row", got)
	}
	if got, ok := b.changeOf(&port); !ok || got.Owned != owned || got.Pod == nil || *got.Pod != pod {
		t.Errorf("changeOf(the pod port row) = %+v (pod %v), %t; want %+v with pod %+v", got, got.Pod, ok, owned, pod)
	}

	mac := RouterPortMAC(n.uid)
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 || hw[0] != 0x0a || mac != hw.String() {
		t.Errorf("RouterPortMAC(%q) = %q, want a locally administered unicast MAC 0a:xx:xx:xx:xx:xx (%v)", n.uid, mac, err)
	}
}
