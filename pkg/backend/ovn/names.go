package ovn

import (
	"crypto/sha256"
	"fmt"
	"net"

	"k8s.io/apimachinery/pkg/types"
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
)

// RoleClusterRouter is the RoleKey value of the cluster's logical router.
const RoleClusterRouter = "cluster-router"

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

// managedExternalIDs are the external_ids keys the backend owns on its rows: Ensure sets the ones
// it wants and removes the others, and leaves keys written by anyone else alone.
var managedExternalIDs = []string{OwnerKey, NamespaceKey, NameKey, UIDKey, CIDRKey, GatewayKey, RoleKey}

// managedOtherConfig are the Logical_Switch other_config keys the backend owns.
var managedOtherConfig = []string{SubnetKey, ExcludeIPsKey, IPv6PrefixKey}

// managedOptions are the Logical_Switch_Port options keys the backend owns.
var managedOptions = []string{RouterPortKey}

// RouterName is the name of the cluster's logical router.
func RouterName(cluster string) string {
	return cluster + ".router"
}

// SwitchName is the name of the logical switch of the Network namespace/name.
func SwitchName(cluster, namespace, name string) string {
	return cluster + "." + namespace + "." + name
}

// SwitchPortName is the name of the logical switch port that connects the Network's switch to the
// cluster router.
func SwitchPortName(cluster string, uid types.UID) string {
	return cluster + ".lsp." + string(uid)
}

// RouterPortName is the name of the cluster router's port on the Network's switch.
func RouterPortName(cluster string, uid types.UID) string {
	return cluster + ".lrp." + string(uid)
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
