package fake

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
)

// TestPorts: EnsurePort needs the network, reports whether it changed anything, moves a pod's
// port; DeletePort and a network's Delete remove ports; calls are recorded and injected errors
// returned.
func TestPorts(t *testing.T) {
	ctx := context.Background()
	b := New(backend.Network{Namespace: "ns", Name: "a", UID: "net-a"}, backend.Network{Namespace: "ns", Name: "b", UID: "net-b"})
	port := backend.Port{
		NetworkNamespace: "ns", NetworkName: "a", NetworkUID: "net-a",
		Pod: backend.PodRef{Namespace: "apps", Name: "web-0", UID: "pod-1"},
		MAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x01, 0x00, 0x05}, IP: netip.MustParseAddr("10.1.0.5"),
	}
	st, err := b.EnsurePort(ctx, port)
	if err != nil || !st.Changed || st.ID == "" || st.Switch != "ns/a" || st.Name != "apps/web-0" {
		t.Errorf("first EnsurePort = %+v, %v; want a change on ns/a", st, err)
	}
	again, err := b.EnsurePort(ctx, port)
	if err != nil || again.Changed || again.ID != st.ID {
		t.Errorf("second EnsurePort = %+v, %v; want no change, ID %s", again, err, st.ID)
	}
	moved := port
	moved.NetworkName, moved.NetworkUID = "b", "net-b"
	if st, err := b.EnsurePort(ctx, moved); err != nil || !st.Changed || st.Switch != "ns/b" {
		t.Errorf("EnsurePort on another network = %+v, %v; want a change on ns/b", st, err)
	}
	gone := port
	gone.NetworkUID = "net-gone"
	if _, err := b.EnsurePort(ctx, gone); !errors.Is(err, backend.ErrNoNetwork) {
		t.Errorf("EnsurePort on a network not held: %v, want ErrNoNetwork", err)
	}
	conflict := &backend.NameConflictError{Kind: "logical switch port", Name: "c1.pod.pod-1", ID: "uuid-9", Owner: `owner "c2"`}
	b.InjectError("ensure-port", conflict)
	var nameConflict *backend.NameConflictError
	if _, err := b.EnsurePort(ctx, port); !errors.As(err, &nameConflict) {
		t.Errorf("EnsurePort with an injected conflict: %v", err)
	}

	ports, err := b.ListPorts(ctx)
	if diff := cmp.Diff([]backend.Port{moved}, ports, cmpopts.EquateComparable(netip.Addr{})); diff != "" || err != nil {
		t.Errorf("ListPorts (-want +got), %v:\n%s", err, diff)
	}
	// The caller's MAC is copied: changing it afterwards changes nothing held.
	moved.MAC[5] = 0x99
	if got := b.Ports()["pod-1"].MAC; got[5] != 0x05 {
		t.Errorf("the port held changed with the caller's MAC: %s", got)
	}

	second := port
	second.Pod.UID = "pod-2"
	if _, err := b.EnsurePort(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "net-b"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeletePort(ctx, "pod-2"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeletePort(ctx, "pod-2"); err != nil {
		t.Errorf("DeletePort of a port not there: %v", err)
	}
	if left := b.Ports(); len(left) != 0 {
		t.Errorf("ports left after the network's Delete and DeletePort: %+v", left)
	}

	want := []Call{
		{Op: "ensure-port", UID: "net-a", Pod: "pod-1"},
		{Op: "ensure-port", UID: "net-a", Pod: "pod-1"},
		{Op: "ensure-port", UID: "net-b", Pod: "pod-1"},
		{Op: "ensure-port", UID: "net-gone", Pod: "pod-1"},
		{Op: "ensure-port", UID: "net-a", Pod: "pod-1"},
		{Op: "list-ports"},
		{Op: "ensure-port", UID: "net-a", Pod: "pod-2"},
		{Op: "delete", UID: "net-b"},
		{Op: "delete-port", Pod: "pod-2"},
		{Op: "delete-port", Pod: "pod-2"},
	}
	if diff := cmp.Diff(want, b.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
