package ovn

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// The pure part of EnsurePort and DeletePort: the row a pod's port should be, and what to change
// to get there from the rows the cache holds.

// validatePort checks what EnsurePort is asked for before anything is computed from it.
func validatePort(port backend.Port) error {
	switch {
	case port.NetworkUID == "":
		return fmt.Errorf("the port's network has no UID")
	case port.NetworkNamespace == "" || port.NetworkName == "":
		return fmt.Errorf("the port's network has no namespace or name")
	case port.Pod.UID == "":
		return fmt.Errorf("the port's pod has no UID")
	case port.Pod.Namespace == "" || port.Pod.Name == "":
		return fmt.Errorf("the port's pod has no namespace or name")
	case len(port.MAC) != 6:
		return fmt.Errorf("the MAC address %q is not an EUI-48", port.MAC)
	case port.MAC[0]&1 != 0:
		return fmt.Errorf("the MAC address %s is a multicast address", port.MAC)
	case !port.IP.IsValid():
		return fmt.Errorf("the port has no valid IP address")
	case port.IP.Zone() != "":
		return fmt.Errorf("the IP address %s has a zone", port.IP)
	case port.IP.Is4In6():
		return fmt.Errorf("the IP address %s is an IPv4-mapped IPv6 address", port.IP)
	}
	return nil
}

// portAddress is the value of a pod port's addresses and port_security: "MAC IP".
func portAddress(port backend.Port) string {
	return port.MAC.String() + " " + port.IP.String()
}

// desiredPort returns the row of a valid port, without UUID.
func desiredPort(cluster string, port backend.Port) nbdb.LogicalSwitchPort {
	address := portAddress(port)
	return nbdb.LogicalSwitchPort{
		Name:         PodPortName(cluster, port.Pod.UID),
		Addresses:    []string{address},
		PortSecurity: []string{address},
		ExternalIDs: map[string]string{
			OwnerKey:        cluster,
			NamespaceKey:    port.NetworkNamespace,
			NameKey:         port.NetworkName,
			UIDKey:          string(port.NetworkUID),
			PodNamespaceKey: port.Pod.Namespace,
			PodNameKey:      port.Pod.Name,
			PodUIDKey:       string(port.Pod.UID),
		},
	}
}

// observedPort is what the cache holds for one pod UID of the cluster.
type observedPort struct {
	// Switch is the UUID of the switch of the port's Network, "" when there is none (and always
	// for DeletePort).
	Switch string
	// Ports are the cluster's switch ports of the pod: those with its UID in PodUIDKey, and the
	// one of the cluster under the port's name (which holds the pod's UID) whatever its keys, by
	// UUID.
	Ports []nbdb.LogicalSwitchPort
	// Parents are the UUIDs of the switches that hold each of Ports, by port UUID, sorted.
	Parents map[string][]string
}

// portPlan is what EnsurePort or DeletePort writes, in one transaction.
type portPlan struct {
	// Create inserts the desired port, and adds it to the Network's switch.
	Create bool
	// Port is the UUID of the port kept, PortName its name in the cache (which the transaction
	// checks), and Patch its changes.
	Port, PortName string
	Patch          rowPatch
	// Attach adds Port to the Network's switch.
	Attach bool
	// Detach removes references to ports from switches that stay: the kept port's from the
	// switches of other Networks (a pod that moved), the others' from all.
	Detach []portRef
	// Delete are UUIDs of ports to delete: duplicates for EnsurePort, every port of the pod for
	// DeletePort.
	Delete []string
}

// empty reports whether the plan writes nothing.
func (p *portPlan) empty() bool {
	return !p.Create && p.Patch.empty() && !p.Attach && len(p.Detach) == 0 && len(p.Delete) == 0
}

// ensurePortPlan computes the changes that turn the observed ports into the desired one on the
// switch sw: it keeps one port (the one with the desired name, else the one with the lowest
// UUID), fixes its columns, puts it on sw and on no other switch, and deletes the others.
func ensurePortPlan(want nbdb.LogicalSwitchPort, sw string, obs observedPort) portPlan {
	var p portPlan
	keep := pick(obs.Ports, want.Name, func(r nbdb.LogicalSwitchPort) (string, string) { return r.UUID, r.Name })
	if keep == nil {
		p.Create = true
		return p
	}
	p.Port, p.PortName = keep.UUID, keep.Name
	// The same columns and keys as a Network's switch port: a pod port has none of the router-port
	// options, so a router-port option on a port that was a Network's goes.
	p.Patch = diffSwitchPort(*keep, want)
	parents := obs.Parents[keep.UUID]
	p.Attach = !slices.Contains(parents, sw)
	for _, parent := range parents {
		if parent != sw {
			p.Detach = append(p.Detach, portRef{Parent: parent, Port: keep.UUID})
		}
	}
	for _, port := range obs.Ports {
		if port.UUID != keep.UUID {
			p.deletePort(port.UUID, obs.Parents[port.UUID])
		}
	}
	return p
}

// deletePortPlan computes the changes that remove every observed port of the pod.
func deletePortPlan(obs observedPort) portPlan {
	var p portPlan
	for _, port := range obs.Ports {
		p.deletePort(port.UUID, obs.Parents[port.UUID])
	}
	return p
}

func (p *portPlan) deletePort(uuid string, parents []string) {
	p.Delete = append(p.Delete, uuid)
	for _, parent := range parents {
		p.Detach = append(p.Detach, portRef{Parent: parent, Port: uuid})
	}
}

// portOf returns what a pod port's row says of the port.
func portOf(r *nbdb.LogicalSwitchPort) backend.Port {
	ids := r.ExternalIDs
	port := backend.Port{
		NetworkNamespace: ids[NamespaceKey],
		NetworkName:      ids[NameKey],
		NetworkUID:       types.UID(ids[UIDKey]),
		Pod:              backend.PodRef{Namespace: ids[PodNamespaceKey], Name: ids[PodNameKey], UID: types.UID(ids[PodUIDKey])},
	}
	if len(r.Addresses) > 0 {
		if mac, ip, ok := strings.Cut(r.Addresses[0], " "); ok {
			hw, errMAC := net.ParseMAC(mac)
			addr, errIP := netip.ParseAddr(ip)
			if errMAC == nil && errIP == nil {
				port.MAC, port.IP = hw, addr
			}
		}
	}
	return port
}
