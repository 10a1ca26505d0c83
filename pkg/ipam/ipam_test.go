package ipam

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// cmpAddr compares netip.Addr values, whose fields cmp cannot see, with ==.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// addrs parses the addresses ss.
func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, addr(s))
	}
	return out
}

// newAllocator returns the Allocator of cidr with gateway, failing the test if New fails.
func newAllocator(t testing.TB, cidr, gateway string) *Allocator {
	t.Helper()
	a, err := New(pfx(cidr), addr(gateway))
	if err != nil {
		t.Fatalf("New(%s, %s): %v", cidr, gateway, err)
	}
	return a
}

// counts is what Counts returns, as one value for cmp.Diff.
type counts struct{ Total, Used, Available uint64 }

// checkCounts fails the test unless a counts total usable addresses of which used are allocated.
func checkCounts(t testing.TB, a *Allocator, total, used uint64) {
	t.Helper()
	var got counts
	got.Total, got.Used, got.Available = a.Counts()
	if diff := cmp.Diff(counts{total, used, total - used}, got); diff != "" {
		t.Errorf("Counts() (-want +got):\n%s", diff)
	}
}

// usable lists, by brute force, the addresses of a small cidr that an Allocator with gateway
// hands out: all but the network address, the gateway and the IPv4 broadcast address.
func usable(cidr netip.Prefix, gateway netip.Addr) []netip.Addr {
	var out []netip.Addr
	for ip := cidr.Addr().Next(); cidr.Contains(ip); ip = ip.Next() {
		if ip == gateway || (ip.Is4() && !cidr.Contains(ip.Next())) {
			continue
		}
		out = append(out, ip)
	}
	return out
}

// checkErr fails the test unless err wraps want (or is nil when want is), and mentions the
// strings in wantMsg.
func checkErr(t testing.TB, err, want error, wantMsg ...string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("error %v, want one that wraps %q", err, want)
		return
	}
	for _, s := range wantMsg {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestNew(t *testing.T) {
	cases := []struct {
		name    string
		cidr    netip.Prefix
		gateway netip.Addr
		// wantTotal is the number of usable addresses, when New succeeds.
		wantTotal uint64
		// wantIs is the error the failure wraps, if any; wantMsg what its message says.
		wantIs  error
		wantMsg string
	}{
		{name: "v4 /24", cidr: pfx("10.0.0.0/24"), gateway: addr("10.0.0.1"), wantTotal: 253},
		{name: "v4 /24 gateway last", cidr: pfx("10.0.0.0/24"), gateway: addr("10.0.0.254"), wantTotal: 253},
		{name: "v4 /30", cidr: pfx("10.0.0.4/30"), gateway: addr("10.0.0.5"), wantTotal: 1},
		{name: "v4 /8", cidr: pfx("10.0.0.0/8"), gateway: addr("10.0.0.1"), wantTotal: 1<<24 - 3},
		{name: "v4 /0", cidr: pfx("0.0.0.0/0"), gateway: addr("0.0.0.1"), wantTotal: 1<<32 - 3},
		{name: "v4 /31", cidr: pfx("10.0.0.4/31"), gateway: addr("10.0.0.5"), wantMsg: "too small"},
		{name: "v4 /32", cidr: pfx("10.0.0.4/32"), gateway: addr("10.0.0.4"), wantMsg: "too small"},
		{name: "v4 host bits", cidr: pfx("10.0.0.5/24"), gateway: addr("10.0.0.1"), wantMsg: "host bits set (its network is 10.0.0.0/24)"},
		{name: "v4 gateway outside", cidr: pfx("10.0.0.0/24"), gateway: addr("10.0.1.1"), wantIs: ErrOutside, wantMsg: "gateway 10.0.1.1"},
		{name: "v4 gateway IPv6", cidr: pfx("10.0.0.0/24"), gateway: addr("fd00::1"), wantIs: ErrOutside, wantMsg: "family"},
		{name: "v4 gateway IPv4-mapped", cidr: pfx("10.0.0.0/24"), gateway: addr("::ffff:10.0.0.1"), wantIs: ErrOutside, wantMsg: "family"},
		{name: "v4 gateway network address", cidr: pfx("10.0.0.0/24"), gateway: addr("10.0.0.0"), wantIs: ErrExcluded, wantMsg: "network address"},
		{name: "v4 gateway broadcast", cidr: pfx("10.0.0.0/24"), gateway: addr("10.0.0.255"), wantIs: ErrExcluded, wantMsg: "broadcast"},
		{name: "v4 /30 gateway broadcast", cidr: pfx("10.0.0.4/30"), gateway: addr("10.0.0.7"), wantIs: ErrExcluded, wantMsg: "broadcast"},
		{name: "invalid CIDR", gateway: addr("10.0.0.1"), wantMsg: "invalid CIDR"},
		{name: "invalid gateway", cidr: pfx("10.0.0.0/24"), wantMsg: "invalid gateway"},
		{name: "v6 /64", cidr: pfx("fd00::/64"), gateway: addr("fd00::1"), wantTotal: 1<<32 - 2},
		{name: "v6 /64 far gateway", cidr: pfx("fd00::/64"), gateway: addr("fd00::1:0:7"), wantTotal: 1<<32 - 2},
		{name: "v6 /64 far gateway with the network's MAC", cidr: pfx("fd00::/64"), gateway: addr("fd00::1:0:0"), wantTotal: 1<<32 - 1},
		{name: "v6 /96", cidr: pfx("fd00::/96"), gateway: addr("fd00::1"), wantTotal: 1<<32 - 2},
		{name: "v6 /120", cidr: pfx("fd00::100/120"), gateway: addr("fd00::101"), wantTotal: 254},
		{name: "v6 /126", cidr: pfx("fd00::4/126"), gateway: addr("fd00::5"), wantTotal: 2},
		{name: "v6 /126 gateway last", cidr: pfx("fd00::4/126"), gateway: addr("fd00::7"), wantTotal: 2},
		{name: "v6 /127", cidr: pfx("fd00::4/127"), gateway: addr("fd00::5"), wantMsg: "too small"},
		{name: "v6 /128", cidr: pfx("fd00::4/128"), gateway: addr("fd00::4"), wantMsg: "too small"},
		{name: "v6 host bits", cidr: pfx("fd00::1/64"), gateway: addr("fd00::2"), wantMsg: "host bits set (its network is fd00::/64)"},
		{name: "v6 gateway outside", cidr: pfx("fd00::/64"), gateway: addr("fd00:0:0:1::1"), wantIs: ErrOutside, wantMsg: "gateway fd00:0:0:1::1"},
		{name: "v6 gateway IPv4", cidr: pfx("fd00::/64"), gateway: addr("10.0.0.1"), wantIs: ErrOutside, wantMsg: "family"},
		{name: "v6 gateway with zone", cidr: pfx("fe80::/64"), gateway: addr("fe80::1%eth0"), wantIs: ErrOutside, wantMsg: "zone"},
		{name: "v6 gateway network address", cidr: pfx("fd00::/64"), gateway: addr("fd00::"), wantIs: ErrExcluded, wantMsg: "network address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.cidr, tc.gateway)
			if tc.wantMsg != "" || tc.wantIs != nil {
				if a != nil {
					t.Errorf("New returned an Allocator and the error %v", err)
				}
				if err == nil {
					t.Fatalf("New succeeded, want an error mentioning %q", tc.wantMsg)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %v, want one that wraps %q", err, tc.wantIs)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not mention %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if a.CIDR() != tc.cidr || a.Gateway() != tc.gateway {
				t.Errorf("CIDR(), Gateway() = %s, %s; want %s, %s", a.CIDR(), a.Gateway(), tc.cidr, tc.gateway)
			}
			checkCounts(t, a, tc.wantTotal, 0)
			if got := a.Used(); len(got) != 0 {
				t.Errorf("Used() of a new Allocator = %v", got)
			}
		})
	}
}

// TestAllocateAll allocates every address of small networks, checking that they come in order,
// that the excluded ones never come, and the counts at every step.
func TestAllocateAll(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
	}{
		{name: "v4 /29 gateway first", cidr: "10.0.0.8/29", gateway: "10.0.0.9"},
		{name: "v4 /29 gateway middle", cidr: "10.0.0.8/29", gateway: "10.0.0.12"},
		{name: "v4 /29 gateway last", cidr: "10.0.0.8/29", gateway: "10.0.0.14"},
		{name: "v4 /30", cidr: "192.168.0.0/30", gateway: "192.168.0.2"},
		{name: "v4 /24", cidr: "10.1.2.0/24", gateway: "10.1.2.1"},
		{name: "v6 /125 gateway first", cidr: "fd00::8/125", gateway: "fd00::9"},
		{name: "v6 /125 gateway last", cidr: "fd00::8/125", gateway: "fd00::f"},
		{name: "v6 /126", cidr: "fd00::ffff:fffc/126", gateway: "fd00::ffff:fffd"},
		{name: "v6 /120 across 32 bits", cidr: "fd00::1:0:0/120", gateway: "fd00::1:0:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, tc.cidr, tc.gateway)
			want := usable(a.CIDR(), a.Gateway())
			total := uint64(len(want))
			checkCounts(t, a, total, 0)
			var got []netip.Addr
			for i := range want {
				ip, err := a.Allocate()
				if err != nil {
					t.Fatalf("Allocate #%d: %v", i, err)
				}
				got = append(got, ip)
				checkCounts(t, a, total, uint64(i+1))
				if !a.Has(ip) {
					t.Errorf("Has(%s) = false after Allocate returned it", ip)
				}
			}
			if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
				t.Errorf("Allocate in turn (-want +got):\n%s", diff)
			}
			if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
				t.Errorf("Allocate of a full network: %v, want ErrFull", err)
			}
			checkCounts(t, a, total, total)
			if diff := cmp.Diff(want, a.Used(), cmpAddr); diff != "" {
				t.Errorf("Used() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
		// before are reserved first; ip is then reserved.
		before []string
		ip     netip.Addr
		// wantIs is the error the failure wraps, if any; wantMsg what its message says.
		wantIs  error
		wantMsg []string
	}{
		{name: "v4 free", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.7")},
		{name: "v4 free next to a reserved one", cidr: "10.0.0.0/24", gateway: "10.0.0.1", before: []string{"10.0.0.6", "10.0.0.8"}, ip: addr("10.0.0.7")},
		{name: "v4 last usable", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.254")},
		{name: "v4 in use", cidr: "10.0.0.0/24", gateway: "10.0.0.1", before: []string{"10.0.0.7"}, ip: addr("10.0.0.7"), wantIs: ErrInUse, wantMsg: []string{"10.0.0.7", "10.0.0.0/24"}},
		{name: "v4 outside", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.1.7"), wantIs: ErrOutside, wantMsg: []string{"10.0.1.7", "not inside"}},
		{name: "v4 outside below", cidr: "10.0.1.0/24", gateway: "10.0.1.1", ip: addr("10.0.0.255"), wantIs: ErrOutside},
		{name: "v4 IPv6 address", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("fd00::7"), wantIs: ErrOutside, wantMsg: []string{"family"}},
		{name: "v4 IPv4-mapped address", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("::ffff:10.0.0.7"), wantIs: ErrOutside, wantMsg: []string{"family"}},
		{name: "v4 zero address", cidr: "10.0.0.0/24", gateway: "10.0.0.1", wantIs: ErrOutside, wantMsg: []string{"not a valid address"}},
		{name: "v4 network address", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.0"), wantIs: ErrExcluded, wantMsg: []string{"network address"}},
		{name: "v4 gateway", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.1"), wantIs: ErrExcluded, wantMsg: []string{"gateway"}},
		{name: "v4 broadcast", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.255"), wantIs: ErrExcluded, wantMsg: []string{"broadcast"}},
		{name: "v6 free", cidr: "fd00::/120", gateway: "fd00::1", ip: addr("fd00::ff")},
		{name: "v6 in use", cidr: "fd00::/120", gateway: "fd00::1", before: []string{"fd00::ff"}, ip: addr("fd00::ff"), wantIs: ErrInUse},
		{name: "v6 outside", cidr: "fd00::/120", gateway: "fd00::1", ip: addr("fd00::100"), wantIs: ErrOutside},
		{name: "v6 IPv4 address", cidr: "fd00::/120", gateway: "fd00::1", ip: addr("10.0.0.7"), wantIs: ErrOutside, wantMsg: []string{"family"}},
		{name: "v6 zone", cidr: "fe80::/64", gateway: "fe80::1", ip: addr("fe80::7%eth0"), wantIs: ErrOutside, wantMsg: []string{"zone"}},
		{name: "v6 network address", cidr: "fd00::/120", gateway: "fd00::1", ip: addr("fd00::"), wantIs: ErrExcluded, wantMsg: []string{"network address"}},
		{name: "v6 gateway", cidr: "fd00::/120", gateway: "fd00::1", ip: addr("fd00::1"), wantIs: ErrExcluded, wantMsg: []string{"gateway"}},
		{name: "v6 near and far /64", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::5", "fd00::1:0:6"}, ip: addr("fd00::ffff:ffff:ffff:ffff")},
		{name: "v6 /64 far, near one in use", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::5"}, ip: addr("fd00::1:0:5"), wantIs: ErrMACInUse, wantMsg: []string{"0a:58:00:00:00:05", "fd00::5"}},
		{name: "v6 /64 near, far one in use", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::1:0:5"}, ip: addr("fd00::5"), wantIs: ErrMACInUse, wantMsg: []string{"fd00::1:0:5"}},
		{name: "v6 /64 far, another far one in use", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::1:0:5"}, ip: addr("fd00::2:0:5"), wantIs: ErrMACInUse, wantMsg: []string{"fd00::1:0:5"}},
		{name: "v6 /64 far in use", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::1:0:5"}, ip: addr("fd00::1:0:5"), wantIs: ErrInUse},
		{name: "v6 /64 far with the gateway's MAC", cidr: "fd00::/64", gateway: "fd00::1", ip: addr("fd00::1:0:1"), wantIs: ErrExcluded, wantMsg: []string{"MAC 0a:58:00:00:00:01", "gateway"}},
		{name: "v6 /64 far with the network's MAC", cidr: "fd00::/64", gateway: "fd00::1", ip: addr("fd00::1:0:0"), wantIs: ErrExcluded, wantMsg: []string{"network address"}},
		{name: "v6 /64 near with a far gateway's MAC", cidr: "fd00::/64", gateway: "fd00::1:0:7", ip: addr("fd00::7"), wantIs: ErrExcluded, wantMsg: []string{"gateway"}},
		{name: "v6 /64 far gateway", cidr: "fd00::/64", gateway: "fd00::1:0:7", ip: addr("fd00::1:0:7"), wantIs: ErrExcluded, wantMsg: []string{"gateway"}},
		{name: "v6 /95 far", cidr: "fd00::/95", gateway: "fd00::1", ip: addr("fd00::1:2:3")},
		{name: "v6 /95 far, near in use", cidr: "fd00::/95", gateway: "fd00::1", before: []string{"fd00::2:3"}, ip: addr("fd00::1:2:3"), wantIs: ErrMACInUse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, tc.cidr, tc.gateway)
			total, _, _ := a.Counts()
			for _, s := range tc.before {
				if err := a.Reserve(addr(s)); err != nil {
					t.Fatalf("Reserve(%s): %v", s, err)
				}
			}
			before := a.Used()
			err := a.Reserve(tc.ip)
			checkErr(t, err, tc.wantIs, tc.wantMsg...)
			want := before
			if tc.wantIs == nil {
				want = append(slices.Clone(before), tc.ip)
				slices.SortFunc(want, netip.Addr.Compare)
				if !a.Has(tc.ip) {
					t.Errorf("Has(%s) = false after Reserve", tc.ip)
				}
			} else if a.Has(tc.ip) != slices.Contains(before, tc.ip) {
				t.Errorf("Has(%s) = %t after a failed Reserve", tc.ip, a.Has(tc.ip))
			}
			if diff := cmp.Diff(want, a.Used(), cmpAddr); diff != "" {
				t.Errorf("Used() (-want +got):\n%s", diff)
			}
			checkCounts(t, a, total, uint64(len(want)))
		})
	}
}

func TestRelease(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
		// before are reserved first; ip is then released.
		before []string
		ip     netip.Addr
		// wantIs is the error the failure wraps, if any; wantMsg what its message says.
		wantIs  error
		wantMsg []string
	}{
		{name: "v4 allocated", cidr: "10.0.0.0/24", gateway: "10.0.0.1", before: []string{"10.0.0.6", "10.0.0.7", "10.0.0.8"}, ip: addr("10.0.0.7")},
		{name: "v4 not allocated", cidr: "10.0.0.0/24", gateway: "10.0.0.1", before: []string{"10.0.0.6", "10.0.0.8"}, ip: addr("10.0.0.7"), wantIs: ErrNotInUse, wantMsg: []string{"releasing 10.0.0.7 in 10.0.0.0/24"}},
		{name: "v4 outside", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.1.7"), wantIs: ErrOutside},
		{name: "v4 gateway", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.1"), wantIs: ErrExcluded},
		{name: "v4 broadcast", cidr: "10.0.0.0/24", gateway: "10.0.0.1", ip: addr("10.0.0.255"), wantIs: ErrExcluded},
		{name: "v6 allocated", cidr: "fd00::/120", gateway: "fd00::1", before: []string{"fd00::ff"}, ip: addr("fd00::ff")},
		{name: "v6 not allocated", cidr: "fd00::/120", gateway: "fd00::1", ip: addr("fd00::ff"), wantIs: ErrNotInUse},
		{name: "v6 /64 far allocated", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::1:0:5", "fd00::6"}, ip: addr("fd00::1:0:5")},
		{name: "v6 /64 far, near one allocated", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::5"}, ip: addr("fd00::1:0:5"), wantIs: ErrNotInUse},
		{name: "v6 /64 near, far one allocated", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::1:0:5"}, ip: addr("fd00::5"), wantIs: ErrNotInUse},
		{name: "v6 /64 far, another far one allocated", cidr: "fd00::/64", gateway: "fd00::1", before: []string{"fd00::1:0:5"}, ip: addr("fd00::2:0:5"), wantIs: ErrNotInUse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, tc.cidr, tc.gateway)
			total, _, _ := a.Counts()
			for _, s := range tc.before {
				if err := a.Reserve(addr(s)); err != nil {
					t.Fatalf("Reserve(%s): %v", s, err)
				}
			}
			before := a.Used()
			err := a.Release(tc.ip)
			checkErr(t, err, tc.wantIs, tc.wantMsg...)
			want := before
			if tc.wantIs == nil {
				want = slices.DeleteFunc(slices.Clone(before), func(ip netip.Addr) bool { return ip == tc.ip })
			}
			if a.Has(tc.ip) {
				t.Errorf("Has(%s) = true after Release", tc.ip)
			}
			if diff := cmp.Diff(want, a.Used(), cmpAddr); diff != "" {
				t.Errorf("Used() (-want +got):\n%s", diff)
			}
			checkCounts(t, a, total, uint64(len(want)))
		})
	}
}

// step is one call on an Allocator and what it must return.
type step struct {
	// op is "allocate", "reserve" or "release"; ip is the address reserved or released, or the
	// one Allocate must return.
	op string
	ip string
	// wantIs is the error the call must fail with, if any.
	wantIs error
	// used is the number of addresses allocated after the call.
	used uint64
}

// runSteps makes the calls of steps on a, checking each outcome and the counts after it.
func runSteps(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	total, _, _ := a.Counts()
	for i, s := range steps {
		var err error
		switch s.op {
		case "allocate":
			var got netip.Addr
			got, err = a.Allocate()
			if s.wantIs == nil && got != addr(s.ip) {
				t.Errorf("step %d: Allocate() = %s, want %s", i, got, s.ip)
			}
		case "reserve":
			err = a.Reserve(addr(s.ip))
		case "release":
			err = a.Release(addr(s.ip))
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		if (err == nil) != (s.wantIs == nil) || (err != nil && !errors.Is(err, s.wantIs)) {
			t.Errorf("step %d: %s %s: error %v, want %v", i, s.op, s.ip, err, s.wantIs)
		}
		checkCounts(t, a, total, s.used)
	}
}

// TestSequences runs sequences of calls: the order of Allocate (the first free address after the
// last one handed out, wrapping), exhaustion, release and re-reserve.
func TestSequences(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
		steps               []step
	}{
		{
			name: "v4 next after last, wrapping", cidr: "10.0.0.0/29", gateway: "10.0.0.1",
			steps: []step{
				{op: "allocate", ip: "10.0.0.2", used: 1},
				{op: "allocate", ip: "10.0.0.3", used: 2},
				{op: "allocate", ip: "10.0.0.4", used: 3},
				{op: "release", ip: "10.0.0.3", used: 2},
				// Not the address just released.
				{op: "allocate", ip: "10.0.0.5", used: 3},
				{op: "allocate", ip: "10.0.0.6", used: 4},
				// Past the broadcast address, around to the start.
				{op: "allocate", ip: "10.0.0.3", used: 5},
				{op: "allocate", wantIs: ErrFull, used: 5},
				{op: "release", ip: "10.0.0.5", used: 4},
				{op: "release", ip: "10.0.0.2", used: 3},
				{op: "allocate", ip: "10.0.0.5", used: 4},
				{op: "allocate", ip: "10.0.0.2", used: 5},
				{op: "allocate", wantIs: ErrFull, used: 5},
			},
		},
		{
			name: "v4 reserve does not move the cursor", cidr: "10.0.0.0/29", gateway: "10.0.0.6",
			steps: []step{
				{op: "reserve", ip: "10.0.0.4", used: 1},
				{op: "allocate", ip: "10.0.0.1", used: 2},
				{op: "allocate", ip: "10.0.0.2", used: 3},
				{op: "allocate", ip: "10.0.0.3", used: 4},
				{op: "allocate", ip: "10.0.0.5", used: 5},
				{op: "allocate", wantIs: ErrFull, used: 5},
			},
		},
		{
			name: "v4 exhaustion, one released comes back", cidr: "10.0.0.4/30", gateway: "10.0.0.6",
			steps: []step{
				{op: "allocate", ip: "10.0.0.5", used: 1},
				{op: "allocate", wantIs: ErrFull, used: 1},
				{op: "reserve", ip: "10.0.0.5", wantIs: ErrInUse, used: 1},
				{op: "release", ip: "10.0.0.5", used: 0},
				{op: "release", ip: "10.0.0.5", wantIs: ErrNotInUse, used: 0},
				{op: "allocate", ip: "10.0.0.5", used: 1},
				{op: "allocate", wantIs: ErrFull, used: 1},
			},
		},
		{
			name: "v4 release and re-reserve", cidr: "10.0.0.0/24", gateway: "10.0.0.1",
			steps: []step{
				{op: "reserve", ip: "10.0.0.100", used: 1},
				{op: "release", ip: "10.0.0.100", used: 0},
				{op: "reserve", ip: "10.0.0.100", used: 1},
				{op: "reserve", ip: "10.0.0.100", wantIs: ErrInUse, used: 1},
				{op: "release", ip: "10.0.0.100", used: 0},
				{op: "release", ip: "10.0.0.100", wantIs: ErrNotInUse, used: 0},
			},
		},
		{
			name: "v6 next after last, wrapping", cidr: "fd00::/126", gateway: "fd00::3",
			steps: []step{
				{op: "allocate", ip: "fd00::1", used: 1},
				{op: "allocate", ip: "fd00::2", used: 2},
				{op: "allocate", wantIs: ErrFull, used: 2},
				{op: "release", ip: "fd00::1", used: 1},
				{op: "allocate", ip: "fd00::1", used: 2},
				{op: "release", ip: "fd00::2", used: 1},
				{op: "reserve", ip: "fd00::2", used: 2},
				{op: "reserve", ip: "fd00::3", wantIs: ErrExcluded, used: 2},
			},
		},
		{
			name: "v6 /64 far reservations", cidr: "fd00::/64", gateway: "fd00::1",
			steps: []step{
				{op: "reserve", ip: "fd00::1:0:3", used: 1},
				{op: "reserve", ip: "fd00::abcd:0:0:4", used: 2},
				{op: "reserve", ip: "fd00::3", wantIs: ErrMACInUse, used: 2},
				{op: "reserve", ip: "fd00::2:0:4", wantIs: ErrMACInUse, used: 2},
				{op: "reserve", ip: "fd00::1:0:1", wantIs: ErrExcluded, used: 2},
				// Allocate skips the keys the far addresses hold.
				{op: "allocate", ip: "fd00::2", used: 3},
				{op: "allocate", ip: "fd00::5", used: 4},
				{op: "release", ip: "fd00::1:0:3", used: 3},
				{op: "reserve", ip: "fd00::3", used: 4},
				{op: "release", ip: "fd00::abcd:0:0:4", used: 3},
				{op: "reserve", ip: "fd00::2:0:4", used: 4},
				{op: "allocate", ip: "fd00::6", used: 5},
			},
		},
		{
			name: "v6 /64 far gateway", cidr: "fd00::/64", gateway: "fd00::1:0:3",
			steps: []step{
				{op: "allocate", ip: "fd00::1", used: 1},
				{op: "allocate", ip: "fd00::2", used: 2},
				// fd00::3 has the gateway's MAC.
				{op: "allocate", ip: "fd00::4", used: 3},
				{op: "reserve", ip: "fd00::3", wantIs: ErrExcluded, used: 3},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, newAllocator(t, tc.cidr, tc.gateway), tc.steps)
		})
	}
}

// TestExhaustion fills networks with Allocate, then releases one address at a time: Allocate
// returns exactly that one and then ErrFull again.
func TestExhaustion(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
	}{
		{name: "v4 /26", cidr: "10.0.0.64/26", gateway: "10.0.0.65"},
		{name: "v4 /22", cidr: "10.0.4.0/22", gateway: "10.0.7.254"},
		{name: "v6 /122", cidr: "fd00::40/122", gateway: "fd00::7f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, tc.cidr, tc.gateway)
			total, _, _ := a.Counts()
			for i := range total {
				if _, err := a.Allocate(); err != nil {
					t.Fatalf("Allocate #%d of %d: %v", i, total, err)
				}
			}
			if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
				t.Fatalf("Allocate of a full network: %v, want ErrFull", err)
			}
			checkCounts(t, a, total, total)
			used := a.Used()
			// Every seventh address, so that the one released is not always next to the cursor.
			for i := 0; i < len(used); i += 7 {
				ip := used[i]
				if err := a.Release(ip); err != nil {
					t.Fatalf("Release(%s): %v", ip, err)
				}
				checkCounts(t, a, total, total-1)
				got, err := a.Allocate()
				if err != nil || got != ip {
					t.Fatalf("Allocate after releasing %s = %s, %v", ip, got, err)
				}
				if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
					t.Fatalf("Allocate of a full network: %v, want ErrFull", err)
				}
				checkCounts(t, a, total, total)
			}
		})
	}
}

// TestRebuild reserves the addresses of an existing state, then allocates the rest: none of those
// reserved comes back.
func TestRebuild(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
		existing            []netip.Addr
	}{
		{name: "v4 /27", cidr: "10.0.0.32/27", gateway: "10.0.0.33", existing: addrs("10.0.0.62", "10.0.0.34", "10.0.0.40", "10.0.0.41", "10.0.0.35", "10.0.0.50")},
		{name: "v6 /123", cidr: "fd00::20/123", gateway: "fd00::3f", existing: addrs("fd00::21", "fd00::3e", "fd00::30", "fd00::2f", "fd00::31")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, tc.cidr, tc.gateway)
			total, _, _ := a.Counts()
			for i, ip := range tc.existing {
				if err := a.Reserve(ip); err != nil {
					t.Fatalf("Reserve(%s): %v", ip, err)
				}
				checkCounts(t, a, total, uint64(i+1))
			}
			sorted := slices.SortedFunc(slices.Values(tc.existing), netip.Addr.Compare)
			if diff := cmp.Diff(sorted, a.Used(), cmpAddr); diff != "" {
				t.Errorf("Used() after the rebuild (-want +got):\n%s", diff)
			}
			got := slices.Clone(tc.existing)
			for {
				ip, err := a.Allocate()
				if errors.Is(err, ErrFull) {
					break
				}
				if err != nil {
					t.Fatalf("Allocate: %v", err)
				}
				if slices.Contains(tc.existing, ip) {
					t.Errorf("Allocate returned %s, which was reserved", ip)
				}
				got = append(got, ip)
				checkCounts(t, a, total, uint64(len(got)))
			}
			slices.SortFunc(got, netip.Addr.Compare)
			if diff := cmp.Diff(usable(a.CIDR(), a.Gateway()), got, cmpAddr); diff != "" {
				t.Errorf("addresses reserved and allocated (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMACFor(t *testing.T) {
	cases := []struct {
		name string
		ip   netip.Addr
		want net.HardwareAddr
	}{
		{name: "v4", ip: addr("10.244.1.5"), want: net.HardwareAddr{0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05}},
		{name: "v4 high", ip: addr("255.254.253.252"), want: net.HardwareAddr{0x0a, 0x58, 0xff, 0xfe, 0xfd, 0xfc}},
		{name: "v6", ip: addr("fd00:1:2:3:4:5:a0b:c0d"), want: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x0b, 0x0c, 0x0d}},
		{name: "v6 far shares the near one's", ip: addr("fd00::1:0:a0b:c0d"), want: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x0b, 0x0c, 0x0d}},
		{name: "v6 short", ip: addr("fd00::5"), want: net.HardwareAddr{0x0a, 0x58, 0, 0, 0, 0x05}},
		{name: "IPv4-mapped", ip: addr("::ffff:10.244.1.5"), want: net.HardwareAddr{0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05}},
		{name: "zero Addr", ip: netip.Addr{}, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, MACFor(tc.ip)); diff != "" {
				t.Errorf("MACFor(%s) (-want +got):\n%s", tc.ip, diff)
			}
		})
	}
	if got, want := MACFor(addr("10.244.1.5")).String(), "0a:58:0a:f4:01:05"; got != want {
		t.Errorf("MACFor(10.244.1.5).String() = %s, want %s", got, want)
	}
}

// TestLargeNetworks checks that the large networks cost no memory or time in their size: a /8
// and an IPv6 /64 start as at most three free intervals, and reserving the last address of a /0
// needs no scan.
func TestLargeNetworks(t *testing.T) {
	cases := []struct {
		name, cidr, gateway string
		// last is the highest usable address (of the first 2^32 for IPv6).
		last string
	}{
		{name: "v4 /8", cidr: "10.0.0.0/8", gateway: "10.0.0.1", last: "10.255.255.254"},
		{name: "v4 /0", cidr: "0.0.0.0/0", gateway: "10.0.0.1", last: "255.255.255.254"},
		{name: "v6 /64", cidr: "fd00::/64", gateway: "fd00::1", last: "fd00::ffff:ffff"},
		{name: "v6 /0", cidr: "::/0", gateway: "::1", last: "::ffff:ffff"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAllocator(t, tc.cidr, tc.gateway)
			if n := a.free.Len(); n > 3 {
				t.Errorf("a new Allocator of %s has %d free intervals", tc.cidr, n)
			}
			total, _, _ := a.Counts()
			if err := a.Reserve(addr(tc.last)); err != nil {
				t.Fatalf("Reserve(%s): %v", tc.last, err)
			}
			// Allocate wraps from the last key around to the first.
			a.next = uint64(a.key(addr(tc.last)))
			got, err := a.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			if want := a.CIDR().Addr().Next(); got != want && got != want.Next() {
				t.Errorf("Allocate after the last address = %s, want the first usable one", got)
			}
			checkCounts(t, a, total, 2)
		})
	}
}

// TestTotalMatchesCounts: Total says what an Allocator's Counts say, without building one.
func TestTotalMatchesCounts(t *testing.T) {
	for _, tc := range []struct{ cidr, gateway string }{
		{"10.0.0.0/30", "10.0.0.1"},
		{"10.0.0.0/24", "10.0.0.1"},
		{"10.0.0.0/8", "10.0.0.1"},
		{"fd00::/126", "fd00::1"},
		{"fd00::/120", "fd00::1"},
		{"fd00::/96", "fd00::1"},
		{"fd00::/64", "fd00::1"},
		{"fd00::/64", "fd00::1:0:0:0"}, // a gateway beyond the first 2^32, with the network address's key
	} {
		t.Run(tc.cidr+" "+tc.gateway, func(t *testing.T) {
			cidr, gw := netip.MustParsePrefix(tc.cidr), netip.MustParseAddr(tc.gateway)
			a, err := New(cidr, gw)
			if err != nil {
				t.Fatal(err)
			}
			total, _, _ := a.Counts()
			if got := Total(cidr, gw); got != total {
				t.Errorf("Total = %d, Counts says %d", got, total)
			}
		})
	}
}
