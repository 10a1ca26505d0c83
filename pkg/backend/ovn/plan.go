package ovn

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// This file is the pure part of the backend: what rows a Network should have, and what to change
// to get from the rows there are to those. It knows nothing of libovsdb's client, so that it is
// tested on its own.

// Column names that a rowPatch overwrites as a whole.
const (
	columnName         = "name"
	columnType         = "type"
	columnAddresses    = "addresses"
	columnNetworks     = "networks"
	columnMAC          = "mac"
	columnPortSecurity = "port_security"
)

// Map column names that a rowPatch changes key by key.
const (
	columnOtherConfig = "other_config"
	columnExternalIDs = "external_ids"
	columnOptions     = "options"
)

// desiredState is the rows one Network should have, without UUIDs and references between them.
type desiredState struct {
	// Router is the namespace's router, without ports: Ensure adds the router port to whatever
	// ports it has.
	Router nbdb.LogicalRouter
	// Switch has no ports: Ensure adds the switch port to whatever ports the switch has.
	Switch nbdb.LogicalSwitch
	// SwitchPort connects the switch to RouterPort.
	SwitchPort nbdb.LogicalSwitchPort
	// RouterPort is the port of the namespace's router on the switch.
	RouterPort nbdb.LogicalRouterPort
}

// validateNetwork checks what Ensure is asked for before anything is computed from it.
func validateNetwork(network backend.Network) error {
	switch {
	case network.UID == "":
		return fmt.Errorf("the network has no UID")
	case network.Namespace == "" || network.Name == "":
		return fmt.Errorf("the network has no namespace or name")
	case !network.CIDR.IsValid():
		return fmt.Errorf("the network has no valid CIDR")
	case network.CIDR != network.CIDR.Masked():
		return fmt.Errorf("the CIDR %s has host bits set", network.CIDR)
	case !network.Gateway.IsValid():
		return fmt.Errorf("the network has no valid gateway")
	case !network.CIDR.Contains(network.Gateway):
		return fmt.Errorf("the gateway %s is not in the CIDR %s", network.Gateway, network.CIDR)
	}
	return nil
}

// desiredRows returns the rows of a valid Network.
func desiredRows(cluster string, network backend.Network) desiredState {
	ids := func(extra ...string) map[string]string {
		m := map[string]string{
			OwnerKey:     cluster,
			NamespaceKey: network.Namespace,
			NameKey:      network.Name,
			UIDKey:       string(network.UID),
		}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	otherConfig := map[string]string{}
	switch {
	case network.CIDR.Addr().Is4():
		otherConfig[SubnetKey] = network.CIDR.String()
		otherConfig[ExcludeIPsKey] = network.Gateway.String()
	case network.CIDR.Bits() == 64:
		// ovn-nb(5): "a /64 IPv6 prefix", written as its address ("fd00:1::"). OVN's dynamic
		// IPv6 addresses are EUI-64, so other prefix lengths get no native IPAM setting.
		otherConfig[IPv6PrefixKey] = network.CIDR.Addr().String()
	}
	routerPort := RouterPortName(cluster, network.UID)
	return desiredState{
		Router: desiredRouter(cluster, network.Namespace),
		Switch: nbdb.LogicalSwitch{
			Name:        SwitchName(cluster, network.Namespace, network.Name),
			OtherConfig: otherConfig,
			ExternalIDs: ids(CIDRKey, network.CIDR.String(), GatewayKey, network.Gateway.String()),
		},
		SwitchPort: nbdb.LogicalSwitchPort{
			Name:        SwitchPortName(cluster, network.UID),
			Type:        SwitchPortTypeRouter,
			Addresses:   []string{SwitchPortAddressRouter},
			Options:     map[string]string{RouterPortKey: routerPort},
			ExternalIDs: ids(),
		},
		RouterPort: nbdb.LogicalRouterPort{
			Name:        routerPort,
			Networks:    []string{network.Gateway.String() + "/" + strconv.Itoa(network.CIDR.Bits())},
			MAC:         RouterPortMAC(network.UID),
			ExternalIDs: ids(),
		},
	}
}

// desiredRouter returns the router row of a namespace, without ports.
func desiredRouter(cluster, namespace string) nbdb.LogicalRouter {
	return nbdb.LogicalRouter{
		Name:        RouterName(cluster, namespace),
		ExternalIDs: map[string]string{OwnerKey: cluster, RoleKey: RoleNamespaceRouter, NamespaceKey: namespace},
	}
}

// managedRouterExternalIDs are the external_ids keys the backend owns on a router.
var managedRouterExternalIDs = []string{OwnerKey, RoleKey, NamespaceKey}

// observed is what the cache holds for one Network UID of the cluster.
type observed struct {
	// Router is the namespace's router, nil when there is none (and always for Delete).
	Router *nbdb.LogicalRouter
	// Switches, SwitchPorts and RouterPorts are the cluster's rows with the UID, by UUID.
	Switches    []nbdb.LogicalSwitch
	SwitchPorts []nbdb.LogicalSwitchPort
	RouterPorts []nbdb.LogicalRouterPort
	// StaleSwitches are the cluster's switches under the Network's switch name that were written
	// for another UID (or none): a Network deleted and created again under the name, or a row
	// changed out of band. Ensure replaces them.
	StaleSwitches []nbdb.LogicalSwitch
	// PodPorts are pod ports of the cluster (see PodUIDKey), which are not among SwitchPorts. For
	// Delete they are the pod ports of the UID, wherever they are; for Ensure, only when the UID
	// has several switches, those on its switches, which move to the switch kept.
	PodPorts []nbdb.LogicalSwitchPort
	// PortSwitches are the switches other than Switches and StaleSwitches whose ports include
	// one of SwitchPorts, or for Delete one of PodPorts.
	PortSwitches []nbdb.LogicalSwitch
	// PortRouters are the routers other than Router whose ports include one of RouterPorts.
	PortRouters []nbdb.LogicalRouter
	// cluster is the cluster name, to tell which of PortRouters are the cluster's.
	cluster string
}

// empty reports whether the cluster has no row with the UID.
func (o *observed) empty() bool {
	return len(o.Switches) == 0 && len(o.SwitchPorts) == 0 && len(o.RouterPorts) == 0 && len(o.PodPorts) == 0
}

// mapPatch changes some keys of a map column: Delete is applied first, then Insert. A key whose
// value changes is in both, because OVSDB's insert mutation leaves existing keys alone.
type mapPatch struct {
	// Delete are keys to remove, sorted.
	Delete []string
	// Insert are keys to add with their values.
	Insert map[string]string
}

// routerDelete is a router of the cluster to delete because the plan takes its last ports away.
// Ports are the ports it has in the cache: the transaction fails, and changes nothing, when it
// has others by then (a Network of the namespace was added meanwhile).
type routerDelete struct {
	UUID  string
	Ports []string
}

// rowPatch changes an existing row.
type rowPatch struct {
	// Columns are overwritten with their desired values.
	Columns []string
	// Maps are patched key by key, so that keys the backend does not manage are kept.
	Maps map[string]mapPatch
	// AddPorts are port UUIDs (or the named UUID of a port created in the same transaction) to add
	// to the row's ports.
	AddPorts []string
}

func (p rowPatch) empty() bool {
	return len(p.Columns) == 0 && len(p.Maps) == 0 && len(p.AddPorts) == 0
}

// portRef is a reference from a switch or router to a port, to remove.
type portRef struct {
	// Parent is the UUID of the switch or router.
	Parent string
	// Port is the UUID of the port.
	Port string
}

// plan is what Ensure or Delete writes, in one transaction.
type plan struct {
	// CreateRouter inserts the namespace's router, with the router port as its port; otherwise
	// Router is its UUID and RouterPatch its changes.
	CreateRouter bool
	Router       string
	// CreateSwitch inserts the desired switch; its ports are the switch port.
	CreateSwitch bool
	// Switch is the UUID of the switch to keep, when there is one, and SwitchPatch its changes.
	Switch      string
	SwitchPatch rowPatch
	// CreateSwitchPort inserts the desired switch port; it is added to the switch's ports.
	CreateSwitchPort bool
	// SwitchPort is the UUID of the switch port to keep, and SwitchPortPatch its changes.
	SwitchPort      string
	SwitchPortPatch rowPatch
	// CreateRouterPort inserts the desired router port; it is added to the router's ports.
	CreateRouterPort bool
	// RouterPort is the UUID of the router port to keep, and RouterPortPatch its changes.
	RouterPort      string
	RouterPortPatch rowPatch
	// RouterPatch puts the router's keys back and adds the router port to its ports.
	RouterPatch rowPatch
	// DetachSwitchPorts and DetachRouterPorts remove references from rows that stay.
	DetachSwitchPorts []portRef
	DetachRouterPorts []portRef
	// DeleteSwitches, DeleteSwitchPorts and DeleteRouterPorts are UUIDs of rows to delete:
	// duplicates for Ensure, everything for Delete.
	DeleteSwitches    []string
	DeleteSwitchPorts []string
	DeleteRouterPorts []string
	// ReplaceSwitches are UUIDs of the cluster's switches that hold the switch's name for another
	// UID; they are deleted before the switch is created in the same transaction.
	ReplaceSwitches []string
	// DeleteRouters are routers of the cluster left without ports.
	DeleteRouters []routerDelete
}

// empty reports whether the plan writes nothing.
func (p *plan) empty() bool {
	return !p.CreateRouter && !p.CreateSwitch && !p.CreateSwitchPort && !p.CreateRouterPort &&
		p.SwitchPatch.empty() && p.SwitchPortPatch.empty() && p.RouterPortPatch.empty() &&
		p.RouterPatch.empty() && len(p.DetachSwitchPorts) == 0 && len(p.DetachRouterPorts) == 0 &&
		len(p.DeleteSwitches) == 0 && len(p.DeleteSwitchPorts) == 0 && len(p.DeleteRouterPorts) == 0 &&
		len(p.ReplaceSwitches) == 0 && len(p.DeleteRouters) == 0
}

// Named UUIDs of the rows an Ensure transaction inserts, used to refer to them from other rows
// of the same transaction.
const (
	namedSwitch     = "newSwitch"
	namedSwitchPort = "newSwitchPort"
	namedRouterPort = "newRouterPort"
	namedRouter     = "newRouter"
)

// ensurePlan computes the changes that turn the observed rows into the desired ones. It keeps one
// row of each kind (the one with the desired name, else the one with the lowest UUID), fixes its
// columns, and deletes the others; it creates the namespace's router when there is none.
func ensurePlan(want desiredState, obs observed) plan {
	var p plan

	sw := pick(obs.Switches, want.Switch.Name, func(r nbdb.LogicalSwitch) (string, string) { return r.UUID, r.Name })
	lsp := pick(obs.SwitchPorts, want.SwitchPort.Name, func(r nbdb.LogicalSwitchPort) (string, string) { return r.UUID, r.Name })
	lrp := pick(obs.RouterPorts, want.RouterPort.Name, func(r nbdb.LogicalRouterPort) (string, string) { return r.UUID, r.Name })

	// The switch port.
	lspRef := namedSwitchPort
	if lsp == nil {
		p.CreateSwitchPort = true
	} else {
		lspRef = lsp.UUID
		p.SwitchPort = lsp.UUID
		p.SwitchPortPatch = diffSwitchPort(*lsp, want.SwitchPort)
	}

	// The switch, with the switch port among its ports.
	if sw == nil {
		p.CreateSwitch = true
	} else {
		p.Switch = sw.UUID
		p.SwitchPatch = diffSwitch(*sw, want.Switch)
		if !slices.Contains(sw.Ports, lspRef) {
			p.SwitchPatch.AddPorts = []string{lspRef}
		}
	}
	for _, s := range obs.Switches {
		if sw == nil || s.UUID != sw.UUID {
			p.DeleteSwitches = append(p.DeleteSwitches, s.UUID)
		}
	}
	// The pod ports on the duplicates move to the switch kept, or they would go with them (pod
	// ports are EnsurePort's and DeletePort's, never a Network's plan's). There is a switch kept
	// whenever there are duplicates.
	if sw != nil && len(obs.PodPorts) > 0 {
		kept := setOf(sw.Ports)
		onDeleted := map[string]struct{}{}
		for _, s := range obs.Switches {
			if s.UUID != sw.UUID {
				for _, port := range s.Ports {
					onDeleted[port] = struct{}{}
				}
			}
		}
		for _, port := range obs.PodPorts {
			_, deleted := onDeleted[port.UUID]
			if _, ok := kept[port.UUID]; deleted && !ok {
				kept[port.UUID] = struct{}{}
				p.SwitchPatch.AddPorts = append(p.SwitchPatch.AddPorts, port.UUID)
			}
		}
	}
	for _, s := range obs.StaleSwitches {
		p.ReplaceSwitches = append(p.ReplaceSwitches, s.UUID)
	}

	// Switch ports: delete the extra ones, and take every one out of the switches that stay and
	// should not have it (switches that are deleted lose their references with them).
	for _, port := range obs.SwitchPorts {
		keep := lsp != nil && port.UUID == lsp.UUID
		if !keep {
			p.DeleteSwitchPorts = append(p.DeleteSwitchPorts, port.UUID)
			if sw != nil && slices.Contains(sw.Ports, port.UUID) {
				p.DetachSwitchPorts = append(p.DetachSwitchPorts, portRef{Parent: sw.UUID, Port: port.UUID})
			}
		}
		for _, other := range obs.PortSwitches {
			if slices.Contains(other.Ports, port.UUID) {
				p.DetachSwitchPorts = append(p.DetachSwitchPorts, portRef{Parent: other.UUID, Port: port.UUID})
			}
		}
	}

	// The router port, in the namespace router's ports and in no other router's.
	lrpRef := namedRouterPort
	if lrp == nil {
		p.CreateRouterPort = true
	} else {
		lrpRef = lrp.UUID
		p.RouterPort = lrp.UUID
		p.RouterPortPatch = diffRouterPort(*lrp, want.RouterPort)
	}
	if obs.Router == nil {
		p.CreateRouter = true
	} else {
		p.Router = obs.Router.UUID
		p.RouterPatch.addMap(columnExternalIDs, diffMap(obs.Router.ExternalIDs, want.Router.ExternalIDs, managedRouterExternalIDs))
		if !slices.Contains(obs.Router.Ports, lrpRef) {
			p.RouterPatch.AddPorts = []string{lrpRef}
		}
	}
	for _, port := range obs.RouterPorts {
		if lrp == nil || port.UUID != lrp.UUID {
			p.DeleteRouterPorts = append(p.DeleteRouterPorts, port.UUID)
			if obs.Router != nil && slices.Contains(obs.Router.Ports, port.UUID) {
				p.DetachRouterPorts = append(p.DetachRouterPorts, portRef{Parent: obs.Router.UUID, Port: port.UUID})
			}
		}
	}
	p.detachFromRouters(obs.PortRouters, obs.RouterPorts, obs.cluster)
	return p
}

// detachFromRouters takes the ports off the routers, and deletes the routers of the cluster that
// are left without ports (a namespace's last Network, or a router of an older layout or a
// duplicate that the ports move away from) instead.
func (p *plan) detachFromRouters(routers []nbdb.LogicalRouter, ports []nbdb.LogicalRouterPort, cluster string) {
	taken := uuidSet(ports, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
	for _, r := range routers {
		var detach []portRef
		left := 0
		for _, port := range r.Ports {
			if _, ok := taken[port]; ok {
				detach = append(detach, portRef{Parent: r.UUID, Port: port})
			} else {
				left++
			}
		}
		switch {
		case len(detach) == 0:
		case left == 0 && ownedBy(r.ExternalIDs, cluster):
			p.DeleteRouters = append(p.DeleteRouters, routerDelete{UUID: r.UUID, Ports: slices.Clone(r.Ports)})
		default:
			p.DetachRouterPorts = append(p.DetachRouterPorts, detach...)
		}
	}
}

// deletePlan computes the changes that remove every observed row: the switches, the ports, the
// references to the ports from the switches and routers that stay, and the cluster's routers that
// are left without ports.
func deletePlan(obs observed) plan {
	var p plan
	for _, s := range obs.Switches {
		p.DeleteSwitches = append(p.DeleteSwitches, s.UUID)
	}
	for _, port := range obs.SwitchPorts {
		p.DeleteSwitchPorts = append(p.DeleteSwitchPorts, port.UUID)
		for _, parent := range obs.PortSwitches {
			if slices.Contains(parent.Ports, port.UUID) {
				p.DetachSwitchPorts = append(p.DetachSwitchPorts, portRef{Parent: parent.UUID, Port: port.UUID})
			}
		}
	}
	// The UID's pod ports go too: on the switches deleted they would go with them, and elsewhere
	// they would be left for a Network that is no more.
	for _, port := range obs.PodPorts {
		p.DeleteSwitchPorts = append(p.DeleteSwitchPorts, port.UUID)
		for _, parent := range obs.PortSwitches {
			if slices.Contains(parent.Ports, port.UUID) {
				p.DetachSwitchPorts = append(p.DetachSwitchPorts, portRef{Parent: parent.UUID, Port: port.UUID})
			}
		}
	}
	routers := obs.PortRouters
	if obs.Router != nil {
		routers = append([]nbdb.LogicalRouter{*obs.Router}, routers...)
	}
	for _, port := range obs.RouterPorts {
		p.DeleteRouterPorts = append(p.DeleteRouterPorts, port.UUID)
	}
	p.detachFromRouters(routers, obs.RouterPorts, obs.cluster)
	return p
}

// pick returns the row to keep among rows: the one named name, else the one with the lowest UUID;
// nil when there are none.
func pick[T any](rows []T, name string, key func(T) (uuid, name string)) *T {
	var best *T
	for i := range rows {
		if best == nil {
			best = &rows[i]
			continue
		}
		uuid, n := key(rows[i])
		bestUUID, bestName := key(*best)
		if (n == name) != (bestName == name) {
			if n == name {
				best = &rows[i]
			}
			continue
		}
		if uuid < bestUUID {
			best = &rows[i]
		}
	}
	return best
}

func diffSwitch(have, want nbdb.LogicalSwitch) rowPatch {
	var p rowPatch
	if have.Name != want.Name {
		p.Columns = append(p.Columns, columnName)
	}
	p.addMap(columnOtherConfig, diffMap(have.OtherConfig, want.OtherConfig, managedOtherConfig))
	p.addMap(columnExternalIDs, diffMap(have.ExternalIDs, want.ExternalIDs, managedExternalIDs))
	return p
}

func diffSwitchPort(have, want nbdb.LogicalSwitchPort) rowPatch {
	var p rowPatch
	if have.Name != want.Name {
		p.Columns = append(p.Columns, columnName)
	}
	if have.Type != want.Type {
		p.Columns = append(p.Columns, columnType)
	}
	if !sameSet(have.Addresses, want.Addresses) {
		p.Columns = append(p.Columns, columnAddresses)
	}
	// A router port has none, and a pod port's would block its traffic, were it renamed to be the
	// Network's.
	if !sameSet(have.PortSecurity, want.PortSecurity) {
		p.Columns = append(p.Columns, columnPortSecurity)
	}
	p.addMap(columnOptions, diffMap(have.Options, want.Options, managedOptions))
	p.addMap(columnExternalIDs, diffMap(have.ExternalIDs, want.ExternalIDs, managedExternalIDs))
	return p
}

func diffRouterPort(have, want nbdb.LogicalRouterPort) rowPatch {
	var p rowPatch
	if have.Name != want.Name {
		p.Columns = append(p.Columns, columnName)
	}
	if !sameSet(have.Networks, want.Networks) {
		p.Columns = append(p.Columns, columnNetworks)
	}
	if have.MAC != want.MAC {
		p.Columns = append(p.Columns, columnMAC)
	}
	p.addMap(columnExternalIDs, diffMap(have.ExternalIDs, want.ExternalIDs, managedExternalIDs))
	return p
}

func (p *rowPatch) addMap(column string, m mapPatch) {
	if len(m.Delete) == 0 && len(m.Insert) == 0 {
		return
	}
	if p.Maps == nil {
		p.Maps = map[string]mapPatch{}
	}
	p.Maps[column] = m
}

// diffMap returns the patch that makes the managed keys of have equal to those of want. Keys that
// are not managed are left alone.
func diffMap(have, want map[string]string, managed []string) mapPatch {
	var p mapPatch
	for _, key := range managed {
		h, inHave := have[key]
		w, inWant := want[key]
		if inHave && (!inWant || h != w) {
			p.Delete = append(p.Delete, key)
		}
		if inWant && (!inHave || h != w) {
			if p.Insert == nil {
				p.Insert = map[string]string{}
			}
			p.Insert[key] = w
		}
	}
	slices.Sort(p.Delete)
	return p
}

// sameSet reports whether two OVSDB sets (which have no order) hold the same elements.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	return maps.Equal(setOf(a), setOf(b))
}

func setOf(s []string) map[string]struct{} {
	m := make(map[string]struct{}, len(s))
	for _, e := range s {
		m[e] = struct{}{}
	}
	return m
}

// sortByUUID sorts rows so that plans do not depend on the cache's map order.
func sortByUUID[T any](rows []T, uuid func(*T) string) {
	slices.SortFunc(rows, func(a, b T) int { return cmp.Compare(uuid(&a), uuid(&b)) })
}
