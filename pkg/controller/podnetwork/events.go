package podnetwork

// Event reasons on pods.
const (
	// ReasonAddressUnavailable: the pod asked for a Network or an address it cannot have now
	// (no free address, a static address that is taken or outside the cidr, a Network that does
	// not exist or is being deleted); the message says which.
	ReasonAddressUnavailable = "AddressUnavailable"
	// ReasonPortConflict: the name of the pod's port is held by a backend object that the
	// controller does not own.
	ReasonPortConflict = "PortConflict"
)
