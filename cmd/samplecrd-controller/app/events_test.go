package app

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// failingSink fails every write with err.
type failingSink struct{ err error }

func (s failingSink) Create(*corev1.Event) (*corev1.Event, error)        { return nil, s.err }
func (s failingSink) Update(*corev1.Event) (*corev1.Event, error)        { return nil, s.err }
func (s failingSink) Patch(*corev1.Event, []byte) (*corev1.Event, error) { return nil, s.err }

// TestCountingSink counts refused and failed event writes by component and reason, except a
// patch of an event that is gone, which client-go follows with a create.
func TestCountingSink(t *testing.T) {
	metrics.Register()
	forbidden := apierrors.NewForbidden(corev1.Resource("events"), "e", errors.New("RBAC"))
	notFound := apierrors.NewNotFound(corev1.Resource("events"), "e")
	tests := []struct {
		name      string
		component string
		err       error
		write     func(s countingSink, e *corev1.Event)
		reason    string
		want      float64
	}{
		{"create forbidden", "c1", forbidden, func(s countingSink, e *corev1.Event) { _, _ = s.Create(e) }, "Forbidden", 1},
		{"update forbidden", "c2", forbidden, func(s countingSink, e *corev1.Event) { _, _ = s.Update(e) }, "Forbidden", 1},
		{"patch forbidden", "c3", forbidden, func(s countingSink, e *corev1.Event) { _, _ = s.Patch(e, nil) }, "Forbidden", 1},
		{"patch of a gone event", "c4", notFound, func(s countingSink, e *corev1.Event) { _, _ = s.Patch(e, nil) }, "NotFound", 0},
		{"server not reached", "c5", errors.New("connection refused"), func(s countingSink, e *corev1.Event) { _, _ = s.Create(e) }, "Unknown", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.write(countingSink{failingSink{tc.err}}, &corev1.Event{Source: corev1.EventSource{Component: tc.component}})
			if got := testutil.ToFloat64(metrics.EventsFailed.WithLabelValues(tc.component, tc.reason)); got != tc.want {
				t.Errorf("samplecrd_events_failed_total{component=%q,reason=%q} = %v, want %v", tc.component, tc.reason, got, tc.want)
			}
		})
	}
}
