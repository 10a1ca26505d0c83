package network

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
)

// TestOverlappingMatchesBruteForce compares the index lookup with checking every pair, on random
// IPv4 and IPv6 prefixes dense enough to overlap often.
func TestOverlappingMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers())
	var all []*samplecrdv1.Network
	randomPrefix := func() netip.Prefix {
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), 0})
			return netip.PrefixFrom(a, 8+rng.IntN(23)).Masked()
		}
		a := netip.AddrFrom16([16]byte{0xfd, 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
		return netip.PrefixFrom(a, 8+rng.IntN(119)).Masked()
	}
	for i := range 2000 {
		p := randomPrefix()
		n := network(fmt.Sprintf("n%d", i), p.String(), "")
		all = append(all, n)
		if err := indexer.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		p := randomPrefix()
		if i < 100 {
			p, _ = networkPrefix(all[i]) // also ask about prefixes that are in the index
		}
		got, err := overlapping(indexer, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range all {
			if q, _ := networkPrefix(n); q.Overlaps(p) {
				want = append(want, n.Name)
			}
		}
		var gotNames []string
		for _, n := range got {
			gotNames = append(gotNames, n.Name)
		}
		slices.Sort(want)
		slices.Sort(gotNames)
		if diff := cmp.Diff(want, gotNames); diff != "" {
			t.Fatalf("overlapping %s (-brute force +index):\n%s", p, diff)
		}
	}
}

func TestOlder(t *testing.T) {
	cases := []struct {
		name string
		a, b *samplecrdv1.Network
		want bool
	}{
		{"created earlier", network("z", "10.0.0.0/8", ""), network("a", "10.0.0.0/8", "", createdAt(1)), true},
		{"created later", network("a", "10.0.0.0/8", "", createdAt(1)), network("z", "10.0.0.0/8", ""), false},
		{"same second, name first", network("a", "10.0.0.0/8", ""), network("b", "10.0.0.0/8", ""), true},
		{"same second, name second", network("b", "10.0.0.0/8", ""), network("a", "10.0.0.0/8", ""), false},
		{"same second, namespace first", network("b", "10.0.0.0/8", "", func(n *samplecrdv1.Network) { n.Namespace = "a" }), network("a", "10.0.0.0/8", ""), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := older(tc.a, tc.b); got != tc.want {
				t.Errorf("older = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHandlersEnqueue checks which keys each event puts on the queue.
func TestHandlersEnqueue(t *testing.T) {
	wide := network("wide", "10.0.0.0/8", "10.0.0.1")
	narrow := network("narrow", "10.1.0.0/16", "10.1.0.1", createdAt(5))
	apart := network("apart", "172.16.0.0/16", "172.16.0.1", createdAt(5))
	moved := narrow.DeepCopy()
	moved.Spec.Cidr, moved.ResourceVersion, moved.Generation = "10.2.0.0/16", "2", 2
	cases := []struct {
		name  string
		event func(c *Controller)
		want  []string
	}{
		{"add of the older network enqueues the younger overlapping one", func(c *Controller) { c.addNetwork(wide) }, []string{"default/narrow", "default/wide"}},
		{"add of the younger network enqueues only itself", func(c *Controller) { c.addNetwork(narrow) }, []string{"default/narrow"}},
		{"resync enqueues only the key", func(c *Controller) { c.updateNetwork(wide, wide) }, []string{"default/wide"}},
		{"cidr change of a younger network enqueues only itself", func(c *Controller) { c.updateNetwork(narrow, moved) }, []string{"default/narrow"}},
		{"delete enqueues the younger overlapping networks", func(c *Controller) { c.deleteNetwork(wide) }, []string{"default/narrow", "default/wide"}},
		{"delete through a tombstone", func(c *Controller) {
			c.deleteNetwork(cache.DeletedFinalStateUnknown{Key: "default/wide", Obj: wide})
		}, []string{"default/narrow", "default/wide"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fakebackend.New(), wide, narrow, apart)
			tc.event(f.controller)
			got := f.drainQueue()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
		})
	}
}
