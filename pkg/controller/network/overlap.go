package network

import (
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// CIDR conflicts. Each namespace is a routing domain of its own: Networks in different namespaces
// never conflict, whatever their CIDRs. Within a namespace, Networks whose CIDRs overlap cannot all
// be programmed, and which are is decided greedily by age: take the namespace's valid Networks
// (those desiredNetwork accepts) oldest first, and program each one that overlaps no older
// programmed one. A Network blocked by an older one that is itself blocked is therefore programmed:
// conflicts do not cascade.
//
// Two prefixes overlap exactly when one contains the other, so the Networks overlapping a prefix P
// are its ancestors (prefixes containing P, P included) and its descendants (prefixes inside P).
// Two informer indexes, keyed by namespace and prefix and holding valid Networks only, find both
// without scanning every Network:
//
//   - cidrIndex holds each Network under its own prefix: the ancestors of P are found by looking up
//     P masked to every length from 0 to P's, at most 33 (IPv4) or 129 (IPv6) lookups;
//   - cidrLevelIndex holds each Network under its prefix masked to every multiple of levelStep
//     shorter than its own length: the descendants of P all sit under P masked to the largest such
//     level not longer than P, a bucket at most 2^(levelStep-1) times wider than P, which is then
//     filtered. Networks with P itself are in that bucket only when P's length is not a multiple of
//     levelStep, so many identical /24s, say, do not weigh on the search for descendants.
//
// The index costs at most 9 (IPv4) or 33 (IPv6) entries per Network.
const (
	cidrIndex      = "spec.cidr"
	cidrLevelIndex = "spec.cidr.level"
	levelStep      = 4
)

// conflictPrefix returns the prefix with which n takes part in conflicts, and false when it takes no
// part: a Network whose spec the controller cannot program blocks nobody.
func conflictPrefix(n *samplecrdv1.Network) (netip.Prefix, bool) {
	d, err := desiredNetwork(n)
	if err != nil {
		return netip.Prefix{}, false
	}
	return d.CIDR, true
}

// indexedPrefix returns the prefix of a Network found through the indexes. The indexes hold only
// Networks whose conflictPrefix exists, and cached objects are never mutated, so this is that prefix,
// for the price of parsing the cidr alone.
func indexedPrefix(n *samplecrdv1.Network) netip.Prefix {
	p, _ := netip.ParsePrefix(n.Spec.Cidr)
	return p
}

// prefixAt returns p's address masked to length bits.
func prefixAt(p netip.Prefix, bits int) netip.Prefix {
	return netip.PrefixFrom(p.Addr(), bits).Masked()
}

func levelFloor(bits int) int { return bits / levelStep * levelStep }

// indexKey is the key of prefix p in namespace in both indexes: the namespace, a slash (which a
// namespace cannot contain), then the prefix in its binary form, which is cheaper to build than its
// text and as unique.
func indexKey(namespace string, p netip.Prefix) string {
	var buf [64 + 1 + 17]byte // a namespace is a DNS label of at most 63 characters
	key, _ := p.AppendBinary(append(append(buf[:0], namespace...), '/'))
	return string(key)
}

// indexers are the informer indexes the conflict detection uses.
func indexers() cache.Indexers {
	return cache.Indexers{
		cidrIndex: func(obj any) ([]string, error) {
			n, ok := obj.(*samplecrdv1.Network)
			if !ok {
				return nil, nil
			}
			p, ok := conflictPrefix(n)
			if !ok {
				return nil, nil
			}
			return []string{indexKey(n.Namespace, p)}, nil
		},
		cidrLevelIndex: func(obj any) ([]string, error) {
			n, ok := obj.(*samplecrdv1.Network)
			if !ok {
				return nil, nil
			}
			p, ok := conflictPrefix(n)
			if !ok {
				return nil, nil
			}
			keys := make([]string, 0, p.Bits()/levelStep+1)
			for l := 0; l < p.Bits(); l += levelStep {
				keys = append(keys, indexKey(n.Namespace, prefixAt(p, l)))
			}
			return keys, nil
		},
	}
}

// overlapping returns the valid Networks of namespace in the indexer whose prefixes overlap p.
func overlapping(indexer cache.Indexer, namespace string, p netip.Prefix) ([]*samplecrdv1.Network, error) {
	var out []*samplecrdv1.Network
	for l := 0; l <= p.Bits(); l++ {
		objs, err := indexer.ByIndex(cidrIndex, indexKey(namespace, prefixAt(p, l)))
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			if n, ok := obj.(*samplecrdv1.Network); ok {
				out = append(out, n)
			}
		}
	}
	objs, err := indexer.ByIndex(cidrLevelIndex, indexKey(namespace, prefixAt(p, levelFloor(p.Bits()))))
	if err != nil {
		return nil, err
	}
	for _, obj := range objs {
		// Equal prefixes were found above; keep strict descendants only.
		if n, ok := obj.(*samplecrdv1.Network); ok {
			if q := indexedPrefix(n); q.Bits() > p.Bits() && p.Contains(q.Addr()) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// older reports whether a takes precedence over b: created earlier, then by namespace/name (the
// creation timestamp has a resolution of one second). Only Networks of one namespace are ever
// compared for conflicts; the namespace keeps the order total all the same.
func older(a, b *samplecrdv1.Network) bool {
	return compareAge(a, b) < 0
}

// compareAge orders Networks oldest first, as older does.
func compareAge(a, b *samplecrdv1.Network) int {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		if a.CreationTimestamp.Before(&b.CreationTimestamp) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// programmedOverlapping returns the Network that keeps n from being programmed: the oldest
// programmed Network of n's namespace that is older than n and overlaps p, n's prefix. It returns
// nil when there is none, and n is to be programmed.
//
// Whether a Network is programmed is decided from the informer cache alone, level-based, by the
// greedy rule: it is valid (every Network in the indexes is) and no older overlapping Network of its
// namespace is programmed. That is a recursion over older overlapping Networks, which always
// reaches strictly older ones and so ends; each answer is memoised for the rest of the check, and
// each Network's older overlapping Networks are tried oldest first, stopping at the first programmed
// one. A deleting Network counts as any other: its backend objects stay until its finalizer goes.
func programmedOverlapping(indexer cache.Indexer, n *samplecrdv1.Network, p netip.Prefix) (*samplecrdv1.Network, error) {
	cc := conflictCheck{indexer: indexer, namespace: n.Namespace}
	return cc.blocker(n, p)
}

// conflictCheck answers, for one check, which Networks of one namespace are programmed.
type conflictCheck struct {
	// indexer holds the Networks, with the CIDR indexes.
	indexer cache.Indexer
	// namespace is the namespace of every Network the check looks at.
	namespace string
	// programmed memoises the answer of every Network looked at, by UID.
	programmed map[types.UID]bool
	// overlaps memoises the overlapping Networks of every prefix looked up: Networks with identical
	// prefixes share one lookup.
	overlaps map[netip.Prefix][]*samplecrdv1.Network
}

// blocker returns the oldest programmed Network older than n overlapping p, or nil.
func (cc *conflictCheck) blocker(n *samplecrdv1.Network, p netip.Prefix) (*samplecrdv1.Network, error) {
	others, ok := cc.overlaps[p]
	if !ok {
		var err error
		if others, err = overlapping(cc.indexer, cc.namespace, p); err != nil {
			return nil, err
		}
		if cc.overlaps == nil {
			cc.overlaps = map[netip.Prefix][]*samplecrdv1.Network{}
		}
		cc.overlaps[p] = others
	}
	var candidates []*samplecrdv1.Network
	first := -1 // the oldest candidate
	for _, o := range others {
		if o.UID != n.UID && older(o, n) {
			if first < 0 || older(o, candidates[first]) {
				first = len(candidates)
			}
			candidates = append(candidates, o)
		}
	}
	if first < 0 {
		return nil, nil
	}
	// The oldest candidate is usually the answer: try it before sorting the others (many identical
	// cidrs would otherwise cost a sort each time).
	programmed, err := cc.isProgrammed(candidates[first])
	if err != nil {
		return nil, err
	}
	if programmed {
		return candidates[first], nil
	}
	candidates[first] = candidates[len(candidates)-1]
	candidates = candidates[:len(candidates)-1]
	slices.SortFunc(candidates, compareAge)
	for _, o := range candidates {
		programmed, err := cc.isProgrammed(o)
		if err != nil {
			return nil, err
		}
		if programmed {
			return o, nil
		}
	}
	return nil, nil
}

// isProgrammed reports whether n, a Network from the indexes, is programmed.
func (cc *conflictCheck) isProgrammed(n *samplecrdv1.Network) (bool, error) {
	if programmed, ok := cc.programmed[n.UID]; ok {
		return programmed, nil
	}
	b, err := cc.blocker(n, indexedPrefix(n))
	if err != nil {
		return false, err
	}
	if cc.programmed == nil {
		cc.programmed = map[types.UID]bool{}
	}
	cc.programmed[n.UID] = b == nil
	return b == nil, nil
}

// affectedBy returns the Networks whose conflict answer can change when n appears, disappears or
// moves from or to one of prefixes: those younger than n that are reachable from prefixes through
// chains of overlapping Networks of n's namespace that are younger than n. Only Networks younger
// than n can change (the greedy rule decides each from older ones alone), and a change reaches one
// only through such a chain, however long: deleting the oldest Network can program one that
// overlaps it, and so block one that does not. The search is a breadth-first walk over prefixes,
// each looked up once; it costs the lookups of the younger part of n's overlap component, and
// nothing when n is the youngest of it.
func affectedBy(indexer cache.Indexer, n *samplecrdv1.Network, prefixes ...netip.Prefix) ([]*samplecrdv1.Network, error) {
	expanded := make(map[netip.Prefix]struct{}, len(prefixes))
	todo := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		if _, ok := expanded[p]; !ok {
			expanded[p] = struct{}{}
			todo = append(todo, p)
		}
	}
	found := map[types.UID]struct{}{n.UID: {}}
	var out []*samplecrdv1.Network
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		others, err := overlapping(indexer, n.Namespace, p)
		if err != nil {
			return out, err
		}
		for _, o := range others {
			if _, ok := found[o.UID]; ok || !older(n, o) {
				continue
			}
			found[o.UID] = struct{}{}
			out = append(out, o)
			if q := indexedPrefix(o); !hasKey(expanded, q) {
				expanded[q] = struct{}{}
				todo = append(todo, q)
			}
		}
	}
	return out, nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
