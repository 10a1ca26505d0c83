package network

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
)

// TestBackendChanged: a change the backend reports enqueues the Network it concerns, found by UID
// first; a UID that is no Network's is an orphan candidate under the key its row names; a change
// of a row of another owner enqueues the Network of the name, or of the namespace.
func TestBackendChanged(t *testing.T) {
	inOther := func(n *samplecrdv1.Network) { n.Namespace = "other" }
	tests := []struct {
		name        string
		change      backend.Change
		wantKeys    []string
		wantOrphans map[cache.ObjectName][]types.UID
	}{
		{
			name:     "a row of a Network, whatever namespace and name it says",
			change:   backend.Change{Owned: backend.Owned{Namespace: "", Name: "wrong", UID: "uid-a"}},
			wantKeys: []string{"default/a"},
		},
		{
			name:        "a row of a UID that is no Network's",
			change:      backend.Change{Owned: backend.Owned{Namespace: "default", Name: "gone", UID: "uid-gone"}},
			wantKeys:    []string{"default/gone"},
			wantOrphans: map[cache.ObjectName][]types.UID{{Namespace: "default", Name: "gone"}: {"uid-gone"}},
		},
		{
			name:        "a row of a UID that is no Network's, without namespace and name",
			change:      backend.Change{Owned: backend.Owned{UID: "uid-gone"}},
			wantKeys:    []string{""},
			wantOrphans: map[cache.ObjectName][]types.UID{{}: {"uid-gone"}},
		},
		{
			name:   "a row created for a Network: its own sync's write",
			change: backend.Change{Owned: backend.Owned{Namespace: "default", Name: "a", UID: "uid-a"}, Created: true},
		},
		{
			name:        "a row created for a UID that is no Network's",
			change:      backend.Change{Owned: backend.Owned{Namespace: "default", Name: "gone", UID: "uid-gone"}, Created: true},
			wantKeys:    []string{"default/gone"},
			wantOrphans: map[cache.ObjectName][]types.UID{{Namespace: "default", Name: "gone"}: {"uid-gone"}},
		},
		{
			name:     "a port name of another owner's row, of a Network",
			change:   backend.Change{Owned: backend.Owned{UID: "uid-b"}, Foreign: true},
			wantKeys: []string{"default/b"},
		},
		{
			name:   "a port name of another owner's row, of no Network",
			change: backend.Change{Owned: backend.Owned{UID: "uid-none"}, Foreign: true},
		},
		{
			name:     "a switch name of another owner's row",
			change:   backend.Change{Owned: backend.Owned{Namespace: "default", Name: "a"}, Foreign: true},
			wantKeys: []string{"default/a"},
		},
		{
			name:   "a pod's port on a Network: the pod controller's",
			change: backend.Change{Owned: backend.Owned{Namespace: "default", Name: "a", UID: "uid-a"}, Pod: &backend.PodRef{Namespace: "default", Name: "p", UID: "pod-uid"}},
		},
		{
			name:   "a pod's port of a UID that is no Network's: no orphan of Networks",
			change: backend.Change{Owned: backend.Owned{Namespace: "default", Name: "gone", UID: "uid-gone"}, Pod: &backend.PodRef{UID: "pod-uid"}, Created: true},
		},
		{
			name:     "a router name of another owner's row: the namespace's Networks",
			change:   backend.Change{Owned: backend.Owned{Namespace: "default"}, Foreign: true},
			wantKeys: []string{"default/a", "default/b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fakebackend.New(),
				network("a", "10.0.0.0/24", "10.0.0.1"), network("b", "10.0.1.0/24", "10.0.1.1"),
				network("c", "10.0.2.0/24", "10.0.2.1", inOther))
			f.controller.backendChanged(tt.change)
			if diff := cmp.Diff(tt.wantKeys, f.drainQueue(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOrphans, f.controller.orphans.uids, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("orphan candidates (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSyncBackendConflicts: a name conflict is reported on the Network once (condition and event)
// and not retried; a conflict of the backend with itself (ErrConflict) is retried without a
// status or an event.
func TestSyncBackendConflicts(t *testing.T) {
	nameConflict := &backend.NameConflictError{Kind: "logical switch", Name: "c.default.a", ID: "uuid-9", Owner: `owner "x"`}
	be := fakebackend.New()
	f := newFixture(t, be, network("a", "10.0.0.0/24", "10.0.0.1", withFinalizer))
	be.InjectError("ensure", fmt.Errorf("wrapped: %w", nameConflict))
	r := f.sync(t, "default", "a")
	wantReady := "False/NameConflict: fake backend: " + nameConflict.Error()
	if r.Err || r.Ready != wantReady || len(r.Events) != 1 || len(r.Writes) != 1 {
		t.Errorf("first sync with a name conflict: %+v, want Ready %q, one event and one status write, no error", r, wantReady)
	}
	feed := func() { f.feedBack(t, "a") }
	feed()
	be.InjectError("ensure", nameConflict)
	if r := f.sync(t, "default", "a"); r.Err || len(r.Events) != 0 || len(r.Writes) != 0 {
		t.Errorf("second sync with the same name conflict: %+v, want nothing written and no error", r)
	}

	be.InjectError("ensure", fmt.Errorf("ensuring: %w", backend.ErrConflict))
	if r := f.sync(t, "default", "a"); !r.Err || len(r.Events) != 0 || len(r.Writes) != 0 || r.Ready != wantReady {
		t.Errorf("sync with ErrConflict: %+v, want an error to retry and nothing written", r)
	}
	if r := f.sync(t, "default", "a"); r.Err || r.Ready != "True/Synced: "+MessageSynced {
		t.Errorf("sync without a conflict: %+v, want Ready", r)
	}
}

// TestDesiredNetworkRefusesReservedRanges: a cidr in a reserved range that reached the controller
// (the CRD installed without its rules) is an invalid spec naming the range.
func TestDesiredNetworkRefusesReservedRanges(t *testing.T) {
	for _, tt := range []struct{ cidr, gateway, want string }{
		{"127.0.0.0/24", "127.0.0.1", "spec.cidr 127.0.0.0/24 overlaps the loopback range 127.0.0.0/8"},
		{"0.0.0.0/0", "10.0.0.1", "spec.cidr 0.0.0.0/0 overlaps"},
		{"fe80::/64", "fe80::1", "spec.cidr fe80::/64 overlaps the link-local range fe80::/10"},
		{"10.0.0.0/24", "10.0.0.1", ""},
	} {
		_, err := desiredNetwork(network("n", tt.cidr, tt.gateway))
		if got := fmt.Sprint(err); (tt.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(got, tt.want)) {
			t.Errorf("desiredNetwork(%s) error = %v, want %q", tt.cidr, err, tt.want)
		}
	}
}

// TestDesiredNetworkRefusesTooSmallAndBroadcast: the prefixes that leave no room for a host beside
// the gateway, and the IPv4 broadcast address as the gateway, are refused as admission refuses
// them.
func TestDesiredNetworkRefusesTooSmallAndBroadcast(t *testing.T) {
	for _, tt := range []struct{ cidr, gateway, want string }{
		{"10.0.0.0/31", "10.0.0.1", "spec.cidr 10.0.0.0/31 is too small"},
		{"10.0.0.1/32", "10.0.0.1", "spec.cidr 10.0.0.1/32 is too small"},
		{"fd00::/127", "fd00::1", "spec.cidr fd00::/127 is too small"},
		{"fd00::/128", "fd00::", "spec.cidr fd00::/128 is too small"},
		{"10.0.0.0/24", "10.0.0.255", "spec.gateway 10.0.0.255 is the broadcast address of 10.0.0.0/24"},
		{"10.0.0.4/30", "10.0.0.7", "spec.gateway 10.0.0.7 is the broadcast address of 10.0.0.4/30"},
		{"10.0.0.4/30", "10.0.0.6", ""},
		{"fd00::/126", "fd00::3", ""},
	} {
		_, err := desiredNetwork(network("n", tt.cidr, tt.gateway))
		if got := fmt.Sprint(err); (tt.want == "") != (err == nil) || (err != nil && !strings.HasPrefix(got, tt.want)) {
			t.Errorf("desiredNetwork(%s, %s) error = %v, want %q", tt.cidr, tt.gateway, err, tt.want)
		}
	}
}
