package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	// MissingPermissions is 1 for each permission a controller needs and the API server's
	// authorizer denies (as SelfSubjectAccessReview answers), 0 once it is granted.
	MissingPermissions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "missing_permissions",
		Help: "1 for each permission a controller needs that RBAC denies it, by controller, verb and resource (resource.group/subresource); 0 once granted.",
	}, []string{"controller", "verb", "resource"})
	// EventsFailed counts event writes (create, patch, update) the API server refused or that did
	// not reach it, by the recording component and the API server's reason.
	EventsFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "events_failed_total",
		Help: "Event writes that failed, by recording component and reason (the API status reason, e.g. Forbidden, or Unknown when the server was not reached).",
	}, []string{"component", "reason"})
)
