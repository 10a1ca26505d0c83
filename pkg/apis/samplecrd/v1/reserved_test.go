package v1

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReservedRangeOverlapping(t *testing.T) {
	cases := []struct {
		name string
		cidr string
		// want is the String of the range found; empty for none.
		want string
	}{
		{"this network itself", "0.0.0.0/8", `the "this network" range 0.0.0.0/8`},
		{"the IPv4 unspecified address", "0.0.0.0/32", `the "this network" range 0.0.0.0/8`},
		{"inside this network", "0.1.2.0/24", `the "this network" range 0.0.0.0/8`},
		{"everything IPv4: the first range in order", "0.0.0.0/0", `the "this network" range 0.0.0.0/8`},
		{"IPv4 loopback itself", "127.0.0.0/8", "the loopback range 127.0.0.0/8"},
		{"inside IPv4 loopback", "127.0.0.1/32", "the loopback range 127.0.0.0/8"},
		{"containing IPv4 loopback", "96.0.0.0/3", "the loopback range 127.0.0.0/8"},
		{"host bits are ignored", "127.1.2.3/8", "the loopback range 127.0.0.0/8"},
		{"IPv4 link-local itself", "169.254.0.0/16", "the link-local range 169.254.0.0/16"},
		{"inside IPv4 link-local", "169.254.1.0/24", "the link-local range 169.254.0.0/16"},
		{"containing IPv4 link-local", "169.252.0.0/14", "the link-local range 169.254.0.0/16"},
		{"IPv4 multicast itself", "224.0.0.0/4", "the multicast range 224.0.0.0/4"},
		{"the last block of IPv4 multicast", "239.255.255.252/30", "the multicast range 224.0.0.0/4"},
		{"the upper half of IPv4: link-local first", "128.0.0.0/1", "the link-local range 169.254.0.0/16"},
		{"limited broadcast itself", "255.255.255.255/32", "the limited broadcast range 255.255.255.255/32"},
		{"containing limited broadcast", "255.255.255.252/30", "the limited broadcast range 255.255.255.255/32"},
		{"the class E block holds limited broadcast", "240.0.0.0/4", "the limited broadcast range 255.255.255.255/32"},
		{"IPv6 unspecified itself", "::/128", "the unspecified range ::/128"},
		{"everything IPv6: the first range in order", "::/0", "the unspecified range ::/128"},
		{"IPv6 loopback itself", "::1/128", "the loopback range ::1/128"},
		{"a /126 holding unspecified and loopback: unspecified first", "::/126", "the unspecified range ::/128"},
		{"containing IPv6 loopback", "::/127", "the unspecified range ::/128"},
		{"IPv4-mapped itself", "::ffff:0.0.0.0/96", "the IPv4-mapped range ::ffff:0.0.0.0/96"},
		{"IPv4-mapped loopback", "::ffff:127.0.0.0/104", "the IPv4-mapped range ::ffff:0.0.0.0/96"},
		{"IPv4-mapped private range", "::ffff:10.0.0.0/104", "the IPv4-mapped range ::ffff:0.0.0.0/96"},
		{"containing IPv4-mapped", "::fffe:0:0/95", "the IPv4-mapped range ::ffff:0.0.0.0/96"},
		{"IPv6 link-local itself", "fe80::/10", "the link-local range fe80::/10"},
		{"inside IPv6 link-local", "fe80::/64", "the link-local range fe80::/10"},
		{"the last block of IPv6 link-local", "febf:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126", "the link-local range fe80::/10"},
		{"the /9 below IPv6 link-local", "fe00::/9", ""},
		{"containing IPv6 link-local and not multicast", "fe00::/8", "the link-local range fe80::/10"},
		{"containing IPv6 link-local and multicast: link-local first", "fe00::/7", "the link-local range fe80::/10"},
		{"IPv6 multicast itself", "ff00::/8", "the multicast range ff00::/8"},
		{"inside IPv6 multicast", "ff02::/16", "the multicast range ff00::/8"},

		{"after this network", "1.0.0.0/8", ""},
		{"before IPv4 loopback", "126.0.0.0/8", ""},
		{"after IPv4 loopback", "128.0.0.0/8", ""},
		{"before IPv4 link-local", "169.253.0.0/16", ""},
		{"after IPv4 link-local", "169.255.0.0/16", ""},
		{"before IPv4 multicast", "208.0.0.0/4", ""},
		{"before limited broadcast", "255.255.255.248/30", ""},
		{"after IPv6 loopback", "::4/126", ""},
		{"IPv4-compatible IPv6 (not mapped)", "::127.0.0.0/104", ""},
		{"before IPv4-mapped", "::fffe:0:0/96", ""},
		{"after IPv4-mapped", "::1:0:0:0/96", ""},
		{"before IPv6 link-local", "fe40::/10", ""},
		{"after IPv6 link-local", "fec0::/10", ""},
		{"before IPv6 multicast", "feff:ffff:ffff:ffff::/64", ""},
		{"private IPv4", "10.0.0.0/8", ""},
		{"the seed's network", "192.168.0.0/16", ""},
		{"unique local IPv6", "fd00::/8", ""},
		{"documentation IPv6", "2001:db8::/32", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := ReservedRangeOverlapping(netip.MustParsePrefix(tc.cidr))
			got := ""
			if ok {
				got = r.String()
			} else if r != (ReservedRange{}) {
				t.Errorf("no range found, but got %+v rather than the zero ReservedRange", r)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReservedRangeOverlapping(%s) (-want +got):\n%s", tc.cidr, diff)
			}
		})
	}
}

func TestReservedRangeOverlappingInvalidPrefix(t *testing.T) {
	if r, ok := ReservedRangeOverlapping(netip.Prefix{}); ok {
		t.Errorf("the zero Prefix overlaps %v", r)
	}
}

func TestReservedRanges(t *testing.T) {
	ranges := ReservedRanges()
	var got []string
	for _, r := range ranges {
		got = append(got, r.Prefix.String())
		if r.Prefix != r.Prefix.Masked() {
			t.Errorf("%v has host bits set", r)
		}
		if r.Name == "" {
			t.Errorf("%v has no name", r.Prefix)
		}
	}
	want := []string{
		"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
		"::/128", "::1/128", "::ffff:0.0.0.0/96", "fe80::/10", "ff00::/8",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reserved ranges (-want +got):\n%s", diff)
	}
	// IPv4 first, each family in address order, as documented.
	if !slices.IsSortedFunc(ranges, func(a, b ReservedRange) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) }) {
		t.Errorf("the ranges are not in address order: %v", got)
	}

	// The slice is the caller's.
	ranges[0] = ReservedRange{Name: "changed", Prefix: netip.MustParsePrefix("10.0.0.0/8")}
	if r, ok := ReservedRangeOverlapping(netip.MustParsePrefix("0.0.0.0/8")); !ok || r.Name == "changed" {
		t.Errorf("changing the returned slice changed the ranges: got %v, %v", r, ok)
	}
}
