package podcount

// ReasonSuccessCalculatePod is the reason of the "pod count is N" events; existing consumers of the
// events match on it.
const ReasonSuccessCalculatePod = "SuccessCalculatePod"

// ReasonLabelFailed is the reason of the Warning event recorded on a node whose label could not be
// written.
const ReasonLabelFailed = "LabelFailed"
