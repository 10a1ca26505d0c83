package ovn

import (
	"crypto/sha256"
	"fmt"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// BackendType is what Type returns and what Ensure reports in Status.Type.
const BackendType = "ovn"

// Keys of external_ids that the backend writes on its rows. Ownership is decided by OwnerKey and
// UIDKey together, never by row names.
const (
	// OwnerKey holds the cluster name of the controller that owns the row.
	OwnerKey = "samplecrd.k8s.io/owner"
	// NamespaceKey holds the namespace of the Network the row was written for.
	NamespaceKey = "samplecrd.k8s.io/namespace"
	// NameKey holds the name of the Network the row was written for.
	NameKey = "samplecrd.k8s.io/name"
	// UIDKey holds the UID of the Network the row was written for.
	UIDKey = "samplecrd.k8s.io/uid"
	// CIDRKey holds the Network's CIDR, on its logical switch.
	CIDRKey = "samplecrd.k8s.io/cidr"
	// GatewayKey holds the Network's gateway address, on its logical switch.
	GatewayKey = "samplecrd.k8s.io/gateway"
	// RoleKey holds the role of a row that belongs to no single Network.
	RoleKey = "samplecrd.k8s.io/role"
	// PodNamespaceKey holds the namespace of the pod a switch port was written for.
	PodNamespaceKey = "samplecrd.k8s.io/pod-namespace"
	// PodNameKey holds the name of the pod a switch port was written for.
	PodNameKey = "samplecrd.k8s.io/pod-name"
	// PodUIDKey holds the UID of the pod a switch port was written for. A switch port of the
	// cluster with this key is a pod's port: it belongs to the Network in UIDKey, but the
	// Network's own Ensure, Delete and List leave it to EnsurePort and DeletePort.
	PodUIDKey = "samplecrd.k8s.io/pod-uid"
)

// RoleKey values.
const (
	// RoleNamespaceRouter marks the logical router of one namespace, named in NamespaceKey.
	RoleNamespaceRouter = "namespace-router"
	// RoleClusterRouter marked the one logical router of the cluster in the layout before routers
	// per namespace. Such a router is never used; it is removed once no port is left on it.
	RoleClusterRouter = "cluster-router"
)

// Keys of Logical_Switch other_config for OVN's native IPAM, and of Logical_Switch_Port options.
const (
	// SubnetKey is the IPv4 subnet OVN allocates dynamic addresses from.
	SubnetKey = "subnet"
	// ExcludeIPsKey lists IPv4 addresses OVN must not allocate.
	ExcludeIPsKey = "exclude_ips"
	// IPv6PrefixKey is the IPv6 prefix OVN derives dynamic addresses from (for /64 prefixes).
	IPv6PrefixKey = "ipv6_prefix"
	// RouterPortKey names the Logical_Router_Port that a switch port of type router connects to.
	RouterPortKey = "router-port"
)

// Values of Logical_Switch_Port columns for the port that connects a switch to the router.
const (
	// SwitchPortTypeRouter is the type of a switch port connected to a router port.
	SwitchPortTypeRouter = "router"
	// SwitchPortAddressRouter makes a switch port take its addresses from its router port.
	SwitchPortAddressRouter = "router"
)

// managedExternalIDs are the external_ids keys the backend owns on its rows: Ensure and EnsurePort
// set the ones they want and remove the others, and leave keys written by anyone else alone.
var managedExternalIDs = []string{OwnerKey, NamespaceKey, NameKey, UIDKey, CIDRKey, GatewayKey, RoleKey,
	PodNamespaceKey, PodNameKey, PodUIDKey}

// Prefixes of the names of a cluster's switch ports, router ports and pod ports; the Network's UID
// follows, or the pod's.
func switchPortPrefix(cluster string) string { return cluster + ".lsp." }
func routerPortPrefix(cluster string) string { return cluster + ".lrp." }
func podPortPrefix(cluster string) string    { return cluster + ".pod." }

// nameOwner returns what a row's name tells of the Network it would belong to, when the name is
// one the cluster uses: the UID for ports, the namespace and name for switches, the namespace for
// routers. table is the row's table. A pod port's name is none of these (see podNameOwner).
func nameOwner(cluster, table, name string) (backend.Owned, bool) {
	rest, ok := strings.CutPrefix(name, cluster+".")
	if !ok || rest == "" {
		return backend.Owned{}, false
	}
	var owner backend.Owned
	switch table {
	case nbdb.LogicalSwitchPortTable:
		uid, _ := strings.CutPrefix(name, switchPortPrefix(cluster))
		owner.UID = types.UID(uid)
		ok = uid != name && uid != ""
	case nbdb.LogicalRouterPortTable:
		uid, _ := strings.CutPrefix(name, routerPortPrefix(cluster))
		owner.UID = types.UID(uid)
		ok = uid != name && uid != ""
	case nbdb.LogicalSwitchTable:
		owner.Namespace, owner.Name, ok = strings.Cut(rest, ".")
		ok = ok && owner.Namespace != "" && owner.Name != ""
	case nbdb.LogicalRouterTable:
		owner.Namespace = rest
		ok = !strings.Contains(rest, ".")
	default:
		ok = false
	}
	if !ok {
		return backend.Owned{}, false
	}
	return owner, true
}

// podNameOwner returns the pod UID that a switch port's name tells, when it is the name of a pod
// port of the cluster.
func podNameOwner(cluster, name string) (types.UID, bool) {
	uid, ok := strings.CutPrefix(name, podPortPrefix(cluster))
	if !ok || uid == "" {
		return "", false
	}
	return types.UID(uid), true
}

// ownerText describes who a row belongs to, from its external_ids, for a NameConflictError.
func ownerText(externalIDs map[string]string) string {
	if owner, ok := externalIDs[OwnerKey]; ok {
		return fmt.Sprintf("owner %q", owner)
	}
	return "no " + OwnerKey + " external_id"
}

// managedOtherConfig are the Logical_Switch other_config keys the backend owns.
var managedOtherConfig = []string{SubnetKey, ExcludeIPsKey, IPv6PrefixKey}

// managedOptions are the Logical_Switch_Port options keys the backend owns.
var managedOptions = []string{RouterPortKey}

// RouterName is the name of the logical router of a namespace. A namespace name has no dots, so
// that it is never the name of a switch (SwitchName has one more component).
func RouterName(cluster, namespace string) string {
	return cluster + "." + namespace
}

// SwitchName is the name of the logical switch of the Network namespace/name.
func SwitchName(cluster, namespace, name string) string {
	return cluster + "." + namespace + "." + name
}

// SwitchPortName is the name of the logical switch port that connects the Network's switch to its
// namespace's router.
func SwitchPortName(cluster string, uid types.UID) string {
	return switchPortPrefix(cluster) + string(uid)
}

// PodPortName is the name of the logical switch port of the pod with the UID. It does not name the
// Network: a pod that moves to another Network keeps its port's name.
func PodPortName(cluster string, uid types.UID) string {
	return podPortPrefix(cluster) + string(uid)
}

// RouterPortName is the name of the router port on the Network's switch.
func RouterPortName(cluster string, uid types.UID) string {
	return routerPortPrefix(cluster) + string(uid)
}

// RouterPortMAC is the Ethernet address of the router port of the Network with the UID: 0a
// (locally administered, unicast) followed by the first five bytes of the SHA-256 of the UID, so
// that it is the same every time and on every controller.
func RouterPortMAC(uid types.UID) string {
	sum := sha256.Sum256([]byte(uid))
	mac := net.HardwareAddr{0x0a, sum[0], sum[1], sum[2], sum[3], sum[4]}
	return mac.String()
}

// ownedBy reports whether external_ids mark a row as the cluster's.
func ownedBy(externalIDs map[string]string, cluster string) bool {
	return externalIDs[OwnerKey] == cluster
}

// isPodPort reports whether external_ids mark a switch port as a pod port of the cluster.
func isPodPort(externalIDs map[string]string, cluster string) bool {
	return ownedBy(externalIDs, cluster) && externalIDs[PodUIDKey] != ""
}

// ownedUID returns the Network UID of a row owned by the cluster, or "" when the row is not the
// cluster's or belongs to no Network.
func ownedUID(externalIDs map[string]string, cluster string) types.UID {
	if !ownedBy(externalIDs, cluster) {
		return ""
	}
	return types.UID(externalIDs[UIDKey])
}

// validateCluster checks a cluster name for use in row names and external_ids.
func validateCluster(cluster string) error {
	if cluster == "" {
		return fmt.Errorf("the cluster name is empty")
	}
	for _, r := range cluster {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("the cluster name %q contains a space or control character", cluster)
		}
	}
	return nil
}
