package network

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
)

// TestBackendMisconfigured checks what a backend that cannot connect because of its configuration
// costs: a Network with work pending reports BackendError with the cause, once, and is not
// retried; a programmed one keeps its status; a change of cause queues every Network, whose sync
// writes the new cause once; an outage after it says BackendUnavailable again.
func TestBackendMisconfigured(t *testing.T) {
	programmed := network("programmed", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced)
	fresh := network("fresh", "10.0.1.0/24", "10.0.1.1")
	be := fakebackend.New()
	f := newFixture(t, be, programmed, fresh)
	misconfigured := func(cause string) error {
		return fmt.Errorf("%w: %w", backend.ErrNotReady, &backend.MisconfiguredError{Err: errors.New(cause)})
	}
	unknownCA := "TLS: x509: certificate signed by unknown authority"
	be.SetNotReady(misconfigured(unknownCA))
	if diff := cmp.Diff([]string{"default/fresh", "default/programmed"}, f.drainQueue()); diff != "" {
		t.Errorf("queued by the misconfiguration (-want +got):\n%s", diff)
	}

	got := f.sync(t, "default", "fresh")
	want := "False/BackendError: fake backend: " + unknownCA
	if got.Err || got.Ready != want || len(got.Events) != 1 {
		t.Errorf("first sync: err %t, Ready %q, events %v; want no error, %q and one event", got.Err, got.Ready, got.Events, want)
	}
	if r := f.sync(t, "default", "programmed"); r.Err || r.Ready != "True/Synced: "+MessageSynced || len(r.Writes) != 0 {
		t.Errorf("programmed Network: err %t, Ready %q, writes %v; want it kept", r.Err, r.Ready, r.Writes)
	}

	// Another attempt fails the same way: the backend reports nothing, and a sync writes nothing.
	f.feedBack(t, "fresh")
	be.SetNotReady(misconfigured(unknownCA))
	if keys := f.drainQueue(); len(keys) != 0 {
		t.Errorf("the same cause queued %v", keys)
	}
	if r := f.sync(t, "default", "fresh"); r.Err || len(r.Writes) != 0 || len(r.Events) != 0 {
		t.Errorf("second sync with the same cause wrote %v and recorded %v (err %t); want nothing", r.Writes, r.Events, r.Err)
	}

	// A new cause: every Network is queued, and the pending one says it.
	expired := "TLS: x509: certificate has expired: valid until 2026-01-01T00:00:00Z"
	be.SetNotReady(misconfigured(expired))
	if diff := cmp.Diff([]string{"default/fresh", "default/programmed"}, f.drainQueue()); diff != "" {
		t.Errorf("queued by the new cause (-want +got):\n%s", diff)
	}
	if r := f.sync(t, "default", "fresh"); r.Ready != "False/BackendError: fake backend: "+expired || len(r.Writes) != 1 {
		t.Errorf("sync with the new cause: Ready %q, writes %v; want the new cause in one write", r.Ready, r.Writes)
	}

	// An outage now: queued again, and reported as one.
	f.feedBack(t, "fresh")
	be.SetNotReady(errors.New("connection refused"))
	if diff := cmp.Diff([]string{"default/fresh", "default/programmed"}, f.drainQueue()); diff != "" {
		t.Errorf("queued by the outage (-want +got):\n%s", diff)
	}
	msg := fmt.Sprintf(MessageBackendUnavailable, fakebackend.Type)
	if r := f.sync(t, "default", "fresh"); r.Ready != "False/BackendUnavailable: "+msg {
		t.Errorf("sync in the outage: Ready %q, want BackendUnavailable", r.Ready)
	}
}
