package podnetwork

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/pkg/ipam"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// cluster is the manager's --cluster-name.
const cluster = "it"

// timeout bounds every wait.
const timeout = 2 * time.Minute

// setup is one test's namespace, ovsdb-server and manager.
type setup struct {
	t      *testing.T
	ctx    context.Context
	kube   kubernetes.Interface
	client clientset.Interface
	ns     string
	db     *framework.OVSDB
	mgr    *framework.Process
}

// newSetup starts an ovsdb-server and the manager (network and podnetwork controllers, no leader
// election) and creates a namespace with annotations. At the end of the test, while the manager
// still runs, it deletes the namespace's pods and Networks, so that the next test's manager does
// not find them.
func newSetup(t *testing.T, nsAnnotations map[string]string) *setup {
	t.Helper()
	cfg := env.Config(t)
	s := &setup{
		t: t, ctx: t.Context(),
		kube:   kubernetes.NewForConfigOrDie(cfg),
		client: clientset.NewForConfigOrDie(cfg),
		db:     framework.StartOVSDB(t),
	}
	s.ns = framework.CreateAnnotatedNamespace(t, s.kube, nsAnnotations)
	s.startManager()
	t.Cleanup(s.cleanup)
	return s
}

func (s *setup) startManager() {
	s.t.Helper()
	s.mgr = framework.StartProcess(s.t, "manager", managerBin,
		"--kubeconfig="+env.Kubeconfig(s.t), "--logging-format=json", "-v=2",
		"--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
		"--leader-elect=false", "--controllers=network,podnetwork",
		"--ovn-nb="+s.db.Endpoint(), "--cluster-name="+cluster)
}

func (s *setup) cleanup() {
	ctx := context.Background()
	if err := s.kube.CoreV1().Pods(s.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		s.t.Errorf("cleanup: deleting pods: %v", err)
	}
	if err := s.client.SamplecrdV1().Networks(s.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		s.t.Errorf("cleanup: deleting Networks: %v", err)
	}
	if s.mgr.Exited() {
		return
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := s.client.SamplecrdV1().Networks(s.ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 0, nil
	})
	if err != nil {
		s.t.Errorf("cleanup: the Networks of %s are not gone: %v", s.ns, err)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func (s *setup) waitFor(what string, cond func(ctx context.Context) (bool, error)) {
	s.t.Helper()
	if err := wait.PollUntilContextTimeout(s.ctx, 50*time.Millisecond, timeout, true, cond); err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// createNetwork creates a Network and waits until it is Ready.
func (s *setup) createNetwork(name, cidr, gateway string) *samplecrdv1.Network {
	s.t.Helper()
	_, err := s.client.SamplecrdV1().Networks(s.ns).Create(s.ctx, &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	var n *samplecrdv1.Network
	s.waitFor("Network "+name+" to be Ready", func(ctx context.Context) (bool, error) {
		n, err = s.client.SamplecrdV1().Networks(s.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady), nil
	})
	return n
}

func (s *setup) network(name string) *samplecrdv1.Network {
	s.t.Helper()
	n, err := s.client.SamplecrdV1().Networks(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

func podObject(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
}

// createPod creates a pod with annotations.
func (s *setup) createPod(name string, annotations map[string]string) *corev1.Pod {
	s.t.Helper()
	p, err := s.kube.CoreV1().Pods(s.ns).Create(s.ctx, podObject(name, annotations), metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// createPods creates count pods named prefix-N with annotations, from 8 concurrent clients, and
// returns how many it created before ctx ended or an error.
func (s *setup) createPods(ctx context.Context, prefix string, count int, annotations map[string]string) (int, error) {
	var next, created atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < count; i = int(next.Add(1)) - 1 {
				if _, err := s.kube.CoreV1().Pods(s.ns).Create(ctx, podObject(fmt.Sprintf("%s-%03d", prefix, i), annotations), metav1.CreateOptions{}); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				created.Add(1)
			}
		})
	}
	wg.Wait()
	return int(created.Load()), errors.Join(errs...)
}

func (s *setup) pods() []corev1.Pod {
	s.t.Helper()
	l, err := s.kube.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return l.Items
}

func (s *setup) pod(name string) *corev1.Pod {
	s.t.Helper()
	p, err := s.kube.CoreV1().Pods(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

func allocated(p *corev1.Pod) bool {
	return p.Annotations[samplecrdv1.AllocatedAnnotation] == "true"
}

// waitAllocated waits until every pod of the namespace is allocated, and there are count of them.
func (s *setup) waitAllocated(count int) []corev1.Pod {
	s.t.Helper()
	var pods []corev1.Pod
	s.waitFor(fmt.Sprintf("%d pods to be allocated", count), func(ctx context.Context) (bool, error) {
		l, err := s.kube.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		pods = l.Items
		if len(pods) != count {
			return false, nil
		}
		for i := range pods {
			if !allocated(&pods[i]) {
				return false, nil
			}
		}
		return true, nil
	})
	return pods
}

// podPorts returns the pod ports of the cluster in the database, by pod UID.
func (s *setup) podPorts() map[types.UID]nbdb.LogicalSwitchPort {
	s.t.Helper()
	ports := map[types.UID]nbdb.LogicalSwitchPort{}
	for _, p := range s.db.Dump(s.t).SwitchPorts {
		if uid := p.ExternalIDs[ovn.PodUIDKey]; uid != "" && p.ExternalIDs[ovn.OwnerKey] == cluster {
			ports[types.UID(uid)] = p
		}
	}
	return ports
}

// checkAttached checks that every pod is allocated on the Network with a distinct, usable address
// and the MAC made of it, that its annotations agree with the Network, and that exactly these pods
// have ports in the database, each on the Network's switch with the pod's addresses. It returns the
// problems found.
func (s *setup) checkAttached(n *samplecrdv1.Network, pods []corev1.Pod) []string {
	s.t.Helper()
	var problems []string
	prefix := netip.MustParsePrefix(n.Spec.Cidr)
	gateway := netip.MustParseAddr(n.Spec.Gateway)
	rows := s.db.Dump(s.t)
	var sw *nbdb.LogicalSwitch
	for i := range rows.Switches {
		if rows.Switches[i].ExternalIDs[ovn.UIDKey] == string(n.UID) {
			sw = &rows.Switches[i]
		}
	}
	if sw == nil {
		return []string{"the Network's switch is missing"}
	}
	ports := map[types.UID]nbdb.LogicalSwitchPort{}
	for _, p := range rows.SwitchPorts {
		if uid := p.ExternalIDs[ovn.PodUIDKey]; uid != "" {
			ports[types.UID(uid)] = p
		}
	}
	seen := map[netip.Addr]string{}
	for i := range pods {
		p := &pods[i]
		a := p.Annotations
		ipp, err := netip.ParsePrefix(a[samplecrdv1.AllocatedIPAnnotation])
		if err != nil || !allocated(p) {
			problems = append(problems, fmt.Sprintf("pod %s: not allocated (%v): %v", p.Name, err, a))
			continue
		}
		ip := ipp.Addr()
		if other, dup := seen[ip]; dup {
			problems = append(problems, fmt.Sprintf("pods %s and %s both have %s", other, p.Name, ip))
		}
		seen[ip] = p.Name
		switch {
		case !prefix.Contains(ip) || ipp.Bits() != prefix.Bits():
			problems = append(problems, fmt.Sprintf("pod %s: %s is not an address of %s", p.Name, ipp, prefix))
		case ip == gateway || ip == prefix.Addr() || (ip.Is4() && ip == lastAddr(prefix)):
			problems = append(problems, fmt.Sprintf("pod %s: %s is the gateway, network or broadcast address", p.Name, ip))
		}
		mac := ipam.MACFor(ip).String()
		want := map[string]string{
			samplecrdv1.AllocatedNetworkAnnotation:    n.Name,
			samplecrdv1.AllocatedNetworkUIDAnnotation: string(n.UID),
			samplecrdv1.AllocatedMACAnnotation:        mac,
			samplecrdv1.AllocatedGatewayAnnotation:    n.Spec.Gateway,
			samplecrdv1.LogicalSwitchAnnotation:       sw.Name,
		}
		for k, v := range want {
			if a[k] != v {
				problems = append(problems, fmt.Sprintf("pod %s: annotation %s is %q, want %q", p.Name, k, a[k], v))
			}
		}
		port, ok := ports[p.UID]
		if !ok {
			problems = append(problems, fmt.Sprintf("pod %s: no port", p.Name))
			continue
		}
		delete(ports, p.UID)
		addr := mac + " " + ip.String()
		if !slices.Equal(port.Addresses, []string{addr}) || !slices.Equal(port.PortSecurity, []string{addr}) {
			problems = append(problems, fmt.Sprintf("pod %s: port addresses %v, port_security %v, want [%s]", p.Name, port.Addresses, port.PortSecurity, addr))
		}
		if port.ExternalIDs[ovn.PodNameKey] != p.Name || port.ExternalIDs[ovn.PodNamespaceKey] != p.Namespace ||
			port.ExternalIDs[ovn.UIDKey] != string(n.UID) || port.ExternalIDs[ovn.OwnerKey] != cluster {
			problems = append(problems, fmt.Sprintf("pod %s: port external_ids %v", p.Name, port.ExternalIDs))
		}
		if !slices.Contains(sw.Ports, port.UUID) {
			problems = append(problems, fmt.Sprintf("pod %s: port %s is not on the Network's switch", p.Name, port.Name))
		}
	}
	for uid, p := range ports {
		problems = append(problems, fmt.Sprintf("port %s of pod %s/%s (uid %s) has no pod", p.Name, p.ExternalIDs[ovn.PodNamespaceKey], p.ExternalIDs[ovn.PodNameKey], uid))
	}
	return problems
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// waitAddresses waits until the Network's status counts used addresses of total.
func (s *setup) waitAddresses(name string, total, used int64) {
	s.t.Helper()
	var got *samplecrdv1.NetworkAddresses
	err := wait.PollUntilContextTimeout(s.ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := s.client.SamplecrdV1().Networks(s.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = n.Status.Addresses
		return got != nil && got.Total == total && got.Used == used && got.Available == total-used, nil
	})
	if err != nil {
		s.t.Fatalf("status.addresses of %s: %+v, want total %d, used %d, available %d", name, got, total, used, total-used)
	}
}

// waitEvent waits for a Warning event on the pod whose message contains substr, and returns it.
func (s *setup) waitEvent(pod, reason, substr string) corev1.Event {
	s.t.Helper()
	var found corev1.Event
	var last []string
	err := wait.PollUntilContextTimeout(s.ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := s.kube.CoreV1().Events(s.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
		if err != nil {
			return false, nil
		}
		last = nil
		for _, e := range l.Items {
			last = append(last, e.Reason+": "+e.Message)
			if e.Type == corev1.EventTypeWarning && e.Reason == reason && strings.Contains(e.Message, substr) {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		s.t.Fatalf("no Warning event %s containing %q on pod %s; events: %q", reason, substr, pod, last)
	}
	return found
}

func (s *setup) deletePod(name string) {
	s.t.Helper()
	if err := s.kube.CoreV1().Pods(s.ns).Delete(s.ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		s.t.Fatal(err)
	}
}
