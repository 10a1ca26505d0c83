package v1

// AllowedCIDRsAnnotation is the annotation of a Namespace that bounds the cidr of its Networks: a
// comma-separated list of CIDRs, such as "10.20.0.0/16,fd00:20::/48", spaces around each entry
// allowed. The ValidatingAdmissionPolicy in config/policy refuses to create a Network in an
// annotated namespace, or to change its cidr, unless the cidr lies inside one of the listed
// ranges; a malformed list refuses them all. Namespaces without it are not bounded. Only cluster
// administrators should be able to set it: whoever can change a namespace's annotations can
// change its bounds.
const AllowedCIDRsAnnotation = GroupName + "/allowed-cidrs"

// AllowedCIDRsAnnotationMaxLength is the longest value of AllowedCIDRsAnnotation, in characters,
// that the policy reads; it refuses every Network of a namespace whose value is longer, which
// bounds the policy's cost at admission.
const AllowedCIDRsAnnotationMaxLength = 4096

// Annotations of pods and namespaces that attach pods to Networks. A pod asks with NetworkAnnotation
// (or its namespace gives a default with it) and may ask for an address with IPAddressAnnotation;
// the controller answers in the pod's annotations under the Allocated* keys, which a CNI plugin on
// the node reads. docs/api.md describes them.
const (
	// NetworkAnnotation, on a pod, names the Network of the pod's namespace that the pod is attached
	// to; on a namespace, the Network of its pods that do not name one. A pod's own annotation wins,
	// and a pod whose annotation is empty is attached to none.
	NetworkAnnotation = GroupName + "/network"
	// IPAddressAnnotation, on a pod, asks for a specific address of the Network, such as 10.1.0.5.
	// Inside the cidr and free, the pod gets it; otherwise it gets none, with a Warning event.
	IPAddressAnnotation = GroupName + "/ip-address"

	// AllocatedAnnotation is "true" on a pod once its address is allocated, its port created and
	// the annotations below written; a CNI plugin waits for it.
	AllocatedAnnotation = GroupName + "/allocated"
	// AllocatedNetworkAnnotation is the name of the Network the pod is attached to.
	AllocatedNetworkAnnotation = GroupName + "/allocated-network"
	// AllocatedNetworkUIDAnnotation is the UID of that Network: a Network deleted and created again
	// under the same name is another Network, and the pod's allocation is then made again.
	AllocatedNetworkUIDAnnotation = GroupName + "/allocated-network-uid"
	// AllocatedIPAnnotation is the pod's address with the Network's prefix length, such as 10.1.0.5/16.
	AllocatedIPAnnotation = GroupName + "/allocated-ip"
	// AllocatedMACAnnotation is the pod's MAC address, such as 0a:58:0a:01:00:05.
	AllocatedMACAnnotation = GroupName + "/allocated-mac"
	// AllocatedGatewayAnnotation is the Network's gateway, such as 10.1.0.1.
	AllocatedGatewayAnnotation = GroupName + "/allocated-gateway"
	// LogicalSwitchAnnotation is the name of the backend's switch that holds the pod's port.
	LogicalSwitchAnnotation = GroupName + "/logical-switch"
)
