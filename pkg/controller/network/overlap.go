package network

import (
	"net/netip"
	"strings"

	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// Overlap detection. All Networks share one router, so Networks whose CIDRs overlap cannot all be
// programmed: the oldest wins. Two prefixes overlap exactly when one contains the other, so the
// Networks overlapping a prefix P are its ancestors (prefixes containing P, P included) and its
// descendants (prefixes inside P). Two informer indexes find both without scanning every Network:
//
//   - cidrIndex holds each Network under its own (masked) prefix: the ancestors of P are found by
//     looking up P masked to every length from 0 to P's, at most 33 (IPv4) or 129 (IPv6) lookups;
//   - cidrLevelIndex holds each Network under its prefix masked to every multiple of levelStep up to
//     its own length: the descendants of P all sit under P masked to the largest such level not
//     longer than P, a bucket at most 2^(levelStep-1) times wider than P, which is then filtered.
//
// A sync thus costs O(bits + overlapping Networks), not O(all Networks), and the index costs at
// most 9 (IPv4) or 33 (IPv6) entries per Network.
const (
	cidrIndex      = "spec.cidr"
	cidrLevelIndex = "spec.cidr.level"
	levelStep      = 4
)

// networkPrefix returns the Network's masked prefix, and false when its cidr does not parse (the
// API server's validation makes that rare; such a Network is reported InvalidSpec and overlaps none).
func networkPrefix(n *samplecrdv1.Network) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(n.Spec.Cidr)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// prefixAt returns p's address masked to length bits.
func prefixAt(p netip.Prefix, bits int) netip.Prefix {
	return netip.PrefixFrom(p.Addr(), bits).Masked()
}

func levelFloor(bits int) int { return bits / levelStep * levelStep }

// indexers are the informer indexes the overlap detection uses.
func indexers() cache.Indexers {
	return cache.Indexers{
		cidrIndex: func(obj any) ([]string, error) {
			n, ok := obj.(*samplecrdv1.Network)
			if !ok {
				return nil, nil
			}
			p, ok := networkPrefix(n)
			if !ok {
				return nil, nil
			}
			return []string{p.String()}, nil
		},
		cidrLevelIndex: func(obj any) ([]string, error) {
			n, ok := obj.(*samplecrdv1.Network)
			if !ok {
				return nil, nil
			}
			p, ok := networkPrefix(n)
			if !ok {
				return nil, nil
			}
			keys := make([]string, 0, p.Bits()/levelStep+1)
			for l := 0; l <= p.Bits(); l += levelStep {
				keys = append(keys, prefixAt(p, l).String())
			}
			return keys, nil
		},
	}
}

// overlapping returns the Networks in the indexer whose prefixes overlap p, excluding the Network
// with the UID self.
func overlapping(indexer cache.Indexer, p netip.Prefix, self *samplecrdv1.Network) ([]*samplecrdv1.Network, error) {
	var out []*samplecrdv1.Network
	add := func(objs []any, keep func(netip.Prefix) bool) {
		for _, obj := range objs {
			n, ok := obj.(*samplecrdv1.Network)
			if !ok || (self != nil && n.UID == self.UID) {
				continue
			}
			if q, ok := networkPrefix(n); ok && keep(q) {
				out = append(out, n)
			}
		}
	}
	for l := 0; l <= p.Bits(); l++ {
		objs, err := indexer.ByIndex(cidrIndex, prefixAt(p, l).String())
		if err != nil {
			return nil, err
		}
		add(objs, func(netip.Prefix) bool { return true })
	}
	objs, err := indexer.ByIndex(cidrLevelIndex, prefixAt(p, levelFloor(p.Bits())).String())
	if err != nil {
		return nil, err
	}
	// Equal prefixes were found above; keep strict descendants only.
	add(objs, func(q netip.Prefix) bool { return q.Bits() > p.Bits() && p.Contains(q.Addr()) })
	return out, nil
}

// older reports whether a takes precedence over b: created earlier, then by namespace/name (the
// creation timestamp has a resolution of one second).
func older(a, b *samplecrdv1.Network) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return strings.Compare(a.Name, b.Name) < 0
}

// oldest returns the oldest of the Networks, or nil when there are none.
func oldest(networks []*samplecrdv1.Network) *samplecrdv1.Network {
	var winner *samplecrdv1.Network
	for _, n := range networks {
		if winner == nil || older(n, winner) {
			winner = n
		}
	}
	return winner
}
