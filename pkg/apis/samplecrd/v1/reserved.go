package v1

import (
	"net/netip"
	"slices"
)

// ReservedRange is a range of addresses that no Network may use: addresses that are not unicast,
// or that every host keeps for itself. The API server refuses a cidr that overlaps one (is it,
// lies inside it or contains it) with the message "cidr must not overlap " and the range's String,
// by the x-kubernetes-validations rules on NetworkSpec.Cidr, one rule per range.
//
// +k8s:deepcopy-gen=false
type ReservedRange struct {
	// Name says what the range is, as the API server's message names it, for example "loopback".
	Name string
	// Prefix is the range.
	Prefix netip.Prefix
}

// String is the range as the API server's message names it, for example
// "the loopback range 127.0.0.0/8".
func (r ReservedRange) String() string {
	return "the " + r.Name + " range " + r.Prefix.String()
}

// reservedRanges are the ranges ReservedRanges returns. The IPv4 unspecified address 0.0.0.0/32
// is not listed apart: it lies inside "this network".
var reservedRanges = []ReservedRange{
	{Name: `"this network"`, Prefix: netip.MustParsePrefix("0.0.0.0/8")},
	{Name: "loopback", Prefix: netip.MustParsePrefix("127.0.0.0/8")},
	{Name: "link-local", Prefix: netip.MustParsePrefix("169.254.0.0/16")},
	{Name: "multicast", Prefix: netip.MustParsePrefix("224.0.0.0/4")},
	{Name: "limited broadcast", Prefix: netip.MustParsePrefix("255.255.255.255/32")},
	{Name: "unspecified", Prefix: netip.MustParsePrefix("::/128")},
	{Name: "loopback", Prefix: netip.MustParsePrefix("::1/128")},
	// The API server's CEL library does not parse IPv4-mapped IPv6 addresses, so it refuses a
	// cidr equal to or inside this range as not a CIDR at all; the range's own rule refuses the
	// prefixes that contain it, such as ::fffe:0:0/95. A controller parsing with net/netip would
	// otherwise take ::ffff:127.0.0.0/104 for an IPv6 range.
	{Name: "IPv4-mapped", Prefix: netip.MustParsePrefix("::ffff:0.0.0.0/96")},
	{Name: "link-local", Prefix: netip.MustParsePrefix("fe80::/10")},
	{Name: "multicast", Prefix: netip.MustParsePrefix("ff00::/8")},
}

// ReservedRanges returns the reserved ranges, IPv4 first, each family in address order. The
// slice is the caller's.
func ReservedRanges() []ReservedRange {
	return slices.Clone(reservedRanges)
}

// ReservedRangeOverlapping returns the first reserved range, in the order of ReservedRanges, that
// p overlaps: one that p is, lies inside or contains. It returns false when p overlaps none, and
// for an invalid p. Host bits in p are ignored; an IPv4 p never overlaps an IPv6 range nor the
// reverse, and an IPv4-mapped IPv6 p overlaps the IPv4-mapped range.
func ReservedRangeOverlapping(p netip.Prefix) (ReservedRange, bool) {
	for _, r := range reservedRanges {
		if r.Prefix.Overlaps(p) {
			return r, true
		}
	}
	return ReservedRange{}, false
}
