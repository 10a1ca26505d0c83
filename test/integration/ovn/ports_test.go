package ovn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// podPort returns the port of pod default/<name> with the UID on network n, with the address of
// host number host in its CIDR and a MAC derived from it, as the pod controller allocates them.
func podPort(n backend.Network, name string, uid types.UID, host byte) backend.Port {
	ip := n.CIDR.Addr().As4()
	ip[3] = host
	return backend.Port{
		NetworkNamespace: n.Namespace, NetworkName: n.Name, NetworkUID: n.UID,
		Pod: backend.PodRef{Namespace: "default", Name: name, UID: uid},
		MAC: net.HardwareAddr{0x0a, 0x58, ip[0], ip[1], ip[2], ip[3]},
		IP:  netip.AddrFrom4(ip),
	}
}

func mustEnsurePort(t *testing.T, ctx context.Context, b *ovn.Backend, p backend.Port) backend.PortStatus {
	t.Helper()
	st, err := b.EnsurePort(ctx, p)
	if err != nil {
		t.Fatalf("EnsurePort for pod %s: %v", p.Pod.Name, err)
	}
	return st
}

// wantPodPort is the row EnsurePort writes for p.
func wantPodPort(p backend.Port, uuid string) nbdb.LogicalSwitchPort {
	address := p.MAC.String() + " " + p.IP.String()
	return nbdb.LogicalSwitchPort{
		UUID:         uuid,
		Name:         ovn.PodPortName(cluster, p.Pod.UID),
		Addresses:    []string{address},
		PortSecurity: []string{address},
		ExternalIDs: map[string]string{
			ovn.OwnerKey: cluster, ovn.NamespaceKey: p.NetworkNamespace, ovn.NameKey: p.NetworkName, ovn.UIDKey: string(p.NetworkUID),
			ovn.PodNamespaceKey: p.Pod.Namespace, ovn.PodNameKey: p.Pod.Name, ovn.PodUIDKey: string(p.Pod.UID),
		},
	}
}

// portRow returns the switch port named name, and the UUIDs of the switches that hold it.
func portRow(t *testing.T, got rows, name string) (nbdb.LogicalSwitchPort, []string) {
	t.Helper()
	for _, p := range got.SwitchPorts {
		if p.Name == name {
			var on []string
			for _, s := range got.Switches {
				if slices.Contains(s.Ports, p.UUID) {
					on = append(on, s.UUID)
				}
			}
			return p, on
		}
	}
	t.Fatalf("no switch port named %s", name)
	return nbdb.LogicalSwitchPort{}, nil
}

// checkPort checks that the database holds p as EnsurePort writes it, with the UUID st.ID, on the
// switch st.Switch and on no other.
func checkPort(t *testing.T, db *framework.OVSDB, p backend.Port, st backend.PortStatus) {
	t.Helper()
	got := dump(t, db)
	row, on := portRow(t, got, ovn.PodPortName(cluster, p.Pod.UID))
	if diff := cmp.Diff(wantPodPort(p, st.ID), row, emptyIsNil); diff != "" {
		t.Errorf("port of pod %s (-want +got):\n%s", p.Pod.Name, diff)
	}
	var want []string
	for _, s := range got.Switches {
		if s.Name == st.Switch {
			want = append(want, s.UUID)
		}
	}
	if len(want) != 1 || !slices.Equal(on, want) {
		t.Errorf("port of pod %s is on the switches %v, want only %s (%v)", p.Pod.Name, on, st.Switch, want)
	}
}

// podPortsOf returns the pod ports of the database, by pod UID key, with the switches they are on.
func podPortsOf(got rows) map[string][]string {
	out := map[string][]string{}
	for _, p := range got.SwitchPorts {
		uid, ok := p.ExternalIDs[ovn.PodUIDKey]
		if !ok {
			continue
		}
		out[uid] = []string{}
		for _, s := range got.Switches {
			if slices.Contains(s.Ports, p.UUID) {
				out[uid] = append(out[uid], s.Name)
			}
		}
	}
	return out
}

var equateAddr = cmpopts.EquateComparable(netip.Addr{})

// TestEnsurePort: EnsurePort creates the pod's port on the Network's switch, with addresses,
// port_security and external_ids; a second one writes nothing; a new address is an update in
// place; ListPorts reports it; DeletePort removes it, and succeeds when it is not there.
func TestEnsurePort(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)
	n := network("ns1", "net1", "uid-1", "10.10.0.0/24", "10.10.0.1")
	mustEnsure(t, ctx, b, n)

	p := podPort(n, "web-0", "pod-1", 5)
	st := mustEnsurePort(t, ctx, b, p)
	if !st.Changed || st.ID == "" || st.Name != "c1.pod.pod-1" || st.Switch != "c1.ns1.net1" {
		t.Errorf("first EnsurePort = %+v, want a change on c1.ns1.net1 with an ID", st)
	}
	checkPort(t, db, p, st)
	if got := db.NBCtl(t, "lsp-get-addresses", "c1.pod.pod-1"); got != "0a:58:0a:0a:00:05 10.10.0.5" {
		t.Errorf("ovn-nbctl lsp-get-addresses = %q", got)
	}
	if got := db.NBCtl(t, "lsp-get-port-security", "c1.pod.pod-1"); got != "0a:58:0a:0a:00:05 10.10.0.5" {
		t.Errorf("ovn-nbctl lsp-get-port-security = %q", got)
	}
	if got := db.NBCtl(t, "lsp-get-ls", "c1.pod.pod-1"); !strings.HasSuffix(got, "(c1.ns1.net1)") {
		t.Errorf("ovn-nbctl lsp-get-ls = %q, want the Network's switch", got)
	}

	// Again: nothing to do, nothing written.
	before := dump(t, db)
	size := fileSize(t, db.DBFile())
	again := mustEnsurePort(t, ctx, b, p)
	if want := (backend.PortStatus{Name: st.Name, ID: st.ID, Switch: st.Switch}); again != want {
		t.Errorf("second EnsurePort = %+v, want %+v", again, want)
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("the second EnsurePort wrote to the database: %d bytes before, %d after", size, after)
	}
	if diff := cmp.Diff(before, dump(t, db), emptyIsNil); diff != "" {
		t.Errorf("the second EnsurePort changed rows (-before +after):\n%s", diff)
	}

	// A new address is written in place.
	p2 := podPort(n, "web-0", "pod-1", 6)
	updated := mustEnsurePort(t, ctx, b, p2)
	if !updated.Changed || updated.ID != st.ID {
		t.Errorf("EnsurePort with a new address = %+v, want a change of the port %s", updated, st.ID)
	}
	checkPort(t, db, p2, updated)

	other := podPort(n, "web-1", "pod-2", 7)
	mustEnsurePort(t, ctx, b, other)
	ports, err := b.ListPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]backend.Port{p2, other}, ports, equateAddr); diff != "" {
		t.Errorf("ListPorts (-want +got):\n%s", diff)
	}

	if err := b.DeletePort(ctx, "pod-1"); err != nil {
		t.Fatalf("DeletePort: %v", err)
	}
	got := dump(t, db)
	if diff := cmp.Diff(map[string][]string{"pod-2": {"c1.ns1.net1"}}, podPortsOf(got)); diff != "" {
		t.Errorf("pod ports after DeletePort (-want +got):\n%s", diff)
	}
	// The switch keeps the Network's port and the other pod's.
	if sw := got.OfUID(cluster, n.UID).Switches; len(sw) != 1 || len(sw[0].Ports) != 2 {
		t.Errorf("the switch after DeletePort: %+v, want the Network's port and one pod's", sw)
	}
	if ports, err := b.ListPorts(ctx); err != nil || len(ports) != 1 || ports[0].Pod.UID != "pod-2" {
		t.Errorf("ListPorts after DeletePort = %+v, %v; want pod-2's", ports, err)
	}
	size = fileSize(t, db.DBFile())
	if err := b.DeletePort(ctx, "pod-1"); err != nil {
		t.Errorf("DeletePort of a port not there: %v", err)
	}
	if err := b.DeletePort(ctx, "pod-never"); err != nil {
		t.Errorf("DeletePort of a pod that never had a port: %v", err)
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("DeletePort of ports not there wrote to the database")
	}

	// A Network that is not programmed: nothing written.
	size = fileSize(t, db.DBFile())
	_, err = b.EnsurePort(ctx, podPort(network("ns1", "gone", "uid-gone", "10.11.0.0/24", "10.11.0.1"), "web-2", "pod-3", 5))
	if !errors.Is(err, backend.ErrNoNetwork) {
		t.Errorf("EnsurePort on a Network the backend does not hold: %v, want ErrNoNetwork", err)
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("EnsurePort without a Network wrote to the database")
	}

	// An invalid port is refused before anything is read.
	bad := podPort(n, "web-3", "pod-4", 5)
	bad.MAC = net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}
	if _, err := b.EnsurePort(ctx, bad); err == nil || errors.Is(err, backend.ErrNoNetwork) {
		t.Errorf("EnsurePort with a multicast MAC: %v, want it refused", err)
	}
}

// TestEnsurePortMoves: a pod whose Network changed gets its port moved to the new Network's
// switch, keeping its UUID, and taken off the old one; a port moved by hand to another switch
// is put back.
func TestEnsurePortMoves(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)
	n1 := network("ns1", "net1", "uid-1", "10.20.0.0/24", "10.20.0.1")
	n2 := network("ns2", "net2", "uid-2", "10.21.0.0/24", "10.21.0.1")
	mustEnsure(t, ctx, b, n1)
	mustEnsure(t, ctx, b, n2)

	p := podPort(n1, "web-0", "pod-1", 5)
	first := mustEnsurePort(t, ctx, b, p)
	moved := podPort(n2, "web-0", "pod-1", 9)
	st := mustEnsurePort(t, ctx, b, moved)
	if !st.Changed || st.ID != first.ID || st.Switch != "c1.ns2.net2" {
		t.Errorf("EnsurePort on another Network = %+v, want the port %s moved to c1.ns2.net2", st, first.ID)
	}
	checkPort(t, db, moved, st)
	if again := mustEnsurePort(t, ctx, b, moved); again.Changed {
		t.Errorf("EnsurePort after the move changed something: %+v", again)
	}

	// Moved by hand, in one transaction, to the other switch: put back.
	sw1 := dump(t, db).OfUID(cluster, n1.UID).Switches[0].UUID
	sw2 := dump(t, db).OfUID(cluster, n2.UID).Switches[0].UUID
	db.NBCtl(t, "remove", "Logical_Switch", sw2, "ports", st.ID, "--", "add", "Logical_Switch", sw1, "ports", st.ID)
	waitFor(t, ctx, "the backend to see the port moved", func() bool {
		repaired, err := b.EnsurePort(ctx, moved)
		return err == nil && repaired.Changed
	})
	checkPort(t, db, moved, st)
	// The Networks' own rows are untouched by all of it.
	for _, n := range []backend.Network{n1, n2} {
		if again := mustEnsure(t, ctx, b, n); again.Changed {
			t.Errorf("Ensure of %s after the pod's moves changed something", n.Name)
		}
	}
}

// TestPortNameConflict: a row of another owner under the pod's port name makes EnsurePort fail
// with a NameConflictError and write nothing; DeletePort leaves that row alone. OnChange reports
// the row with the pod of the name, Foreign.
func TestPortNameConflict(t *testing.T) {
	ctx, db, b, seen := startWatched(t)
	n := network("ns1", "net1", "uid-1", "10.30.0.0/24", "10.30.0.1")
	mustEnsure(t, ctx, b, n)

	db.NBCtl(t, "ls-add", "elsewhere", "--", "lsp-add", "elsewhere", "c1.pod.pod-1",
		"--", "set", "Logical_Switch_Port", "c1.pod.pod-1", "external_ids:samplecrd.k8s.io/owner=c2")
	foreign := db.NBCtl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch_Port", "name=c1.pod.pod-1")
	waitFor(t, ctx, "OnChange to report the row of another owner", func() bool {
		return slices.ContainsFunc(seen.reported(), func(c backend.Change) bool {
			return c.Foreign && c.Pod != nil && c.Pod.UID == "pod-1"
		})
	})

	size := fileSize(t, db.DBFile())
	_, err := b.EnsurePort(ctx, podPort(n, "web-0", "pod-1", 5))
	var conflict *backend.NameConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("EnsurePort with the name taken: %v, want a NameConflictError", err)
	}
	if want := (backend.NameConflictError{Kind: "logical switch port", Name: "c1.pod.pod-1", ID: foreign, Owner: `owner "c2"`}); *conflict != want {
		t.Errorf("NameConflictError = %+v, want %+v", *conflict, want)
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("EnsurePort with the name taken wrote to the database")
	}
	if err := b.DeletePort(ctx, "pod-1"); err != nil {
		t.Errorf("DeletePort with the name taken by another owner: %v", err)
	}
	if id := db.NBCtl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch_Port", "name=c1.pod.pod-1"); id != foreign {
		t.Errorf("the row of another owner is %q after DeletePort, want %s kept", id, foreign)
	}
	if ports, err := b.ListPorts(ctx); err != nil || len(ports) != 0 {
		t.Errorf("ListPorts = %+v, %v; the row of another owner is no port of the cluster's", ports, err)
	}

	// Once the row goes, the port is created.
	db.NBCtl(t, "ls-del", "elsewhere")
	waitFor(t, ctx, "the backend to see the name free", func() bool {
		_, err := b.EnsurePort(ctx, podPort(n, "web-0", "pod-1", 5))
		return err == nil
	})
	checkPort(t, db, podPort(n, "web-0", "pod-1", 5), mustEnsurePort(t, ctx, b, podPort(n, "web-0", "pod-1", 5)))
}

// TestNetworkPathsLeavePodPorts: with pods attached, a Network's Ensure (after a gateway and a
// CIDR change, and with a duplicate switch to remove), List and Prune leave the pod ports alone;
// its Delete removes them with the switch, and nothing of them is left in the backend's cache.
func TestNetworkPathsLeavePodPorts(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)
	n := network("ns1", "net1", "uid-1", "10.40.0.0/24", "10.40.0.1")
	other := network("ns1", "net2", "uid-2", "10.41.0.0/24", "10.41.0.1")
	mustEnsure(t, ctx, b, n)
	mustEnsure(t, ctx, b, other)
	var ports []backend.Port
	for i := range 3 {
		p := podPort(n, fmt.Sprintf("web-%d", i), types.UID(fmt.Sprintf("pod-%d", i)), byte(10+i))
		mustEnsurePort(t, ctx, b, p)
		ports = append(ports, p)
	}
	mustEnsurePort(t, ctx, b, podPort(other, "db-0", "pod-other", 10))
	wantPods := map[string][]string{
		"pod-0": {"c1.ns1.net1"}, "pod-1": {"c1.ns1.net1"}, "pod-2": {"c1.ns1.net1"}, "pod-other": {"c1.ns1.net2"},
	}
	podRows := func() []nbdb.LogicalSwitchPort {
		var out []nbdb.LogicalSwitchPort
		for _, p := range dump(t, db).SwitchPorts {
			if _, ok := p.ExternalIDs[ovn.PodUIDKey]; ok {
				out = append(out, p)
			}
		}
		return out
	}
	rowsBefore := podRows()
	check := func(step string) {
		t.Helper()
		if diff := cmp.Diff(wantPods, podPortsOf(dump(t, db))); diff != "" {
			t.Errorf("%s: pod ports (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(rowsBefore, podRows(), emptyIsNil); diff != "" {
			t.Errorf("%s: pod port rows changed (-before +after):\n%s", step, diff)
		}
	}

	// Nothing to do for the Network with its pods.
	if st := mustEnsure(t, ctx, b, n); st.Changed {
		t.Errorf("Ensure of the Network with pods attached changed something")
	}
	n.Gateway = netip.MustParseAddr("10.40.0.254")
	if st := mustEnsure(t, ctx, b, n); !st.Changed {
		t.Errorf("Ensure after a gateway change reported no change")
	}
	check("gateway changed")
	n.CIDR, n.Gateway = netip.MustParsePrefix("10.40.0.0/16"), netip.MustParseAddr("10.40.0.1")
	mustEnsure(t, ctx, b, n)
	check("CIDR changed")

	// A duplicate of the Network's switch, which Ensure removes; a pod's port only on the switch
	// that loses is moved to the one kept.
	original := dump(t, db).OfUID(cluster, n.UID).Switches[0].UUID
	dup := db.NBCtl(t, "create", "Logical_Switch", "name=c1.ns1.net1",
		"external_ids:samplecrd.k8s.io/owner=c1", "external_ids:samplecrd.k8s.io/uid=uid-1")
	kept, loser := min(original, dup), max(original, dup)
	if loser == dup {
		// The original is kept: pod-0 goes to the duplicate only. (Otherwise all the ports are on
		// the switch that loses.)
		pod0, _ := portRow(t, dump(t, db), ovn.PodPortName(cluster, "pod-0"))
		db.NBCtl(t, "remove", "Logical_Switch", original, "ports", pod0.UUID, "--", "add", "Logical_Switch", dup, "ports", pod0.UUID)
	}
	waitFor(t, ctx, "Ensure to remove the duplicate switch", func() bool {
		st, err := b.Ensure(ctx, n)
		return err == nil && st.ID == kept && !dump(t, db).SwitchByUUID(loser)
	})
	check("duplicate switch removed")

	// List: Networks only; Prune: nothing.
	owned, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]backend.Owned{{Namespace: "ns1", Name: "net1", UID: "uid-1"}, {Namespace: "ns1", Name: "net2", UID: "uid-2"}}, owned); diff != "" {
		t.Errorf("List with pods attached (-want +got):\n%s", diff)
	}
	if pruned, err := b.Prune(ctx); err != nil || pruned != 0 {
		t.Errorf("Prune with pods attached = %d, %v; want 0", pruned, err)
	}

	// Delete takes the Network's pod ports along, and leaves the other Network's.
	if err := b.Delete(ctx, n.UID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"pod-other": {"c1.ns1.net2"}}, podPortsOf(dump(t, db))); diff != "" {
		t.Errorf("pod ports after the Network's Delete (-want +got):\n%s", diff)
	}
	left, err := b.ListPorts(ctx)
	if err != nil || len(left) != 1 || left[0].Pod.UID != "pod-other" {
		t.Errorf("ListPorts after the Network's Delete = %+v, %v; want the other Network's pod only", left, err)
	}
	for _, p := range ports {
		if _, err := b.EnsurePort(ctx, p); !errors.Is(err, backend.ErrNoNetwork) {
			t.Errorf("EnsurePort for %s after the Network's Delete: %v, want ErrNoNetwork", p.Pod.Name, err)
		}
		if err := b.DeletePort(ctx, p.Pod.UID); err != nil {
			t.Errorf("DeletePort for %s after the Network's Delete: %v", p.Pod.Name, err)
		}
	}
	// Pod ports do not make a Network: List reports the one left.
	if owned, err := b.List(ctx); err != nil || len(owned) != 1 || owned[0].UID != other.UID {
		t.Errorf("List after the Delete = %+v, %v", owned, err)
	}
}

// TestPortChanges: OnChange reports a pod port deleted by hand with Pod set and the Network its
// keys name, and EnsurePort puts it back; the Network's rows report no pod.
func TestPortChanges(t *testing.T) {
	ctx, db, b, seen := startWatched(t)
	n := network("ns1", "net1", "uid-1", "10.50.0.0/24", "10.50.0.1")
	mustEnsure(t, ctx, b, n)
	p := podPort(n, "web-0", "pod-1", 5)
	st := mustEnsurePort(t, ctx, b, p)

	wantChange := backend.Change{Owned: backend.Owned{Namespace: "ns1", Name: "net1", UID: "uid-1"},
		Pod: &backend.PodRef{Namespace: "default", Name: "web-0", UID: "pod-1"}}
	created := wantChange
	created.Created = true
	waitFor(t, ctx, "OnChange to report the port created", func() bool {
		return slices.ContainsFunc(seen.reported(), func(c backend.Change) bool { return cmp.Equal(c, created) })
	})
	reported := len(seen.reported())
	db.NBCtl(t, "lsp-del", "c1.pod.pod-1")
	waitFor(t, ctx, "OnChange to report the port deleted by hand", func() bool {
		return slices.ContainsFunc(seen.reported()[reported:], func(c backend.Change) bool { return cmp.Equal(c, wantChange) })
	})
	for _, c := range seen.reported() {
		if c.Pod == nil && c.UID == n.UID && !c.Created {
			t.Errorf("a change of the Network's own rows was reported, and none of them changed: %+v", c)
		}
	}
	again := mustEnsurePort(t, ctx, b, p)
	if !again.Changed || again.ID == st.ID {
		t.Errorf("EnsurePort after the port was deleted by hand = %+v, want a new port", again)
	}
	checkPort(t, db, p, again)
}

// TestConcurrentEnsurePort: many pods attached at once to one Network all get their ports (each
// EnsurePort adds its own to the switch's ports, none rewrites them); a Network Ensure after is
// still a no-op.
func TestConcurrentEnsurePort(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)
	n := network("ns1", "net1", "uid-1", "10.60.0.0/24", "10.60.0.1")
	mustEnsure(t, ctx, b, n)

	const pods = 24
	var wg sync.WaitGroup
	errs := make(chan error, pods)
	for i := range pods {
		wg.Go(func() {
			p := podPort(n, fmt.Sprintf("web-%d", i), types.UID(fmt.Sprintf("pod-%d", i)), byte(10+i))
			// A conflict with another EnsurePort is retried, as the pod controller would.
			for {
				_, err := b.EnsurePort(ctx, p)
				if !errors.Is(err, backend.ErrConflict) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("EnsurePort: %v", err)
		}
	}
	got := dump(t, db)
	if pp := podPortsOf(got); len(pp) != pods {
		t.Errorf("%d pod ports, want %d: %v", len(pp), pods, pp)
	}
	if sw := got.OfUID(cluster, n.UID).Switches; len(sw) != 1 || len(sw[0].Ports) != pods+1 {
		t.Errorf("the switch has %d ports, want %d: %+v", len(sw[0].Ports), pods+1, sw)
	}
	size := fileSize(t, db.DBFile())
	if st := mustEnsure(t, ctx, b, n); st.Changed {
		t.Errorf("Ensure of the Network with %d pods changed something", pods)
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("Ensure of the Network with pods attached wrote to the database")
	}
}
