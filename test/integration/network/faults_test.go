package network

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// statusWrites counts the status changes of the setup's Networks from now on, by name, from a
// watch of the API server.
type statusWrites struct {
	mu     sync.Mutex
	counts map[string]int
}

func (s *setup) watchStatusWrites(t *testing.T) *statusWrites {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	list, err := s.client.SamplecrdV1().Networks(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.client.SamplecrdV1().Networks(s.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, n := range list.Items {
		last[n.Name] = statusText(&n)
	}
	sw := &statusWrites{counts: map[string]int{}}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			n, ok := ev.Object.(*samplecrdv1.Network)
			if !ok {
				continue
			}
			status := statusText(n)
			sw.mu.Lock()
			if ev.Type == watch.Modified && last[n.Name] != status {
				sw.counts[n.Name]++
			}
			last[n.Name] = status
			sw.mu.Unlock()
		}
	}()
	return sw
}

// statusText is the Network's status as JSON, for comparing.
func statusText(n *samplecrdv1.Network) string {
	data, err := json.Marshal(n.Status)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

func (sw *statusWrites) of(name string) int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.counts[name]
}

// staysAt checks that get() keeps returning want for a while: the controller must not write (or
// sync) again by itself. The poll is the observation window, not a synchronisation.
func staysAt(t *testing.T, what string, want int, get func() int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 2*time.Second, true, func(context.Context) (bool, error) {
		return get() != want, nil
	})
	if err == nil {
		t.Errorf("%s: %d, want it to stay at %d", what, get(), want)
	}
}

// TestNameConflictAfterUnblock is the status-write hot loop's case: a Network blocked by an
// overlap, a row of another owner under the name of its switch port, then the blocker deleted.
// The Network reports the name conflict with one status write and one event, and is not synced
// again by its own writes: each write's watch event used to requeue it at once, past the backoff.
func TestNameConflictAfterUnblock(t *testing.T) {
	s := newSetup(t)
	c := s.startController(t, nil)
	// Names in the order of age: Networks created within a second are ordered by name.
	s.create(t, "a-blocker", "10.0.0.0/8", "10.0.0.1")
	s.waitReady(t, "a-blocker")
	blocked := s.create(t, "blocked", "10.1.0.0/16", "10.1.0.1")
	s.waitConflict(t, "blocked", "cidr 10.1.0.0/16 overlaps Network a-blocker (cidr 10.0.0.0/8), which is programmed")
	port := ovn.SwitchPortName(cluster, blocked.UID)
	key := cache.ObjectName{Namespace: s.ns, Name: "blocked"}
	before := c.syncs.count(key) + len(c.syncs.failures(key))
	s.db.NBCtl(t, "ls-add", "someone-elses", "--", "lsp-add", "someone-elses", port,
		"--", "set", "Logical_Switch_Port", port, "external_ids:owner=someone-else")
	// The backend reports a row of another owner under a name the Network needs, through
	// ovsdb-server's monitor at its own pace: that sync (still blocked, no write) must be over
	// before the syncs after the conflict are counted.
	s.waitFor(t, "blocked", "a sync for the foreign row", func(*samplecrdv1.Network) bool {
		return c.syncs.count(key)+len(c.syncs.failures(key)) > before
	})

	writes := s.watchStatusWrites(t)
	if err := s.client.SamplecrdV1().Networks(s.ns).Delete(context.Background(), "a-blocker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "blocked", "NameConflict", func(n *samplecrdv1.Network) bool { return ready(n) == "False/NameConflict" })
	s.waitFor(t, "blocked", "with one status write seen", func(*samplecrdv1.Network) bool { return writes.of("blocked") >= 1 })
	syncs := c.syncs.count(key) + len(c.syncs.failures(key))
	staysAt(t, "status writes of the unblocked Network", 1, func() int { return writes.of("blocked") })
	staysAt(t, "syncs of the unblocked Network since it reported the conflict", syncs, func() int {
		return c.syncs.count(key) + len(c.syncs.failures(key))
	})
	if got := s.events(t, "blocked", samplecrdv1.ReasonNameConflict); got != 1 {
		t.Errorf("%d NameConflict events, want 1", got)
	}

	// The other owner's row goes: the Network is programmed, without being edited.
	s.db.NBCtl(t, "lsp-del", port)
	n := s.waitReady(t, "blocked")
	checkProgrammed(t, s.db.Dump(t), n)
}

// events counts the events of the Network with the reason, summing their counts, once they have
// been written (the recorder writes in the background).
func (s *setup) events(t *testing.T, name, reason string) int {
	t.Helper()
	kube := kubernetes.NewForConfigOrDie(s.cfg)
	selector := fields.Set{"involvedObject.name": name, "reason": reason}.AsSelector().String()
	total := 0
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := kube.CoreV1().Events(s.ns).List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return false, nil
		}
		total = 0
		for _, e := range list.Items {
			total += eventCount(e)
		}
		return total > 0, nil
	})
	if err != nil {
		return 0
	}
	return total
}

func eventCount(e corev1.Event) int {
	switch {
	case e.Series != nil:
		return int(e.Series.Count)
	case e.Count > 0:
		return int(e.Count)
	}
	return 1
}

// TestFastEmptyRestart kills ovsdb-server, replaces its database with an empty one and starts it
// again within a few milliseconds, before the backend's first reconnection attempt: the
// controller must notice that it reconnected and rebuild every Network's rows, long before the
// informer's resync (an hour here), and the statuses name the new switches.
func TestFastEmptyRestart(t *testing.T) {
	const count = 30
	s := newSetup(t)
	s.startController(t, func(o *app.Options) { o.ResyncPeriod = time.Hour })
	for i := range count {
		s.create(t, fmt.Sprintf("n%d", i), fmt.Sprintf("10.%d.0.0/16", i), fmt.Sprintf("10.%d.0.1", i))
	}
	for i := range count {
		s.waitReady(t, fmt.Sprintf("n%d", i))
	}
	before := s.db.Dump(t)

	empty := s.db.CreateEmpty(t)
	start := time.Now()
	s.db.Kill(t)
	s.db.ReplaceDatabase(t, empty)
	s.db.Start(t)
	t.Logf("ovsdb-server was back with an empty database after %v", time.Since(start))

	rows := s.waitRows(t, "every Network's rows, rebuilt", func(r framework.OVNRows) bool {
		return len(r.Switches) == count && len(r.SwitchPorts) == count && len(r.RouterPorts) == count
	})
	list := s.waitAll(t, "naming the rebuilt switches", func(n *samplecrdv1.Network) bool {
		return ready(n) == "True/Synced" && rows.SwitchByUUID(statusID(n))
	})
	t.Logf("every Network rebuilt %v after the restart", time.Since(start))
	rows = s.db.Dump(t)
	for i := range list {
		checkProgrammed(t, rows, &list[i])
		if before.SwitchByUUID(statusID(&list[i])) {
			t.Errorf("Network %s still names its switch of before the restart", list[i].Name)
		}
	}
}

// waitAll waits until every Network of the setup's namespace satisfies cond, and returns them.
func (s *setup) waitAll(t *testing.T, what string, cond func(*samplecrdv1.Network) bool) []samplecrdv1.Network {
	t.Helper()
	var items []samplecrdv1.Network
	var bad string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := s.client.SamplecrdV1().Networks(s.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		items = list.Items
		for i := range items {
			if !cond(&items[i]) {
				bad = fmt.Sprintf("%s: %+v", items[i].Name, items[i].Status)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for every Network to be %s: %v; one that is not: %s", what, err, bad)
	}
	return items
}
