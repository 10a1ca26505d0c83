package network

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestLifecycle follows the tutorial's example through its life: Ready with its OVN rows, a cidr
// and gateway change applied in place, and deletion removing the rows and then the finalizer.
func TestLifecycle(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	ctx := context.Background()

	created := s.create(t, "example-network", "192.168.0.0/16", "192.168.0.1")
	n := s.waitReady(t, "example-network")
	if len(n.Finalizers) != 1 || n.Finalizers[0] != network.Finalizer {
		t.Errorf("finalizers = %v, want [%s]", n.Finalizers, network.Finalizer)
	}
	if n.Status.Backend == nil || n.Status.Backend.Type != ovn.BackendType || n.Status.Backend.Name != ovn.SwitchName(cluster, s.ns, "example-network") {
		t.Errorf("status.backend = %+v", n.Status.Backend)
	}
	rows := s.db.Dump(t)
	checkProgrammed(t, rows, n)
	switchUUID := owned(rows, created.UID).Switches[0].UUID

	// The tutorial's event; events are written in the background.
	var reasons []string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		events, err := env.KubeClient(t).CoreV1().Events(s.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=example-network"})
		if err != nil {
			return false, err
		}
		reasons = nil
		for _, e := range events.Items {
			reasons = append(reasons, e.Reason+": "+e.Message)
		}
		return strings.Contains(strings.Join(reasons, "\n"), "Synced: Network synced successfully"), nil
	})
	if err != nil {
		t.Errorf("events = %v, want a Synced event: %v", reasons, err)
	}

	// Change both fields: the same switch is updated in place.
	n.Spec = samplecrdv1.NetworkSpec{Cidr: "172.20.0.0/24", Gateway: "172.20.0.254"}
	if _, err := s.client.SamplecrdV1().Networks(s.ns).Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n = s.waitReady(t, "example-network")
	rows = s.waitRows(t, "the new cidr", func(r framework.OVNRows) bool {
		o := owned(r, created.UID)
		return len(o.Switches) == 1 && o.Switches[0].OtherConfig[ovn.SubnetKey] == "172.20.0.0/24"
	})
	checkProgrammed(t, rows, n)
	if got := owned(rows, created.UID).Switches[0].UUID; got != switchUUID {
		t.Errorf("the switch was replaced (%s, was %s); want it updated in place", got, switchUUID)
	}

	// Delete: rows, then the finalizer, then the object.
	if err := s.client.SamplecrdV1().Networks(s.ns).Delete(ctx, "example-network", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitGone(t, "example-network")
	if o := owned(s.db.Dump(t), created.UID); len(o.Switches)+len(o.SwitchPorts)+len(o.RouterPorts) != 0 {
		t.Errorf("rows left after deletion: %+v", o)
	}
}

// TestDriftRepair changes and removes the controller's rows behind its back.
func TestDriftRepair(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	n := s.create(t, "drift", "10.10.0.0/16", "10.10.0.1")
	s.waitReady(t, "drift")
	ls := owned(s.db.Dump(t), n.UID).Switches[0]

	s.db.NBCtl(t, "set", "Logical_Switch", ls.UUID, "other_config:subnet=10.99.0.0/16")
	s.waitRows(t, "the subnet put back", func(r framework.OVNRows) bool {
		o := owned(r, n.UID)
		return len(o.Switches) == 1 && o.Switches[0].OtherConfig[ovn.SubnetKey] == "10.10.0.0/16"
	})

	s.db.NBCtl(t, "ls-del", ls.UUID)
	rows := s.waitRows(t, "the switch recreated", func(r framework.OVNRows) bool {
		o := owned(r, n.UID)
		return len(o.Switches) == 1 && o.Switches[0].UUID != ls.UUID
	})
	n = s.waitFor(t, "drift", "Ready with the new switch", func(n *samplecrdv1.Network) bool {
		return ready(n) == "True/Synced" && statusID(n) == owned(rows, n.UID).Switches[0].UUID
	})
	checkProgrammed(t, rows, n)
}

// TestOrphanCleanup puts rows of a Network that does not exist, under this cluster's name and under
// another's, into the database before the manager starts; then one more of this cluster's while it
// runs, which goes at once, not at the next orphan sweep (an hour here): a write that reached the
// backend after its Network's deletion is one.
func TestOrphanCleanup(t *testing.T) {
	s := newSetup(t)
	ids := func(owner, uid string) []string {
		return []string{
			fmt.Sprintf("external_ids:%q=%q", ovn.OwnerKey, owner),
			fmt.Sprintf("external_ids:%q=%q", ovn.UIDKey, uid),
			fmt.Sprintf("external_ids:%q=%q", ovn.NamespaceKey, s.ns),
			fmt.Sprintf("external_ids:%q=%q", ovn.NameKey, "gone"),
		}
	}
	s.db.NBCtl(t, append([]string{"--", "--id=@ls", "create", "Logical_Switch", "name=orphan"}, ids(cluster, "0d0d0d0d-0000-0000-0000-000000000001")...)...)
	s.db.NBCtl(t, append([]string{"--", "--id=@ls", "create", "Logical_Switch", "name=foreign"}, ids("another-cluster", "0d0d0d0d-0000-0000-0000-000000000002")...)...)
	s.startController(t, func(o *app.Options) { o.OrphanSweepInterval = time.Hour })
	gone := func(name string) func(framework.OVNRows) bool {
		return func(r framework.OVNRows) bool {
			return !slices.ContainsFunc(r.Switches, func(ls nbdb.LogicalSwitch) bool { return ls.Name == name })
		}
	}
	s.waitRows(t, "the orphan removed", gone("orphan"))

	s.db.NBCtl(t, append([]string{"--", "--id=@ls", "create", "Logical_Switch", "name=late"}, ids(cluster, "0d0d0d0d-0000-0000-0000-000000000003")...)...)
	rows := s.waitRows(t, "the orphan that appeared while running removed", gone("late"))
	var names []string
	for _, ls := range rows.Switches {
		names = append(names, ls.Name)
	}
	if len(names) != 1 || names[0] != "foreign" {
		t.Errorf("switches = %v, want only the other cluster's", names)
	}
}

// TestOverlap creates two overlapping Networks: the older is programmed, the younger waits with
// CIDRConflict, and is programmed by itself once the older one is deleted.
func TestOverlap(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	first := s.create(t, "a-first", "10.30.0.0/16", "10.30.0.1")
	s.waitReady(t, "a-first")
	second := s.create(t, "b-second", "10.30.5.0/24", "10.30.5.1")
	n := s.waitFor(t, "b-second", "CIDRConflict", func(n *samplecrdv1.Network) bool { return ready(n) == "False/CIDRConflict" })
	if msg, want := n.Status.Conditions[0].Message, "cidr 10.30.5.0/24 overlaps Network a-first (cidr 10.30.0.0/16), which is programmed"; msg != want {
		t.Errorf("conflict message %q, want %q", msg, want)
	}
	if o := owned(s.db.Dump(t), second.UID); len(o.Switches) != 0 {
		t.Errorf("the conflicting Network was programmed: %+v", o.Switches)
	}

	if err := s.client.SamplecrdV1().Networks(s.ns).Delete(context.Background(), "a-first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n = s.waitReady(t, "b-second")
	rows := s.db.Dump(t)
	checkProgrammed(t, rows, n)
	if o := owned(rows, first.UID); len(o.Switches) != 0 {
		t.Errorf("the deleted Network's switch is still there")
	}
}

// TestConflictCascade checks that conflicts do not cascade, in one namespace: 10.20.0.0/16 (the
// oldest), then 10.0.0.0/8, which overlaps it and is blocked, then 10.1.0.0/16, which overlaps only
// the blocked /8 and is programmed. Deleting the oldest programs the /8, which then blocks
// 10.1.0.0/16, and touches nothing else: a Network apart gets no write.
func TestConflictCascade(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	// Creation timestamps have one-second resolution and ties are broken by name: with names that
	// sort in creation order, the age order is the creation order whatever second each falls in.
	oldest := s.create(t, "a-oldest", "10.20.0.0/16", "10.20.0.1")
	wide := s.create(t, "b-wide", "10.0.0.0/8", "10.0.0.1")
	narrow := s.create(t, "c-narrow", "10.1.0.0/16", "10.1.0.1")
	s.create(t, "d-apart", "192.168.7.0/24", "192.168.7.1")

	oldest = s.waitReady(t, "a-oldest")
	s.waitConflict(t, "b-wide", "cidr 10.0.0.0/8 overlaps Network a-oldest (cidr 10.20.0.0/16), which is programmed")
	narrow = s.waitReady(t, "c-narrow")
	apart := s.waitReady(t, "d-apart")
	rows := s.waitRows(t, "the switches of the programmed Networks", func(r framework.OVNRows) bool {
		return len(owned(r, oldest.UID).Switches) == 1 && len(owned(r, narrow.UID).Switches) == 1 && len(owned(r, apart.UID).Switches) == 1
	})
	checkSwitch(t, rows, oldest)
	checkNoSwitch(t, rows, wide)
	checkSwitch(t, rows, narrow)
	checkSwitch(t, rows, apart)
	apartSwitch := owned(rows, apart.UID).Switches[0].UUID

	if err := s.client.SamplecrdV1().Networks(s.ns).Delete(context.Background(), "a-oldest", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitGone(t, "a-oldest")
	wide = s.waitReady(t, "b-wide")
	s.waitConflict(t, "c-narrow", "cidr 10.1.0.0/16 overlaps Network b-wide (cidr 10.0.0.0/8), which is programmed")
	rows = s.waitRows(t, "the /8's switch, and none for 10.1.0.0/16", func(r framework.OVNRows) bool {
		return len(owned(r, wide.UID).Switches) == 1 && len(owned(r, narrow.UID).Switches) == 0
	})
	checkSwitch(t, rows, wide)
	checkNoSwitch(t, rows, narrow)
	checkNoSwitch(t, rows, oldest)
	checkSwitch(t, rows, apart)
	if got := owned(rows, apart.UID).Switches; len(got) == 1 && got[0].UUID != apartSwitch {
		t.Errorf("the switch of d-apart was replaced")
	}
	now, err := s.client.SamplecrdV1().Networks(s.ns).Get(context.Background(), "d-apart", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != apart.ResourceVersion {
		t.Errorf("d-apart, which overlaps nothing, was written: resourceVersion %s, was %s; status %+v",
			now.ResourceVersion, apart.ResourceVersion, now.Status)
	}
}

// TestConflictAcrossNamespaces checks that Networks of different namespaces never conflict: the
// same cidr, under the same name, is Ready in two namespaces, while a Network inside it in the
// second namespace is blocked by that namespace's own.
func TestConflictAcrossNamespaces(t *testing.T) {
	s := newSetup(t)
	other := s.addNamespace(t)
	s.startController(t, nil)
	first := s.create(t, "shared", "10.40.0.0/16", "10.40.0.1")
	second := other.create(t, "shared", "10.40.0.0/16", "10.40.0.1")
	inner := other.create(t, "z-inner", "10.40.1.0/24", "10.40.1.1")

	first = s.waitReady(t, "shared")
	second = other.waitReady(t, "shared")
	other.waitConflict(t, "z-inner", "cidr 10.40.1.0/24 overlaps Network shared (cidr 10.40.0.0/16), which is programmed")
	rows := s.waitRows(t, "a switch for each namespace's shared", func(r framework.OVNRows) bool {
		return len(owned(r, first.UID).Switches) == 1 && len(owned(r, second.UID).Switches) == 1
	})
	// Each on its own namespace's router (checkProgrammed checks the rows and the router).
	checkProgrammed(t, rows, first)
	checkProgrammed(t, rows, second)
	checkNoSwitch(t, rows, inner)
	routerA, _ := rows.NamespaceRouter(cluster, first.Namespace)
	routerB, _ := rows.NamespaceRouter(cluster, second.Namespace)
	if routerA.UUID == routerB.UUID || len(routerA.Ports) != 1 || len(routerB.Ports) != 1 || len(rows.Routers) != 2 {
		t.Errorf("want one router per namespace with one port each, got %+v", rows.Routers)
	}
}

// TestBackendDown creates a Network while ovsdb-server is down: it reports BackendUnavailable once,
// and becomes Ready by itself once the server is back, with exactly one set of rows. The Network
// programmed before the outage keeps its status throughout: not one write, not one event.
func TestBackendDown(t *testing.T) {
	s := newSetup(t)
	s.startController(t, nil)
	s.create(t, "before", "10.40.0.0/16", "10.40.0.1")
	programmed := s.waitReady(t, "before")
	writes := s.watchStatusWrites(t)

	s.db.Stop(t)
	s.create(t, "during", "10.41.0.0/16", "10.41.0.1")
	s.waitFor(t, "during", "BackendUnavailable", func(n *samplecrdv1.Network) bool { return ready(n) == "False/BackendUnavailable" })
	// A resync of every Network meets the outage too.
	s.touch(t, "before")
	s.db.Start(t)

	n := s.waitReady(t, "during")
	rows := s.db.Dump(t)
	checkProgrammed(t, rows, n)
	before := s.waitReady(t, "before")
	checkProgrammed(t, rows, before)
	if before.Status.Backend == nil || before.Status.Backend.ID != programmed.Status.Backend.ID || writes.of("before") != 0 {
		t.Errorf("the programmed Network's status changed %d times over the outage: %+v, was %+v", writes.of("before"), before.Status, programmed.Status)
	}
	if got := writes.of("during"); got != 2 {
		t.Errorf("the Network created in the outage had %d status writes, want 2 (unavailable, then ready)", got)
	}
	if got := s.events(t, "during", samplecrdv1.ReasonBackendUnavailable); got != 1 {
		t.Errorf("%d BackendUnavailable events, want 1", got)
	}
}

// touch changes a label of the Network, which makes the controller sync it without changing its
// spec.
func (s *setup) touch(t *testing.T, name string) {
	t.Helper()
	patch := []byte(`{"metadata":{"labels":{"touched":"` + strconv.FormatInt(time.Now().UnixNano(), 10) + `"}}}`)
	if _, err := s.client.SamplecrdV1().Networks(s.ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestDeletedWhileStopped deletes a Network while no manager runs: the next manager removes its rows
// and its finalizer.
func TestDeletedWhileStopped(t *testing.T) {
	s := newSetup(t)
	m := s.startController(t, nil)
	n := s.create(t, "doomed", "10.50.0.0/16", "10.50.0.1")
	s.waitReady(t, "doomed")
	m.stop(t)

	if err := s.client.SamplecrdV1().Networks(s.ns).Delete(context.Background(), "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The finalizer holds the object while no controller runs.
	s.waitFor(t, "doomed", "terminating", func(n *samplecrdv1.Network) bool { return n.DeletionTimestamp != nil })
	if o := owned(s.db.Dump(t), n.UID); len(o.Switches) != 1 {
		t.Fatalf("the rows went without a controller: %+v", o)
	}

	s.startController(t, nil)
	s.waitGone(t, "doomed")
	if o := owned(s.db.Dump(t), n.UID); len(o.Switches)+len(o.SwitchPorts)+len(o.RouterPorts) != 0 {
		t.Errorf("rows left: %+v", o)
	}
}

// TestManyNetworks creates 500 Networks at once from 32 clients and waits until every one is Ready
// with exactly one set of rows.
func TestManyNetworks(t *testing.T) {
	const count, clients = 500, 32
	s := newSetup(t)
	opts := app.NewOptions()
	s.startController(t, nil)
	ctx := context.Background()

	start := time.Now()
	if err := framework.CreateNetworks(ctx, s.client, s.ns, count, clients); err != nil {
		t.Fatalf("creating Networks: %v", err)
	}
	created := time.Since(start)

	var list *samplecrdv1.NetworkList
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := s.client.SamplecrdV1().Networks(s.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		list = l
		for i := range l.Items {
			if ready(&l.Items[i]) != "True/Synced" {
				return false, nil
			}
		}
		return len(l.Items) == count, nil
	})
	elapsed := time.Since(start)
	if err != nil {
		notReady := 0
		for i := range list.Items {
			if ready(&list.Items[i]) != "True/Synced" {
				notReady++
			}
		}
		t.Fatalf("%d of %d Networks not Ready after %v", notReady, count, elapsed)
	}
	t.Logf("%d Networks created in %v and all Ready in %v: %.0f Networks/s (client QPS %v, burst %d, %d workers)",
		count, created.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(count)/elapsed.Seconds(),
		opts.KubeAPIQPS, opts.KubeAPIBurst, opts.NetworkWorkers)

	rows := s.db.Dump(t)
	for i := range list.Items {
		checkProgrammed(t, rows, &list.Items[i])
	}
	if len(rows.Switches) != count || len(rows.SwitchPorts) != count || len(rows.RouterPorts) != count || len(rows.Routers) != 1 {
		t.Errorf("database holds %d switches, %d switch ports, %d router ports, %d routers; want %d, %d, %d, 1",
			len(rows.Switches), len(rows.SwitchPorts), len(rows.RouterPorts), len(rows.Routers), count, count, count)
	}
}

// TestRestartWritesNothing restarts the controller with every Network Ready and nothing changed:
// the new one checks them all against OVN and writes nothing, neither a status nor an event nor an
// OVSDB row, even though its cache is ready while it is still connecting to ovsdb-server.
func TestRestartWritesNothing(t *testing.T) {
	const count = 30
	s := newSetup(t)
	m := s.startController(t, nil)
	for i := range count {
		s.create(t, fmt.Sprintf("net-%d", i), fmt.Sprintf("10.60.%d.0/24", i), fmt.Sprintf("10.60.%d.1", i))
	}
	versions := map[string]string{}
	for i := range count {
		n := s.waitReady(t, fmt.Sprintf("net-%d", i))
		versions[n.Name] = n.ResourceVersion
	}
	m.stop(t)
	before := s.db.Dump(t)
	// events counts the events on Networks .
	events := func() int {
		list, err := env.KubeClient(t).CoreV1().Events(s.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "Network" {
				// One occurrence, or the count of its series (events.k8s.io/v1), or the count
				// the core/v1 recorder kept.
				n := 1
				if e.Series != nil {
					n = max(n, int(e.Series.Count))
				}
				total += max(n, int(e.Count))
			}
		}
		return total
	}
	eventsBefore := events()

	// The new controller finds ovsdb-server unresponsive at first, as one that starts beside a
	// busy database does: it must wait for it rather than report every Network broken and then
	// fixed again. The server answers again once the controller's cache has synced, when its
	// workers could start.
	s.db.Pause(t)
	c := s.startController(t, nil)
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return c.informer.HasSynced(), nil
	})
	s.db.Resume(t)
	if err != nil {
		t.Fatalf("waiting for the new controller's cache: %v", err)
	}
	// Every Network, and a marker created after the restart, synced by the new controller.
	s.create(t, "marker", "10.61.0.0/24", "10.61.0.1")
	s.waitReady(t, "marker")
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		for i := range count {
			if c.syncs.count(cache.ObjectName{Namespace: s.ns, Name: fmt.Sprintf("net-%d", i)}) == 0 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("the restarted controller did not sync every Network: %v", err)
	}
	for i := range count {
		name := fmt.Sprintf("net-%d", i)
		n, err := s.client.SamplecrdV1().Networks(s.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.ResourceVersion != versions[name] {
			t.Errorf("%s was written by the restarted controller (resourceVersion %s -> %s), status %+v", name, versions[name], n.ResourceVersion, n.Status.Conditions)
		}
	}
	// The marker's own Synced event is the only new one. Events are written in the background:
	// wait for that one first.
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return events() > eventsBefore, nil
	}); err != nil {
		t.Fatalf("waiting for the marker's event: %v", err)
	}
	if got := events() - eventsBefore; got != 1 {
		t.Errorf("%d new events after the restart, want 1 (the marker's Synced)", got)
	}
	after := s.db.Dump(t)
	for i := range count {
		n, _ := s.client.SamplecrdV1().Networks(s.ns).Get(context.Background(), fmt.Sprintf("net-%d", i), metav1.GetOptions{})
		if a, b := owned(before, n.UID), owned(after, n.UID); fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s's OVN rows changed across the restart:\nbefore %+v\nafter  %+v", n.Name, a, b)
		}
	}
}
