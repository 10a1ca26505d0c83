package network

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
)

// TestOwnWritesDoNotRequeue checks that the watch event of the controller's own status write
// does not enqueue the key: a sync that fails retries with backoff, and a failure whose message
// changes on every try (it names a row UUID, say) must not write a status as fast as the API
// server answers. Anyone else's write of the Network is still acted on.
func TestOwnWritesDoNotRequeue(t *testing.T) {
	n := network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer)
	be := fakebackend.New()
	f := newFixture(t, be, n)
	cached := n
	for try := 1; try <= 3; try++ {
		// The backend's error names something new on every try.
		be.InjectError("ensure", fmt.Errorf("row %d already exists", try))
		if r := f.sync(t, "default", "a"); !r.Err || len(r.Writes) == 0 {
			t.Fatalf("try %d: want a failed sync that writes the status, got %+v", try, r)
		}
		// The informer delivers the write's watch event.
		stored := f.feedBack(t, "a")
		f.controller.updateNetwork(cached, stored)
		if got := f.drainQueue(); len(got) != 0 {
			t.Fatalf("try %d: the controller's own write enqueued %v", try, got)
		}
		cached = stored
	}
	if len(f.controller.own.pending) != 0 {
		t.Errorf("own writes still remembered after their events: %v", f.controller.own.pending)
	}

	// A user overwrites the status: the controller puts its own back.
	forged := cached.DeepCopy()
	forged.ResourceVersion = "1000"
	forged.Status.Conditions = []metav1.Condition{{Type: samplecrdv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Forged"}}
	f.controller.updateNetwork(cached, forged)
	if diff := cmp.Diff([]string{"default/a"}, f.drainQueue()); diff != "" {
		t.Errorf("someone else's write (-want +got):\n%s", diff)
	}
}

// TestOwnWrites checks the bookkeeping: a write is recognised once, by its content, whether its
// event changes the status or the finalizers; an event that changes more than that is not a
// write of the controller's, and what is remembered per key is bounded.
func TestOwnWrites(t *testing.T) {
	base := network("a", "10.0.0.0/24", "10.0.0.1")
	key := cache.MetaObjectToName(base)
	with := func(f func(*samplecrdv1.Network)) *samplecrdv1.Network {
		n := base.DeepCopy()
		f(n)
		return n
	}
	ready := with(synced)
	finalized := with(withFinalizer)
	var w ownWrites
	w.expectFinalizers(key, finalized.Finalizers)
	w.expectStatus(key, &ready.Status)
	if w.seen(key, base, with(func(n *samplecrdv1.Network) { synced(n); n.Generation = 2 })) {
		t.Error("an event that changes the generation too is not the controller's write")
	}
	if !w.seen(key, base, finalized) {
		t.Error("the finalizer write was not recognised")
	}
	if w.seen(key, base, finalized) {
		t.Error("a write is recognised once")
	}
	forged := with(func(n *samplecrdv1.Network) { synced(n); n.Status.Backend.ID = "forged" })
	if w.seen(key, base, forged) {
		t.Error("someone else's status was taken for the controller's")
	}
	if !w.seen(key, base, ready) {
		t.Error("the status write was not recognised")
	}
	if len(w.pending) != 0 {
		t.Errorf("writes still remembered after their events: %v", w.pending)
	}
	for i := range 10 {
		w.expectFinalizers(key, []string{fmt.Sprint(i)})
	}
	if got := len(w.pending[key]); got != maxOwnWrites {
		t.Errorf("remembered %d writes, want at most %d", got, maxOwnWrites)
	}
	w.forget(key)
	if _, ok := w.pending[key]; ok {
		t.Error("forget kept the key")
	}
}

// TestBackendUnavailable checks what a backend outage costs: a Network programmed at its
// generation keeps its status and records nothing; one with work pending reports
// BackendUnavailable once, with one event; none is retried (the backend's return syncs them all).
func TestBackendUnavailable(t *testing.T) {
	programmed := network("programmed", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced)
	fresh := network("fresh", "10.0.1.0/24", "10.0.1.1")
	edited := network("edited", "10.0.2.0/24", "10.0.2.1", withFinalizer, synced, withGeneration(2))
	doomed := network("doomed", "10.0.3.0/24", "10.0.3.1", withFinalizer, synced, deleting)
	msg := fmt.Sprintf(MessageBackendUnavailable, fakebackend.Type)
	// waiting is the result of a first sync in the outage of a Network with work pending.
	waiting := func(op string, n *samplecrdv1.Network, writes ...string) result {
		return result{
			BackendCalls: []fakebackend.Call{{Op: op, UID: n.UID}},
			Events:       []string{"Warning BackendUnavailable " + msg},
			Writes:       writes,
			Finalizers:   []string{Finalizer},
			Ready:        "False/BackendUnavailable: " + msg,
		}
	}
	cases := []struct {
		network *samplecrdv1.Network
		want    result
	}{{
		network: programmed,
		want: result{
			BackendCalls: []fakebackend.Call{{Op: "ensure", UID: programmed.UID}},
			Finalizers:   []string{Finalizer},
			Ready:        "True/Synced: " + MessageSynced,
		},
	}, {
		network: fresh, want: waiting("ensure", fresh, "patch networks", "patch networks/status"),
	}, {
		network: edited, want: waiting("ensure", edited, "patch networks/status"),
	}, {
		network: doomed, want: waiting("delete", doomed, "patch networks/status"),
	}}
	for _, tc := range cases {
		t.Run(tc.network.Name, func(t *testing.T) {
			be := fakebackend.New()
			f := newFixture(t, be, tc.network)
			be.SetNotReady(errors.New("connection refused"))
			got := f.sync(t, "default", tc.network.Name)
			got.Backend, got.BackendStatus = nil, nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("first sync in the outage (-want +got):\n%s", diff)
			}

			// The sync again, with the cache showing the first one's writes: nothing new.
			f.feedBack(t, tc.network.Name)
			again := f.sync(t, "default", tc.network.Name)
			if again.Err || len(again.Writes) != 0 || len(again.Events) != 0 {
				t.Errorf("second sync in the outage wrote %v and recorded %v (err %v); want nothing", again.Writes, again.Events, again.Err)
			}
		})
	}
}

// TestBackendErrorEventsGated checks that a backend that answers but fails is reported with one
// event per reason and generation, however often its message changes, and retried.
func TestBackendErrorEventsGated(t *testing.T) {
	be := fakebackend.New()
	f := newFixture(t, be, network("a", "10.0.0.0/24", "10.0.0.1"))
	var events []string
	for try := 1; try <= 3; try++ {
		be.InjectError("ensure", fmt.Errorf("transaction %d failed", try))
		r := f.sync(t, "default", "a")
		if !r.Err {
			t.Fatalf("try %d: the error was not returned for a retry", try)
		}
		events = append(events, r.Events...)
		f.feedBack(t, "a")
	}
	if diff := cmp.Diff([]string{"Warning BackendError fake backend: transaction 1 failed"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestOutageEvents checks that an outage is recorded once on the event object, and its end once,
// by the controller that runs: a standby's backend sees the outage too, and records nothing.
func TestOutageEvents(t *testing.T) {
	be := fakebackend.New()
	f := newFixture(t, be)
	f.controller.eventObject = &corev1.ObjectReference{Kind: "Lease", Namespace: "kube-system", Name: "samplecrd-controller"}
	be.SetNotReady(errors.New("refused while standing by"))
	be.SetNotReady(nil)
	if len(f.recorder.Events) != 0 {
		t.Fatalf("a controller that does not run recorded %d events", len(f.recorder.Events))
	}
	f.controller.running.Store(true)
	be.SetNotReady(errors.New("connection refused"))
	f.controller.backendWentAway(errors.New("echo: timeout")) // a second report of the same outage
	be.SetNotReady(nil)
	close(f.recorder.Events)
	var got []string
	for e := range f.recorder.Events {
		got = append(got, e)
	}
	want := []string{
		"Warning BackendUnavailable The fake backend is not available (connection refused): programmed Networks keep their state, pending ones wait for it",
		"Normal BackendAvailable The fake backend is available again after 0s: checking every Network against it",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestConflictKeptInOutage checks a Network that must not be programmed (it conflicts, or its spec
// is invalid), synced while the backend is away: its removal from the backend fails, and when the
// status says why it is not programmed already, the status stays and nothing is recorded; the
// removal waits for the backend's return, which syncs every Network. One whose status says
// otherwise reports the outage as any Network with work pending does.
func TestConflictKeptInOutage(t *testing.T) {
	conflictMsg := "cidr 10.0.0.0/25 overlaps Network older (cidr 10.0.0.0/24), which is programmed"
	says := func(reason, msg string) func(*samplecrdv1.Network) {
		return func(n *samplecrdv1.Network) {
			n.Status = samplecrdv1.NetworkStatus{ObservedGeneration: n.Generation, Conditions: []metav1.Condition{{
				Type: samplecrdv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason,
				Message: msg, ObservedGeneration: n.Generation, LastTransitionTime: t0,
			}}}
		}
	}
	older := network("older", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced, createdAt(0))
	_, invalid := desiredNetwork(network("newer", "10.0.0.0/33", "10.0.0.1"))
	unavailable := fmt.Sprintf(MessageBackendUnavailable, fakebackend.Type)
	cases := []struct {
		name    string
		network *samplecrdv1.Network
		// writes and ready are what the sync writes, and the Ready condition after it.
		writes []string
		ready  string
	}{{
		name:    "conflict reported: kept",
		network: network("newer", "10.0.0.0/25", "10.0.0.1", withFinalizer, says(samplecrdv1.ReasonCIDRConflict, conflictMsg), createdAt(1)),
		ready:   "False/CIDRConflict: " + conflictMsg,
	}, {
		name:    "conflict not reported yet: the outage",
		network: network("newer", "10.0.0.0/25", "10.0.0.1", withFinalizer, says(samplecrdv1.ReasonBackendError, "fake backend: refused"), createdAt(1)),
		writes:  []string{"patch networks/status"},
		ready:   "False/BackendUnavailable: " + unavailable,
	}, {
		name:    "invalid spec reported: kept",
		network: network("newer", "10.0.0.0/33", "10.0.0.1", withFinalizer, says(samplecrdv1.ReasonInvalidSpec, invalid.Error()), createdAt(1)),
		ready:   "False/InvalidSpec: " + invalid.Error(),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := fakebackend.New()
			f := newFixture(t, be, older, tc.network)
			be.SetNotReady(errors.New("connection refused"))
			got := f.sync(t, "default", "newer")
			if got.Err {
				t.Errorf("the sync returned an error; the backend's return syncs every Network")
			}
			if diff := cmp.Diff(tc.writes, got.Writes); diff != "" {
				t.Errorf("writes (-want +got):\n%s", diff)
			}
			if got.Ready != tc.ready {
				t.Errorf("Ready %q, want %q", got.Ready, tc.ready)
			}
		})
	}
}
