package faults

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// expectation is what a Network's spec calls for, by the greedy rule of the network controller.
type expectation struct {
	// programmed: Ready=True, reason Synced, and its rows in OVN. Otherwise Ready=False, reason
	// CIDRConflict, with message, and no rows.
	programmed bool
	message    string
}

// expectations applies the rule of docs/network-controller.md to networks, independently of the
// controller's code: in each namespace, oldest first (creationTimestamp, then name), a Network is
// programmed unless its cidr overlaps an older programmed one, and then it names the oldest of
// those. A Network being deleted counts as any other.
func expectations(networks []samplecrdv1.Network) map[types.UID]expectation {
	byNamespace := map[string][]*samplecrdv1.Network{}
	for i := range networks {
		n := &networks[i]
		byNamespace[n.Namespace] = append(byNamespace[n.Namespace], n)
	}
	out := map[types.UID]expectation{}
	for _, list := range byNamespace {
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i], list[j]
			if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
				return a.CreationTimestamp.Before(&b.CreationTimestamp)
			}
			return a.Name < b.Name
		})
		type programmed struct {
			n *samplecrdv1.Network
			p netip.Prefix
		}
		var done []programmed
		for _, n := range list {
			p, err := netip.ParsePrefix(n.Spec.Cidr)
			if err != nil {
				// Admission refuses such a spec; the suite never writes one.
				out[n.UID] = expectation{message: fmt.Sprintf("invalid cidr %q", n.Spec.Cidr)}
				continue
			}
			i := slices.IndexFunc(done, func(o programmed) bool { return o.p.Overlaps(p) })
			if i < 0 {
				done = append(done, programmed{n, p})
				out[n.UID] = expectation{programmed: true}
				continue
			}
			w := done[i].n
			out[n.UID] = expectation{message: fmt.Sprintf("cidr %s overlaps Network %s (cidr %s), which is programmed", p, w.Name, w.Spec.Cidr)}
		}
	}
	return out
}

// verdict is the result of one check of the invariants.
type verdict struct {
	// problems say what is wrong, one line each; none when every invariant holds.
	problems []string
	// lost are the Networks that are not as their spec calls for: condition, generations, rows,
	// or stuck deleting.
	lost int
	// leaked are the cluster's rows that belong to no Network, or to one that must not be
	// programmed, and routers without a programmed Network.
	leaked int
	// duplicated are the Networks with more than one row of a kind or whose switch name is
	// held twice, and the namespaces with two routers.
	duplicated int
	// complete is false when the check stopped before OVN (the API side was wrong already).
	complete bool
}

func (v *verdict) ok() bool { return len(v.problems) == 0 && v.complete }

func (v *verdict) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// String lists the problems, at most limit of them.
func (v *verdict) String() string {
	const limit = 40
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems (lost %d, leaked %d, duplicated %d)", len(v.problems), v.lost, v.leaked, v.duplicated)
	if !v.complete {
		b.WriteString("; OVN not checked")
	}
	for i, p := range v.problems {
		if i == limit {
			fmt.Fprintf(&b, "\n  ... and %d more", len(v.problems)-limit)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

// checkInput is what checkInvariants judges.
type checkInput struct {
	cluster string
	// networks are every Network of the scenario's namespaces, as the API server lists them.
	networks []samplecrdv1.Network
	// want is how many Networks must exist.
	want int
	// rows are the OVN northbound tables; nil to check the API side only.
	rows *framework.OVNRows
	// managerProblems are what managers.problems found.
	managerProblems []string
}

// checkInvariants checks every invariant of the suite:
//   - the managers: none printed a panic (or a data race), each runs and answers /readyz 200,
//     exactly one leads;
//   - the Networks that must exist do, and none is stuck deleting (deletionTimestamp set);
//   - every Network has the Ready condition its spec calls for (expectations): True/Synced, or
//     False/CIDRConflict naming the Network it overlaps, both of its current generation
//     (condition observedGeneration == status.observedGeneration == metadata.generation), and a
//     programmed Network carries the finalizer and its status names its switch;
//   - OVN holds exactly one set of rows for each programmed Network, as its spec calls for, on
//     the router of its namespace (framework.CheckProgrammed); no row of the cluster for a
//     Network that is gone or must not be programmed; no two switches of one name; one router
//     per namespace with programmed Networks, holding their router ports and no other, and no
//     other router of the cluster.
func checkInvariants(in checkInput) *verdict {
	v := &verdict{complete: in.rows != nil}
	for _, p := range in.managerProblems {
		v.addf("%s", p)
	}
	if len(in.networks) != in.want {
		v.addf("%d Networks exist, want %d", len(in.networks), in.want)
	}
	exp := expectations(in.networks)
	byUID := map[types.UID]*samplecrdv1.Network{}
	// programmedPorts are the router ports' names of the programmed Networks, by namespace.
	programmedPorts := map[string]map[string]bool{}
	lost := map[types.UID]bool{}
	lose := func(n *samplecrdv1.Network, format string, args ...any) {
		lost[n.UID] = true
		v.addf("Network %s/%s: %s", n.Namespace, n.Name, fmt.Sprintf(format, args...))
	}
	for i := range in.networks {
		n := &in.networks[i]
		byUID[n.UID] = n
		e := exp[n.UID]
		if n.DeletionTimestamp != nil {
			lose(n, "stuck deleting since %s (finalizers %v)", n.DeletionTimestamp.Format("15:04:05"), n.Finalizers)
		}
		c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
		want := fmt.Sprintf("False/%s %q", samplecrdv1.ReasonCIDRConflict, e.message)
		if e.programmed {
			want = fmt.Sprintf("True/%s %q", samplecrdv1.ReasonSynced, network.MessageSynced)
			programmedPorts[n.Namespace] = setAdd(programmedPorts[n.Namespace], ovn.RouterPortName(in.cluster, n.UID))
		}
		switch {
		case c == nil:
			lose(n, "no Ready condition, want %s", want)
		case fmt.Sprintf("%s/%s %q", c.Status, c.Reason, c.Message) != want:
			lose(n, "Ready=%s/%s %q, want %s", c.Status, c.Reason, c.Message, want)
		case c.ObservedGeneration != n.Generation || n.Status.ObservedGeneration != n.Generation:
			lose(n, "generation %d, but the condition observed %d and the status %d", n.Generation, c.ObservedGeneration, n.Status.ObservedGeneration)
		case e.programmed && !slices.Contains(n.Finalizers, network.Finalizer):
			lose(n, "programmed without the finalizer %s", network.Finalizer)
		case !e.programmed && n.Status.Backend != nil:
			lose(n, "not programmed, but its status names the backend object %+v", *n.Status.Backend)
		}
	}
	v.lost = len(lost)
	if in.rows == nil {
		return v
	}
	rows := *in.rows
	cluster := in.cluster
	duplicated := map[string]bool{}
	for i := range in.networks {
		n := &in.networks[i]
		if exp[n.UID].programmed {
			p := framework.CheckProgrammed(rows, cluster, n)
			if p.Duplicated {
				duplicated[string(n.UID)] = true
				v.addf("Network %s/%s: duplicated rows: %s", n.Namespace, n.Name, p)
			} else if !p.OK() {
				lose(n, "OVN: %s", p)
			}
			continue
		}
		if own := rows.OfUID(cluster, n.UID); len(own.Switches)+len(own.SwitchPorts)+len(own.RouterPorts) > 0 {
			v.leaked += len(own.Switches) + len(own.SwitchPorts) + len(own.RouterPorts)
			v.addf("Network %s/%s must not be programmed (%s) but has %d switches, %d switch ports, %d router ports",
				n.Namespace, n.Name, exp[n.UID].message, len(own.Switches), len(own.SwitchPorts), len(own.RouterPorts))
		}
	}
	v.lost = len(lost)
	// Rows of the cluster for no Network.
	orphan := func(kind, name string, ids map[string]string) {
		if ids[ovn.OwnerKey] != cluster {
			return
		}
		if _, ok := byUID[types.UID(ids[ovn.UIDKey])]; ok {
			return
		}
		v.leaked++
		v.addf("%s %s of uid %q (Network %s/%s) belongs to no Network", kind, name, ids[ovn.UIDKey], ids[ovn.NamespaceKey], ids[ovn.NameKey])
	}
	switchNames := map[string]int{}
	for _, s := range rows.Switches {
		orphan("logical switch", s.Name, s.ExternalIDs)
		if s.ExternalIDs[ovn.OwnerKey] == cluster {
			switchNames[s.Name]++
		}
	}
	for _, p := range rows.SwitchPorts {
		orphan("logical switch port", p.Name, p.ExternalIDs)
	}
	for _, p := range rows.RouterPorts {
		orphan("logical router port", p.Name, p.ExternalIDs)
	}
	for name, count := range switchNames {
		if count > 1 {
			duplicated["switch "+name] = true
			v.addf("%d logical switches of the cluster are named %s", count, name)
		}
	}
	// Routers: one per namespace with programmed Networks, holding exactly their router ports.
	portNames := map[string]string{}
	for _, p := range rows.RouterPorts {
		portNames[p.UUID] = p.Name
	}
	routers := map[string]int{}
	for _, r := range rows.RoutersOf(cluster) {
		ns := r.ExternalIDs[ovn.NamespaceKey]
		if r.ExternalIDs[ovn.RoleKey] != ovn.RoleNamespaceRouter || r.Name != ovn.RouterName(cluster, ns) {
			v.leaked++
			v.addf("logical router %s of the cluster is no namespace's router (external_ids %v)", r.Name, r.ExternalIDs)
			continue
		}
		routers[ns]++
		if len(programmedPorts[ns]) == 0 {
			v.leaked++
			v.addf("logical router %s is left without a programmed Network of its namespace (%d ports)", r.Name, len(r.Ports))
			continue
		}
		var ports []string
		for _, uuid := range r.Ports {
			ports = append(ports, portNames[uuid])
		}
		for _, name := range ports {
			if !programmedPorts[ns][name] {
				v.addf("logical router %s holds the port %q, of no programmed Network of its namespace", r.Name, name)
			}
		}
		if len(ports) != len(programmedPorts[ns]) {
			v.addf("logical router %s has %d ports, want %d: one per programmed Network", r.Name, len(ports), len(programmedPorts[ns]))
		}
	}
	for ns, count := range routers {
		if count > 1 {
			duplicated["router "+ns] = true
			v.addf("namespace %s has %d routers", ns, count)
		}
	}
	v.duplicated = len(duplicated)
	return v
}

func setAdd(s map[string]bool, k string) map[string]bool {
	if s == nil {
		s = map[string]bool{}
	}
	s[k] = true
	return s
}
