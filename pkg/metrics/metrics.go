// Package metrics holds the manager's Prometheus metrics: its own (reconciles, backend requests,
// leadership) and client-go's (workqueues, REST client requests), all in one registry that the
// manager serves on /metrics.
//
// client-go reports workqueue and REST client metrics through process-wide hooks that can be set
// once, so Register installs them once per process; the metrics themselves are package variables,
// as in client-go and Kubernetes' components.
package metrics

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/tools/cache"
	clientmetrics "k8s.io/client-go/tools/metrics"
	"k8s.io/client-go/util/workqueue"
)

const namespace = "samplecrd"

// Registry is the registry the manager serves. It holds the Go and process collectors too.
var Registry = prometheus.NewRegistry()

var (
	// ReconcileTotal counts syncs per controller and result ("success" or "error").
	ReconcileTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "reconcile_total",
		Help: "Syncs of one object (or one pass) by a controller, by result.",
	}, []string{"controller", "result"})
	// ReconcileErrors counts failed syncs per controller.
	ReconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "reconcile_errors_total",
		Help: "Syncs that returned an error, by controller.",
	}, []string{"controller"})
	// ReconcileDuration observes how long syncs take per controller.
	ReconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "reconcile_duration_seconds",
		Help:    "Time a controller took to sync one object (or one pass).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"controller"})
	// BackendRequestDuration observes network backend calls by backend, operation and result.
	BackendRequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "backend_request_duration_seconds",
		Help:    "Time of network backend calls, by backend, operation (ensure, delete, list, prune, ensure_port, delete_port, list_ports) and result.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"backend", "operation", "result"})
	// Leader is 1 while this process holds the leader lease, else 0.
	Leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "leader",
		Help: "1 while this process holds the leader lease (or runs without leader election), else 0.",
	})

	restRequestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "rest_client_request_duration_seconds",
		Help:    "API server request latency, by verb and host.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"verb", "host"})
	restRateLimiterLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "rest_client_rate_limiter_duration_seconds",
		Help:    "Time API server requests waited for the client-side rate limiter, by verb and host.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"verb", "host"})
	restRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "rest_client_requests_total",
		Help: "API server requests, by status code, method and host.",
	}, []string{"code", "method", "host"})

	workqueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: "workqueue", Name: "depth", Help: "Current depth of the workqueue.",
	}, []string{"name"})
	workqueueAdds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "workqueue", Name: "adds_total", Help: "Adds handled by the workqueue.",
	}, []string{"name"})
	workqueueLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "workqueue", Name: "queue_duration_seconds",
		Help:    "How long an item stays in the workqueue before it is requested.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 10, 10),
	}, []string{"name"})
	workqueueWorkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "workqueue", Name: "work_duration_seconds",
		Help:    "How long processing an item from the workqueue takes.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 10, 10),
	}, []string{"name"})
	workqueueUnfinished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: "workqueue", Name: "unfinished_work_seconds",
		Help: "Seconds of work in progress not yet observed by work_duration; large values mean stuck workers.",
	}, []string{"name"})
	workqueueLongestRunning = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: "workqueue", Name: "longest_running_processor_seconds",
		Help: "Seconds the longest running processor of the workqueue has been running.",
	}, []string{"name"})
	workqueueRetries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "workqueue", Name: "retries_total", Help: "Retries handled by the workqueue.",
	}, []string{"name"})
)

var registerOnce sync.Once

// Register fills Registry and installs the client-go hooks. It must run before any workqueue or
// REST client is created; calling it again does nothing.
func Register() {
	registerOnce.Do(func() {
		Registry.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			ReconcileTotal, ReconcileErrors, ReconcileDuration, BackendRequestDuration, BackendReady, Leader,
			MissingPermissions, EventsFailed,
			restRequestLatency, restRateLimiterLatency, restRequests,
			workqueueDepth, workqueueAdds, workqueueLatency, workqueueWorkDuration,
			workqueueUnfinished, workqueueLongestRunning, workqueueRetries,
		)
		workqueue.SetProvider(workqueueProvider{})
		clientmetrics.Register(clientmetrics.RegisterOpts{
			RequestLatency:     latencyAdapter{restRequestLatency},
			RateLimiterLatency: latencyAdapter{restRateLimiterLatency},
			RequestResult:      resultAdapter{restRequests},
		})
		// clientmetrics.Register takes effect once per process, and controller-runtime's metrics
		// package (imported by its metrics filters and certwatcher, which the metrics server
		// uses) calls it from an init function, into a registry nobody serves. The hooks are
		// package variables: setting them again keeps the REST client metrics in Registry. No
		// REST client exists yet, so nothing reads them concurrently.
		clientmetrics.RequestLatency = latencyAdapter{restRequestLatency}
		clientmetrics.RateLimiterLatency = latencyAdapter{restRateLimiterLatency}
		clientmetrics.RequestResult = resultAdapter{restRequests}
	})
}

// Reconciles records the controllers' syncs in ReconcileTotal, ReconcileErrors and
// ReconcileDuration; the manager hands it to every controller's runner.
var Reconciles reconcileObserver

type reconcileObserver struct{}

// ObserveSync records one sync of controller that took took and returned err.
func (reconcileObserver) ObserveSync(controller string, _ cache.ObjectName, took time.Duration, err error) {
	ReconcileDuration.WithLabelValues(controller).Observe(took.Seconds())
	if err != nil {
		ReconcileTotal.WithLabelValues(controller, "error").Inc()
		ReconcileErrors.WithLabelValues(controller).Inc()
		return
	}
	ReconcileTotal.WithLabelValues(controller, "success").Inc()
}

type workqueueProvider struct{}

func (workqueueProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return workqueueDepth.WithLabelValues(name)
}
func (workqueueProvider) NewAddsMetric(name string) workqueue.CounterMetric {
	return workqueueAdds.WithLabelValues(name)
}
func (workqueueProvider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return workqueueLatency.WithLabelValues(name)
}
func (workqueueProvider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return workqueueWorkDuration.WithLabelValues(name)
}
func (workqueueProvider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return workqueueUnfinished.WithLabelValues(name)
}
func (workqueueProvider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return workqueueLongestRunning.WithLabelValues(name)
}
func (workqueueProvider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return workqueueRetries.WithLabelValues(name)
}

type latencyAdapter struct{ m *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.m.WithLabelValues(verb, u.Host).Observe(latency.Seconds())
}

type resultAdapter struct{ m *prometheus.CounterVec }

func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.m.WithLabelValues(code, method, host).Inc()
}
