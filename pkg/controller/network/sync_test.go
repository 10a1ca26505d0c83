package network

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"
	clocktesting "k8s.io/utils/clock/testing"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
	"github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/fake"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
)

var (
	t0  = metav1.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
)

func alwaysReady() bool { return true }

// network builds a Network; opts adjust it.
func network(name, cidr, gateway string, opts ...func(*samplecrdv1.Network)) *samplecrdv1.Network {
	n := &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: name, UID: types.UID("uid-" + name),
			Generation: 1, ResourceVersion: "1", CreationTimestamp: t0,
		},
		Spec: samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withFinalizer(n *samplecrdv1.Network) { n.Finalizers = []string{Finalizer} }

func deleting(n *samplecrdv1.Network) { n.DeletionTimestamp = &t0 }

func createdAt(sec int) func(*samplecrdv1.Network) {
	return func(n *samplecrdv1.Network) {
		n.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(sec) * time.Second))
	}
}

func withGeneration(g int64) func(*samplecrdv1.Network) {
	return func(n *samplecrdv1.Network) { n.Generation = g }
}

// synced gives n the status of a Network the controller programmed at its current generation.
func synced(n *samplecrdv1.Network) {
	n.Status = samplecrdv1.NetworkStatus{
		ObservedGeneration: n.Generation,
		Conditions: []metav1.Condition{{
			Type: samplecrdv1.ConditionReady, Status: metav1.ConditionTrue, Reason: samplecrdv1.ReasonSynced,
			Message: MessageSynced, ObservedGeneration: n.Generation, LastTransitionTime: t0,
		}},
		Backend: &samplecrdv1.NetworkBackendStatus{Type: fakebackend.Type, Name: n.Namespace + "/" + n.Name, ID: "id-1"},
	}
}

// inBackend is what the backend holds for n.
func inBackend(n *samplecrdv1.Network) backend.Network {
	return backend.Network{Namespace: n.Namespace, Name: n.Name, UID: n.UID,
		CIDR: netip.MustParsePrefix(n.Spec.Cidr), Gateway: netip.MustParseAddr(n.Spec.Gateway)}
}

type fixture struct {
	controller *Controller
	client     *fake.Clientset
	backend    *fakebackend.Backend
	recorder   *record.FakeRecorder
}

func newFixture(t *testing.T, be *fakebackend.Backend, networks ...*samplecrdv1.Network) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewSimpleClientset()
	for _, n := range networks {
		if err := client.Tracker().Add(n); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Samplecrd().V1().Networks()
	recorder := record.NewFakeRecorder(100)
	c, err := NewController(ctx, client, informer, be, recorder, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range networks {
		if err := informer.Informer().GetIndexer().Add(n); err != nil {
			t.Fatal(err)
		}
	}
	c.networksSynced = alwaysReady
	c.clock = clocktesting.NewFakePassiveClock(now)
	return &fixture{controller: c, client: client, backend: be, recorder: recorder}
}

// drainQueue takes every key out of the controller's queue and returns them, sorted.
func (f *fixture) drainQueue() []string {
	var keys []string
	for f.controller.queue.Len() > 0 {
		key, _ := f.controller.queue.Get()
		keys = append(keys, key.String())
		f.controller.queue.Done(key)
	}
	slices.Sort(keys)
	return keys
}

// feedBack reads the Network as the API server stores it and puts it into the cache, as the
// informer would after a write, and returns it.
func (f *fixture) feedBack(t *testing.T, name string) *samplecrdv1.Network {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	stored, err := f.client.SamplecrdV1().Networks("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.controller.networksIndexer.Update(stored); err != nil {
		t.Fatal(err)
	}
	return stored
}

// result is what one sync did, in a form tests compare.
type result struct {
	Err          bool
	BackendCalls []fakebackend.Call
	Backend      map[types.UID]backend.Network
	Events       []string
	// Writes are the API writes, as "verb resource[/subresource]".
	Writes []string
	// Finalizers and Ready are those of the stored Network after the sync; Ready is
	// "Status/Reason: message", or "" when there is no Ready condition or no Network.
	Finalizers    []string
	Ready         string
	BackendStatus *samplecrdv1.NetworkBackendStatus
}

func (f *fixture) sync(t *testing.T, namespace, name string) result {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	f.client.ClearActions()
	err := f.controller.syncNetwork(ctx, cache.ObjectName{Namespace: namespace, Name: name})
	r := result{Err: err != nil, BackendCalls: f.backend.Calls(), Backend: f.backend.Networks()}
	close(f.recorder.Events)
	for e := range f.recorder.Events {
		r.Events = append(r.Events, e)
	}
	f.recorder.Events = make(chan string, 100)
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "get" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		w := a.GetVerb() + " " + a.GetResource().Resource
		if a.GetSubresource() != "" {
			w += "/" + a.GetSubresource()
		}
		r.Writes = append(r.Writes, w)
	}
	stored, err := f.client.SamplecrdV1().Networks(namespace).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		r.Finalizers = stored.Finalizers
		if c := meta.FindStatusCondition(stored.Status.Conditions, samplecrdv1.ConditionReady); c != nil {
			r.Ready = string(c.Status) + "/" + c.Reason + ": " + c.Message
			if c.ObservedGeneration != stored.Generation || stored.Status.ObservedGeneration != stored.Generation {
				t.Errorf("observedGeneration %d (condition %d), want %d", stored.Status.ObservedGeneration, c.ObservedGeneration, stored.Generation)
			}
		}
		r.BackendStatus = stored.Status.Backend
	}
	return r
}

func TestSyncNetwork(t *testing.T) {
	errBackend := errors.New("connection refused")
	seed := network("example-network", "192.168.0.0/16", "192.168.0.1")
	synchronised := network("example-network", "192.168.0.0/16", "192.168.0.1", withFinalizer, synced)
	// The spec changed to a new cidr (generation 2) after the controller programmed generation 1.
	changed := network("example-network", "10.0.0.0/8", "10.0.0.1", withFinalizer, synced, withGeneration(2))
	older := network("older", "10.0.0.0/8", "10.0.0.1", withFinalizer, synced)
	younger := network("younger", "10.1.0.0/16", "10.1.0.1", createdAt(5))
	programmedYounger := network("younger", "10.1.0.0/16", "10.1.0.1", createdAt(5), withFinalizer, synced)
	readyTrue := "True/Synced: " + MessageSynced
	backendStatus := func(n *samplecrdv1.Network, id string) *samplecrdv1.NetworkBackendStatus {
		return &samplecrdv1.NetworkBackendStatus{Type: fakebackend.Type, Name: n.Namespace + "/" + n.Name, ID: id}
	}
	// youngerProgrammed is the result of a sync that programs younger for the first time.
	youngerProgrammed := result{
		BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: younger.UID}},
		Backend:       map[types.UID]backend.Network{younger.UID: inBackend(younger)},
		Events:        []string{"Normal Synced Network synced successfully"},
		Writes:        []string{"patch networks", "patch networks/status"},
		Finalizers:    []string{Finalizer},
		Ready:         readyTrue,
		BackendStatus: backendStatus(younger, "id-1"),
	}

	cases := []struct {
		name     string
		networks []*samplecrdv1.Network
		backend  []*samplecrdv1.Network // what the backend already holds
		inject   map[string]error       // backend op -> error for its next call
		sync     string
		want     result
	}{
		{
			name:     "new network: finalizer, then backend, then status",
			networks: []*samplecrdv1.Network{seed},
			sync:     "example-network",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: seed.UID}},
				Backend:       map[types.UID]backend.Network{seed.UID: inBackend(seed)},
				Events:        []string{"Normal Synced Network synced successfully"},
				Writes:        []string{"patch networks", "patch networks/status"},
				Finalizers:    []string{Finalizer},
				Ready:         readyTrue,
				BackendStatus: backendStatus(seed, "id-1"),
			},
		},
		{
			name:     "in sync: no writes, no events",
			networks: []*samplecrdv1.Network{synchronised},
			backend:  []*samplecrdv1.Network{synchronised},
			sync:     "example-network",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: seed.UID}},
				Backend:       map[types.UID]backend.Network{seed.UID: inBackend(seed)},
				Finalizers:    []string{Finalizer},
				Ready:         readyTrue,
				BackendStatus: backendStatus(seed, "id-1"),
			},
		},
		{
			name:     "backend drifted: repaired, status unchanged",
			networks: []*samplecrdv1.Network{synchronised},
			backend:  []*samplecrdv1.Network{network("example-network", "192.168.0.0/24", "192.168.0.1")},
			sync:     "example-network",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: seed.UID}},
				Backend:       map[types.UID]backend.Network{seed.UID: inBackend(seed)},
				Events:        []string{"Normal Synced Network synced successfully"},
				Finalizers:    []string{Finalizer},
				Ready:         readyTrue,
				BackendStatus: backendStatus(seed, "id-1"),
			},
		},
		{
			name:     "cidr changed: backend updated, observed generation bumped",
			networks: []*samplecrdv1.Network{changed},
			backend:  []*samplecrdv1.Network{synchronised},
			sync:     "example-network",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: seed.UID}},
				Backend:       map[types.UID]backend.Network{seed.UID: inBackend(changed)},
				Events:        []string{"Normal Synced Network synced successfully"},
				Writes:        []string{"patch networks/status"},
				Finalizers:    []string{Finalizer},
				Ready:         readyTrue,
				BackendStatus: backendStatus(seed, "id-1"),
			},
		},
		{
			name:     "backend error: finalizer kept, BackendError status, error returned for a retry",
			networks: []*samplecrdv1.Network{seed},
			inject:   map[string]error{"ensure": errBackend},
			sync:     "example-network",
			want: result{
				Err:          true,
				BackendCalls: []fakebackend.Call{{Op: "ensure", UID: seed.UID}},
				Backend:      map[types.UID]backend.Network{},
				Events:       []string{"Warning BackendError fake backend: connection refused"},
				Writes:       []string{"patch networks", "patch networks/status"},
				Finalizers:   []string{Finalizer},
				Ready:        "False/BackendError: fake backend: connection refused",
			},
		},
		{
			name:     "deleted: backend objects removed, then the finalizer",
			networks: []*samplecrdv1.Network{network("example-network", "192.168.0.0/16", "192.168.0.1", withFinalizer, synced, deleting)},
			backend:  []*samplecrdv1.Network{synchronised},
			sync:     "example-network",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "delete", UID: seed.UID}},
				Backend:       map[types.UID]backend.Network{},
				Events:        []string{"Normal Deleted Removed the network from the fake backend"},
				Writes:        []string{"patch networks"},
				Ready:         readyTrue,
				BackendStatus: backendStatus(seed, "id-1"),
			},
		},
		{
			name:     "deleted, backend fails: finalizer kept, Deleting status with the error",
			networks: []*samplecrdv1.Network{network("example-network", "192.168.0.0/16", "192.168.0.1", withFinalizer, synced, deleting)},
			backend:  []*samplecrdv1.Network{synchronised},
			inject:   map[string]error{"delete": errBackend},
			sync:     "example-network",
			want: result{
				Err:           true,
				BackendCalls:  []fakebackend.Call{{Op: "delete", UID: seed.UID}},
				Backend:       map[types.UID]backend.Network{seed.UID: inBackend(seed)},
				Events:        []string{"Warning BackendError deleting from the fake backend: connection refused"},
				Writes:        []string{"patch networks/status"},
				Finalizers:    []string{Finalizer},
				Ready:         "False/Deleting: deleting from the fake backend: connection refused",
				BackendStatus: backendStatus(seed, "id-1"),
			},
		},
		{
			name: "deleted, held by another finalizer: backend objects removed, status says so, then our finalizer",
			networks: []*samplecrdv1.Network{network("example-network", "192.168.0.0/16", "192.168.0.1", synced, deleting,
				func(n *samplecrdv1.Network) { n.Finalizers = []string{"example.com/hold", Finalizer} })},
			backend: []*samplecrdv1.Network{synchronised},
			sync:    "example-network",
			want: result{
				BackendCalls: []fakebackend.Call{{Op: "delete", UID: seed.UID}},
				Backend:      map[types.UID]backend.Network{},
				Events:       []string{"Normal Deleted Removed the network from the fake backend"},
				Writes:       []string{"patch networks/status", "patch networks"},
				Finalizers:   []string{"example.com/hold"},
				Ready:        "False/Deleting: removed from the fake backend; waiting for the finalizers example.com/hold",
			},
		},
		{
			name:     "deleted without our finalizer: nothing to do",
			networks: []*samplecrdv1.Network{network("example-network", "192.168.0.0/16", "192.168.0.1", deleting, func(n *samplecrdv1.Network) { n.Finalizers = []string{"other"} })},
			sync:     "example-network",
			want:     result{Backend: map[types.UID]backend.Network{}, Finalizers: []string{"other"}},
		},
		{
			name: "gone from the cache: nothing to do",
			sync: "example-network",
			want: result{Backend: map[types.UID]backend.Network{}},
		},
		{
			name:     "overlaps an older network: not programmed, CIDRConflict naming the winner",
			networks: []*samplecrdv1.Network{older, younger},
			backend:  []*samplecrdv1.Network{older},
			sync:     "younger",
			want: result{
				Backend: map[types.UID]backend.Network{older.UID: inBackend(older)},
				Events:  []string{"Warning CIDRConflict cidr 10.1.0.0/16 overlaps Network older (cidr 10.0.0.0/8), which is programmed"},
				Writes:  []string{"patch networks/status"},
				Ready:   "False/CIDRConflict: cidr 10.1.0.0/16 overlaps Network older (cidr 10.0.0.0/8), which is programmed",
			},
		},
		{
			name:     "programmed, then an older overlapping network appears: removed from the backend",
			networks: []*samplecrdv1.Network{older, programmedYounger},
			backend:  []*samplecrdv1.Network{older, programmedYounger},
			sync:     "younger",
			want: result{
				BackendCalls: []fakebackend.Call{{Op: "delete", UID: younger.UID}},
				Backend:      map[types.UID]backend.Network{older.UID: inBackend(older)},
				Events:       []string{"Warning CIDRConflict cidr 10.1.0.0/16 overlaps Network older (cidr 10.0.0.0/8), which is programmed"},
				Writes:       []string{"patch networks/status"},
				Finalizers:   []string{Finalizer},
				Ready:        "False/CIDRConflict: cidr 10.1.0.0/16 overlaps Network older (cidr 10.0.0.0/8), which is programmed",
			},
		},
		{
			name:     "the older network is the one synced: it is programmed",
			networks: []*samplecrdv1.Network{network("older", "10.0.0.0/8", "10.0.0.1"), younger},
			sync:     "older",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: older.UID}},
				Backend:       map[types.UID]backend.Network{older.UID: inBackend(older)},
				Events:        []string{"Normal Synced Network synced successfully"},
				Writes:        []string{"patch networks", "patch networks/status"},
				Finalizers:    []string{Finalizer},
				Ready:         readyTrue,
				BackendStatus: backendStatus(older, "id-1"),
			},
		},
		{
			name:     "the winner is gone: the younger network is programmed",
			networks: []*samplecrdv1.Network{younger},
			sync:     "younger",
			want:     youngerProgrammed,
		},
		{
			name: "same cidr, same creation second: the name decides",
			networks: []*samplecrdv1.Network{
				network("a", "10.0.0.0/24", "10.0.0.1"), network("b", "10.0.0.0/24", "10.0.0.1"),
			},
			sync: "b",
			want: result{
				Backend: map[types.UID]backend.Network{},
				Events:  []string{"Warning CIDRConflict cidr 10.0.0.0/24 overlaps Network a (cidr 10.0.0.0/24), which is programmed"},
				Writes:  []string{"patch networks/status"},
				Ready:   "False/CIDRConflict: cidr 10.0.0.0/24 overlaps Network a (cidr 10.0.0.0/24), which is programmed",
			},
		},
		{
			name: "blocked only by a blocked network: programmed, conflicts do not cascade",
			networks: []*samplecrdv1.Network{
				network("oldest", "10.20.0.0/16", "10.20.0.1", withFinalizer, synced),
				network("wide", "10.0.0.0/8", "10.0.0.1", createdAt(1)),
				network("narrow", "10.1.0.0/16", "10.1.0.1", createdAt(2)),
			},
			sync: "narrow",
			want: result{
				BackendCalls:  []fakebackend.Call{{Op: "ensure", UID: "uid-narrow"}},
				Backend:       map[types.UID]backend.Network{"uid-narrow": inBackend(network("narrow", "10.1.0.0/16", "10.1.0.1"))},
				Events:        []string{"Normal Synced Network synced successfully"},
				Writes:        []string{"patch networks", "patch networks/status"},
				Finalizers:    []string{Finalizer},
				Ready:         readyTrue,
				BackendStatus: &samplecrdv1.NetworkBackendStatus{Type: fakebackend.Type, Name: "default/narrow", ID: "id-1"},
			},
		},
		{
			name: "blocked: the message names the oldest programmed network, not the oldest overlapping one",
			networks: []*samplecrdv1.Network{
				network("oldest", "10.20.0.0/16", "10.20.0.1", withFinalizer, synced),
				network("wide", "10.0.0.0/8", "10.0.0.1", createdAt(1)),
				network("narrow", "10.1.0.0/16", "10.1.0.1", createdAt(2), withFinalizer, synced),
				network("inner", "10.1.2.0/24", "10.1.2.1", createdAt(3)),
			},
			sync: "inner",
			want: result{
				Backend: map[types.UID]backend.Network{},
				Events:  []string{"Warning CIDRConflict cidr 10.1.2.0/24 overlaps Network narrow (cidr 10.1.0.0/16), which is programmed"},
				Writes:  []string{"patch networks/status"},
				Ready:   "False/CIDRConflict: cidr 10.1.2.0/24 overlaps Network narrow (cidr 10.1.0.0/16), which is programmed",
			},
		},
		{
			name: "blocked, already saying so: no write, no event",
			networks: []*samplecrdv1.Network{
				older,
				network("younger", "10.1.0.0/16", "10.1.0.1", createdAt(5), func(n *samplecrdv1.Network) {
					n.Status = samplecrdv1.NetworkStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{{
						Type: samplecrdv1.ConditionReady, Status: metav1.ConditionFalse, Reason: samplecrdv1.ReasonCIDRConflict,
						Message:            "cidr 10.1.0.0/16 overlaps Network older (cidr 10.0.0.0/8), which is programmed",
						ObservedGeneration: 1, LastTransitionTime: t0,
					}}}
				}),
			},
			backend: []*samplecrdv1.Network{older},
			sync:    "younger",
			want: result{
				Backend: map[types.UID]backend.Network{older.UID: inBackend(older)},
				Ready:   "False/CIDRConflict: cidr 10.1.0.0/16 overlaps Network older (cidr 10.0.0.0/8), which is programmed",
			},
		},
		{
			name: "an older network with an invalid gateway blocks nobody",
			networks: []*samplecrdv1.Network{
				network("older", "10.0.0.0/8", "10.0.0.0"),
				younger,
			},
			sync: "younger",
			want: youngerProgrammed,
		},
		{
			name: "the same cidr in another namespace: programmed",
			networks: []*samplecrdv1.Network{
				network("older", "10.1.0.0/16", "10.1.0.1", withFinalizer, synced, func(n *samplecrdv1.Network) { n.Namespace, n.UID = "other", "uid-other" }),
				younger,
			},
			sync: "younger",
			want: youngerProgrammed,
		},
		{
			name:     "invalid spec that passed admission: InvalidSpec, no backend call, no retry",
			networks: []*samplecrdv1.Network{network("example-network", "192.168.1.0/16", "192.168.0.1")},
			sync:     "example-network",
			want: result{
				Backend: map[types.UID]backend.Network{},
				Events:  []string{`Warning InvalidSpec spec.cidr "192.168.1.0/16" has host bits set; the network is 192.168.0.0/16`},
				Writes:  []string{"patch networks/status"},
				Ready:   `False/InvalidSpec: spec.cidr "192.168.1.0/16" has host bits set; the network is 192.168.0.0/16`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var held []backend.Network
			for _, n := range tc.backend {
				held = append(held, inBackend(n))
			}
			be := fakebackend.New(held...)
			for op, err := range tc.inject {
				be.InjectError(op, err)
			}
			f := newFixture(t, be, tc.networks...)
			got := f.sync(t, "default", tc.sync)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
				t.Errorf("sync (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSyncTwiceIsQuiet checks that a second sync of a Network the first one programmed writes nothing.
func TestSyncTwiceIsQuiet(t *testing.T) {
	f := newFixture(t, fakebackend.New(), network("example-network", "192.168.0.0/16", "192.168.0.1"))
	if r := f.sync(t, "default", "example-network"); r.Err || len(r.Writes) != 2 {
		t.Fatalf("first sync: %+v", r)
	}
	f.feedBack(t, "example-network")
	r := f.sync(t, "default", "example-network")
	if r.Err || len(r.Writes) != 0 || len(r.Events) != 0 {
		t.Errorf("second sync wrote %v and recorded %v; want nothing", r.Writes, r.Events)
	}
}

// TestBackendReturned checks that each readiness of the backend, the first and every later one,
// makes every Network be checked again and triggers an orphan sweep, whose orphans the sync of
// their key removes: changes made while the backend was away were not reported.
func TestBackendReturned(t *testing.T) {
	a := network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced)
	b := network("b", "10.0.1.0/24", "10.0.1.1", withFinalizer, synced)
	orphan := inBackend(network("gone", "10.0.2.0/24", "10.0.2.1"))
	f := newFixture(t, fakebackend.New(inBackend(a), orphan), a, b)
	_, ctx := ktesting.NewTestContext(t)
	// The backend was ready when the controller was built: that was its first readiness.
	select {
	case <-f.controller.firstReady:
	default:
		t.Fatal("the first readiness was not noticed")
	}
	for _, round := range []string{"first readiness", "readiness after a disconnection"} {
		select {
		case <-f.controller.backendReady:
		default:
			t.Fatalf("%s: no check of every Network was triggered", round)
		}
		f.controller.checkAll(ctx)
		if diff := cmp.Diff([]string{"default/a", "default/b", "default/gone"}, f.drainQueue()); diff != "" {
			t.Errorf("%s: enqueued (-want +got):\n%s", round, diff)
		}
		f.backend.SetNotReady(errors.New("gone"))
		f.backend.SetNotReady(nil)
	}
	if _, ok := f.backend.Networks()[orphan.UID]; !ok {
		t.Fatal("the sweep removed the orphan itself; only the sync may")
	}
	if r := f.sync(t, "default", "gone"); r.Err {
		t.Fatalf("syncing the orphan's key: %+v", r)
	}
	if _, ok := f.backend.Networks()[orphan.UID]; ok {
		t.Errorf("the orphan was not removed")
	}
	if _, ok := f.backend.Networks()[a.UID]; !ok {
		t.Errorf("a live Network was removed as an orphan")
	}
}

// TestOrphanOfRecreatedNetwork checks a Network deleted and created again under its name: the rows
// of the old UID are removed by the sync of the key, the new one's kept, also when the cache still
// holds the old one (the API server is asked which UID holds the name).
func TestOrphanOfRecreatedNetwork(t *testing.T) {
	old := network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced)
	old.UID = "old-uid"
	current := network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced)
	tests := []struct {
		name string
		// cached is what the informer cache holds, api what the API server holds.
		cached, api *samplecrdv1.Network
		// orphan is the UID the sweep reports, kept the UID whose rows must stay.
		orphan, kept types.UID
	}{
		{name: "cache current: the old rows go", cached: current, api: current, orphan: old.UID, kept: current.UID},
		{name: "cache lags: the new rows stay", cached: old, api: current, orphan: current.UID, kept: current.UID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fakebackend.New(inBackend(old), inBackend(current)), tc.cached)
			if tc.api != tc.cached {
				if err := f.client.Tracker().Delete(samplecrdv1.SchemeGroupVersion.WithResource("networks"), tc.cached.Namespace, tc.cached.Name); err != nil {
					t.Fatal(err)
				}
				if err := f.client.Tracker().Add(tc.api); err != nil {
					t.Fatal(err)
				}
			}
			f.controller.orphans.add(cache.MetaObjectToName(tc.cached), tc.orphan)
			f.sync(t, "default", "a")
			if _, ok := f.backend.Networks()[tc.kept]; !ok {
				t.Errorf("the rows of %s, which holds the name, were removed", tc.kept)
			}
			if tc.orphan != tc.kept {
				if _, ok := f.backend.Networks()[tc.orphan]; ok {
					t.Errorf("the rows of %s, which no longer exists, were kept", tc.orphan)
				}
			}
			if got := f.controller.orphans.get(cache.MetaObjectToName(tc.cached)); len(got) != 0 {
				t.Errorf("orphans left recorded: %v", got)
			}
		})
	}
}

// TestDeletedWithFinalizer checks a Network that the API server removed while it still had this
// controller's finalizer and no deletionTimestamp (a delete that raced with the finalizer's
// addition, kubernetes/kubernetes#77988): its backend objects are removed by the key's sync. The
// last state of a Network deleted as usual shows the finalizer too, with the deletionTimestamp:
// its objects went before, and are not looked for.
func TestDeletedWithFinalizer(t *testing.T) {
	tests := []struct {
		name string
		// final is the Network as the delete event last saw it.
		final *samplecrdv1.Network
		// tombstone hands it over as a tombstone (the informer missed the delete).
		tombstone bool
		// removed says whether its backend objects go.
		removed bool
	}{
		{name: "with the finalizer: removed", final: network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced), removed: true},
		{name: "as a tombstone with the finalizer: removed", final: network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced), tombstone: true, removed: true},
		{name: "without the finalizer: nothing to look for", final: network("a", "10.0.0.0/24", "10.0.0.1", synced), removed: false},
		{name: "deleted as usual: nothing to look for", final: network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced, deleting), removed: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fakebackend.New(inBackend(tc.final)))
			defer f.controller.queue.ShutDown()
			var obj any = tc.final
			if tc.tombstone {
				obj = cache.DeletedFinalStateUnknown{Key: "default/a", Obj: tc.final}
			}
			f.controller.deleteNetwork(obj)
			if diff := cmp.Diff([]string{"default/a"}, f.drainQueue()); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
			if r := f.sync(t, "default", "a"); r.Err {
				t.Fatalf("syncing the deleted Network's key: %+v", r)
			}
			if _, kept := f.backend.Networks()[tc.final.UID]; kept == tc.removed {
				t.Errorf("backend objects kept: %v, want %v", kept, !tc.removed)
			}
		})
	}
}

// TestUpdateHandlerSpreadsResyncs checks that a periodic resync (same resourceVersion) is queued
// after a delay when ResyncSpread is set, while a real change is queued at once.
func TestUpdateHandlerSpreadsResyncs(t *testing.T) {
	n := network("a", "10.0.0.0/24", "10.0.0.1")
	n.ResourceVersion = "1"
	changed := n.DeepCopy()
	changed.ResourceVersion = "2"
	tests := []struct {
		name     string
		spread   time.Duration
		old, new *samplecrdv1.Network
		want     int
	}{
		{name: "resync without spread: at once", old: n, new: n, want: 1},
		{name: "resync with spread: later", spread: time.Hour, old: n, new: n, want: 0},
		{name: "change with spread: at once", spread: time.Hour, old: n, new: changed, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fakebackend.New())
			defer f.controller.queue.ShutDown()
			f.controller.resyncSpread = tc.spread
			f.controller.updateNetwork(tc.old, tc.new)
			if got := f.controller.queue.Len(); got != tc.want {
				t.Errorf("queue length %d, want %d", got, tc.want)
			}
		})
	}
}
