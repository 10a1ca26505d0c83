package podnetwork

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/podnetwork"
)

// TestManyPods: 200 pods on one Network each get a distinct address with a matching port; the
// Network's status counts them with far fewer writes than pods; deleting 50 frees 50 and leaves
// the others as they were.
func TestManyPods(t *testing.T) {
	s := newSetup(t, nil)
	n := s.createNetwork("web", "10.20.0.0/16", "10.20.0.1")

	// Count the Network's status writes during the burst.
	w, err := s.client.SamplecrdV1().Networks(s.ns).Watch(s.ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=web", ResourceVersion: n.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	writes := make(chan int)
	go func() {
		count := 0
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified {
				continue
			}
			count++
			if got := ev.Object.(*samplecrdv1.Network).Status.Addresses; got != nil && got.Used == 200 {
				break
			}
		}
		writes <- count
	}()

	if _, err := s.createPods(s.ctx, "pod", 200, map[string]string{samplecrdv1.NetworkAnnotation: "web"}); err != nil {
		t.Fatal(err)
	}
	pods := s.waitAllocated(200)
	s.waitAddresses("web", 65533, 200)
	statusWrites := <-writes
	t.Logf("status writes of the Network while 200 pods were attached: %d", statusWrites)
	if statusWrites > 40 {
		t.Errorf("the Network's status was written %d times for 200 pods, want it coalesced (at most 40)", statusWrites)
	}
	if problems := s.checkAttached(s.network("web"), pods); len(problems) > 0 {
		t.Fatalf("%d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}

	// Delete 50: their ports go, the rest stay untouched.
	kept := map[string]string{}
	for i, p := range pods {
		if i%4 == 0 {
			s.deletePod(p.Name)
			continue
		}
		kept[p.Name] = p.ResourceVersion
	}
	s.waitAddresses("web", 65533, 150)
	s.waitFor("50 ports to go", func(context.Context) (bool, error) { return len(s.podPorts()) == 150, nil })
	left := s.pods()
	if problems := s.checkAttached(s.network("web"), left); len(problems) > 0 {
		t.Fatalf("after deleting 50, %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	for _, p := range left {
		if kept[p.Name] != p.ResourceVersion {
			t.Errorf("pod %s was written after it was allocated (resourceVersion %s, then %s)", p.Name, kept[p.Name], p.ResourceVersion)
		}
	}
}

// TestStaticAddress: a pod gets the address it asks for when it is inside the cidr and free;
// otherwise none, with a Warning event that says why.
func TestStaticAddress(t *testing.T) {
	s := newSetup(t, nil)
	n := s.createNetwork("db", "10.21.0.0/24", "10.21.0.1")
	ask := func(ip string) map[string]string {
		return map[string]string{samplecrdv1.NetworkAnnotation: "db", samplecrdv1.IPAddressAnnotation: ip}
	}
	s.createPod("first", ask("10.21.0.50"))
	s.waitFor("the first pod to be allocated", func(context.Context) (bool, error) { return allocated(s.pod("first")), nil })
	if got := s.pod("first").Annotations[samplecrdv1.AllocatedIPAnnotation]; got != "10.21.0.50/24" {
		t.Errorf("the first pod got %s, want the 10.21.0.50/24 it asked for", got)
	}
	for _, tc := range []struct{ pod, ip, message string }{
		{"taken", "10.21.0.50", "address already allocated"},
		{"outside", "10.22.0.5", "not inside"},
		{"gateway", "10.21.0.1", "gateway"},
		{"broadcast", "10.21.0.255", "broadcast"},
		{"malformed", "10.21.0.x", "is not an IP address"},
	} {
		s.createPod(tc.pod, ask(tc.ip))
		e := s.waitEvent(tc.pod, podnetwork.ReasonAddressUnavailable, tc.message)
		t.Logf("%s: %s", tc.pod, e.Message)
		if p := s.pod(tc.pod); allocated(p) || p.Annotations[samplecrdv1.AllocatedIPAnnotation] != "" {
			t.Errorf("pod %s asking for %s was allocated: %v", tc.pod, tc.ip, p.Annotations)
		}
	}
	if ports := s.podPorts(); len(ports) != 1 {
		t.Errorf("%d pod ports, want the first pod's only", len(ports))
	}
	if problems := s.checkAttached(n, []corev1.Pod{*s.pod("first")}); len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
}

// TestExhaustion: on a full Network a pod gets a Warning event and no annotation, and is
// allocated, without being edited, once another pod goes.
func TestExhaustion(t *testing.T) {
	s := newSetup(t, nil)
	s.createNetwork("small", "10.23.0.0/29", "10.23.0.1") // .2 to .6: 5 addresses
	on := map[string]string{samplecrdv1.NetworkAnnotation: "small"}
	for i := range 5 {
		s.createPod(fmt.Sprintf("pod-%d", i), on)
	}
	s.waitAllocated(5)
	s.waitAddresses("small", 5, 5)
	s.createPod("late", on)
	s.waitEvent("late", podnetwork.ReasonAddressUnavailable, "no free address")
	if p := s.pod("late"); allocated(p) {
		t.Fatalf("a pod was allocated on a full Network: %v", p.Annotations)
	}
	rv := s.pod("late").ResourceVersion
	s.deletePod("pod-2")
	s.waitFor("the waiting pod to be allocated", func(context.Context) (bool, error) { return allocated(s.pod("late")), nil })
	late := s.pod("late")
	if got := late.Annotations[samplecrdv1.AllocatedIPAnnotation]; got != "10.23.0.4/29" {
		t.Errorf("the waiting pod got %s, want the freed 10.23.0.4/29", got)
	}
	t.Logf("the waiting pod was at resourceVersion %s, allocated at %s (one patch)", rv, late.ResourceVersion)
	if problems := s.checkAttached(s.network("small"), s.pods()); len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
	s.waitAddresses("small", 5, 5)
}

// TestNamespaceDefault: a namespace's annotation attaches its pods that do not name a Network; a
// pod's own annotation wins, and an empty one attaches it to none; a pod that stops asking is
// detached.
func TestNamespaceDefault(t *testing.T) {
	s := newSetup(t, map[string]string{samplecrdv1.NetworkAnnotation: "default-net"})
	s.createNetwork("default-net", "10.24.0.0/24", "10.24.0.1")
	s.createNetwork("other", "10.25.0.0/24", "10.25.0.1")
	s.createPod("plain", nil)
	s.createPod("own", map[string]string{samplecrdv1.NetworkAnnotation: "other"})
	s.createPod("none", map[string]string{samplecrdv1.NetworkAnnotation: ""})
	s.waitFor("two pods to be allocated", func(context.Context) (bool, error) {
		return allocated(s.pod("plain")) && allocated(s.pod("own")), nil
	})
	if got := s.pod("plain").Annotations[samplecrdv1.AllocatedNetworkAnnotation]; got != "default-net" {
		t.Errorf("the pod without an annotation is on %q, want the namespace's default-net", got)
	}
	if got := s.pod("own").Annotations[samplecrdv1.AllocatedNetworkAnnotation]; got != "other" {
		t.Errorf("the pod that names other is on %q", got)
	}
	s.waitAddresses("default-net", 253, 1)
	s.waitAddresses("other", 253, 1)
	if p := s.pod("none"); allocated(p) {
		t.Errorf("the pod with an empty annotation was allocated: %v", p.Annotations)
	}
	// The pod stops asking: detached, annotations and port gone.
	p := s.pod("own")
	p.Annotations[samplecrdv1.NetworkAnnotation] = ""
	if _, err := s.kube.CoreV1().Pods(s.ns).Update(s.ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the pod to be detached", func(context.Context) (bool, error) {
		a := s.pod("own").Annotations
		return a[samplecrdv1.AllocatedAnnotation] == "" && a[samplecrdv1.AllocatedIPAnnotation] == "", nil
	})
	s.waitAddresses("other", 253, 0)
	s.waitFor("one port left", func(context.Context) (bool, error) { return len(s.podPorts()) == 1, nil })
}

// TestDeleteWaitsForPods: a Network with pods is not removed: Ready=False, InUse, naming them,
// its switch kept, until they are gone.
func TestDeleteWaitsForPods(t *testing.T) {
	s := newSetup(t, nil)
	n := s.createNetwork("busy", "10.26.0.0/24", "10.26.0.1")
	for i := range 4 {
		s.createPod(fmt.Sprintf("pod-%d", i), map[string]string{samplecrdv1.NetworkAnnotation: "busy"})
	}
	s.waitAllocated(4)
	if err := s.client.SamplecrdV1().Networks(s.ns).Delete(s.ctx, "busy", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var msg string
	s.waitFor("Ready=False, InUse", func(ctx context.Context) (bool, error) {
		got, err := s.client.SamplecrdV1().Networks(s.ns).Get(ctx, "busy", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		c := meta.FindStatusCondition(got.Status.Conditions, samplecrdv1.ConditionReady)
		if c == nil || c.Reason != samplecrdv1.ReasonInUse {
			return false, nil
		}
		msg = c.Message
		return true, nil
	})
	t.Logf("InUse: %s", msg)
	if want := fmt.Sprintf("4 pods are attached: %s/pod-0, %s/pod-1, %s/pod-2 and 1 more", s.ns, s.ns, s.ns); !strings.Contains(msg, want) {
		t.Errorf("InUse message %q does not say %q", msg, want)
	}
	// A new pod asking for it waits.
	s.createPod("new", map[string]string{samplecrdv1.NetworkAnnotation: "busy"})
	s.waitEvent("new", podnetwork.ReasonAddressUnavailable, "being deleted")
	if problems := s.checkAttached(n, []corev1.Pod{*s.pod("pod-0"), *s.pod("pod-1"), *s.pod("pod-2"), *s.pod("pod-3")}); len(problems) > 0 {
		t.Fatalf("while the Network waits: %s", strings.Join(problems, "\n"))
	}
	for i := range 4 {
		s.deletePod(fmt.Sprintf("pod-%d", i))
	}
	s.waitFor("the Network to go", func(ctx context.Context) (bool, error) {
		_, err := s.client.SamplecrdV1().Networks(s.ns).Get(ctx, "busy", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	rows := s.db.Dump(t)
	if len(rows.Switches) != 0 || len(s.podPorts()) != 0 {
		t.Errorf("after the Network went: %d switches, %d pod ports, want none", len(rows.Switches), len(s.podPorts()))
	}
}

// TestSpecChangeWithPods: a cidr change that the pods' addresses do not fit waits, with
// AddressesInUse, and the switch keeps the old subnet; one they fit is applied, and the pods'
// annotations follow.
func TestSpecChangeWithPods(t *testing.T) {
	s := newSetup(t, nil)
	s.createNetwork("web", "10.27.0.0/24", "10.27.0.1")
	for i := range 3 {
		s.createPod(fmt.Sprintf("pod-%d", i), map[string]string{samplecrdv1.NetworkAnnotation: "web"})
	}
	s.waitAllocated(3)
	setCIDR := func(cidr, gw string) {
		t.Helper()
		n := s.network("web")
		n.Spec.Cidr, n.Spec.Gateway = cidr, gw
		if _, err := s.client.SamplecrdV1().Networks(s.ns).Update(s.ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setCIDR("10.28.0.0/24", "10.28.0.1")
	var msg string
	s.waitFor("AddressesInUse", func(ctx context.Context) (bool, error) {
		n, err := s.client.SamplecrdV1().Networks(s.ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
		if c == nil || c.Reason != samplecrdv1.ReasonAddressesInUse || c.ObservedGeneration != n.Generation {
			return false, nil
		}
		msg = c.Message
		return true, nil
	})
	t.Logf("AddressesInUse: %s", msg)
	if !strings.Contains(msg, "3 attached pods do not fit cidr 10.28.0.0/24") {
		t.Errorf("message %q does not say that 3 pods do not fit", msg)
	}
	if sub := s.db.Dump(t).Switches[0].OtherConfig[ovn.SubnetKey]; sub != "10.27.0.0/24" {
		t.Errorf("the switch's subnet is %q, want the old 10.27.0.0/24 kept", sub)
	}
	// Widened: they fit.
	setCIDR("10.27.0.0/23", "10.27.0.1")
	s.waitFor("the change to be applied", func(context.Context) (bool, error) {
		n := s.network("web")
		if !meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady) {
			return false, nil
		}
		for _, p := range s.pods() {
			if !strings.HasSuffix(p.Annotations[samplecrdv1.AllocatedIPAnnotation], "/23") {
				return false, nil
			}
		}
		return true, nil
	})
	if problems := s.checkAttached(s.network("web"), s.pods()); len(problems) > 0 {
		t.Error(strings.Join(problems, "\n"))
	}
	s.waitAddresses("web", 509, 3)
}

// TestRestartMidBurst: the manager is killed with SIGKILL while 300 pods are being created and
// attached, 20 of the attached pods are deleted while it is down, and it is started again: no
// address is held twice, no port is without a pod, every pod is allocated.
func TestRestartMidBurst(t *testing.T) {
	s := newSetup(t, nil)
	s.createNetwork("web", "10.29.0.0/22", "10.29.0.1")
	on := map[string]string{samplecrdv1.NetworkAnnotation: "web"}
	done := make(chan error, 1)
	go func() {
		_, err := s.createPods(s.ctx, "pod", 300, on)
		done <- err
	}()
	var atKill int
	s.waitFor("100 pods to be allocated", func(context.Context) (bool, error) {
		atKill = 0
		for _, p := range s.pods() {
			if allocated(&p) {
				atKill++
			}
		}
		return atKill >= 100, nil
	})
	s.mgr.Signal(t, syscall.SIGKILL)
	<-s.mgr.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Counted after the kill: the manager may have written more before it died.
	pods := s.pods()
	allocatedAtKill, portsAtKill := 0, len(s.podPorts())
	var deleted []string
	for _, p := range pods {
		if allocated(&p) {
			allocatedAtKill++
			if len(deleted) < 20 {
				deleted = append(deleted, p.Name)
			}
		}
	}
	for _, name := range deleted {
		s.deletePod(name)
	}
	t.Logf("killed with %d of 300 pods allocated and %d ports (%d allocated when the kill was decided); %d allocated pods deleted while it was down",
		allocatedAtKill, portsAtKill, atKill, len(deleted))

	s.startManager()
	after := s.waitAllocated(280)
	if problems := s.checkAttached(s.network("web"), after); len(problems) > 0 {
		t.Fatalf("after the restart, %d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	s.waitAddresses("web", 1021, 280)
	for _, e := range s.mgr.LogEntries("Restored pod allocations from their annotations") {
		t.Logf("restart: restored %v, refused %v", e["restored"], e["refused"])
		if e["refused"] != float64(0) {
			t.Errorf("the restart refused %v allocations recorded in pods' annotations", e["refused"])
		}
	}
	for _, e := range s.mgr.LogEntries("Settled the pods' ports with the pods") {
		t.Logf("restart: ports %v: kept %v, restored to their pods %v, removed %v", e["ports"], e["kept"], e["restored"], e["removed"])
	}
}

// TestOVNEmptied: ovsdb-server restarted on an empty database: the switch and every pod's port
// come back with the same addresses, and no pod is written again.
func TestOVNEmptied(t *testing.T) {
	s := newSetup(t, nil)
	s.createNetwork("web", "10.30.0.0/24", "10.30.0.1")
	if _, err := s.createPods(s.ctx, "pod", 20, map[string]string{samplecrdv1.NetworkAnnotation: "web"}); err != nil {
		t.Fatal(err)
	}
	before := s.waitAllocated(20)
	rv := map[string]string{}
	for _, p := range before {
		rv[p.Name] = p.ResourceVersion
	}
	empty := s.db.CreateEmpty(t)
	s.db.Kill(t)
	s.db.ReplaceDatabase(t, empty)
	s.db.Start(t)
	s.waitFor("the 20 ports to come back", func(context.Context) (bool, error) {
		return len(s.podPorts()) == 20 && len(s.checkAttached(s.network("web"), s.pods())) == 0, nil
	})
	if problems := s.checkAttached(s.network("web"), s.pods()); len(problems) > 0 {
		t.Fatal(strings.Join(problems, "\n"))
	}
	for _, p := range s.pods() {
		if rv[p.Name] != p.ResourceVersion {
			t.Errorf("pod %s was written again (resourceVersion %s, then %s)", p.Name, rv[p.Name], p.ResourceVersion)
		}
	}
}
