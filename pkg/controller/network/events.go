package network

// Event reasons. Synced and its message are the tutorial's.
const (
	// ReasonSynced is recorded when the backend was changed to match a Network.
	ReasonSynced = "Synced"
	// MessageSynced is the message of a Synced event.
	MessageSynced = "Network synced successfully"
	// ReasonCIDRConflict is recorded when a Network is not programmed because an older one overlaps it.
	ReasonCIDRConflict = "CIDRConflict"
	// ReasonInvalidSpec is recorded when a Network's spec cannot be programmed.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonBackendError is recorded when the backend fails; the controller retries with backoff.
	ReasonBackendError = "BackendError"
	// ReasonDeleted is recorded when a deleted Network's backend objects are removed.
	ReasonDeleted = "Deleted"
)
