package networkapi

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// The causes of a cidr that overlaps a reserved range, written out here rather than derived from
// samplecrdv1.ReservedRanges, as a user reads them; TestReservedRangesMatchTheCRD derives them.
const (
	thisNetwork      = `spec.cidr: cidr must not overlap the "this network" range 0.0.0.0/8`
	loopback4        = "spec.cidr: cidr must not overlap the loopback range 127.0.0.0/8"
	linkLocal4       = "spec.cidr: cidr must not overlap the link-local range 169.254.0.0/16"
	multicast4       = "spec.cidr: cidr must not overlap the multicast range 224.0.0.0/4"
	limitedBroadcast = "spec.cidr: cidr must not overlap the limited broadcast range 255.255.255.255/32"
	unspecified6     = "spec.cidr: cidr must not overlap the unspecified range ::/128"
	loopback6        = "spec.cidr: cidr must not overlap the loopback range ::1/128"
	mapped6          = "spec.cidr: cidr must not overlap the IPv4-mapped range ::ffff:0.0.0.0/96"
	linkLocal6       = "spec.cidr: cidr must not overlap the link-local range fe80::/10"
	multicast6       = "spec.cidr: cidr must not overlap the multicast range ff00::/8"
)

func TestAdmissionRefusesReservedRanges(t *testing.T) {
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	networks := dynamic.NewForConfigOrDie(cfg).Resource(networksResource).Namespace(ns)

	cases := []struct {
		name, cidr, gateway string
		// want are all the causes of the refusal.
		want []string
	}{
		{"this network", "0.0.0.0/8", "0.0.0.1", []string{thisNetwork}},
		{"the IPv4 unspecified address's block", "0.0.0.0/30", "0.0.0.1", []string{thisNetwork}},
		{"the end of this network", "0.255.255.252/30", "0.255.255.253", []string{thisNetwork}},
		{"containing this network", "0.0.0.0/7", "0.0.0.1", []string{thisNetwork}},
		{"IPv4 loopback", "127.0.0.0/8", "127.0.0.1", []string{loopback4}},
		{"inside IPv4 loopback", "127.255.255.252/30", "127.255.255.253", []string{loopback4}},
		{"containing IPv4 loopback", "126.0.0.0/7", "126.0.0.1", []string{loopback4}},
		{"IPv4 link-local", "169.254.0.0/16", "169.254.0.1", []string{linkLocal4}},
		{"inside IPv4 link-local: the metadata service's block", "169.254.169.252/30", "169.254.169.253", []string{linkLocal4}},
		{"containing IPv4 link-local", "169.254.0.0/15", "169.254.0.1", []string{linkLocal4}},
		{"IPv4 multicast", "224.0.0.0/4", "224.0.0.1", []string{multicast4}},
		{"inside IPv4 multicast", "239.255.255.252/30", "239.255.255.253", []string{multicast4}},
		{"containing IPv4 multicast, and so limited broadcast", "224.0.0.0/3", "224.0.0.1", []string{multicast4, limitedBroadcast}},
		{"limited broadcast, too small to hold a gateway", "255.255.255.255/32", "255.255.255.255", []string{limitedBroadcast, tooSmall, networkAddr}},
		{"containing limited broadcast", "255.255.255.252/30", "255.255.255.253", []string{limitedBroadcast}},
		{"containing limited broadcast: class E", "240.0.0.0/4", "240.0.0.1", []string{limitedBroadcast}},
		{"all of IPv4", "0.0.0.0/0", "10.0.0.1", []string{thisNetwork, loopback4, linkLocal4, multicast4, limitedBroadcast}},
		{"IPv6 unspecified, too small to hold a gateway", "::/128", "::", []string{unspecified6, tooSmall, networkAddr}},
		{"IPv6 loopback, too small to hold a gateway", "::1/128", "::1", []string{loopback6, tooSmall, networkAddr}},
		{"containing IPv6 unspecified and loopback", "::/126", "::2", []string{unspecified6, loopback6}},
		// The API server's CEL library parses no IPv4-mapped address: such a cidr is no CIDR to it,
		// and such a gateway no IP.
		{"IPv4-mapped", "::ffff:0.0.0.0/96", "fd00::1", []string{notCIDR}},
		{"inside IPv4-mapped: mapped loopback", "::ffff:127.0.0.0/104", "::ffff:127.0.0.1", []string{notCIDR, notIP}},
		{"inside IPv4-mapped, in hexadecimal", "::ffff:7f00:0/104", "fd00::1", []string{notCIDR}},
		{"containing IPv4-mapped", "::fffe:0:0/95", "::fffe:0:1", []string{mapped6}},
		{"containing IPv4-mapped, unspecified and loopback", "::/64", "::2", []string{unspecified6, loopback6, mapped6}},
		{"IPv6 link-local", "fe80::/10", "fe80::1", []string{linkLocal6}},
		{"inside IPv6 link-local", "fe80::/64", "fe80::1", []string{linkLocal6}},
		{"containing IPv6 link-local", "fe80::/9", "fe80::1", []string{linkLocal6}},
		{"IPv6 multicast", "ff00::/8", "ff00::1", []string{multicast6}},
		{"inside IPv6 multicast", "ff02::/16", "ff02::1", []string{multicast6}},
		{"containing IPv6 multicast and link-local", "fe00::/7", "fe00::1", []string{linkLocal6, multicast6}},
		{"all of IPv6", "::/0", "fd00::1", []string{unspecified6, loopback6, mapped6, linkLocal6, multicast6}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := map[string]any{"cidr": tc.cidr, "gateway": tc.gateway}
			_, err := networks.Create(context.Background(), networkObject(fmt.Sprintf("reserved-%d", i), spec), metav1.CreateOptions{})
			checkInvalid(t, err, spec, tc.want)
		})
	}
}

// TestAdmissionAcceptsNeighboursOfReservedRanges creates the blocks right beside each reserved
// range: the rules refuse the range, not what is near it.
func TestAdmissionAcceptsNeighboursOfReservedRanges(t *testing.T) {
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	networks := dynamic.NewForConfigOrDie(cfg).Resource(networksResource).Namespace(ns)
	cases := []struct{ name, cidr, gateway string }{
		{"after this network", "1.0.0.0/8", "1.0.0.1"},
		{"before IPv4 loopback", "126.0.0.0/8", "126.0.0.1"},
		{"after IPv4 loopback", "128.0.0.0/8", "128.0.0.1"},
		{"before IPv4 link-local", "169.253.0.0/16", "169.253.0.1"},
		{"after IPv4 link-local", "169.255.0.0/16", "169.255.0.1"},
		{"before IPv4 multicast", "208.0.0.0/4", "208.0.0.1"},
		{"after IPv4 multicast, short of limited broadcast", "240.0.0.0/5", "240.0.0.1"},
		{"the last /30 before limited broadcast", "255.255.255.248/30", "255.255.255.249"},
		{"after IPv6 unspecified and loopback", "::4/126", "::5"},
		{"IPv4-compatible (not mapped) IPv6", "::127.0.0.0/104", "::127.0.0.1"},
		{"before IPv4-mapped", "::fffe:0:0/96", "::fffe:0:1"},
		{"after IPv4-mapped", "::1:0:0:0/96", "::1:0:0:1"},
		{"before IPv6 link-local", "fe40::/10", "fe40::1"},
		{"after IPv6 link-local", "fec0::/10", "fec0::1"},
		{"the last /64 before IPv6 multicast", "feff:ffff:ffff:ffff::/64", "feff:ffff:ffff:ffff::1"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := map[string]any{"cidr": tc.cidr, "gateway": tc.gateway}
			if _, err := networks.Create(context.Background(), networkObject(fmt.Sprintf("neighbour-%d", i), spec), metav1.CreateOptions{}); err != nil {
				t.Fatalf("the API server refused %v: %v", spec, err)
			}
		})
	}
}

// TestReservedRangesMatchTheCRD ties samplecrdv1.ReservedRanges, which the controller checks, to the
// CRD's rules, which the API server checks: for every range in the list, the API server refuses a
// cidr equal to it, one inside it and one containing it, each with the messages of exactly the
// listed ranges that cidr overlaps, and accepts a block just outside it.
func TestReservedRangesMatchTheCRD(t *testing.T) {
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	networks := dynamic.NewForConfigOrDie(cfg).Resource(networksResource).Namespace(ns)
	create := func(name string, cidr netip.Prefix) (map[string]any, error) {
		spec := map[string]any{"cidr": cidr.String(), "gateway": gatewayFor(cidr).String()}
		_, err := networks.Create(context.Background(), networkObject(name, spec), metav1.CreateOptions{})
		return spec, err
	}
	for i, r := range samplecrdv1.ReservedRanges() {
		t.Run(r.String(), func(t *testing.T) {
			refused := []struct {
				what string
				cidr netip.Prefix
			}{
				{"equal", r.Prefix},
				// The last block inside, unless the range is smaller than the CRD accepts.
				{"inside", netip.PrefixFrom(lastAddr(r.Prefix), maxBits(r.Prefix)).Masked()},
				// The block of twice the size, or of the largest size the CRD accepts.
				{"containing", netip.PrefixFrom(r.Prefix.Addr(), min(r.Prefix.Bits()-1, maxBits(r.Prefix))).Masked()},
			}
			for _, c := range refused {
				if c.what == "inside" && r.Prefix.Bits() >= maxBits(r.Prefix) {
					continue
				}
				// The ranges are disjoint: what is or lies inside one overlaps no other.
				found, ok := samplecrdv1.ReservedRangeOverlapping(c.cidr)
				if !ok || (c.what != "containing" && found != r) {
					t.Errorf("ReservedRangeOverlapping(%s) = %v, %v; want %v", c.cidr, found, ok, r)
				}
				spec, err := create(fmt.Sprintf("match-%d-%s", i, c.what), c.cidr)
				checkInvalid(t, err, spec, expectedCauses(c.cidr))
			}

			neighbour, ok := neighbourOf(r.Prefix)
			if !ok {
				t.Fatalf("found no block beside %v outside every reserved range", r)
			}
			if spec, err := create(fmt.Sprintf("match-%d-neighbour", i), neighbour); err != nil {
				t.Errorf("the API server refused %v, beside %v: %v", spec, r, err)
			}
		})
	}
}

// maxBits is the longest prefix the CRD accepts in p's family: /30 for IPv4, /126 for IPv6.
func maxBits(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 30
	}
	return 126
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// gatewayFor is the gateway of a test Network on cidr: its first host, or its address when the
// cidr is too small to hold a gateway and another host.
func gatewayFor(cidr netip.Prefix) netip.Addr {
	if cidr.Bits() > maxBits(cidr) {
		return cidr.Addr()
	}
	return cidr.Addr().Next()
}

// expectedCauses are the causes of the refusal of a Network on cidr with gatewayFor(cidr) that
// overlaps a reserved range.
func expectedCauses(cidr netip.Prefix) []string {
	if cidr.Addr().Is4In6() {
		// The API server's CEL library parses no IPv4-mapped address: the cidr is no CIDR to it,
		// and its gateway, mapped too, no IP; the rules that compare both fields skip them.
		return []string{notCIDR, notIP}
	}
	var want []string
	for _, r := range samplecrdv1.ReservedRanges() {
		if r.Prefix.Overlaps(cidr) {
			want = append(want, "spec.cidr: cidr must not overlap "+r.String())
		}
	}
	if cidr.Bits() > maxBits(cidr) {
		want = append(want, tooSmall, networkAddr)
	}
	return want
}

// neighbourOf returns a block that the CRD accepts right beside p, outside every reserved range:
// the first of the same size as p (or of the largest size the CRD accepts, when p is smaller)
// after p or before it, or else one of the next smaller size, and so on.
func neighbourOf(p netip.Prefix) (netip.Prefix, bool) {
	for bits := min(p.Bits(), maxBits(p)); bits <= maxBits(p); bits++ {
		for _, after := range []bool{true, false} {
			if n, ok := adjacent(p, bits, after); ok {
				if _, reserved := samplecrdv1.ReservedRangeOverlapping(n); !reserved {
					return n, true
				}
			}
		}
	}
	return netip.Prefix{}, false
}

// adjacent returns the block of bits bits closest to p, after it or before it, that does not
// overlap it.
func adjacent(p netip.Prefix, bits int, after bool) (netip.Prefix, bool) {
	a := p.Addr().Prev()
	if after {
		a = lastAddr(p).Next()
	}
	for a.IsValid() {
		n := netip.PrefixFrom(a, bits).Masked()
		if !n.Overlaps(p) {
			return n, true
		}
		if after {
			a = lastAddr(n).Next()
		} else {
			a = n.Addr().Prev()
		}
	}
	return netip.Prefix{}, false
}
