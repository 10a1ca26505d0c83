package network

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// BenchmarkConflictCheck measures the conflict check of one sync (programmedOverlapping) among
// 5,000 Networks: all in one namespace or ten in each of 500, with realistic mixed prefixes (some
// overlap) or disjoint ones; then the two costly shapes, 5,000 identical cidrs in one namespace,
// and one old /8 holding 4,999 /24s. Each iteration checks the next Network of the set, in a
// random order; ns/op is the cost of one check, %blocked the share of the set in CIDRConflict.
func BenchmarkConflictCheck(b *testing.B) {
	const total = 5000
	v4, v6 := netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/48")
	cases := []struct {
		name       string
		namespaces int
		// prefix returns the prefix of the i-th Network of its namespace.
		prefix func(rng *rand.Rand, i int) netip.Prefix
	}{
		{"mixed/1-namespace", 1, mixedPrefix(v4, v6)},
		// Every namespace uses the same smaller ranges, as separate routing domains allow.
		{"mixed/500-namespaces", 500, mixedPrefix(netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("fd00::/56"))},
		{"disjoint/1-namespace", 1, disjointPrefix},
		{"disjoint/500-namespaces", 500, disjointPrefix},
		{"identical/1-namespace", 1, func(*rand.Rand, int) netip.Prefix { return netip.MustParsePrefix("10.0.0.0/24") }},
		{"nested/1-namespace", 1, func(rng *rand.Rand, i int) netip.Prefix {
			if i == 0 {
				return v4
			}
			return disjointPrefix(rng, i)
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers())
			perNamespace := total / tc.namespaces
			type check struct {
				n *samplecrdv1.Network
				p netip.Prefix
			}
			var checks []check
			for i := range total {
				p := tc.prefix(rng, i%perNamespace)
				// Created over an hour; the first of each namespace before the others.
				created := 1 + rng.IntN(3600)
				if i%perNamespace == 0 {
					created = 0
				}
				n := network(fmt.Sprintf("net-%04d", i), p.String(), p.Addr().Next().String(), createdAt(created))
				n.Namespace = fmt.Sprintf("ns-%03d", i/perNamespace)
				if err := indexer.Add(n); err != nil {
					b.Fatal(err)
				}
				checks = append(checks, check{n, p})
			}
			rng.Shuffle(len(checks), func(i, j int) { checks[i], checks[j] = checks[j], checks[i] })
			blocked := 0
			for _, c := range checks {
				if w, err := programmedOverlapping(indexer, c.n, c.p); err != nil {
					b.Fatal(err)
				} else if w != nil {
					blocked++
				}
			}
			for i := 0; b.Loop(); i++ {
				c := checks[i%len(checks)]
				if _, err := programmedOverlapping(indexer, c.n, c.p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(blocked)/total*100, "%blocked")
		})
	}
}

// mixedPrefix returns the prefixes of a namespace that uses IPv4 and IPv6 (15 %): mostly /24 (/64),
// some wider, a few much wider, placed at random in v4 or v6, so that some overlap.
func mixedPrefix(v4, v6 netip.Prefix) func(rng *rand.Rand, _ int) netip.Prefix {
	return func(rng *rand.Rand, _ int) netip.Prefix {
		base, lengths := v4, []int{24, 22, 20, 16}
		if rng.IntN(100) < 15 {
			base, lengths = v6, []int{64, 60, 56, 52}
		}
		var bits int
		switch r := rng.IntN(100); {
		case r < 85:
			bits = lengths[0]
		case r < 95:
			bits = lengths[1]
		case r < 99:
			bits = lengths[2]
		default:
			bits = lengths[3]
		}
		bits = max(bits, base.Bits())
		a := base.Addr().AsSlice()
		for i := base.Bits() / 8; i < len(a); i++ {
			a[i] = byte(rng.IntN(256))
		}
		addr, _ := netip.AddrFromSlice(a)
		return netip.PrefixFrom(addr, bits).Masked()
	}
}

// disjointPrefix returns the i-th /24 of 10.0.0.0/8: no two of a namespace overlap, and every
// namespace uses the same ones.
func disjointPrefix(_ *rand.Rand, i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 256), byte(i % 256), 0}), 24)
}
