package ovn_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestRouterPerNamespace: Networks of two namespaces with the same CIDR each get their own router;
// a namespace's last Network takes its router along, and changes nothing of the other namespace.
func TestRouterPerNamespace(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)

	a1 := network("team-a", "net", "uid-a1", "10.30.0.0/24", "10.30.0.1")
	a2 := network("team-a", "other", "uid-a2", "10.31.0.0/24", "10.31.0.1")
	b1 := network("team-b", "net", "uid-b1", "10.30.0.0/24", "10.30.0.1")
	for _, n := range []backend.Network{a1, a2, b1} {
		mustEnsure(t, ctx, b, n)
	}
	all := dump(t, db)
	routerA, countA := all.NamespaceRouter(cluster, "team-a")
	routerB, countB := all.NamespaceRouter(cluster, "team-b")
	if countA != 1 || countB != 1 || len(all.RoutersOf(cluster)) != 2 {
		t.Fatalf("want one router per namespace and no other, got %+v", all.Routers)
	}
	portOf := func(n backend.Network) string { return all.OfUID(cluster, n.UID).RouterPorts[0].UUID }
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	if diff := cmp.Diff(sorted(portOf(a1), portOf(a2)), sorted(routerA.Ports...)); diff != "" {
		t.Errorf("team-a's router ports (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{portOf(b1)}, routerB.Ports); diff != "" {
		t.Errorf("team-b's router ports (-want +got):\n%s", diff)
	}
	for _, n := range []backend.Network{a1, b1} {
		got := all.OfUID(cluster, n.UID)
		if diff := cmp.Diff(expectedRows(t, got, n, map[string]string{"subnet": "10.30.0.0/24", "exclude_ips": "10.30.0.1"}, "10.30.0.1/24"), got, emptyIsNil); diff != "" {
			t.Errorf("%s/%s rows (-want +got):\n%s", n.Namespace, n.Name, diff)
		}
	}
	if got := db.NBCtl(t, "--bare", "--columns=name", "find", "Logical_Router", "external_ids:samplecrd.k8s.io/namespace=team-b"); got != "c1.team-b" {
		t.Errorf("ovn-nbctl finds team-b's router as %q", got)
	}

	// team-a's first Network goes: the router stays, with the other one's port.
	if err := b.Delete(ctx, a1.UID); err != nil {
		t.Fatal(err)
	}
	after := dump(t, db)
	if r, n := after.NamespaceRouter(cluster, "team-a"); n != 1 || r.UUID != routerA.UUID || !slices.Equal(r.Ports, []string{portOf(a2)}) {
		t.Errorf("team-a's router after deleting one of two Networks: %+v (%d)", r, n)
	}
	// team-a's last Network goes: so does its router; team-b keeps every row as it was.
	beforeB := after.OfUID(cluster, b1.UID)
	if err := b.Delete(ctx, a2.UID); err != nil {
		t.Fatal(err)
	}
	after = dump(t, db)
	if _, n := after.NamespaceRouter(cluster, "team-a"); n != 0 {
		t.Errorf("team-a's router is left after its last Network went")
	}
	if diff := cmp.Diff([]nbdb.LogicalRouter{routerB}, after.RoutersOf(cluster), emptyIsNil); diff != "" {
		t.Errorf("routers after team-a's last Network went (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(beforeB, after.OfUID(cluster, b1.UID), emptyIsNil); diff != "" {
		t.Errorf("team-b's rows changed (-before +after):\n%s", diff)
	}
	// And the namespace's next Network creates it again.
	mustEnsure(t, ctx, b, a1)
	if _, n := dump(t, db).NamespaceRouter(cluster, "team-a"); n != 1 {
		t.Errorf("team-a has %d routers after a Network came back, want 1", n)
	}
}

// TestNameConflicts: a switch of the cluster under a Network's name but written for another UID is
// replaced in one transaction; rows of other owners under any of the names the Network needs give
// a NameConflictError naming them, nothing is written, and their removal is reported.
func TestNameConflicts(t *testing.T) {
	ctx, db, b, seen := startWatched(t)

	// Ours, with its UID changed out of band: one switch of the name afterwards, a new one.
	n := network("ns1", "net", "uid-1", "10.40.0.0/24", "10.40.0.1")
	first := mustEnsure(t, ctx, b, n)
	db.NBCtl(t, "set", "Logical_Switch", first.ID, "external_ids:samplecrd.k8s.io/uid=uid-tampered")
	seen.waitChange(t, ctx, "uid-tampered", 0)
	size := fileSize(t, db.DBFile())
	second := mustEnsure(t, ctx, b, n)
	if second.ID == first.ID || !second.Changed {
		t.Errorf("Ensure after the UID was changed: %+v, want a new switch replacing %s", second, first.ID)
	}
	all := dump(t, db)
	if named := db.NBCtl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch", "name=c1.ns1.net"); named != second.ID {
		t.Errorf("switches named c1.ns1.net: %q, want only %s", named, second.ID)
	}
	got := all.OfUID(cluster, n.UID)
	if diff := cmp.Diff(expectedRows(t, got, n, map[string]string{"subnet": "10.40.0.0/24", "exclude_ips": "10.40.0.1"}, "10.40.0.1/24"), got, emptyIsNil); diff != "" {
		t.Errorf("rows after the replacement (-want +got):\n%s", diff)
	}
	checkRouter(t, all, "ns1", got.RouterPorts[0].UUID)
	if grown := fileSize(t, db.DBFile()) - size; grown <= 0 {
		t.Errorf("the replacement wrote nothing")
	}

	// A foreign switch under the name of a new Network: a conflict naming it, nothing written.
	foreignSwitch := db.NBCtl(t, "create", "Logical_Switch", "name=c1.ns1.taken", "external_ids:samplecrd.k8s.io/owner=c2")
	taken := network("ns1", "taken", "uid-2", "10.41.0.0/24", "10.41.0.1")
	waitForeignSeen(t, ctx, db, b, taken, "logical switch", "c1.ns1.taken", `owner "c2"`)
	// Its removal is reported with the name's namespace and name, so that the Network is synced
	// again; then Ensure succeeds.
	db.NBCtl(t, "destroy", "Logical_Switch", foreignSwitch)
	waitFor(t, ctx, "the foreign switch's removal reported", func() bool {
		return slices.Contains(seen.reported(), backend.Change{Owned: backend.Owned{Namespace: "ns1", Name: "taken"}, Foreign: true})
	})
	mustEnsure(t, ctx, b, taken)

	// A foreign switch port under the Network's switch port name (with a UUID of its own).
	db.NBCtl(t, "ls-add", "elsewhere", "--", "lsp-add", "elsewhere", "c1.lsp.uid-3")
	waitForeignSeen(t, ctx, db, b, network("ns1", "port", "uid-3", "10.42.0.0/24", "10.42.0.1"),
		"logical switch port", "c1.lsp.uid-3", "no samplecrd.k8s.io/owner external_id")

	// A foreign router under a namespace's router name: no Network of that namespace is written.
	db.NBCtl(t, "lr-add", "c1.ns2")
	waitForeignSeen(t, ctx, db, b, network("ns2", "net", "uid-4", "10.43.0.0/24", "10.43.0.1"),
		"logical router", "c1.ns2", "no samplecrd.k8s.io/owner external_id")
}

// TestRouterKeysRepaired: a router of the cluster whose keys were removed out of band is repaired
// in place: the same router, the same ports, no second router.
func TestRouterKeysRepaired(t *testing.T) {
	ctx, db, b, seen := startWatched(t)

	n1 := network("ns1", "a", "uid-1", "10.44.0.0/24", "10.44.0.1")
	n2 := network("ns1", "b", "uid-2", "10.45.0.0/24", "10.45.0.1")
	mustEnsure(t, ctx, b, n1)
	mustEnsure(t, ctx, b, n2)
	before := dump(t, db)
	router, _ := before.NamespaceRouter(cluster, "ns1")

	for _, step := range []struct {
		name string
		args []string
	}{
		{"role key removed", []string{"remove", "Logical_Router", "c1.ns1", "external_ids", "samplecrd.k8s.io/role"}},
		{"every key removed", []string{"clear", "Logical_Router", "c1.ns1", "external_ids"}},
	} {
		count := seen.count(n1.UID) + seen.count(n2.UID)
		db.NBCtl(t, step.args...)
		// The change is reported for a Network on the router, whose Ensure puts the keys back.
		waitFor(t, ctx, step.name+" reported", func() bool { return seen.count(n1.UID)+seen.count(n2.UID) > count })
		if st := mustEnsure(t, ctx, b, n1); !st.Changed {
			t.Errorf("%s: Ensure changed nothing", step.name)
		}
		after := dump(t, db)
		got, _ := after.NamespaceRouter(cluster, "ns1")
		if diff := cmp.Diff(router, got, emptyIsNil); diff != "" {
			t.Errorf("%s: the router (-before +after):\n%s", step.name, diff)
		}
		if len(after.Routers) != 1 {
			t.Errorf("%s: %d routers, want 1", step.name, len(after.Routers))
		}
		if st := mustEnsure(t, ctx, b, n2); st.Changed {
			t.Errorf("%s: the second Network's Ensure changed something after the repair", step.name)
		}
	}
}

// TestOldLayoutMigrated: the rows of the layout with one router for the cluster are moved to the
// namespace's router by Ensure, and the old router goes with its last port; an old router with no
// port is pruned.
func TestOldLayoutMigrated(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)

	n1 := network("ns1", "a", "uid-1", "10.46.0.0/24", "10.46.0.1")
	n2 := network("ns2", "b", "uid-2", "10.47.0.0/24", "10.47.0.1")
	mustEnsure(t, ctx, b, n1)
	mustEnsure(t, ctx, b, n2)
	all := dump(t, db)
	p1, p2 := all.OfUID(cluster, n1.UID).RouterPorts[0].UUID, all.OfUID(cluster, n2.UID).RouterPorts[0].UUID
	// The old layout: both router ports on c1.router, the namespace routers gone (one transaction,
	// so that the ports are never without a router).
	db.NBCtl(t, "create", "Logical_Router", "name=c1.router",
		"external_ids:samplecrd.k8s.io/owner="+cluster, "external_ids:samplecrd.k8s.io/role=cluster-router",
		"ports="+p1+","+p2,
		"--", "lr-del", "c1.ns1", "--", "lr-del", "c1.ns2")
	old := db.NBCtl(t, "--bare", "--columns=_uuid", "find", "Logical_Router", "name=c1.router")

	waitFor(t, ctx, "the old layout in the cache", func() bool {
		st, err := b.Ensure(ctx, n1)
		return err == nil && st.Changed
	})
	after := dump(t, db)
	if r, n := after.NamespaceRouter(cluster, "ns1"); n != 1 || !slices.Equal(r.Ports, []string{p1}) {
		t.Errorf("ns1's router after migrating: %+v (%d), want the port %s moved onto it", r, n, p1)
	}
	if ports := db.NBCtl(t, "--bare", "--columns=ports", "list", "Logical_Router", old); ports != p2 {
		t.Errorf("the old router's ports: %q, want %s", ports, p2)
	}
	mustEnsure(t, ctx, b, n2)
	after = dump(t, db)
	if _, n := after.NamespaceRouter(cluster, "ns2"); n != 1 || len(after.RoutersOf(cluster)) != 2 {
		t.Errorf("after migrating both: routers %+v, want the two namespace routers only", after.RoutersOf(cluster))
	}

	// An old router that has no port (no Network was left) and an empty router of ours go at the
	// next prune; a router of another owner and routers with ports stay.
	db.NBCtl(t, "create", "Logical_Router", "name=c1.router",
		"external_ids:samplecrd.k8s.io/owner="+cluster, "external_ids:samplecrd.k8s.io/role=cluster-router")
	db.NBCtl(t, "create", "Logical_Router", "name=c1.ns3",
		"external_ids:samplecrd.k8s.io/owner="+cluster, "external_ids:samplecrd.k8s.io/role=namespace-router")
	db.NBCtl(t, "lr-add", "someone-elses")
	var pruned int
	waitFor(t, ctx, "the empty routers pruned", func() bool {
		n, err := b.Prune(ctx)
		pruned += n
		return err == nil && pruned == 2
	})
	after = dump(t, db)
	var names []string
	for _, r := range after.Routers {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"c1.ns1", "c1.ns2", "someone-elses"}, names); diff != "" {
		t.Errorf("routers after the prune (-want +got):\n%s", diff)
	}
}

// TestIPv6PrefixPerLength: ipv6_prefix is written for /64 networks only, and removed when a
// network's prefix length changes away from /64.
func TestIPv6PrefixPerLength(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)
	for _, tt := range []struct {
		cidr, gateway string
		want          string
	}{
		{"fd00:1:2:3::/64", "fd00:1:2:3::1", `"fd00:1:2:3::"`},
		{"fd00:1:2:3::/112", "fd00:1:2:3::1", ""},
		{"fd00:1::/48", "fd00:1::1", ""},
		{"fd00:1:2:3:4:5:6:0/126", "fd00:1:2:3:4:5:6:1", ""},
		{"fd00:9::/64", "fd00:9::1", `"fd00:9::"`},
	} {
		n := network("ns1", "v6", "uid-6", tt.cidr, tt.gateway)
		st := mustEnsure(t, ctx, b, n)
		got := db.NBCtl(t, "--if-exists", "get", "Logical_Switch", st.ID, "other_config:ipv6_prefix")
		if got != tt.want {
			t.Errorf("%s: other_config:ipv6_prefix = %q, want %q", tt.cidr, got, tt.want)
		}
	}
}
