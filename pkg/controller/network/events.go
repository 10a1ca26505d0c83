package network

// Event reasons and messages besides the Ready condition's reasons (samplecrdv1.Reason*), which
// events reuse: a Warning event carries the reason of the condition it reports.
const (
	// MessageSynced is the message of a Synced event and of the Ready condition once programmed.
	MessageSynced = "Network synced successfully"
	// ReasonDeleted is recorded when a deleted Network's backend objects are removed.
	ReasonDeleted = "Deleted"
)
