package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/btree"
)

// The errors of the Allocator. The methods wrap them with the address and the network in the
// message; test for them with errors.Is.
var (
	// ErrFull is returned by Allocate when no address of the network is free.
	ErrFull = errors.New("no free address")
	// ErrOutside is returned for an address that is not inside the network's CIDR, is of the
	// other family, has a zone, or is not valid at all.
	ErrOutside = errors.New("address outside the network")
	// ErrExcluded is returned for an address that is never handed out: the network address, the
	// gateway, the IPv4 broadcast address, and, in an IPv6 prefix shorter than /96, any address
	// whose MAC would be that of the network address or the gateway (see Allocator).
	ErrExcluded = errors.New("address excluded from allocation")
	// ErrInUse is returned by Reserve for an address that is already allocated.
	ErrInUse = errors.New("address already allocated")
	// ErrMACInUse is returned by Reserve, in an IPv6 prefix shorter than /96 only, for an address
	// that is free itself but whose MAC is that of another allocated address (the two share their
	// low 32 bits).
	ErrMACInUse = errors.New("MAC address already in use")
	// ErrNotInUse is returned by Release for an address that is not allocated.
	ErrNotInUse = errors.New("address not allocated")
)

// keyBits is how many low bits of an address its MAC carries (MACFor), and so the width of the
// allocator's key space.
const keyBits = 32

// btreeDegree is the degree of the B-tree of free intervals; any small value does.
const btreeDegree = 16

// span is an interval of free keys, both ends included (so that the last key, 2^32-1, has an end
// that fits in a uint32).
type span struct {
	// lo and hi are the first and the last free key of the interval.
	lo, hi uint32
}

// lessSpan orders the disjoint free intervals by their first key.
func lessSpan(a, b span) bool { return a.lo < b.lo }

// Allocator hands out the addresses of one network: the addresses of its CIDR less the network
// address, the gateway and, for IPv4, the broadcast address.
//
// The unit it allocates is a key: the address's offset within the CIDR modulo 2^32, which is what
// tells the MACs (MACFor) of two addresses of the network apart. For IPv4, and for IPv6 prefixes of
// /96 or longer, key and address are one to one. For an IPv6 prefix shorter than /96, the CIDR has
// more than 2^32 addresses and many share a key and so a MAC: Allocate hands out addresses in the
// first 2^32 of the CIDR only (the near window), and Reserve accepts an address beyond it (a far
// address) when its key is free, remembers which address holds the key, and fails with ErrMACInUse
// when another address holds it. A far address whose key is that of the network address or of
// the gateway is refused with ErrExcluded, as those two are, since its MAC would be theirs. Counts
// counts keys: its total for such a prefix is 2^32 less the excluded keys.
//
// An Allocator is not safe for concurrent use: the caller holds a lock around every call.
type Allocator struct {
	// cidr is the network, masked; gateway its gateway.
	cidr    netip.Prefix
	gateway netip.Addr
	// base is the low 32 bits of the network address: the near address of key k has the bits of
	// the network address above the low 32, and base+k (which does not overflow) below.
	base uint32
	// size is the number of keys, min(2^(host bits), 2^32).
	size uint64
	// excluded holds the keys never handed out (the network address's, the gateway's, the IPv4
	// broadcast address's), sorted and without duplicates.
	excluded []uint32
	// free holds the free keys as disjoint, non-adjacent intervals.
	free *btree.BTreeG[span]
	// used is the number of keys allocated.
	used uint64
	// far maps each key held by a far address to that address; a key allocated and not in far is
	// held by its near address.
	far map[uint32]netip.Addr
	// next is the key from which Allocate looks for a free one: the one after the last it handed
	// out, so that an address just released is not handed out again at once.
	next uint64
}

// New returns an Allocator of the network cidr with its gateway, with every usable address free.
// cidr must be masked (no host bits set); gateway must be inside it and be neither the network
// address nor the IPv4 broadcast address; and the network must have at least one usable address
// besides the gateway (an IPv4 /30 or an IPv6 /126 at the smallest).
func New(cidr netip.Prefix, gateway netip.Addr) (*Allocator, error) {
	if !cidr.IsValid() {
		return nil, errors.New("invalid CIDR")
	}
	if masked := cidr.Masked(); cidr != masked {
		return nil, fmt.Errorf("CIDR %s has host bits set (its network is %s)", cidr, masked)
	}
	is4 := cidr.Addr().Is4()
	size := keySpace(cidr)
	reserved := uint64(2) // the network address and the gateway
	if is4 {
		reserved++ // the broadcast address
	}
	if size <= reserved {
		return nil, fmt.Errorf("CIDR %s is too small: it has no usable address besides the gateway", cidr)
	}
	if !gateway.IsValid() {
		return nil, fmt.Errorf("network %s: invalid gateway", cidr)
	}
	if !cidr.Contains(gateway) {
		return nil, fmt.Errorf("network %s: gateway %s: %s: %w", cidr, gateway, outsideReason(cidr, gateway), ErrOutside)
	}
	a := &Allocator{
		cidr:    cidr,
		gateway: gateway,
		base:    low32(cidr.Addr()),
		size:    size,
		free:    btree.NewG(btreeDegree, lessSpan),
		far:     map[uint32]netip.Addr{},
	}
	if gateway == cidr.Addr() {
		return nil, fmt.Errorf("network %s: gateway %s is the network address: %w", cidr, gateway, ErrExcluded)
	}
	if is4 && gateway == a.addr(uint32(size-1)) {
		return nil, fmt.Errorf("network %s: gateway %s is the broadcast address: %w", cidr, gateway, ErrExcluded)
	}

	a.excluded = excludedKeys(cidr, gateway, size)
	// The free intervals are the gaps between the excluded keys.
	lo := uint64(0)
	for _, k := range a.excluded {
		if uint64(k) > lo {
			a.free.ReplaceOrInsert(span{lo: uint32(lo), hi: k - 1})
		}
		lo = uint64(k) + 1
	}
	if lo < size {
		a.free.ReplaceOrInsert(span{lo: uint32(lo), hi: uint32(size - 1)})
	}
	return a, nil
}

// excludedKeys are the sorted keys of a network of size keys that are never handed out: those of
// the network address, the gateway and, for IPv4, the broadcast address.
func excludedKeys(cidr netip.Prefix, gateway netip.Addr, size uint64) []uint32 {
	keys := []uint32{0, low32(gateway) - low32(cidr.Addr())}
	if cidr.Addr().Is4() {
		keys = append(keys, uint32(size-1))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// keySpace is the number of keys of a network: its addresses, or 2^32 of them for an IPv6 prefix
// shorter than /96.
func keySpace(cidr netip.Prefix) uint64 {
	return uint64(1) << min(cidr.Addr().BitLen()-cidr.Bits(), keyBits)
}

// Total is the total of Counts of an Allocator of cidr and gateway, without building one. They
// must be a cidr and gateway that New accepts.
func Total(cidr netip.Prefix, gateway netip.Addr) uint64 {
	size := keySpace(cidr)
	return size - uint64(len(excludedKeys(cidr, gateway, size)))
}

// CIDR returns the network's CIDR.
func (a *Allocator) CIDR() netip.Prefix { return a.cidr }

// Gateway returns the network's gateway.
func (a *Allocator) Gateway() netip.Addr { return a.gateway }

// Allocate hands out the first free address after the last one it handed out, wrapping around at
// the end of the CIDR (of its first 2^32 addresses for an IPv6 prefix shorter than /96), and
// returns ErrFull when there is none.
func (a *Allocator) Allocate() (netip.Addr, error) {
	k, ok := a.freeFrom(a.next)
	if !ok {
		return netip.Addr{}, fmt.Errorf("allocating in %s: %w", a.cidr, ErrFull)
	}
	a.take(k)
	a.next = (uint64(k) + 1) % a.size
	return a.addr(k), nil
}

// Reserve allocates the address ip, for a static request or to rebuild the state from the
// addresses already in use. It fails with ErrOutside, ErrExcluded, ErrInUse or, for an IPv6 prefix
// shorter than /96, ErrMACInUse, and then changes nothing. It does not move the point from which
// Allocate looks for a free address.
func (a *Allocator) Reserve(ip netip.Addr) error {
	k, far, err := a.lookup(ip)
	if err != nil {
		return a.fail("reserving", ip, err)
	}
	if a.isFree(k) {
		a.take(k)
		if far {
			a.far[k] = ip
		}
		return nil
	}
	if holder := a.holder(k); holder != ip {
		return a.fail("reserving", ip, fmt.Errorf("its MAC %s is that of %s: %w", MACFor(ip), holder, ErrMACInUse))
	}
	return a.fail("reserving", ip, ErrInUse)
}

// Release frees the allocated address ip. It fails with ErrOutside or ErrExcluded for an address
// that could never have been allocated, with ErrNotInUse for one that is not, and then changes
// nothing.
func (a *Allocator) Release(ip netip.Addr) error {
	k, far, err := a.lookup(ip)
	if err != nil {
		return a.fail("releasing", ip, err)
	}
	if a.isFree(k) || a.holder(k) != ip {
		return a.fail("releasing", ip, ErrNotInUse)
	}
	a.put(k)
	if far {
		delete(a.far, k)
	}
	return nil
}

// Has reports whether the address ip is allocated.
func (a *Allocator) Has(ip netip.Addr) bool {
	k, _, err := a.lookup(ip)
	return err == nil && !a.isFree(k) && a.holder(k) == ip
}

// Counts returns the number of usable addresses (the CIDR less the network address, the gateway
// and the IPv4 broadcast address; for an IPv6 prefix shorter than /96, the number of usable keys,
// 2^32 less those of the network address and the gateway), how many are allocated, and how many
// are free, total-used.
func (a *Allocator) Counts() (total, used, available uint64) {
	total = a.size - uint64(len(a.excluded))
	return total, a.used, total - a.used
}

// Used returns the allocated addresses, sorted. It takes time and memory in proportion to their
// number; it is meant for tests and for checking a rebuilt state, not for every request.
func (a *Allocator) Used() []netip.Addr {
	out := make([]netip.Addr, 0, a.used)
	// The allocated keys are those in the gaps between the free intervals, less the excluded ones.
	addGap := func(lo, end uint64) {
		for k := lo; k < end; k++ {
			if !slices.Contains(a.excluded, uint32(k)) {
				out = append(out, a.holder(uint32(k)))
			}
		}
	}
	lo := uint64(0)
	a.free.Ascend(func(s span) bool {
		addGap(lo, uint64(s.lo))
		lo = uint64(s.hi) + 1
		return true
	})
	addGap(lo, a.size)
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// MACFor returns the MAC address of a pod with the address ip: 0a:58 (a locally administered
// unicast prefix) followed by the last 4 bytes of the address, its 4 bytes for IPv4, as
// ovn-kubernetes derives it. It returns nil for the zero Addr.
func MACFor(ip netip.Addr) net.HardwareAddr {
	if !ip.IsValid() {
		return nil
	}
	b := ip.As16()
	return net.HardwareAddr{0x0a, 0x58, b[12], b[13], b[14], b[15]}
}

// low32 returns the low 32 bits of ip (all of them for IPv4).
func low32(ip netip.Addr) uint32 {
	b := ip.As16()
	return binary.BigEndian.Uint32(b[12:])
}

// key returns the key of ip, an address inside the CIDR.
func (a *Allocator) key(ip netip.Addr) uint32 { return low32(ip) - a.base }

// addr returns the near address of the key k: the address at offset k in the CIDR.
func (a *Allocator) addr(k uint32) netip.Addr {
	b := a.cidr.Addr().As16()
	binary.BigEndian.PutUint32(b[12:], a.base+k)
	if a.cidr.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// holder returns the address that holds the key k, when k is allocated.
func (a *Allocator) holder(k uint32) netip.Addr {
	if ip, ok := a.far[k]; ok {
		return ip
	}
	return a.addr(k)
}

// lookup returns the key of ip and whether ip is a far address (beyond the first 2^32 of an IPv6
// prefix shorter than /96), or why ip can never be allocated: an error wrapping ErrOutside or
// ErrExcluded.
func (a *Allocator) lookup(ip netip.Addr) (k uint32, far bool, err error) {
	if !ip.IsValid() || !a.cidr.Contains(ip) {
		return 0, false, fmt.Errorf("%s: %w", outsideReason(a.cidr, ip), ErrOutside)
	}
	switch {
	case ip == a.cidr.Addr():
		return 0, false, fmt.Errorf("the network address: %w", ErrExcluded)
	case ip == a.gateway:
		return 0, false, fmt.Errorf("the gateway: %w", ErrExcluded)
	case a.cidr.Addr().Is4() && a.key(ip) == uint32(a.size-1):
		return 0, false, fmt.Errorf("the broadcast address: %w", ErrExcluded)
	}
	k = a.key(ip)
	// Only an address in an IPv6 prefix shorter than /96 can share its key with another one:
	// those with the network address and the gateway are refused, as they are.
	if k == 0 {
		return 0, false, fmt.Errorf("its MAC %s would be that of the network address: %w", MACFor(ip), ErrExcluded)
	}
	if k == a.key(a.gateway) {
		return 0, false, fmt.Errorf("its MAC %s would be that of the gateway: %w", MACFor(ip), ErrExcluded)
	}
	return k, a.addr(k) != ip, nil
}

// outsideReason tells why ip is not inside cidr.
func outsideReason(cidr netip.Prefix, ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "not a valid address"
	case ip.Is4() != cidr.Addr().Is4():
		return "not of the network's address family"
	case ip.Zone() != "":
		return "an address with a zone"
	default:
		return "not inside the network"
	}
}

// fail wraps err, the reason why op on ip failed, with the address and the network.
func (a *Allocator) fail(op string, ip netip.Addr, err error) error {
	return fmt.Errorf("%s %s in %s: %w", op, ip, a.cidr, err)
}

// spanAt returns the free interval that starts at or before the key k, if any.
func (a *Allocator) spanAt(k uint32) (s span, ok bool) {
	a.free.DescendLessOrEqual(span{lo: k}, func(found span) bool {
		s, ok = found, true
		return false
	})
	return s, ok
}

// spanAfter returns the first free interval that starts after the key k, if any.
func (a *Allocator) spanAfter(k uint32) (s span, ok bool) {
	if uint64(k)+1 >= a.size {
		return span{}, false
	}
	a.free.AscendGreaterOrEqual(span{lo: k + 1}, func(found span) bool {
		s, ok = found, true
		return false
	})
	return s, ok
}

// isFree reports whether the key k is free.
func (a *Allocator) isFree(k uint32) bool {
	s, ok := a.spanAt(k)
	return ok && s.hi >= k
}

// freeFrom returns the first free key at or after start (below size), wrapping around to the
// lowest free key; ok is false when no key is free.
func (a *Allocator) freeFrom(start uint64) (k uint32, ok bool) {
	from := uint32(start)
	if s, ok := a.spanAt(from); ok && s.hi >= from {
		return from, true
	}
	if s, ok := a.spanAfter(from); ok {
		return s.lo, true
	}
	if s, ok := a.free.Min(); ok {
		return s.lo, true
	}
	return 0, false
}

// take marks the free key k allocated, splitting or shrinking its interval.
func (a *Allocator) take(k uint32) {
	s, ok := a.spanAt(k)
	if !ok || s.hi < k {
		panic(fmt.Sprintf("ipam: taking key %d, which is not free", k))
	}
	switch {
	case s.lo == s.hi:
		a.free.Delete(s)
	case k == s.lo:
		a.free.Delete(s)
		a.free.ReplaceOrInsert(span{lo: k + 1, hi: s.hi})
	case k == s.hi:
		a.free.ReplaceOrInsert(span{lo: s.lo, hi: k - 1})
	default:
		a.free.ReplaceOrInsert(span{lo: s.lo, hi: k - 1})
		a.free.ReplaceOrInsert(span{lo: k + 1, hi: s.hi})
	}
	a.used++
}

// put marks the allocated key k free, merging it with the free intervals next to it.
func (a *Allocator) put(k uint32) {
	merged := span{lo: k, hi: k}
	if before, ok := a.spanAt(k); ok {
		if before.hi >= k {
			panic(fmt.Sprintf("ipam: freeing key %d, which is free", k))
		}
		if before.hi+1 == k {
			merged.lo = before.lo
		}
	}
	if after, ok := a.spanAfter(k); ok && after.lo == k+1 {
		merged.hi = after.hi
		a.free.Delete(after)
	}
	// With merged.lo == before.lo this replaces the interval before.
	a.free.ReplaceOrInsert(merged)
	a.used--
}
