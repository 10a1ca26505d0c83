package podnetwork

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/ipam"
)

var netKey = cache.ObjectName{Namespace: "team-a", Name: "web"}

func podKey(i int) cache.ObjectName {
	return cache.ObjectName{Namespace: "team-a", Name: fmt.Sprintf("pod-%d", i)}
}
func podUID(i int) types.UID { return types.UID(fmt.Sprintf("pod-uid-%d", i)) }

func TestRegistry(t *testing.T) {
	cidr, gw := netip.MustParsePrefix("10.1.0.0/29"), netip.MustParseAddr("10.1.0.1")
	var usage []cache.ObjectName
	r := NewRegistry()
	r.OnUsageChange(func(k cache.ObjectName) { usage = append(usage, k) })

	if _, err := r.Allocate("net", podKey(0), podUID(0)); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Allocate on an unknown Network: %v, want ErrNotOpen", err)
	}
	if err := r.SetNetwork(netKey, "net", cidr, gw); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&samplecrdv1.NetworkAddresses{Total: 5, Used: 0, Available: 5}, r.Addresses("net")); diff != "" {
		t.Errorf("addresses of an empty /29 (-want +got):\n%s", diff)
	}
	// A /29 with the gateway: .2 to .6 for pods.
	var got []string
	for i := range 5 {
		a, err := r.Allocate("net", podKey(i), podUID(i))
		if err != nil {
			t.Fatalf("Allocate %d: %v", i, err)
		}
		got = append(got, a.IP.String())
	}
	if diff := cmp.Diff([]string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if a, err := r.Allocate("net", podKey(0), podUID(0)); err != nil || a.IP.String() != "10.1.0.2" {
		t.Errorf("Allocate again for a pod that holds one: %v, %v; want its address 10.1.0.2", a.IP, err)
	}
	if _, err := r.Allocate("net", podKey(5), podUID(5)); !errors.Is(err, ipam.ErrFull) {
		t.Errorf("Allocate on a full Network: %v, want ErrFull", err)
	}
	if diff := cmp.Diff(&samplecrdv1.NetworkAddresses{Total: 5, Used: 5, Available: 0}, r.Addresses("net")); diff != "" {
		t.Errorf("addresses of a full /29 (-want +got):\n%s", diff)
	}
	if n, some := r.CloseNetwork("net"); n != 5 || len(some) != someCount || some[0] != podKey(0) {
		t.Errorf("CloseNetwork with pods = %d, %v; want 5 with the first %d pods", n, some, someCount)
	}
	// The close refused: the Network is still open.
	if _, err := r.Release(podUID(2)); !err {
		t.Fatal("Release of a held address found nothing")
	}
	if a, err := r.Allocate("net", podKey(5), podUID(5)); err != nil || a.IP.String() != "10.1.0.4" {
		t.Errorf("Allocate after a release: %v, %v; want the freed 10.1.0.4", a.IP, err)
	}
	if _, err := r.Reserve("net", podKey(6), podUID(6), netip.MustParseAddr("10.1.0.3")); !errors.Is(err, ipam.ErrInUse) {
		t.Errorf("Reserve of a held address: %v, want ErrInUse", err)
	}

	// A spec the addresses do not fit changes nothing.
	err := r.SetNetwork(netKey, "net", netip.MustParsePrefix("10.1.0.0/30"), gw)
	var notFit *NotFitError
	if !errors.As(err, &notFit) || notFit.Count != 4 {
		t.Fatalf("SetNetwork to a /30 (.3 its broadcast) with pods on .3 to .6: %v, want a NotFitError for 4 pods", err)
	}
	if c, g, _, _ := r.Spec("net"); c != cidr || g != gw {
		t.Errorf("spec after a refused change: %s %s, want %s %s", c, g, cidr, gw)
	}
	// A wider one that they fit is applied, and keeps every address.
	if err := r.SetNetwork(netKey, "net", netip.MustParsePrefix("10.1.0.0/24"), gw); err != nil {
		t.Fatalf("SetNetwork to a /24: %v", err)
	}
	if a, ok := r.Held(podUID(3)); !ok || a.IP.String() != "10.1.0.5" || a.CIDR.String() != "10.1.0.0/24" {
		t.Errorf("pod 3 after the change: %+v, want 10.1.0.5 in 10.1.0.0/24", a)
	}
	if a, err := r.Allocate("net", podKey(7), podUID(7)); err != nil || a.IP.String() != "10.1.0.7" {
		t.Errorf("Allocate after widening: %v, %v; want 10.1.0.7", a.IP, err)
	}
	for _, i := range []int{0, 1, 3, 4, 5, 7} {
		if _, ok := r.Release(podUID(i)); !ok {
			t.Errorf("Release of pod %d found nothing", i)
		}
	}
	if n, _ := r.CloseNetwork("net"); n != 0 {
		t.Errorf("CloseNetwork without pods = %d, want 0", n)
	}
	if r.Addresses("net") != nil {
		t.Error("a closed Network still has addresses")
	}
	if len(usage) != 14 { // 7 allocations, 7 releases
		t.Errorf("usage changes reported: %d, want 14", len(usage))
	}
}

func TestRegistryRestore(t *testing.T) {
	cidr, gw := netip.MustParsePrefix("10.1.0.0/24"), netip.MustParseAddr("10.1.0.1")
	r := NewRegistry()
	if _, err := r.Restore(netKey, "net", cidr, gw, podKey(0), podUID(0), netip.MustParseAddr("10.1.0.9")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Restore(netKey, "net", cidr, gw, podKey(1), podUID(1), netip.MustParseAddr("10.1.0.9")); !errors.Is(err, ipam.ErrInUse) {
		t.Errorf("Restore of an address another pod holds: %v, want ErrInUse", err)
	}
	if _, err := r.Allocate("net", podKey(1), podUID(1)); !errors.Is(err, ErrNotOpen) {
		t.Errorf("Allocate on a restored Network that the network controller did not open: %v, want ErrNotOpen", err)
	}
	if err := r.SetNetwork(netKey, "net", cidr, gw); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Allocate("net", podKey(1), podUID(1)); err != nil || a.IP.String() == "10.1.0.9" {
		t.Errorf("Allocate after the restore: %v, %v; want an address other than the restored 10.1.0.9", a.IP, err)
	}
	// A Network restored but gone: forgotten with its last pod.
	if _, err := r.Restore(netKey, "gone", cidr, gw, podKey(2), podUID(2), netip.MustParseAddr("10.1.0.2")); err != nil {
		t.Fatal(err)
	}
	r.Release(podUID(2))
	if _, _, _, ok := r.Spec("gone"); ok {
		t.Error("a restored Network that was never opened is kept after its last pod went")
	}
}
