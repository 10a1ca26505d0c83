package framework

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
)

// RowProblems is what CheckProgrammed found wrong with the rows of one Network.
type RowProblems struct {
	// Counts is set when the Network does not have exactly one switch, switch port and router
	// port: "0 switches, 1 switch port, 1 router port". The columns are then not compared.
	Counts string
	// Duplicated is set when it has more than one of a kind.
	Duplicated bool
	// Fields are the differences from what its spec calls for, one each: "switch subnet = X, want Y".
	Fields []string
}

// OK reports whether nothing is wrong.
func (p RowProblems) OK() bool { return p.Counts == "" && len(p.Fields) == 0 }

// String joins the problems with "; ".
func (p RowProblems) String() string {
	all := p.Fields
	if p.Counts != "" {
		all = append([]string{p.Counts}, all...)
	}
	return strings.Join(all, "; ")
}

// CheckProgrammed checks that all holds exactly one switch, switch port and router port of the
// cluster for n, with every column the OVN backend writes as n's spec calls for (names, subnet
// and the other native IPAM keys, external_ids, the switch port of type router pointing to the
// router port, the router port's networks and MAC), the router port on its namespace's router and
// on no other router, and that n's status names the switch.
func CheckProgrammed(all OVNRows, cluster string, n *samplecrdv1.Network) RowProblems {
	var p RowProblems
	r := all.OfUID(cluster, n.UID)
	if len(r.Switches) != 1 || len(r.SwitchPorts) != 1 || len(r.RouterPorts) != 1 {
		p.Counts = fmt.Sprintf("%d switches, %d switch ports, %d router ports", len(r.Switches), len(r.SwitchPorts), len(r.RouterPorts))
		p.Duplicated = len(r.Switches) > 1 || len(r.SwitchPorts) > 1 || len(r.RouterPorts) > 1
		return p
	}
	prefix, err := netip.ParsePrefix(n.Spec.Cidr)
	if err != nil {
		p.Fields = append(p.Fields, fmt.Sprintf("spec.cidr %q: %v", n.Spec.Cidr, err))
		return p
	}
	gateway, err := netip.ParseAddr(n.Spec.Gateway)
	if err != nil {
		p.Fields = append(p.Fields, fmt.Sprintf("spec.gateway %q: %v", n.Spec.Gateway, err))
		return p
	}
	ls, lsp, lrp := r.Switches[0], r.SwitchPorts[0], r.RouterPorts[0]
	ids := map[string]string{
		ovn.OwnerKey:     cluster,
		ovn.NamespaceKey: n.Namespace,
		ovn.NameKey:      n.Name,
		ovn.UIDKey:       string(n.UID),
	}
	switchIDs := maps.Clone(ids)
	switchIDs[ovn.CIDRKey] = prefix.String()
	switchIDs[ovn.GatewayKey] = gateway.String()
	ipam := map[string]string{}
	switch {
	case prefix.Addr().Is4():
		ipam[ovn.SubnetKey] = prefix.String()
		ipam[ovn.ExcludeIPsKey] = gateway.String()
	case prefix.Bits() == 64:
		ipam[ovn.IPv6PrefixKey] = prefix.Addr().String()
	}
	backendID, backendName, backendType := "", "", ""
	if b := n.Status.Backend; b != nil {
		backendID, backendName, backendType = b.ID, b.Name, b.Type
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"switch name", ls.Name, ovn.SwitchName(cluster, n.Namespace, n.Name)},
		{"switch IPAM other_config", pick(ls.OtherConfig, ovn.SubnetKey, ovn.ExcludeIPsKey, ovn.IPv6PrefixKey), ipam},
		{"switch external_ids", pick(ls.ExternalIDs, slices.Collect(maps.Keys(switchIDs))...), switchIDs},
		{"switch role external_id", ls.ExternalIDs[ovn.RoleKey], ""},
		{"switch ports", ls.Ports, []string{lsp.UUID}},
		{"switch port name", lsp.Name, ovn.SwitchPortName(cluster, n.UID)},
		{"switch port type", lsp.Type, ovn.SwitchPortTypeRouter},
		{"switch port addresses", lsp.Addresses, []string{ovn.SwitchPortAddressRouter}},
		{"switch port router-port", lsp.Options[ovn.RouterPortKey], lrp.Name},
		{"switch port external_ids", pick(lsp.ExternalIDs, slices.Collect(maps.Keys(ids))...), ids},
		{"router port name", lrp.Name, ovn.RouterPortName(cluster, n.UID)},
		{"router port networks", lrp.Networks, []string{gateway.String() + "/" + strconv.Itoa(prefix.Bits())}},
		{"router port MAC", lrp.MAC, ovn.RouterPortMAC(n.UID)},
		{"router port external_ids", pick(lrp.ExternalIDs, slices.Collect(maps.Keys(ids))...), ids},
		{"status backend", []string{backendType, backendName, backendID}, []string{ovn.BackendType, ls.Name, ls.UUID}},
	}
	for _, c := range checks {
		if got, want := fmt.Sprint(c.got), fmt.Sprint(c.want); got != want {
			p.Fields = append(p.Fields, fmt.Sprintf("%s = %s, want %s", c.what, got, want))
		}
	}
	router, count := all.NamespaceRouter(cluster, n.Namespace)
	if count != 1 || !slices.Contains(router.Ports, lrp.UUID) {
		p.Fields = append(p.Fields, fmt.Sprintf("router port %s is not on the namespace's router (%d routers of the namespace)", lrp.Name, count))
		p.Duplicated = p.Duplicated || count > 1
	}
	for _, other := range all.Routers {
		if other.UUID != router.UUID && slices.Contains(other.Ports, lrp.UUID) {
			p.Fields = append(p.Fields, fmt.Sprintf("router port %s is also on router %s", lrp.Name, other.Name))
		}
	}
	return p
}

// pick returns the entries of m under keys, for comparing only the keys the backend manages: it
// leaves the others alone. (fmt prints maps in key order, so that equal maps print alike.)
func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}
