package faults

import (
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/types"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// foreignOwner owns the rows the tamper scenario adds for someone else: the manager must leave
// them as they are.
const foreignOwner = "someone-else"

// tamperTargets is how many programmed Networks of the first namespace the tampering needs.
const tamperTargets = 12

// tamper changes the OVN database behind the manager's back while the burst goes on, one kind of
// change per Network: each kind of owned row deleted, each altered (a switch's name, external_ids
// of a switch and of a switch port, a switch's subnet, a router port's networks, a router port
// moved to another namespace's router, a switch port moved to another switch, a switch's UID
// changed), a namespace's router deleted with all its ports, orphan rows of the cluster with an
// unknown UID, and rows of another owner under names the cluster does not use.
func tamper(r *run) {
	ns0, ns1, ns2 := r.namespaces[0], r.namespaces[1], r.namespaces[2]
	var targets []*samplecrdv1.Network
	err := poll(r.ctx, 50*time.Millisecond, r.deadline(), func() bool {
		targets = programmedIn(r, ns0)
		return len(targets) >= tamperTargets && len(programmedIn(r, ns1)) > 0 && len(programmedIn(r, ns2)) > 0
	})
	if err != nil {
		r.fatalf("waiting for %d programmed Networks to tamper with: %v", tamperTargets, err)
	}
	rows := r.db.Dump(r.t)
	type target struct {
		n        *samplecrdv1.Network
		ls       string // switch UUID
		lsp, lrp string // port names
		lspUUID  string
		lrpUUID  string
	}
	pick := func(i int) target {
		n := targets[i]
		own := rows.OfUID(cluster, n.UID)
		if len(own.Switches) != 1 || len(own.SwitchPorts) != 1 || len(own.RouterPorts) != 1 {
			r.fatalf("Network %s/%s is Ready without its rows: %+v", n.Namespace, n.Name, own)
		}
		return target{n: n, ls: own.Switches[0].UUID, lsp: own.SwitchPorts[0].Name, lrp: own.RouterPorts[0].Name,
			lspUUID: own.SwitchPorts[0].UUID, lrpUUID: own.RouterPorts[0].UUID}
	}
	nbctl := func(args ...string) {
		r.t.Helper()
		r.db.NBCtl(r.t, args...)
	}
	ext := func(key, value string) string { return fmt.Sprintf("external_ids:%q=%q", key, value) }
	router0, router1, router2 := ovn.RouterName(cluster, ns0), ovn.RouterName(cluster, ns1), ovn.RouterName(cluster, ns2)

	// Deleted: a switch (its switch port goes with it), a switch port, a router port.
	nbctl("ls-del", pick(0).ls)
	nbctl("lsp-del", pick(1).lsp)
	nbctl("lrp-del", pick(2).lrp)
	// Altered: a switch's name, its external_ids, a switch port's external_ids, a subnet, a router
	// port's networks.
	nbctl("set", "Logical_Switch", pick(3).ls, "name=tampered-name")
	nbctl("set", "Logical_Switch", pick(4).ls, ext(ovn.NameKey, "tampered"))
	nbctl("set", "Logical_Switch_Port", pick(5).lsp, ext(ovn.NamespaceKey, "tampered"))
	nbctl("set", "Logical_Switch", pick(6).ls, "other_config:subnet=10.250.0.0/24", "other_config:exclude_ips=10.250.0.1")
	nbctl("set", "Logical_Router_Port", pick(7).lrp, `networks="10.250.1.1/24"`)
	// Moved: a router port to another namespace's router, a switch port to another switch.
	moved := pick(8)
	nbctl("remove", "Logical_Router", router0, "ports", moved.lrpUUID, "--", "add", "Logical_Router", router1, "ports", moved.lrpUUID)
	from, to := pick(9), pick(10)
	nbctl("remove", "Logical_Switch", from.ls, "ports", from.lspUUID, "--", "add", "Logical_Switch", to.ls, "ports", from.lspUUID)
	// A switch that says it belongs to a UID no Network has.
	nbctl("set", "Logical_Switch", pick(11).ls, ext(ovn.UIDKey, uuid.NewString()))
	// A namespace's router, with every router port on it.
	nbctl("lr-del", router2)

	// Orphans: a switch, its switch port and a router port on the namespace's router, of the
	// cluster, for a UID and a Network name that do not exist.
	ghost := types.UID(uuid.NewString())
	ids := func(table, name string) []string {
		return []string{"--", "set", table, name, ext(ovn.OwnerKey, cluster), ext(ovn.UIDKey, string(ghost)),
			ext(ovn.NamespaceKey, ns0), ext(ovn.NameKey, "ghost")}
	}
	ghostSwitch := ovn.SwitchName(cluster, ns0, "ghost")
	args := []string{"ls-add", ghostSwitch}
	args = append(args, ids("Logical_Switch", ghostSwitch)...)
	args = append(args, "--", "lsp-add", ghostSwitch, ovn.SwitchPortName(cluster, ghost))
	args = append(args, ids("Logical_Switch_Port", ovn.SwitchPortName(cluster, ghost))...)
	args = append(args, "--", "lrp-add", router0, ovn.RouterPortName(cluster, ghost), ovn.RouterPortMAC(ghost), "10.251.0.1/24")
	args = append(args, ids("Logical_Router_Port", ovn.RouterPortName(cluster, ghost))...)
	nbctl(args...)

	// Another owner's switch and router with a port, under names of its own.
	other := uuid.NewString()
	nbctl("ls-add", foreignOwner+".switch", "--", "set", "Logical_Switch", foreignOwner+".switch",
		ext(ovn.OwnerKey, foreignOwner), ext(ovn.UIDKey, other), ext(ovn.NamespaceKey, ns0), ext(ovn.NameKey, "net-0000"),
		"other_config:subnet=10.20.0.0/24",
		"--", "lr-add", foreignOwner+".router", "--", "set", "Logical_Router", foreignOwner+".router", ext(ovn.OwnerKey, foreignOwner),
		"--", "lrp-add", foreignOwner+".router", foreignOwner+".port", "0a:00:00:00:00:42", "10.20.0.1/24",
		"--", "set", "Logical_Router_Port", foreignOwner+".port", ext(ovn.OwnerKey, foreignOwner), ext(ovn.UIDKey, other))
	r.lifted()
	r.foreign = foreignRows(r.db.Dump(r.t))
	r.note("%d Networks' rows changed, %s's router deleted, 3 orphan rows, 3 foreign rows", tamperTargets, ns2)
}

// programmedIn returns the Networks of ns that the suite's watch sees programmed and that the
// greedy rule programs.
func programmedIn(r *run, ns string) []*samplecrdv1.Network {
	cached := r.tr.cached()
	all := make([]samplecrdv1.Network, len(cached))
	for i, n := range cached {
		all[i] = *n
	}
	exp := expectations(all)
	var out []*samplecrdv1.Network
	for _, n := range cached {
		if n.Namespace == ns && programmedNow(n) && exp[n.UID].programmed {
			out = append(out, n)
		}
	}
	return out
}

// foreignRows are the rows of foreignOwner.
func foreignRows(all framework.OVNRows) framework.OVNRows {
	var out framework.OVNRows
	for _, s := range all.Switches {
		if s.ExternalIDs[ovn.OwnerKey] == foreignOwner {
			out.Switches = append(out.Switches, s)
		}
	}
	for _, p := range all.RouterPorts {
		if p.ExternalIDs[ovn.OwnerKey] == foreignOwner {
			out.RouterPorts = append(out.RouterPorts, p)
		}
	}
	for _, rt := range all.Routers {
		if rt.ExternalIDs[ovn.OwnerKey] == foreignOwner {
			out.Routers = append(out.Routers, rt)
		}
	}
	return out
}

// checkForeignUntouched checks that the rows of the other owner are as the tampering left them.
func checkForeignUntouched(r *run) {
	rows, err := r.db.DumpE(r.ctx)
	if err != nil {
		r.errorf("%v", err)
		return
	}
	got := foreignRows(rows)
	if len(r.foreign.Switches) != 1 || len(r.foreign.Routers) != 1 || len(r.foreign.RouterPorts) != 1 {
		r.errorf("the tampering did not write the foreign rows: %+v", r.foreign)
	}
	if !reflect.DeepEqual(got, r.foreign) {
		r.errorf("the rows of %s changed:\nbefore %+v\nafter  %+v", foreignOwner, r.foreign, got)
	}
}
