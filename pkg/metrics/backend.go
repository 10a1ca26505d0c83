package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
)

// InstrumentBackend returns b with every Ensure, Delete, List and Prune timed into
// BackendRequestDuration. A backend.Notifier stays one.
func InstrumentBackend(b backend.Backend) backend.Backend {
	ib := instrumented{b}
	if n, ok := b.(backend.Notifier); ok {
		return instrumentedNotifier{ib, n}
	}
	return ib
}

type instrumented struct{ backend.Backend }

func observeBackend(b backend.Backend, op string, start time.Time, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	BackendRequestDuration.WithLabelValues(b.Type(), op, result).Observe(time.Since(start).Seconds())
}

func (i instrumented) Ensure(ctx context.Context, n backend.Network) (backend.Status, error) {
	start := time.Now()
	s, err := i.Backend.Ensure(ctx, n)
	observeBackend(i.Backend, "ensure", start, err)
	return s, err
}

func (i instrumented) Delete(ctx context.Context, uid types.UID) error {
	start := time.Now()
	err := i.Backend.Delete(ctx, uid)
	observeBackend(i.Backend, "delete", start, err)
	return err
}

func (i instrumented) List(ctx context.Context) ([]backend.Owned, error) {
	start := time.Now()
	owned, err := i.Backend.List(ctx)
	observeBackend(i.Backend, "list", start, err)
	return owned, err
}

func (i instrumented) Prune(ctx context.Context) (int, error) {
	start := time.Now()
	n, err := i.Backend.Prune(ctx)
	observeBackend(i.Backend, "prune", start, err)
	return n, err
}

type instrumentedNotifier struct {
	instrumented
	backend.Notifier
}

// BackendReady reports, at each scrape, whether each backend handed to WatchBackendReadiness is
// ready (1) or not (0): samplecrd_backend_ready{backend="ovn"}. An alert on it staying 0 is the
// way to hear of an outage, which programmed Networks do not report (their data plane keeps
// running on what was programmed).
var BackendReady = &readinessCollector{
	desc: prometheus.NewDesc(namespace+"_backend_ready",
		"Whether the backend is connected and its view current (1) or not (0).", []string{"backend"}, nil),
	ready: map[string]func() error{},
}

// WatchBackendReadiness adds b to BackendReady, replacing a backend of the same type.
func WatchBackendReadiness(b backend.Backend) {
	BackendReady.mu.Lock()
	defer BackendReady.mu.Unlock()
	BackendReady.ready[b.Type()] = b.Ready
}

type readinessCollector struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	ready map[string]func() error
}

func (c *readinessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *readinessCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for typ, ready := range c.ready {
		v := 0.0
		if ready() == nil {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, typ)
	}
}

// InstrumentPorts returns p's Ports with each call's duration observed in
// BackendRequestDuration, as operations ensure_port, delete_port and list_ports.
func InstrumentPorts(p interface {
	backend.Backend
	backend.Ports
}) backend.Ports {
	return instrumentedPorts{p}
}

type instrumentedPorts struct {
	p interface {
		backend.Backend
		backend.Ports
	}
}

func (i instrumentedPorts) EnsurePort(ctx context.Context, port backend.Port) (backend.PortStatus, error) {
	start := time.Now()
	s, err := i.p.EnsurePort(ctx, port)
	observeBackend(i.p, "ensure_port", start, err)
	return s, err
}

func (i instrumentedPorts) DeletePort(ctx context.Context, podUID types.UID) error {
	start := time.Now()
	err := i.p.DeletePort(ctx, podUID)
	observeBackend(i.p, "delete_port", start, err)
	return err
}

func (i instrumentedPorts) ListPorts(ctx context.Context) ([]backend.Port, error) {
	start := time.Now()
	ports, err := i.p.ListPorts(ctx)
	observeBackend(i.p, "list_ports", start, err)
	return ports, err
}
