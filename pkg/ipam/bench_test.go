package ipam

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// BenchmarkAllocate measures one Release and one Allocate in a steady state: a network full (or
// holding held addresses) but for free ones scattered at random, so that the free intervals are
// fragmented as pod churn leaves them. Each iteration releases an allocated address taken at random
// and allocates one in its place; the intervals metric is the number of free intervals at the end.
func BenchmarkAllocate(b *testing.B) {
	cases := []struct {
		name, cidr, gateway string
		// fill allocates every address first (a /22, a /8); otherwise held are allocated.
		fill bool
		held int
		// free is how many of the addresses are released before the measurement.
		free int
	}{
		{name: "v4 /22 full", cidr: "10.0.0.0/22", gateway: "10.0.0.1", fill: true, free: 64},
		{name: "v4 /8 nearly full", cidr: "10.0.0.0/8", gateway: "10.0.0.1", fill: true, free: 4096},
		{name: "v6 /64", cidr: "fd00::/64", gateway: "fd00::1", held: 1 << 16, free: 4096},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			a := newAllocator(b, tc.cidr, tc.gateway)
			rng := rand.New(rand.NewPCG(1, 2))
			// known is a sample of the allocated addresses, the ones released come from it.
			const sample = 1 << 16
			known := make([]netip.Addr, 0, sample)
			for i := 0; tc.fill || i < tc.held; i++ {
				ip, err := a.Allocate()
				if errors.Is(err, ErrFull) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				// Reservoir sampling, so that the sample is spread over the whole network.
				if len(known) < sample {
					known = append(known, ip)
				} else if j := rng.IntN(i + 1); j < sample {
					known[j] = ip
				}
			}
			for _, i := range rng.Perm(len(known))[:tc.free] {
				if err := a.Release(known[i]); err != nil {
					b.Fatal(err)
				}
				known[i] = netip.Addr{}
			}
			for b.Loop() {
				// A held one, so that free addresses stay tc.free.
				i := rng.IntN(len(known))
				for !known[i].IsValid() {
					i = rng.IntN(len(known))
				}
				if err := a.Release(known[i]); err != nil {
					b.Fatal(err)
				}
				ip, err := a.Allocate()
				if err != nil {
					b.Fatal(err)
				}
				known[i] = ip
			}
			b.ReportMetric(float64(a.free.Len()), "intervals")
		})
	}
}
