// Package ovn_test tests the OVN backend against a real ovsdb-server with the OVN northbound schema,
// one server per test, started by framework.StartOVSDB.
package ovn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const cluster = "c1"

// expectedRows returns the rows of one network as the backend should write them, with the UUIDs
// taken from got (which must have one row of each kind).
func expectedRows(t *testing.T, got rows, n backend.Network, otherConfig map[string]string, networks string) rows {
	t.Helper()
	if len(got.Switches) != 1 || len(got.SwitchPorts) != 1 || len(got.RouterPorts) != 1 {
		t.Fatalf("want one switch, switch port and router port for %s, got %d, %d and %d", n.UID, len(got.Switches), len(got.SwitchPorts), len(got.RouterPorts))
	}
	ids := map[string]string{
		ovn.OwnerKey:     cluster,
		ovn.NamespaceKey: n.Namespace,
		ovn.NameKey:      n.Name,
		ovn.UIDKey:       string(n.UID),
	}
	switchIDs := map[string]string{ovn.CIDRKey: n.CIDR.String(), ovn.GatewayKey: n.Gateway.String()}
	for k, v := range ids {
		switchIDs[k] = v
	}
	lsp, lrp := got.SwitchPorts[0].UUID, got.RouterPorts[0].UUID
	return rows{
		Switches: []nbdb.LogicalSwitch{{
			UUID:        got.Switches[0].UUID,
			Name:        ovn.SwitchName(cluster, n.Namespace, n.Name),
			Ports:       []string{lsp},
			OtherConfig: otherConfig,
			ExternalIDs: switchIDs,
		}},
		SwitchPorts: []nbdb.LogicalSwitchPort{{
			UUID:        lsp,
			Name:        ovn.SwitchPortName(cluster, n.UID),
			Type:        "router",
			Addresses:   []string{"router"},
			Options:     map[string]string{"router-port": ovn.RouterPortName(cluster, n.UID)},
			ExternalIDs: ids,
		}},
		RouterPorts: []nbdb.LogicalRouterPort{{
			UUID:        lrp,
			Name:        ovn.RouterPortName(cluster, n.UID),
			Networks:    []string{networks},
			MAC:         ovn.RouterPortMAC(n.UID),
			ExternalIDs: ids,
		}},
	}
}

var emptyIsNil = cmpopts.EquateEmpty()

// checkRouter checks that the cluster has exactly one router, the namespace's, and that its ports
// are ports.
func checkRouter(t *testing.T, got rows, namespace string, ports ...string) nbdb.LogicalRouter {
	t.Helper()
	routers := got.RoutersOf(cluster)
	if len(routers) != 1 {
		t.Fatalf("want one router of the cluster, got %d: %+v", len(routers), routers)
	}
	want := nbdb.LogicalRouter{
		UUID:        routers[0].UUID,
		Name:        ovn.RouterName(cluster, namespace),
		Ports:       ports,
		ExternalIDs: map[string]string{ovn.OwnerKey: cluster, ovn.RoleKey: ovn.RoleNamespaceRouter, ovn.NamespaceKey: namespace},
	}
	if diff := cmp.Diff(want, routers[0], emptyIsNil, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("namespace router (-want +got):\n%s", diff)
	}
	return routers[0]
}

// checkNoRouter checks that the cluster has no router left.
func checkNoRouter(t *testing.T, got rows) {
	t.Helper()
	if routers := got.RoutersOf(cluster); len(routers) != 0 {
		t.Errorf("want no router of the cluster, got %+v", routers)
	}
}

// TestEnsureCreates: Ensure of an IPv4 network creates exactly one switch, switch port and router
// port, and the router; a second Ensure changes nothing and writes nothing.
func TestEnsureCreates(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)
	if b.Type() != "ovn" {
		t.Errorf("Type() = %q, want ovn", b.Type())
	}
	n := network("ns1", "net1", "uid-1", "10.10.0.0/24", "10.10.0.1")

	st := mustEnsure(t, ctx, b, n)
	got := dump(t, db)
	want := expectedRows(t, got, n, map[string]string{"subnet": "10.10.0.0/24", "exclude_ips": "10.10.0.1"}, "10.10.0.1/24")
	if diff := cmp.Diff(want, got.OfUID(cluster, n.UID), emptyIsNil); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if len(got.Switches) != 1 || len(got.SwitchPorts) != 1 || len(got.RouterPorts) != 1 || len(got.Routers) != 1 {
		t.Errorf("want exactly one row in each table, got %d switches, %d switch ports, %d routers, %d router ports",
			len(got.Switches), len(got.SwitchPorts), len(got.Routers), len(got.RouterPorts))
	}
	checkRouter(t, got, "ns1", want.RouterPorts[0].UUID)
	wantStatus := backend.Status{Type: "ovn", Name: "c1.ns1.net1", ID: want.Switches[0].UUID, Changed: true}
	if diff := cmp.Diff(wantStatus, st); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}

	// What ovn-nbctl sees, found by the external_ids.
	if id := db.NBCtl(t, "--bare", "--columns=_uuid", "find", "Logical_Switch", "external_ids:samplecrd.k8s.io/uid=uid-1"); id != st.ID {
		t.Errorf("ovn-nbctl finds the switch %q, want %q", id, st.ID)
	}
	if subnet := db.NBCtl(t, "get", "Logical_Switch", st.ID, "other_config:subnet"); subnet != `"10.10.0.0/24"` {
		t.Errorf("ovn-nbctl other_config:subnet = %s", subnet)
	}
	if peer := db.NBCtl(t, "lsp-get-options", "c1.lsp.uid-1"); peer != "router-port=c1.lrp.uid-1" {
		t.Errorf("ovn-nbctl lsp-get-options = %q", peer)
	}
	if mac := db.NBCtl(t, "get", "Logical_Router_Port", "c1.lrp.uid-1", "mac"); mac != `"`+ovn.RouterPortMAC("uid-1")+`"` {
		t.Errorf("ovn-nbctl router port mac = %s", mac)
	}

	// Again: nothing to do, and nothing written (ovsdb-server appends each commit to the file).
	size := fileSize(t, db.DBFile())
	again := mustEnsure(t, ctx, b, n)
	wantStatus.Changed = false
	if diff := cmp.Diff(wantStatus, again); diff != "" {
		t.Errorf("second Ensure status (-want +got):\n%s", diff)
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("the second Ensure wrote to the database: %d bytes before, %d after", size, after)
	}
	if diff := cmp.Diff(got, dump(t, db), emptyIsNil); diff != "" {
		t.Errorf("the second Ensure changed rows (-before +after):\n%s", diff)
	}

	owned, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]backend.Owned{{Namespace: "ns1", Name: "net1", UID: "uid-1"}}, owned); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

// TestEnsureUpdatesInPlace: a changed CIDR and gateway update the same rows, and keys the backend
// does not manage are kept.
func TestEnsureUpdatesInPlace(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)

	n := network("ns1", "net1", "uid-1", "10.20.0.0/24", "10.20.0.1")
	first := mustEnsure(t, ctx, b, n)
	before := dump(t, db).OfUID(cluster, n.UID)
	db.NBCtl(t, "set", "Logical_Switch", first.ID, "other_config:mcast_snoop=true", "external_ids:team=blue")

	n = network("ns1", "net1", "uid-1", "10.30.0.0/16", "10.30.0.254")
	// The backend may not have seen the ovn-nbctl change yet; it does not matter for the update.
	second := mustEnsure(t, ctx, b, n)
	if second.ID != first.ID || !second.Changed {
		t.Errorf("second Ensure = %+v, want the same switch %s, changed", second, first.ID)
	}
	got := dump(t, db).OfUID(cluster, n.UID)
	want := expectedRows(t, got, n, map[string]string{"subnet": "10.30.0.0/16", "exclude_ips": "10.30.0.254", "mcast_snoop": "true"}, "10.30.0.254/16")
	want.Switches[0].ExternalIDs["team"] = "blue"
	if diff := cmp.Diff(want, got, emptyIsNil); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if got.SwitchPorts[0].UUID != before.SwitchPorts[0].UUID || got.RouterPorts[0].UUID != before.RouterPorts[0].UUID {
		t.Errorf("the ports were replaced, not updated: before %+v, after %+v", before, got)
	}
}

// TestDriftRepair: rows changed or deleted with ovn-nbctl are reported through OnChange and put
// back by Ensure.
func TestDriftRepair(t *testing.T) {
	ctx, db, b, seen := startWatched(t)

	n := network("ns1", "net1", "uid-1", "10.40.0.0/24", "10.40.0.1")
	ensured := mustEnsure(t, ctx, b, n)
	wantOtherConfig := map[string]string{"subnet": "10.40.0.0/24", "exclude_ips": "10.40.0.1"}
	check := func(step string) rows {
		t.Helper()
		all := dump(t, db)
		got := all.OfUID(cluster, n.UID)
		if diff := cmp.Diff(expectedRows(t, got, n, wantOtherConfig, "10.40.0.1/24"), got, emptyIsNil); diff != "" {
			t.Errorf("%s: rows (-want +got):\n%s", step, diff)
		}
		checkRouter(t, all, "ns1", got.RouterPorts[0].UUID)
		return got
	}
	// repair runs Ensure after an out-of-band change, once OnChange has reported it (the backend
	// has then seen it in its cache).
	repair := func(step string, after int) backend.Status {
		t.Helper()
		seen.waitChange(t, ctx, n.UID, after)
		st := mustEnsure(t, ctx, b, n)
		if !st.Changed {
			t.Errorf("%s: Ensure reported no change", step)
		}
		return st
	}

	// A changed subnet is put back.
	count := seen.count(n.UID)
	db.NBCtl(t, "set", "Logical_Switch", ensured.ID, "other_config:subnet=10.99.0.0/24", "other_config:exclude_ips=10.99.0.1")
	if st := repair("subnet changed", count); st.ID != ensured.ID {
		t.Errorf("subnet changed: the switch was replaced: %s, was %s", st.ID, ensured.ID)
	}
	check("subnet changed")

	// A deleted switch is created again, with a new switch port (which OVN deleted with it).
	count = seen.count(n.UID)
	db.NBCtl(t, "ls-del", ensured.ID)
	recreated := repair("switch deleted", count)
	if recreated.ID == ensured.ID || recreated.ID == "" {
		t.Errorf("switch deleted: Ensure returned the switch %q", recreated.ID)
	}
	got := check("switch deleted")
	if got.Switches[0].UUID != recreated.ID {
		t.Errorf("switch deleted: Ensure returned %s, the switch is %s", recreated.ID, got.Switches[0].UUID)
	}

	// A deleted router port is created again on the router.
	count = seen.count(n.UID)
	db.NBCtl(t, "lrp-del", ovn.RouterPortName(cluster, n.UID))
	repair("router port deleted", count)
	check("router port deleted")

	// Changed switch port options, addresses and external_ids are put back.
	count = seen.count(n.UID)
	lsp := ovn.SwitchPortName(cluster, n.UID)
	// One ovn-nbctl call is one transaction, so that OnChange reports all of it at once.
	db.NBCtl(t, "lsp-set-options", lsp, "router-port=elsewhere",
		"--", "lsp-set-addresses", lsp, "00:00:00:00:00:01 10.40.0.9",
		"--", "set", "Logical_Switch_Port", lsp, "external_ids:samplecrd.k8s.io/name=other")
	repair("switch port changed", count)
	check("switch port changed")

	// A changed router port MAC and network are put back.
	count = seen.count(n.UID)
	lrp := ovn.RouterPortName(cluster, n.UID)
	db.NBCtl(t, "set", "Logical_Router_Port", lrp, "mac=\"0a:00:00:00:00:01\"", "networks=\"10.40.0.2/24\"")
	repair("router port changed", count)
	check("router port changed")

	// A router port moved to another router of the cluster is moved back.
	count = seen.count(n.UID)
	moved := check("before moving the router port").RouterPorts[0].UUID
	db.NBCtl(t, "lr-add", "c1.other", "--", "set", "Logical_Router", "c1.other", "external_ids:samplecrd.k8s.io/owner="+cluster,
		"--", "remove", "Logical_Router", ovn.RouterName(cluster, "ns1"), "ports", moved,
		"--", "add", "Logical_Router", "c1.other", "ports", moved)
	repair("router port moved", count)
	// check also finds that the other router, the cluster's and left without ports, went in the
	// same transaction.
	if got := check("router port moved"); got.RouterPorts[0].UUID != moved {
		t.Errorf("router port moved: the port was replaced instead of moved back")
	}

	// The deleted router is created again, with the router port.
	count = seen.count(n.UID)
	db.NBCtl(t, "lr-del", ovn.RouterName(cluster, "ns1"))
	repair("router deleted", count)
	check("router deleted")

	// A duplicate switch for the UID (added by someone else) is deleted. Additions are not reported
	// through OnChange, so Ensure runs until the backend has seen it.
	db.NBCtl(t, "create", "Logical_Switch", "name=duplicate",
		"external_ids:samplecrd.k8s.io/owner="+cluster, "external_ids:samplecrd.k8s.io/uid="+string(n.UID))
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		st, err := b.Ensure(ctx, n)
		return st.Changed, err
	})
	if err != nil {
		t.Fatalf("Ensure did not remove the duplicate switch: %v", err)
	}
	if got := check("duplicate switch"); got.Switches[0].UUID != recreated.ID {
		t.Errorf("duplicate switch: the switch %s was kept instead of %s", got.Switches[0].UUID, recreated.ID)
	}
}

// TestDelete: Delete removes every row of the UID and nothing else; deleting what is not there
// succeeds.
func TestDelete(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)

	a := network("ns1", "a", "uid-a", "10.50.0.0/24", "10.50.0.1")
	keep := network("ns1", "b", "uid-b", "10.51.0.0/24", "10.51.0.1")
	mustEnsure(t, ctx, b, a)
	mustEnsure(t, ctx, b, keep)
	before := dump(t, db).OfUID(cluster, keep.UID)

	if err := b.Delete(ctx, a.UID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	all := dump(t, db)
	if got := all.OfUID(cluster, a.UID); len(got.Switches)+len(got.SwitchPorts)+len(got.RouterPorts) != 0 {
		t.Errorf("rows of the deleted network remain: %+v", got)
	}
	if diff := cmp.Diff(before, all.OfUID(cluster, keep.UID), emptyIsNil); diff != "" {
		t.Errorf("the other network's rows changed (-before +after):\n%s", diff)
	}
	if len(all.Switches) != 1 || len(all.SwitchPorts) != 1 || len(all.RouterPorts) != 1 {
		t.Errorf("want only the other network's rows, got %+v", all)
	}
	checkRouter(t, all, "ns1", before.RouterPorts[0].UUID)

	owned, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]backend.Owned{{Namespace: "ns1", Name: "b", UID: "uid-b"}}, owned); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	// A router port alone (its switch deleted by someone else) still counts, and is deleted.
	db.NBCtl(t, "ls-del", ovn.SwitchName(cluster, keep.Namespace, keep.Name))
	err = wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		owned, err := b.List(ctx)
		return err == nil && len(owned) == 1 && owned[0].UID == keep.UID, err
	})
	if err != nil {
		t.Fatalf("List does not return the network with a router port left: %v", err)
	}
	if err := b.Delete(ctx, keep.UID); err != nil {
		t.Fatalf("Delete of a router port alone: %v", err)
	}
	all = dump(t, db)
	if len(all.Switches)+len(all.SwitchPorts)+len(all.RouterPorts) != 0 {
		t.Errorf("rows remain after deleting everything: %+v", all)
	}
	checkNoRouter(t, all)
	if owned, err := b.List(ctx); err != nil || len(owned) != 0 {
		t.Errorf("List after deleting everything = %+v, %v", owned, err)
	}

	size := fileSize(t, db.DBFile())
	for _, uid := range []types.UID{a.UID, keep.UID, "never-existed"} {
		if err := b.Delete(ctx, uid); err != nil {
			t.Errorf("Delete(%s) of nothing: %v", uid, err)
		}
	}
	if after := fileSize(t, db.DBFile()); after != size {
		t.Errorf("Delete of nothing wrote to the database")
	}
}

// TestOtherOwners: rows of another cluster name, even with the same UID, are not listed, changed or
// deleted.
func TestOtherOwners(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	// Rows of cluster c2, written before the backend starts so that its first cache has them: one
	// for another UID, one for the UID the test ensures.
	foreign := func(name, uid string) string {
		return db.NBCtl(t, "create", "Logical_Switch", "name="+name,
			"external_ids:samplecrd.k8s.io/owner=c2", "external_ids:samplecrd.k8s.io/uid="+uid,
			"external_ids:samplecrd.k8s.io/namespace=ns1", "external_ids:samplecrd.k8s.io/name="+name,
			"other_config:subnet=10.70.0.0/24")
	}
	foreign("c2.ns1.x", "uid-x")
	foreign("c2.ns1.mine", "uid-mine") // the same UID as this cluster's, another owner
	db.NBCtl(t, "create", "Logical_Router", "name=c1.router",
		"external_ids:samplecrd.k8s.io/owner=c2", "external_ids:samplecrd.k8s.io/role=cluster-router")
	foreignRows := func(r rows) rows {
		var out rows
		for _, s := range r.Switches {
			if s.ExternalIDs[ovn.OwnerKey] == "c2" {
				out.Switches = append(out.Switches, s)
			}
		}
		for _, router := range r.Routers {
			if router.ExternalIDs[ovn.OwnerKey] == "c2" {
				out.Routers = append(out.Routers, router)
			}
		}
		return out
	}
	before := foreignRows(dump(t, db))

	b := newReadyBackend(t, ctx, db, cluster)
	owned, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) != 0 {
		t.Errorf("List returned another owner's networks: %+v", owned)
	}

	n := network("ns1", "mine", "uid-mine", "10.60.0.0/24", "10.60.0.1")
	mustEnsure(t, ctx, b, n)
	all := dump(t, db)
	got := all.OfUID(cluster, n.UID)
	if diff := cmp.Diff(expectedRows(t, got, n, map[string]string{"subnet": "10.60.0.0/24", "exclude_ips": "10.60.0.1"}, "10.60.0.1/24"), got, emptyIsNil); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	checkRouter(t, all, "ns1", got.RouterPorts[0].UUID)
	owned, err = b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]backend.Owned{{Namespace: "ns1", Name: "mine", UID: "uid-mine"}}, owned); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	// A router port of someone else holds the name this cluster's would have (port names are
	// unique in OVN): Ensure says so, writes nothing, and leaves it alone.
	db.NBCtl(t, "lr-add", "foreign", "--", "lrp-add", "foreign", "c1.lrp.uid-blocked", "0a:00:00:00:00:99", "10.61.0.1/24")
	foreignPort := db.NBCtl(t, "--bare", "--columns=_uuid,networks", "list", "Logical_Router_Port", "c1.lrp.uid-blocked")
	waitForeignSeen(t, ctx, db, b, network("ns1", "blocked", "uid-blocked", "10.62.0.0/24", "10.62.0.1"),
		"logical router port", "c1.lrp.uid-blocked", "no samplecrd.k8s.io/owner external_id")
	if got := db.NBCtl(t, "--bare", "--columns=_uuid,networks", "list", "Logical_Router_Port", "c1.lrp.uid-blocked"); got != foreignPort {
		t.Errorf("the foreign router port changed: %q, was %q", got, foreignPort)
	}

	for _, uid := range []types.UID{"uid-mine", "uid-x", "uid-blocked"} {
		if err := b.Delete(ctx, uid); err != nil {
			t.Fatalf("Delete(%s): %v", uid, err)
		}
	}
	after := dump(t, db)
	if diff := cmp.Diff(before, foreignRows(after), emptyIsNil); diff != "" {
		t.Errorf("the other owner's rows changed (-before +after):\n%s", diff)
	}
	if got := after.OfUID(cluster, n.UID); len(got.Switches)+len(got.SwitchPorts)+len(got.RouterPorts) != 0 {
		t.Errorf("rows of the deleted network remain: %+v", got)
	}
}

// waitForeignSeen calls Ensure until it fails with a NameConflictError (the backend's cache has
// the row that an ovn-nbctl call just wrote), checks the error, and that nothing was written.
func waitForeignSeen(t *testing.T, ctx context.Context, db *framework.OVSDB, b *ovn.Backend, n backend.Network, kind, name, owner string) {
	t.Helper()
	var conflict *backend.NameConflictError
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := b.Ensure(ctx, n)
		return errors.As(err, &conflict), nil
	})
	if err != nil {
		t.Fatalf("Ensure of %s never reported the name conflict: %v", n.Name, err)
	}
	if conflict.Kind != kind || conflict.Name != name || conflict.Owner != owner {
		t.Errorf("name conflict %+v, want a %s %q of %s", conflict, kind, name, owner)
	}
	t.Logf("Ensure of %s: %v", n.Name, conflict)
	if got := dump(t, db).OfUID(cluster, n.UID); len(got.Switches)+len(got.SwitchPorts)+len(got.RouterPorts) != 0 {
		t.Errorf("Ensure of %s wrote rows despite the conflict: %+v", n.Name, got)
	}
}

// TestServerDown: the backend starts without a server, reports ErrNotReady until the server is
// there, and reconnects by itself after the server restarts, without duplicating rows.
func TestServerDown(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	db.Stop(t)

	start := time.Now()
	b := newBackend(t, ctx, db, cluster)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("New took %s with the server down", elapsed)
	}
	n := network("ns1", "net1", "uid-1", "10.80.0.0/24", "10.80.0.1")
	checkNotReady := func(step string) {
		t.Helper()
		if err := b.Ready(); !isNotReady(err) {
			t.Errorf("%s: Ready() = %v, want ErrNotReady", step, err)
		}
		if _, err := b.Ensure(ctx, n); !isNotReady(err) {
			t.Errorf("%s: Ensure error = %v, want ErrNotReady", step, err)
		}
		if _, err := b.List(ctx); !isNotReady(err) {
			t.Errorf("%s: List error = %v, want ErrNotReady", step, err)
		}
		if err := b.Delete(ctx, n.UID); !isNotReady(err) {
			t.Errorf("%s: Delete error = %v, want ErrNotReady", step, err)
		}
	}
	checkNotReady("server never started")

	db.Start(t)
	waitReady(t, ctx, b)
	first := mustEnsure(t, ctx, b, n)

	// Restart the server under the connected backend.
	db.Stop(t)
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return b.Ready() != nil, nil
	})
	if err != nil {
		t.Fatalf("Ready stayed nil with the server stopped: %v", err)
	}
	checkNotReady("server stopped")
	db.Start(t)
	waitReady(t, ctx, b)

	again := mustEnsure(t, ctx, b, n)
	if again.Changed || again.ID != first.ID {
		t.Errorf("Ensure after reconnecting = %+v, want no change to %s", again, first.ID)
	}
	other := network("ns1", "net2", "uid-2", "10.81.0.0/24", "10.81.0.1")
	mustEnsure(t, ctx, b, other)

	// A restart that the backend may or may not notice before it is over.
	db.Stop(t)
	db.Start(t)
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		st, err := b.Ensure(ctx, n)
		return err == nil && !st.Changed, nil
	})
	if err != nil {
		t.Fatalf("Ensure did not succeed after a quick restart: %v", err)
	}

	all := dump(t, db)
	if len(all.Switches) != 2 || len(all.SwitchPorts) != 2 || len(all.RouterPorts) != 2 {
		t.Errorf("want two networks' rows, got %d switches, %d switch ports, %d router ports",
			len(all.Switches), len(all.SwitchPorts), len(all.RouterPorts))
	}
	checkRouter(t, all, "ns1", all.RouterPorts[0].UUID, all.RouterPorts[1].UUID)
}

// TestServerHangs: a server that stops answering without closing the connection is detected by
// the echo probes; the backend reconnects once the server answers again.
func TestServerHangs(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b, err := ovn.New(ctx, ovn.Options{
		Endpoint:       db.Endpoint(),
		ClusterName:    cluster,
		MaxBackoff:     200 * time.Millisecond,
		ConnectTimeout: time.Second,
		ProbeInterval:  200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	waitReady(t, ctx, b)
	n := network("ns1", "net1", "uid-1", "10.85.0.0/24", "10.85.0.1")
	first := mustEnsure(t, ctx, b, n)

	db.Pause(t)
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return isNotReady(b.Ready()), nil
	})
	db.Resume(t)
	if err != nil {
		t.Fatalf("Ready stayed nil with the server hung: %v", err)
	}
	waitReady(t, ctx, b)
	if st := mustEnsure(t, ctx, b, n); st.Changed || st.ID != first.ID {
		t.Errorf("Ensure after the hang = %+v, want no change to %s", st, first.ID)
	}
}

// TestConcurrentEnsure: 200 networks ensured by 8 goroutines at once, on a backend that is still
// creating its router, give exactly 200 of each row and one router.
func TestConcurrentEnsure(t *testing.T) {
	const networks, workers = 200, 8
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)

	var all []backend.Network
	for i := range networks {
		all = append(all, network("ns", fmt.Sprintf("net%d", i), types.UID(fmt.Sprintf("uid-%03d", i)),
			fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256), fmt.Sprintf("10.%d.%d.1", 100+i/256, i%256)))
	}
	ensureAll := func() (time.Duration, int) {
		work := make(chan backend.Network)
		var mu sync.Mutex
		var errs []error
		changed := 0
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for n := range work {
					st, err := b.Ensure(ctx, n)
					mu.Lock()
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
					}
					if st.Changed {
						changed++
					}
					mu.Unlock()
				}
			})
		}
		for _, n := range all {
			work <- n
		}
		close(work)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("Ensure failed: %v", err)
		}
		return time.Since(start), changed
	}

	elapsed, changed := ensureAll()
	t.Logf("created %d networks with %d workers in %s: %.0f Ensure/s", networks, workers, elapsed, float64(networks)/elapsed.Seconds())
	if changed != networks {
		t.Errorf("%d Ensure calls reported a change, want %d", changed, networks)
	}
	got := dump(t, db)
	if len(got.Switches) != networks || len(got.SwitchPorts) != networks || len(got.RouterPorts) != networks {
		t.Errorf("want %d of each row, got %d switches, %d switch ports, %d router ports",
			networks, len(got.Switches), len(got.SwitchPorts), len(got.RouterPorts))
	}
	var ports []string
	for _, p := range got.RouterPorts {
		ports = append(ports, p.UUID)
	}
	checkRouter(t, got, "ns", ports...)
	for _, s := range got.Switches {
		if len(s.Ports) != 1 {
			t.Errorf("switch %s has %d ports, want 1", s.Name, len(s.Ports))
		}
	}

	elapsed, changed = ensureAll()
	t.Logf("checked %d unchanged networks with %d workers in %s: %.0f Ensure/s", networks, workers, elapsed, float64(networks)/elapsed.Seconds())
	if changed != 0 {
		t.Errorf("%d Ensure calls reported a change on unchanged networks", changed)
	}
}

// TestTwoBackendsRace: two backends of the same cluster (two controller replicas) ensure the same
// networks at once. The guards make the losing transactions fail with ErrConflict instead of
// creating a second row; after retries there is exactly one of each row.
func TestTwoBackendsRace(t *testing.T) {
	const networks = 50
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	backends := []*ovn.Backend{newBackend(t, ctx, db, cluster), newBackend(t, ctx, db, cluster)}
	for _, b := range backends {
		waitReady(t, ctx, b)
	}
	var mu sync.Mutex
	conflicts := 0
	var wg sync.WaitGroup
	for _, b := range backends {
		wg.Go(func() {
			for i := range networks {
				n := network("ns", fmt.Sprintf("net%d", i), types.UID(fmt.Sprintf("uid-%03d", i)),
					fmt.Sprintf("10.200.%d.0/24", i), fmt.Sprintf("10.200.%d.1", i))
				err := wait.PollUntilContextTimeout(ctx, time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
					_, err := b.Ensure(ctx, n)
					if err != nil {
						mu.Lock()
						if errors.Is(err, ovn.ErrConflict) {
							conflicts++
						}
						mu.Unlock()
					}
					return err == nil, nil
				})
				if err != nil {
					t.Errorf("Ensure of %s never succeeded: %v", n.Name, err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d transactions failed with ErrConflict", conflicts)
	got := dump(t, db)
	if len(got.Switches) != networks || len(got.SwitchPorts) != networks || len(got.RouterPorts) != networks {
		t.Errorf("want %d of each row, got %d switches, %d switch ports, %d router ports",
			networks, len(got.Switches), len(got.SwitchPorts), len(got.RouterPorts))
	}
	if routers := got.RoutersOf(cluster); len(routers) != 1 {
		t.Errorf("want one router, got %d: %+v", len(routers), routers)
	}
}

// TestIPv6: an IPv6 network uses ipv6_prefix instead of subnet, and switching families updates the
// switch in place.
func TestIPv6(t *testing.T) {
	ctx := testContext(t)
	db := framework.StartOVSDB(t)
	b := newReadyBackend(t, ctx, db, cluster)

	n := network("ns1", "v6", "uid-6", "fd00:10:20::/64", "fd00:10:20::1")
	first := mustEnsure(t, ctx, b, n)
	got := dump(t, db).OfUID(cluster, n.UID)
	if diff := cmp.Diff(expectedRows(t, got, n, map[string]string{"ipv6_prefix": "fd00:10:20::"}, "fd00:10:20::1/64"), got, emptyIsNil); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if out := db.NBCtl(t, "get", "Logical_Switch", first.ID, "other_config"); strings.Contains(out, "subnet") {
		t.Errorf("an IPv6 switch has a subnet: %s", out)
	}

	n = network("ns1", "v6", "uid-6", "10.90.0.0/24", "10.90.0.1")
	second := mustEnsure(t, ctx, b, n)
	if second.ID != first.ID {
		t.Errorf("switching to IPv4 replaced the switch")
	}
	got = dump(t, db).OfUID(cluster, n.UID)
	if diff := cmp.Diff(expectedRows(t, got, n, map[string]string{"subnet": "10.90.0.0/24", "exclude_ips": "10.90.0.1"}, "10.90.0.1/24"), got, emptyIsNil); diff != "" {
		t.Errorf("rows after switching to IPv4 (-want +got):\n%s", diff)
	}
}
