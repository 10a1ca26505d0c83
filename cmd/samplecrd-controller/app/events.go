package app

import (
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"

	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// countingSink is the broadcaster's event sink with every failed write counted in
// samplecrd_events_failed_total: client-go's broadcaster logs a refused event and drops it,
// which without the count is seen by nobody who does not read every log line.
type countingSink struct {
	record.EventSink
}

func (s countingSink) Create(e *corev1.Event) (*corev1.Event, error) {
	out, err := s.EventSink.Create(e)
	countEventFailure(e, err)
	return out, err
}

func (s countingSink) Update(e *corev1.Event) (*corev1.Event, error) {
	out, err := s.EventSink.Update(e)
	countEventFailure(e, err)
	return out, err
}

// Patch counts a refusal, but not NotFound: client-go then creates the event (a repeat whose
// first occurrence expired), and that create is counted if it fails.
func (s countingSink) Patch(old *corev1.Event, data []byte) (*corev1.Event, error) {
	out, err := s.EventSink.Patch(old, data)
	if !apierrors.IsNotFound(err) {
		countEventFailure(old, err)
	}
	return out, err
}

func countEventFailure(e *corev1.Event, err error) {
	if err == nil {
		return
	}
	reason := "Unknown"
	if r := apierrors.ReasonForError(err); r != "" {
		reason = string(r)
	}
	metrics.EventsFailed.WithLabelValues(e.Source.Component, reason).Inc()
}
