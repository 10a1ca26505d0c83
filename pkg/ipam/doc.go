// Package ipam allocates the IP addresses, and so the MAC addresses, of the pods attached to one
// network (one CIDR with its gateway). It is pure bookkeeping: the caller rebuilds an Allocator
// from the addresses already in use (Reserve), then hands out new ones (Allocate) and takes them
// back (Release).
//
// A pod's MAC address is derived from its IP address (MACFor: 0a:58 and the low 32 bits of the
// address, as ovn-kubernetes does), so the allocator keeps the MAC unique too: for an IPv6 prefix
// shorter than /96 two addresses can share their low 32 bits, and the allocator treats those bits,
// not the whole address, as the unit it hands out.
//
// The free part of the network is kept as a B-tree of free intervals, so that every operation
// costs O(log n) in the number of intervals, and memory grows with fragmentation, not with the size
// of the CIDR: a /8 or an IPv6 /64 costs no more than a /24.
package ipam
