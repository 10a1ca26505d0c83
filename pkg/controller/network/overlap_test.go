package network

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	fakebackend "github.com/samplecrd/samplecrd-controller/pkg/backend/fake"
)

// generator makes random Networks, dense enough in address space that their CIDRs overlap often
// and in long chains, over a few namespaces, with creation times of one-second resolution that
// often tie.
type generator struct {
	rng        *rand.Rand
	namespaces []string
	// seconds bounds the creation times, in seconds after t0.
	seconds int
	// invalid is the share of Networks whose spec the controller cannot program.
	invalid float64
	next    int
}

// prefix returns a random IPv4 or IPv6 prefix.
func (g *generator) prefix() netip.Prefix {
	if g.rng.IntN(2) == 0 {
		a := netip.AddrFrom4([4]byte{10, byte(g.rng.IntN(4)), byte(g.rng.IntN(256)), 0})
		return netip.PrefixFrom(a, 8+g.rng.IntN(23)).Masked()
	}
	a := netip.AddrFrom16([16]byte{0xfd, 0, byte(g.rng.IntN(4)), byte(g.rng.IntN(256))})
	return netip.PrefixFrom(a, 8+g.rng.IntN(119)).Masked()
}

// spec returns a random spec: a prefix with its first host as the gateway, or, at the invalid
// rate, one of the specs that pass a CRD without its rules but that the controller refuses.
func (g *generator) spec() samplecrdv1.NetworkSpec {
	p := g.prefix()
	gateway := p.Addr().Next()
	if g.rng.Float64() >= g.invalid {
		return samplecrdv1.NetworkSpec{Cidr: p.String(), Gateway: gateway.String()}
	}
	switch g.rng.IntN(3) {
	case 0: // the gateway is the network address
		return samplecrdv1.NetworkSpec{Cidr: p.String(), Gateway: p.Addr().String()}
	case 1: // the gateway is not an address
		return samplecrdv1.NetworkSpec{Cidr: p.String(), Gateway: "gateway"}
	default: // host bits set
		return samplecrdv1.NetworkSpec{Cidr: netip.PrefixFrom(gateway, p.Bits()).String(), Gateway: gateway.String()}
	}
}

// network returns a new Network with a random namespace, spec and creation second. Names do not
// follow creation order.
func (g *generator) network() *samplecrdv1.Network {
	g.next++
	spec := g.spec()
	// A random part first, a serial number for uniqueness after.
	n := network(fmt.Sprintf("n%05d-%d", g.rng.IntN(100000), g.next), spec.Cidr, spec.Gateway, createdAt(g.rng.IntN(g.seconds)))
	n.Namespace = g.namespaces[g.rng.IntN(len(g.namespaces))]
	return n
}

// greedy is the conflict rule by brute force: in each namespace, sort the valid Networks by age and
// program each one that overlaps none of those programmed before it. It maps every Network's key
// to the name of the Network blocking it: the oldest programmed one it overlaps, "" when it is
// programmed, "invalid" when it takes no part.
func greedy(networks []*samplecrdv1.Network) map[string]string {
	type entry struct {
		n *samplecrdv1.Network
		p netip.Prefix
	}
	byNamespace := map[string][]entry{}
	answers := map[string]string{}
	for _, n := range networks {
		d, err := desiredNetwork(n)
		if err != nil {
			answers[n.Namespace+"/"+n.Name] = "invalid"
			continue
		}
		byNamespace[n.Namespace] = append(byNamespace[n.Namespace], entry{n, d.CIDR})
	}
	for _, entries := range byNamespace {
		sort.Slice(entries, func(i, j int) bool {
			a, b := entries[i].n, entries[j].n
			if !a.CreationTimestamp.Time.Equal(b.CreationTimestamp.Time) {
				return a.CreationTimestamp.Time.Before(b.CreationTimestamp.Time)
			}
			return a.Name < b.Name
		})
		var programmed []entry
		for _, e := range entries {
			blocker := ""
			for _, q := range programmed {
				if q.p.Overlaps(e.p) {
					blocker = q.n.Name
					break
				}
			}
			if blocker == "" {
				programmed = append(programmed, e)
			}
			answers[e.n.Namespace+"/"+e.n.Name] = blocker
		}
	}
	return answers
}

// controllerAnswers is what the controller's check says for every Network, in greedy's form.
func controllerAnswers(t *testing.T, indexer cache.Indexer, networks []*samplecrdv1.Network) map[string]string {
	t.Helper()
	answers := map[string]string{}
	for _, n := range networks {
		key := n.Namespace + "/" + n.Name
		p, ok := conflictPrefix(n)
		if !ok {
			answers[key] = "invalid"
			continue
		}
		b, err := programmedOverlapping(indexer, n, p)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			if b.Namespace != n.Namespace {
				t.Errorf("Network %s is blocked by %s/%s, of another namespace", key, b.Namespace, b.Name)
			}
			answers[key] = b.Name
		} else {
			answers[key] = ""
		}
	}
	return answers
}

// TestOverlappingMatchesBruteForce compares the index lookup with checking every pair, on random
// IPv4 and IPv6 prefixes dense enough to overlap often, over three namespaces, with some invalid
// Networks, which the lookup must never return.
func TestOverlappingMatchesBruteForce(t *testing.T) {
	g := &generator{rng: rand.New(rand.NewPCG(1, 2)), namespaces: []string{"a", "b", "c"}, seconds: 10, invalid: 0.1}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers())
	var all []*samplecrdv1.Network
	for range 2000 {
		n := g.network()
		all = append(all, n)
		if err := indexer.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		ns := g.namespaces[g.rng.IntN(len(g.namespaces))]
		p := g.prefix()
		if i < 100 {
			// Also ask about prefixes that are in the index, from their own namespace or another.
			var ok bool
			if p, ok = conflictPrefix(all[i]); !ok {
				p = g.prefix()
			}
		}
		got, err := overlapping(indexer, ns, p)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range all {
			if q, ok := conflictPrefix(n); ok && n.Namespace == ns && q.Overlaps(p) {
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
			t.Fatalf("overlapping %s in %s (-brute force +index):\n%s", p, ns, diff)
		}
	}
}

// TestConflictsMatchGreedy compares the controller's answer for every Network of random sets with
// the greedy rule by brute force.
func TestConflictsMatchGreedy(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			g := &generator{rng: rand.New(rand.NewPCG(seed, 7)), namespaces: []string{"a", "b", "c"}, seconds: 50, invalid: 0.1}
			indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers())
			var all []*samplecrdv1.Network
			for range 1000 {
				n := g.network()
				all = append(all, n)
				if err := indexer.Add(n); err != nil {
					t.Fatal(err)
				}
			}
			want := greedy(all)
			if got := controllerAnswers(t, indexer, all); !maps.Equal(want, got) {
				t.Fatalf("answers (-greedy +controller):\n%s", cmp.Diff(want, got))
			}
			// The sets exercise what matters: Networks programmed although an older valid Network
			// of their namespace overlaps them (that one is blocked), and Networks blocked by a
			// Network that is not the oldest they overlap.
			var unblocked, notOldest int
			for _, n := range all {
				p, ok := conflictPrefix(n)
				if !ok {
					continue
				}
				others, err := overlapping(indexer, n.Namespace, p)
				if err != nil {
					t.Fatal(err)
				}
				var oldestOther *samplecrdv1.Network
				for _, o := range others {
					if o.UID != n.UID && older(o, n) && (oldestOther == nil || older(o, oldestOther)) {
						oldestOther = o
					}
				}
				switch answer := want[n.Namespace+"/"+n.Name]; {
				case oldestOther != nil && answer == "":
					unblocked++
				case oldestOther != nil && answer != oldestOther.Name:
					notOldest++
				}
			}
			if unblocked == 0 || notOldest == 0 {
				t.Errorf("the set has %d Networks programmed despite an older overlapping one and %d blocked by one that is not the oldest; want some of each", unblocked, notOldest)
			}
		})
	}
}

// TestFanOutCoversEveryChange applies random adds, deletes, cidr and gateway changes and status
// updates through the informer's store and the event handlers, and checks after each that every
// Network whose answer changed was enqueued, that nothing outside the changed Network's namespace
// was, and that the controller's answers are still the greedy rule's.
func TestFanOutCoversEveryChange(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			g := &generator{rng: rand.New(rand.NewPCG(seed, 11)), namespaces: []string{"a", "b", "c"}, seconds: 60, invalid: 0.1}
			f := newFixture(t, fakebackend.New())
			c, indexer := f.controller, f.controller.networksIndexer
			live := map[string]*samplecrdv1.Network{}
			list := func() []*samplecrdv1.Network {
				out := make([]*samplecrdv1.Network, 0, len(live))
				for _, n := range live {
					out = append(out, n)
				}
				return out
			}
			pick := func() *samplecrdv1.Network {
				keys := make([]string, 0, len(live))
				for k := range live {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return live[keys[g.rng.IntN(len(keys))]]
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			// distant counts the changed answers of Networks that overlap none of the changed
			// Network's cidrs: the changes that enqueueing the direct overlappers would miss.
			distant := 0
			before := greedy(list())
			for step := range 600 {
				var changed []*samplecrdv1.Network // the old and new states of the changed Network
				var what string
				switch op := g.rng.IntN(10); {
				case op < 4 || len(live) < 30:
					n := g.network()
					what = "add " + n.Name
					live[n.Namespace+"/"+n.Name] = n
					must(indexer.Add(n))
					c.addNetwork(n, false)
					changed = []*samplecrdv1.Network{n}
				case op < 6:
					n := pick()
					what = "delete " + n.Name
					delete(live, n.Namespace+"/"+n.Name)
					must(indexer.Delete(n))
					if op == 5 {
						c.deleteNetwork(cache.DeletedFinalStateUnknown{Key: n.Namespace + "/" + n.Name, Obj: n})
					} else {
						c.deleteNetwork(n)
					}
					changed = []*samplecrdv1.Network{n}
				default:
					old := pick()
					n := old.DeepCopy()
					n.ResourceVersion = fmt.Sprint(step + 2)
					switch op {
					case 6, 7:
						n.Spec = g.spec()
						what = "new spec for " + n.Name
					case 8:
						n.Spec.Gateway = "gateway"
						what = "invalid gateway for " + n.Name
					default:
						n.Status.ObservedGeneration++
						what = "status of " + n.Name
					}
					live[n.Namespace+"/"+n.Name] = n
					must(indexer.Update(n))
					c.updateNetwork(old, n)
					changed = []*samplecrdv1.Network{old, n}
				}
				enqueued := f.drainQueue()
				after := greedy(list())
				ns := changed[0].Namespace
				for _, k := range enqueued {
					if k[:len(ns)+1] != ns+"/" {
						t.Errorf("step %d (%s in %s): enqueued %s, of another namespace", step, what, ns, k)
					}
				}
				keys := map[string]bool{}
				for k := range before {
					keys[k] = true
				}
				for k := range after {
					keys[k] = true
				}
				for k := range keys {
					if before[k] == after[k] || slices.Contains(enqueued, k) {
						continue
					}
					t.Errorf("step %d (%s): the answer of %s changed from %q to %q, but it was not enqueued (enqueued: %v)",
						step, what, k, before[k], after[k], enqueued)
				}
				for k := range keys {
					if n, ok := live[k]; ok && before[k] != after[k] && !overlapsAny(n, changed) {
						distant++
					}
				}
				// The controller's answers, in the namespace that changed (and every 50 steps in all):
				// the others' cannot have changed.
				var checked []*samplecrdv1.Network
				for _, n := range live {
					if n.Namespace == ns || step%50 == 0 {
						checked = append(checked, n)
					}
				}
				want := map[string]string{}
				for _, n := range checked {
					want[n.Namespace+"/"+n.Name] = after[n.Namespace+"/"+n.Name]
				}
				if got := controllerAnswers(t, indexer, checked); !maps.Equal(want, got) {
					t.Fatalf("step %d (%s): answers (-greedy +controller):\n%s", step, what, cmp.Diff(want, got))
				}
				before = after
			}
			if distant == 0 {
				t.Errorf("no change reached a Network that does not overlap the changed one; the test shows nothing about the closure")
			}
		})
	}
}

// overlapsAny reports whether n overlaps one of the states of a changed Network.
func overlapsAny(n *samplecrdv1.Network, states []*samplecrdv1.Network) bool {
	p, ok := conflictPrefix(n)
	if !ok {
		return false
	}
	for _, s := range states {
		if q, ok := conflictPrefix(s); ok && s.UID != n.UID && q.Overlaps(p) {
			return true
		}
	}
	return false
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
		{"itself", network("a", "10.0.0.0/8", ""), network("a", "10.0.0.0/8", ""), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := older(tc.a, tc.b); got != tc.want {
				t.Errorf("older = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHandlersEnqueue checks which keys each event puts on the queue. In the namespace default,
// oldest (10.20.0.0/16) is programmed and blocks wide (10.0.0.0/8), which would block narrow
// (10.1.0.0/16), programmed; apart overlaps none of them and invalid (10.0.0.0/8 with its network
// address as gateway), the oldest of all, takes no part. The namespace other holds the same cidrs.
func TestHandlersEnqueue(t *testing.T) {
	inNamespace := func(ns string) func(*samplecrdv1.Network) {
		return func(n *samplecrdv1.Network) { n.Namespace = ns }
	}
	invalid := network("invalid", "10.0.0.0/8", "10.0.0.0", createdAt(-1))
	oldest := network("oldest", "10.20.0.0/16", "10.20.0.1")
	wide := network("wide", "10.0.0.0/8", "10.0.0.1", createdAt(1))
	narrow := network("narrow", "10.1.0.0/16", "10.1.0.1", createdAt(2))
	apart := network("apart", "172.16.0.0/16", "172.16.0.1", createdAt(2))
	first := network("first", "10.0.0.0/8", "10.0.0.1", inNamespace("other"))
	second := network("second", "10.20.0.0/16", "10.20.0.1", createdAt(1), inNamespace("other"))
	changed := func(n *samplecrdv1.Network, change func(*samplecrdv1.Network)) *samplecrdv1.Network {
		n = n.DeepCopy()
		n.ResourceVersion = "2"
		change(n)
		return n
	}
	update := func(oldN, newN *samplecrdv1.Network) func(c *Controller) {
		return func(c *Controller) {
			if err := c.networksIndexer.Update(newN); err != nil {
				panic(err)
			}
			c.updateNetwork(oldN, newN)
		}
	}
	remove := func(obj any, n *samplecrdv1.Network) func(c *Controller) {
		return func(c *Controller) {
			if err := c.networksIndexer.Delete(n); err != nil {
				panic(err)
			}
			c.deleteNetwork(obj)
		}
	}
	cases := []struct {
		name  string
		event func(c *Controller)
		want  []string
	}{
		{"add of the oldest enqueues the younger networks it reaches, two links away too",
			func(c *Controller) { c.addNetwork(oldest, false) },
			[]string{"default/narrow", "default/oldest", "default/wide"}},
		{"add in the initial list enqueues only itself",
			func(c *Controller) { c.addNetwork(oldest, true) },
			[]string{"default/oldest"}},
		{"add of the youngest enqueues only itself",
			func(c *Controller) { c.addNetwork(narrow, false) },
			[]string{"default/narrow"}},
		{"resync enqueues only the key",
			func(c *Controller) { c.updateNetwork(oldest, oldest) },
			[]string{"default/oldest"}},
		{"status change enqueues only the key",
			update(oldest, changed(oldest, synced)),
			[]string{"default/oldest"}},
		{"deletion started: only the key, a deleting network keeps its place",
			update(oldest, changed(oldest, deleting)),
			[]string{"default/oldest"}},
		{"gateway moved within the cidr: only the key",
			update(oldest, changed(oldest, func(n *samplecrdv1.Network) { n.Spec.Gateway = "10.20.0.2" })),
			[]string{"default/oldest"}},
		{"cidr change enqueues what either cidr reaches",
			update(oldest, changed(oldest, func(n *samplecrdv1.Network) {
				n.Spec = samplecrdv1.NetworkSpec{Cidr: "172.16.5.0/24", Gateway: "172.16.5.1"}
			})),
			[]string{"default/apart", "default/narrow", "default/oldest", "default/wide"}},
		{"gateway made invalid: what the cidr reaches",
			update(oldest, changed(oldest, func(n *samplecrdv1.Network) { n.Spec.Gateway = "10.20.0.0" })),
			[]string{"default/narrow", "default/oldest", "default/wide"}},
		{"invalid network made valid: what its cidr reaches",
			update(invalid, changed(invalid, func(n *samplecrdv1.Network) { n.Spec.Gateway = "10.0.0.1" })),
			[]string{"default/invalid", "default/narrow", "default/oldest", "default/wide"}},
		{"delete of the oldest enqueues the younger networks it reaches, two links away too",
			remove(oldest, oldest),
			[]string{"default/narrow", "default/oldest", "default/wide"}},
		{"delete through a tombstone",
			remove(cache.DeletedFinalStateUnknown{Key: "default/oldest", Obj: oldest}, oldest),
			[]string{"default/narrow", "default/oldest", "default/wide"}},
		{"delete of an invalid network enqueues only itself",
			remove(invalid, invalid),
			[]string{"default/invalid"}},
		{"delete in another namespace stays there",
			remove(first, first),
			[]string{"other/first", "other/second"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fakebackend.New(), invalid, oldest, wide, narrow, apart, first, second)
			tc.event(f.controller)
			got := f.drainQueue()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
		})
	}
}
