package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Network is an IP network that the network controller programs into the network backend: in the
// OVN backend, a logical switch with the network's subnet and a router port for its gateway.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=net,categories=samplecrd
// +kubebuilder:metadata:annotations="api-approved.kubernetes.io=unapproved, samplecrd.k8s.io is a sample API group outside the Kubernetes project"
// +kubebuilder:printcolumn:name="CIDR",type=string,JSONPath=`.spec.cidr`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gateway`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Used",type=integer,JSONPath=`.status.addresses.used`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.addresses.available`
// +kubebuilder:printcolumn:name="Total",type=integer,priority=1,JSONPath=`.status.addresses.total`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Network struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired network.
	// +required
	Spec NetworkSpec `json:"spec"`
	// Status is what the controller last observed and did.
	// +optional
	Status NetworkStatus `json:"status,omitempty"`
}

// Validation of NetworkSpec at admission. The API server runs these CEL rules; the string lengths
// are bounded so that each rule's estimated cost stays inside its budget, at the longest spelling
// that the parsers accept: an IPv6 address of six groups of four digits and an IPv4 tail
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") is 45 bytes, and with "/128" 49. A shorter
// bound would refuse valid specs that the controller accepts. Rules that compare both fields skip
// when a field is missing or malformed: that field's own rule already says what is wrong, and one
// clear message beats three.
//
// Two things this API server's CEL does not allow, found by trying the rules against it: the cost
// estimator prices the != operator on IP and CIDR values at over 100 times the budget (while == on
// the same values is cheap), so the rules write !(a == b); and cel.bind is not available, so the
// broadcast rule repeats its small subexpressions instead of binding them.
//
// The cidr must not overlap a reserved range: one rule for each of ReservedRanges (reserved.go in
// pkg/apis/samplecrd/v1), in the same order, which an integration test checks against that list.
// Two prefixes overlap exactly when one contains the other's network address, which is what each
// rule asks. An IPv4 value never contains an IPv6 one nor the reverse, so the rules of one family
// pass the cidrs of the other. The CEL library refuses to parse IPv4-mapped IPv6 addresses
// (::ffff:127.0.0.0/104 is not a CIDR to it), so the IPv4-mapped range cannot be written as a
// literal: its rule refuses the prefixes of at most 95 bits that contain ::fffe:0:0, which are
// those that contain ::ffff:0.0.0.0/96 (the two addresses differ only in bit 95).
//
// +kubebuilder:validation:XValidation:rule="!has(self.cidr) || !has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || ip(self.gateway).family() == cidr(self.cidr).ip().family()",message="gateway must be of the same IP family as cidr"
// +kubebuilder:validation:XValidation:rule="!has(self.cidr) || !has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || ip(self.gateway).family() != cidr(self.cidr).ip().family() || cidr(self.cidr).containsIP(self.gateway)",message="gateway must be inside cidr"
// +kubebuilder:validation:XValidation:rule="!has(self.cidr) || !has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || ip(self.gateway).family() != cidr(self.cidr).ip().family() || !cidr(self.cidr).containsIP(self.gateway) || !(ip(self.gateway) == cidr(self.cidr).masked().ip())",message="gateway must not be the network address of cidr"
// +kubebuilder:validation:XValidation:rule="!has(self.cidr) || !has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || ip(self.gateway).family() != cidr(self.cidr).ip().family() || !cidr(self.cidr).containsIP(self.gateway) || ip(self.gateway).family() != 4 || cidr(self.cidr).prefixLength() > 30 || (int(self.gateway.split('.')[0]) * 16777216 + int(self.gateway.split('.')[1]) * 65536 + int(self.gateway.split('.')[2]) * 256 + int(self.gateway.split('.')[3])) % [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304, 8388608, 16777216, 33554432, 67108864, 134217728, 268435456, 536870912, 1073741824, 2147483648, 4294967296][32 - cidr(self.cidr).prefixLength()] != [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304, 8388608, 16777216, 33554432, 67108864, 134217728, 268435456, 536870912, 1073741824, 2147483648, 4294967296][32 - cidr(self.cidr).prefixLength()] - 1",message="gateway must not be the broadcast address of cidr"

// NetworkSpec is the desired state of a Network: the two fields of the tutorial's API.
type NetworkSpec struct {
	// Cidr is the network's address range in CIDR notation, IPv4 or IPv6, with no host bits set,
	// for example 192.168.0.0/16. The prefix must leave room for the gateway and at least one
	// more host: at most /30 for IPv4 and /126 for IPv6. It must not overlap a range that is not
	// for unicast hosts: "this network" 0.0.0.0/8, loopback 127.0.0.0/8 and ::1/128, link-local
	// 169.254.0.0/16 and fe80::/10, multicast 224.0.0.0/4 and ff00::/8, the limited broadcast
	// address 255.255.255.255/32, the unspecified address ::/128 and the IPv4-mapped range
	// ::ffff:0.0.0.0/96.
	// +required
	// +kubebuilder:validation:MaxLength=49
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="cidr must be a CIDR such as 192.168.0.0/16 or fd00:10::/64"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self) == cidr(self).masked()",message="cidr must not have host bits set: give the network address, such as 192.168.0.0/16 rather than 192.168.1.0/16"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).prefixLength() <= (cidr(self).ip().family() == 4 ? 30 : 126)",message="cidr is too small: it must hold the gateway and at least one more host (at most /30 for IPv4, /126 for IPv6)"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('0.0.0.0') || cidr('0.0.0.0/8').containsIP(cidr(self).ip()))",message="cidr must not overlap the \"this network\" range 0.0.0.0/8"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('127.0.0.0') || cidr('127.0.0.0/8').containsIP(cidr(self).ip()))",message="cidr must not overlap the loopback range 127.0.0.0/8"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('169.254.0.0') || cidr('169.254.0.0/16').containsIP(cidr(self).ip()))",message="cidr must not overlap the link-local range 169.254.0.0/16"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('224.0.0.0') || cidr('224.0.0.0/4').containsIP(cidr(self).ip()))",message="cidr must not overlap the multicast range 224.0.0.0/4"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('255.255.255.255') || cidr('255.255.255.255/32').containsIP(cidr(self).ip()))",message="cidr must not overlap the limited broadcast range 255.255.255.255/32"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('::') || cidr('::/128').containsIP(cidr(self).ip()))",message="cidr must not overlap the unspecified range ::/128"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('::1') || cidr('::1/128').containsIP(cidr(self).ip()))",message="cidr must not overlap the loopback range ::1/128"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).prefixLength() <= 95 && cidr(self).containsIP('::fffe:0:0'))",message="cidr must not overlap the IPv4-mapped range ::ffff:0.0.0.0/96"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('fe80::') || cidr('fe80::/10').containsIP(cidr(self).ip()))",message="cidr must not overlap the link-local range fe80::/10"
	// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || !(cidr(self).containsIP('ff00::') || cidr('ff00::/8').containsIP(cidr(self).ip()))",message="cidr must not overlap the multicast range ff00::/8"
	Cidr string `json:"cidr"`
	// Gateway is the network's gateway address, of the same family as Cidr and inside it, neither
	// the network address nor, for IPv4, the broadcast address; for example 192.168.0.1.
	// +required
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="gateway must be an IP address such as 192.168.0.1 or fd00:10::1"
	Gateway string `json:"gateway"`
}

// Condition types and reasons of a Network.
const (
	// ConditionReady is true when the backend holds the network exactly as the spec asks.
	ConditionReady = "Ready"

	// ReasonSynced: the backend holds the network as the spec asks.
	ReasonSynced = "Synced"
	// ReasonCIDRConflict: the cidr overlaps that of an older programmed Network of the same namespace.
	ReasonCIDRConflict = "CIDRConflict"
	// ReasonInvalidSpec: the spec passed admission but the controller cannot program it.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNameConflict: a name the network's backend objects need is held by an object the
	// controller does not own (the message names it); nothing is created until it goes.
	ReasonNameConflict = "NameConflict"
	// ReasonBackendError: the backend failed; the controller retries with backoff.
	ReasonBackendError = "BackendError"
	// ReasonBackendUnavailable: the backend is not reachable and the Network has work pending;
	// the controller syncs it again when the backend returns. A Network that was programmed and
	// whose spec did not change keeps Ready=True meanwhile: its data plane runs on.
	ReasonBackendUnavailable = "BackendUnavailable"
	// ReasonDeleting: the Network is being deleted and its backend objects removed.
	ReasonDeleting = "Deleting"
	// ReasonInUse: the Network is being deleted but pods are still attached to it (the message
	// says how many and names a few); it is removed once they are gone.
	ReasonInUse = "InUse"
	// ReasonAddressesInUse: the spec's cidr or gateway changed, and addresses of attached pods do
	// not fit the new spec (the message says which); the change is applied once they are gone.
	// The backend keeps the network as it was meanwhile.
	ReasonAddressesInUse = "AddressesInUse"
)

// NetworkStatus is what the controller last observed and did.
type NetworkStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are the Network's current conditions; Ready says whether the backend holds it.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
	// Backend is where the backend holds the network, once it does.
	// +optional
	Backend *NetworkBackendStatus `json:"backend,omitempty"`
	// Addresses counts the network's addresses for pods, once the controller attaches pods to it.
	// +optional
	Addresses *NetworkAddresses `json:"addresses,omitempty"`
}

// NetworkAddresses counts the addresses of a Network that pods can have: all of the cidr but the
// network address, the gateway and, for IPv4, the broadcast address. For an IPv6 cidr of more than
// 2^32 such addresses the count stops at 2^32 minus those excluded, because a pod's MAC address is
// made of the last 32 bits of its IP address and must be unique on the network.
type NetworkAddresses struct {
	// Total is the number of addresses pods can have.
	// +required
	Total int64 `json:"total"`
	// Used is the number of addresses that pods hold.
	// +required
	Used int64 `json:"used"`
	// Available is Total minus Used.
	// +required
	Available int64 `json:"available"`
}

// NetworkBackendStatus names the network's object in the backend.
type NetworkBackendStatus struct {
	// Type is the backend, for example "ovn".
	// +required
	Type string `json:"type"`
	// Name is the name of the backend object, for example the OVN logical switch's name.
	// +optional
	Name string `json:"name,omitempty"`
	// ID is the backend's identifier of the object, for example the OVN logical switch's UUID.
	// +optional
	ID string `json:"id,omitempty"`
}

// NetworkList is a list of Networks.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type NetworkList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items are the Networks.
	Items []Network `json:"items"`
}
