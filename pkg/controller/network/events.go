package network

// Event reasons and messages besides the Ready condition's reasons (samplecrdv1.Reason*), which
// events reuse: a Warning event carries the reason of the condition it reports.
const (
	// MessageSynced is the message of a Synced event and of the Ready condition once programmed.
	MessageSynced = "Network synced successfully"
	// MessageBackendUnavailable is the message of Ready=False, reason BackendUnavailable; %s is
	// the backend's type. It never changes with the cause, so that an outage writes it once.
	MessageBackendUnavailable = "the %s backend is not available; the Network is synced when it returns"
	// ReasonBackendAvailable is recorded on Options.EventObject when the backend returns after an
	// outage (which was recorded with samplecrdv1.ReasonBackendUnavailable).
	ReasonBackendAvailable = "BackendAvailable"
	// ReasonDeleted is recorded when a deleted Network's backend objects are removed.
	ReasonDeleted = "Deleted"
)
