package network

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
)

// fakeAttachments are pods attached to Networks, as a table the test fills.
type fakeAttachments struct {
	// pods are the attached pods by Network UID.
	pods map[types.UID][]cache.ObjectName
	// notFit, when set, is what SetNetwork returns for a spec other than open's.
	notFit error
	// open are the Networks SetNetwork opened, with their cidr.
	open map[types.UID]netip.Prefix
}

func (a *fakeAttachments) HasSynced() bool { return true }

func (a *fakeAttachments) SetNetwork(_ cache.ObjectName, uid types.UID, cidr netip.Prefix, _ netip.Addr) error {
	if cur, ok := a.open[uid]; ok && cur != cidr && a.notFit != nil && len(a.pods[uid]) > 0 {
		return a.notFit
	}
	a.open[uid] = cidr
	return nil
}

func (a *fakeAttachments) CloseNetwork(uid types.UID) (int, []cache.ObjectName) {
	if n := len(a.pods[uid]); n > 0 {
		return n, a.pods[uid][:min(n, 3)]
	}
	delete(a.open, uid)
	return 0, nil
}

func (a *fakeAttachments) Addresses(uid types.UID) *samplecrdv1.NetworkAddresses {
	if _, ok := a.open[uid]; !ok {
		return nil
	}
	used := int64(len(a.pods[uid]))
	return &samplecrdv1.NetworkAddresses{Total: 253, Used: used, Available: 253 - used}
}

func (a *fakeAttachments) OnUsageChange(func(cache.ObjectName)) {}

func pods(names ...string) []cache.ObjectName {
	var keys []cache.ObjectName
	for _, n := range names {
		keys = append(keys, cache.ObjectName{Namespace: "default", Name: n})
	}
	return keys
}

func TestAttachments(t *testing.T) {
	for _, tc := range []struct {
		name    string
		network *samplecrdv1.Network
		// inBackend: the backend holds the network with this cidr ("" for none).
		inBackend string
		pods      []cache.ObjectName
		notFit    error
		// blocker is an older programmed Network that the tested one overlaps.
		blocker *samplecrdv1.Network

		wantCalls      []fakebackend.Call
		wantReady      string
		wantFinalizers []string
		wantAddresses  *samplecrdv1.NetworkAddresses
	}{{
		name:           "programmed: the status counts the addresses",
		network:        network("web", "10.0.0.0/24", "10.0.0.1"),
		pods:           pods("a", "b"),
		wantCalls:      []fakebackend.Call{{Op: "ensure", UID: "uid-web"}},
		wantReady:      "True/Synced: " + MessageSynced,
		wantFinalizers: []string{Finalizer},
		wantAddresses:  &samplecrdv1.NetworkAddresses{Total: 253, Used: 2, Available: 251},
	}, {
		name:           "deleted with pods: kept, InUse naming three of them",
		network:        network("web", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced, deleting),
		inBackend:      "10.0.0.0/24",
		pods:           pods("a", "b", "c", "d"),
		wantReady:      "False/InUse: 4 pods are attached: default/a, default/b, default/c and 1 more; the Network is removed once they are gone",
		wantFinalizers: []string{Finalizer},
		wantAddresses:  &samplecrdv1.NetworkAddresses{Total: 253, Used: 4, Available: 249},
	}, {
		// The fake clientset keeps an object whose last finalizer goes; the API server deletes it.
		name:           "deleted without pods: removed",
		network:        network("web", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced, deleting),
		inBackend:      "10.0.0.0/24",
		wantCalls:      []fakebackend.Call{{Op: "delete", UID: "uid-web"}},
		wantReady:      "True/Synced: " + MessageSynced,
		wantFinalizers: []string{},
	}, {
		name:           "a cidr the pods do not fit: not applied, AddressesInUse",
		network:        network("web", "10.9.0.0/24", "10.9.0.1", withFinalizer, synced, withGeneration(2)),
		inBackend:      "10.0.0.0/24",
		pods:           pods("a"),
		notFit:         errors.New("the addresses of 1 attached pod do not fit"),
		wantReady:      "False/AddressesInUse: the addresses of 1 attached pod do not fit",
		wantFinalizers: []string{Finalizer},
		wantAddresses:  &samplecrdv1.NetworkAddresses{Total: 253, Used: 1, Available: 252},
	}, {
		name:      "a conflict with pods attached: kept programmed",
		network:   network("web", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced, createdAt(10)),
		inBackend: "10.0.0.0/24",
		pods:      pods("a"),
		blocker:   network("old", "10.0.0.0/16", "10.0.0.1", withFinalizer, synced),
		wantReady: "False/CIDRConflict: cidr 10.0.0.0/24 overlaps Network old (cidr 10.0.0.0/16), which is programmed; " +
			"the network stays as it was while 1 pod is attached (default/a)",
		wantFinalizers: []string{Finalizer},
		wantAddresses:  &samplecrdv1.NetworkAddresses{Total: 253, Used: 1, Available: 252},
	}, {
		name:           "a conflict without pods: removed from the backend",
		network:        network("web", "10.0.0.0/24", "10.0.0.1", withFinalizer, synced, createdAt(10)),
		inBackend:      "10.0.0.0/24",
		blocker:        network("old", "10.0.0.0/16", "10.0.0.1", withFinalizer, synced),
		wantCalls:      []fakebackend.Call{{Op: "delete", UID: "uid-web"}},
		wantReady:      "False/CIDRConflict: cidr 10.0.0.0/24 overlaps Network old (cidr 10.0.0.0/16), which is programmed",
		wantFinalizers: []string{Finalizer},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			be := fakebackend.New()
			networks := []*samplecrdv1.Network{tc.network}
			if tc.blocker != nil {
				networks = append(networks, tc.blocker)
			}
			att := &fakeAttachments{pods: map[types.UID][]cache.ObjectName{}, open: map[types.UID]netip.Prefix{}, notFit: tc.notFit}
			if tc.inBackend != "" {
				be = fakebackend.New(inBackend(network(tc.network.Name, tc.inBackend, tc.network.Spec.Gateway)))
				att.open[tc.network.UID] = netip.MustParsePrefix(tc.inBackend)
			}
			att.pods[tc.network.UID] = tc.pods
			f := newFixture(t, be, networks...)
			f.controller.attachments = att
			got := f.sync(t, tc.network.Namespace, tc.network.Name)
			if diff := cmp.Diff(tc.wantCalls, got.BackendCalls); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
			if got.Ready != tc.wantReady {
				t.Errorf("Ready = %q, want %q", got.Ready, tc.wantReady)
			}
			if diff := cmp.Diff(tc.wantFinalizers, got.Finalizers); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
			_, ctx := ktesting.NewTestContext(t)
			if stored, err := f.client.SamplecrdV1().Networks("default").Get(ctx, tc.network.Name, metav1.GetOptions{}); err == nil {
				if diff := cmp.Diff(tc.wantAddresses, stored.Status.Addresses); diff != "" {
					t.Errorf("status.addresses (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestUsageChangesAreSpaced: a Network's usage changes schedule one sync until it runs, and the
// syncs of many Networks are spaced at UsageWritesPerSecond.
func TestUsageChangesAreSpaced(t *testing.T) {
	f := newFixture(t, fakebackend.New())
	c := f.controller
	key := cache.ObjectName{Namespace: "default", Name: "a"}
	if !c.usageDue.add(key) || c.usageDue.add(key) {
		t.Fatal("the set of due Networks does not hold a key once")
	}
	c.usageDue.remove(key)
	var last time.Duration
	for i := range 3 * UsageWritesPerSecond {
		last = c.usageLimiter.When(cache.ObjectName{Namespace: "default", Name: fmt.Sprint(i)})
	}
	// The burst passes at once; the other 2 seconds' worth wait their turn.
	if want := 2*time.Second - 100*time.Millisecond; last < want {
		t.Errorf("the %dth Network's usage sync waits %v, want at least %v", 3*UsageWritesPerSecond, last, want)
	}
}
