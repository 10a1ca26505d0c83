package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/samplecrd/samplecrd-controller/internal/fuzzinput"
)

// fuzzNetworks are the networks FuzzAllocator chooses from: small ones, which it fills, and an
// IPv6 /64, where it reserves addresses beyond the first 2^32 that share their MAC with others.
var fuzzNetworks = []netip.Prefix{
	netip.MustParsePrefix("10.1.2.0/24"),
	netip.MustParsePrefix("192.168.7.128/25"),
	netip.MustParsePrefix("172.16.0.64/26"),
	netip.MustParsePrefix("10.0.0.224/27"),
	netip.MustParsePrefix("10.9.8.16/28"),
	netip.MustParsePrefix("10.0.0.8/29"),
	netip.MustParsePrefix("10.0.0.4/30"),
	netip.MustParsePrefix("fd00::ff00/120"),
	netip.MustParsePrefix("fd00:1::80/121"),
	netip.MustParsePrefix("fd00::1:0:0/122"),
	netip.MustParsePrefix("fd00::ffff:ffe0/123"),
	netip.MustParsePrefix("fd00::10/124"),
	netip.MustParsePrefix("fd00::8/125"),
	netip.MustParsePrefix("fd00::4/126"),
	netip.MustParsePrefix("2001:db8:0:1::/64"),
}

// model is what an Allocator must hold, kept the simple way: a map from MAC key to address.
type model struct {
	cidr    netip.Prefix
	gateway netip.Addr
	// wide: an IPv6 prefix shorter than /96, where addresses share keys.
	wide bool
	// size is the number of keys, total the number of usable keys.
	size, total uint64
	// held maps the key of each allocated address, its low 32 bits less the network's, to it.
	held map[uint32]netip.Addr
	// next is the key Allocate must look from.
	next uint64
}

func newModel(cidr netip.Prefix, gateway netip.Addr) *model {
	m := &model{cidr: cidr, gateway: gateway, held: map[uint32]netip.Addr{}}
	hostBits := cidr.Addr().BitLen() - cidr.Bits()
	m.wide = hostBits > 32
	m.size = uint64(1) << min(hostBits, 32)
	if m.wide {
		// All but the keys of the network address and the gateway, which may be one.
		m.total = m.size - 2
		if m.keyOf(gateway) == 0 {
			m.total++
		}
		return m
	}
	for k := range m.size {
		if m.usableKey(uint32(k)) {
			m.total++
		}
	}
	return m
}

func low(ip netip.Addr) uint32 {
	b := ip.As16()
	return binary.BigEndian.Uint32(b[12:])
}

func (m *model) keyOf(ip netip.Addr) uint32 { return low(ip) - low(m.cidr.Addr()) }

// nearAddr is the address at offset k in the CIDR.
func (m *model) nearAddr(k uint32) netip.Addr {
	b := m.cidr.Addr().As16()
	binary.BigEndian.PutUint32(b[12:], low(m.cidr.Addr())+k)
	if m.cidr.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// usableKey reports whether the key k is ever handed out.
func (m *model) usableKey(k uint32) bool {
	if k == 0 || k == m.keyOf(m.gateway) {
		return false
	}
	return !m.cidr.Addr().Is4() || uint64(k) != m.size-1
}

// excluded reports whether ip, inside the CIDR, can never be allocated.
func (m *model) excluded(ip netip.Addr) bool {
	return ip == m.cidr.Addr() || ip == m.gateway || !m.usableKey(m.keyOf(ip))
}

// reserve returns the error Reserve(ip) must wrap, and applies it.
func (m *model) reserve(ip netip.Addr) error {
	switch {
	case !m.cidr.Contains(ip):
		return ErrOutside
	case m.excluded(ip):
		return ErrExcluded
	}
	k := m.keyOf(ip)
	if h, ok := m.held[k]; ok {
		if h == ip {
			return ErrInUse
		}
		return ErrMACInUse
	}
	m.held[k] = ip
	return nil
}

// release returns the error Release(ip) must wrap, and applies it.
func (m *model) release(ip netip.Addr) error {
	switch {
	case !m.cidr.Contains(ip):
		return ErrOutside
	case m.excluded(ip):
		return ErrExcluded
	}
	k := m.keyOf(ip)
	if h, ok := m.held[k]; !ok || h != ip {
		return ErrNotInUse
	}
	delete(m.held, k)
	return nil
}

// allocate returns the address Allocate must return, or ErrFull, and applies it.
func (m *model) allocate() (netip.Addr, error) {
	if uint64(len(m.held)) == m.total {
		return netip.Addr{}, ErrFull
	}
	// At most len(held)+3 steps: the network is not full.
	for k := m.next; ; k = (k + 1) % m.size {
		if _, ok := m.held[uint32(k)]; !ok && m.usableKey(uint32(k)) {
			ip := m.nearAddr(uint32(k))
			m.held[uint32(k)] = ip
			m.next = (k + 1) % m.size
			return ip, nil
		}
	}
}

func (m *model) used() []netip.Addr {
	out := make([]netip.Addr, 0, len(m.held))
	for _, ip := range m.held {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// fuzzAddr derives an address for Reserve or Release from the input: mostly one inside the CIDR
// (any, the excluded ones too), some outside or of the other family; in the /64, far ones whose
// low bits collide with near ones.
func (m *model) fuzzAddr(in *fuzzinput.Reader) netip.Addr {
	switch c := in.Byte(); {
	case c < 8:
		// Just outside, below or above.
		if c%2 == 0 {
			return m.cidr.Addr().Prev()
		}
		last := m.nearAddr(uint32(m.size - 1))
		if m.wide {
			b := m.cidr.Addr().As16()
			b[7]++
			return netip.AddrFrom16(b)
		}
		return last.Next()
	case c < 12:
		// The other family, the same low bits.
		b := m.cidr.Addr().As16()
		if m.cidr.Addr().Is4() {
			return netip.AddrFrom16([16]byte{0: 0xfd, 12: b[12], 13: b[13], 14: b[14], 15: in.Byte()})
		}
		return netip.AddrFrom4([4]byte{10, 0, 0, in.Byte()})
	case c < 16:
		return m.gateway
	case m.wide && c >= 128:
		// Far: bits 32..63 from the input, the low bits among the first few keys.
		b := m.cidr.Addr().As16()
		b[11] = in.Byte() % 4
		b[10] = in.Byte() % 2
		b[15] = in.Byte() % 16
		return netip.AddrFrom16(b)
	default:
		if m.wide {
			return m.nearAddr(uint32(in.Byte() % 16))
		}
		return m.nearAddr(uint32(uint64(in.Byte()) % m.size))
	}
}

// fuzzGateway derives the gateway from the input: any usable address of a small network; in
// the /64, a near one among the first keys or a far one.
func fuzzGateway(cidr netip.Prefix, c byte) netip.Addr {
	hostBits := cidr.Addr().BitLen() - cidr.Bits()
	b := cidr.Addr().As16()
	switch {
	case hostBits > 32:
		if c >= 128 {
			b[11] = 1
		}
		b[15] = 1 + c%8
		if c >= 192 {
			b[15] = 0 // far, with the network address's key
		}
	case cidr.Addr().Is4():
		// 1 .. size-2: not the network or the broadcast address.
		b[15] += 1 + c%byte(1<<hostBits-2)
	default:
		b[15] += 1 + byte(int(c)%(1<<hostBits-1))
	}
	if cidr.Addr().Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// checkInvariants fails unless the free intervals of a are sorted, disjoint, not adjacent, inside
// the key space, clear of the excluded keys, and add up to the available count; and the far
// addresses hold allocated keys.
func checkInvariants(a *Allocator) error {
	var err error
	var free uint64
	prev, first := span{}, true
	a.free.Ascend(func(s span) bool {
		switch {
		case s.lo > s.hi || uint64(s.hi) >= a.size:
			err = fmt.Errorf("bad interval %v", s)
		case !first && uint64(prev.hi)+1 >= uint64(s.lo):
			err = fmt.Errorf("interval %v overlaps or touches %v", s, prev)
		}
		for _, k := range a.excluded {
			if s.lo <= k && k <= s.hi {
				err = fmt.Errorf("interval %v holds the excluded key %d", s, k)
			}
		}
		free += uint64(s.hi-s.lo) + 1
		prev, first = s, false
		return err == nil
	})
	if err != nil {
		return err
	}
	if _, _, available := a.Counts(); available != free {
		return fmt.Errorf("available %d, free intervals hold %d keys", available, free)
	}
	for k, ip := range a.far {
		if a.isFree(k) || a.key(ip) != k || a.addr(k) == ip {
			return fmt.Errorf("far address %s with the key %d", ip, k)
		}
	}
	return nil
}

// FuzzAllocator runs a sequence of Allocate, Reserve and Release calls chosen by the input on a
// network chosen by it, and checks every outcome against the model: no address handed out twice,
// none lost, ErrFull exactly when the model is full, no excluded address handed out.
func FuzzAllocator(f *testing.F) {
	// The input: the network (an index into fuzzNetworks), the gateway (fuzzGateway), then
	// operations: 0 Allocate; 1 Reserve of an address (fuzzAddr); 2 Release, of a held address
	// (an even byte, then its index) or of one from fuzzAddr.
	// An IPv4 /24: allocations.
	f.Add([]byte{0, 0, 0, 0, 0})
	// An IPv4 /30 filled, its one address released and allocated again.
	f.Add([]byte{6, 0, 0, 0, 2, 0, 0, 0, 0})
	// An IPv6 /126 the same way.
	f.Add([]byte{13, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0})
	// An IPv4 /29: Reserve outside, of the other family, of the gateway, free, of the broadcast
	// address, in use, of the network address; Release.
	f.Add([]byte{5, 3, 1, 0, 1, 9, 7, 1, 12, 1, 16, 5, 1, 16, 7, 1, 16, 5, 1, 16, 0, 2, 1, 16, 5})
	// An IPv6 /124 filled, one released and allocated again.
	f.Add(append(append([]byte{11, 7}, make([]byte, 15)...), 2, 0, 3, 0, 0))
	// An IPv6 /64: a far address, the near one with its MAC, Allocate, the far one again, its
	// Release, then the near one.
	f.Add([]byte{14, 1, 1, 200, 1, 0, 5, 1, 100, 5, 0, 1, 200, 1, 0, 5, 2, 1, 200, 1, 0, 5, 1, 20, 5})
	// An IPv6 /64 with a far gateway: Allocate skips the near address with its MAC, Reserve of
	// it and of another far one with it is refused.
	f.Add([]byte{14, 130, 0, 0, 0, 1, 100, 3, 1, 200, 2, 0, 3})
	// An IPv6 /64 with a far gateway whose MAC is the network address's.
	f.Add([]byte{14, 200, 0, 1, 200, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, input []byte) {
		in := fuzzinput.New(input)
		cidr := fuzzNetworks[in.Choose(len(fuzzNetworks))]
		gateway := fuzzGateway(cidr, in.Byte())
		a, err := New(cidr, gateway)
		if err != nil {
			t.Fatalf("New(%s, %s): %v", cidr, gateway, err)
		}
		m := newModel(cidr, gateway)
		for step := 0; in.Left() > 0; step++ {
			var ip netip.Addr
			var err, want error
			op := in.Choose(3)
			switch op {
			case 0:
				var wantIP netip.Addr
				wantIP, want = m.allocate()
				ip, err = a.Allocate()
				if want == nil && ip != wantIP {
					t.Fatalf("step %d: Allocate() = %s, want %s", step, ip, wantIP)
				}
				if err == nil && m.excluded(ip) {
					t.Fatalf("step %d: Allocate() returned the excluded %s", step, ip)
				}
			case 1:
				ip = m.fuzzAddr(in)
				want = m.reserve(ip)
				err = a.Reserve(ip)
			case 2:
				if held := m.used(); len(held) > 0 && in.Byte()%2 == 0 {
					ip = held[in.Choose(len(held))]
				} else {
					ip = m.fuzzAddr(in)
				}
				want = m.release(ip)
				err = a.Release(ip)
			}
			opName := [...]string{"Allocate", "Reserve", "Release"}[op]
			if (err == nil) != (want == nil) || (err != nil && !errors.Is(err, want)) {
				t.Fatalf("step %d: %s %s: error %v, want %v", step, opName, ip, err, want)
			}
			if got, want := a.Has(ip), m.held[m.keyOf(ip)] == ip && m.cidr.Contains(ip); ip.IsValid() && got != want {
				t.Fatalf("step %d: after %s %s: Has = %t, want %t", step, opName, ip, got, want)
			}
			total, used, available := a.Counts()
			if total != m.total || used != uint64(len(m.held)) || used+available != total {
				t.Fatalf("step %d: after %s %s: Counts() = %d, %d, %d; want total %d, used %d", step, opName, ip, total, used, available, m.total, len(m.held))
			}
			// cmp.Diff only on a mismatch: it would take most of the time of an input.
			if want, got := m.used(), a.Used(); !slices.Equal(want, got) {
				t.Fatalf("step %d: after %s %s: Used() (-model +got):\n%s", step, opName, ip, cmp.Diff(want, got, cmpAddr))
			}
			if err := checkInvariants(a); err != nil {
				t.Fatalf("step %d: after %s %s: %v", step, opName, ip, err)
			}
		}
	})
}
