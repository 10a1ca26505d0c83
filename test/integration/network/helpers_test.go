package network

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	samplecrdscheme "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/scheme"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// cluster is the cluster name of the controllers the tests start.
const cluster = "it"

// timeout bounds every wait.
const timeout = 60 * time.Second

// setup is what every test needs: the API server's config and clients, a namespace of its own and
// an ovsdb-server of its own.
type setup struct {
	cfg    *rest.Config
	client clientset.Interface
	ns     string
	db     *framework.OVSDB
	// others are the test's namespaces besides ns (see addNamespace). A controller started while
	// there are some watches every namespace, not ns alone.
	others []string
	// backendOptions, when set, changes the OVN backend's options of startController (to an ssl:
	// endpoint, say).
	backendOptions func(*ovn.Options)
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	cfg := env.Config(t)
	db := framework.StartOVSDB(t)
	s := &setup{cfg: cfg, client: clientset.NewForConfigOrDie(cfg), db: db}
	s.ns = framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	return s
}

// addNamespace creates another namespace for the test, and returns a setup that acts in it, with
// the same API server and ovsdb-server; s's controller, started after, watches both, and s's cleanup
// deletes the Networks of both.
func (s *setup) addNamespace(t *testing.T) *setup {
	t.Helper()
	return s.addAnnotatedNamespace(t, nil)
}

// addAnnotatedNamespace is addNamespace with the namespace's annotations, such as
// samplecrdv1.AllowedCIDRsAnnotation.
func (s *setup) addAnnotatedNamespace(t *testing.T, annotations map[string]string) *setup {
	t.Helper()
	ns := framework.CreateAnnotatedNamespace(t, kubernetes.NewForConfigOrDie(s.cfg), annotations)
	s.others = append(s.others, ns)
	return &setup{cfg: s.cfg, client: s.client, ns: ns, db: s.db}
}

// controller is a network controller running in this process, wired as the manager wires it: a
// Network informer factory, the OVN backend, an event broadcaster to the API server.
type controller struct {
	// syncs counts the syncs of each key, as the runner reports them.
	syncs    *syncCounter
	informer cache.SharedIndexInformer
	// backend is the controller's OVN backend.
	backend  *ovn.Backend
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
	cleanup  []func()
}

// syncCounter is a runner.Observer that counts successful and failed syncs per key.
type syncCounter struct {
	mu     sync.Mutex
	ok     map[cache.ObjectName]int
	failed map[cache.ObjectName][]error
}

func (s *syncCounter) ObserveSync(_ string, key cache.ObjectName, _ time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.failed == nil {
			s.failed = map[cache.ObjectName][]error{}
		}
		s.failed[key] = append(s.failed[key], err)
		return
	}
	s.ok[key]++
}

// failures are the errors of key's failed syncs.
func (s *syncCounter) failures(key cache.ObjectName) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failed[key])
}

// snapshot is how many times each key was synced, with or without error.
func (s *syncCounter) snapshot() map[cache.ObjectName]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[cache.ObjectName]int, len(s.ok)+len(s.failed))
	for key, n := range s.ok {
		out[key] += n
	}
	for key, errs := range s.failed {
		out[key] += len(errs)
	}
	return out
}

// count is how many times key was synced without error.
func (s *syncCounter) count(key cache.ObjectName) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok[key]
}

// startController runs a network controller against the setup's API server and ovsdb-server until
// stop or the end of the test, with the manager's defaults unless tweak changes them. Before it
// stops at the end of the test, the test's Networks are deleted and their deletion waited for.
func (s *setup) startController(t *testing.T, tweak func(*app.Options)) *controller {
	t.Helper()
	o := app.NewOptions()
	if tweak != nil {
		tweak(o)
	}
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2)))
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	c := &controller{syncs: &syncCounter{ok: map[cache.ObjectName]int{}}, cancel: cancel, done: make(chan struct{})}

	cfg := rest.CopyConfig(s.cfg)
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	client := clientset.NewForConfigOrDie(cfg)
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubernetes.NewForConfigOrDie(cfg).CoreV1().Events("")})
	scheme := runtime.NewScheme()
	utilruntime.Must(samplecrdscheme.AddToScheme(scheme))
	backendOpts := ovn.Options{Endpoint: s.db.Endpoint(), ClusterName: cluster}
	if s.backendOptions != nil {
		s.backendOptions(&backendOpts)
	}
	be, err := ovn.New(context.WithoutCancel(ctx), backendOpts)
	if err != nil {
		t.Fatalf("creating the OVN backend: %v", err)
	}
	// The manager's cache: Networks as the controller reads them (cmd/samplecrd-controller/app).
	factoryOpts := []informers.SharedInformerOption{informers.WithTransform(network.TrimForCache)}
	if len(s.others) == 0 {
		factoryOpts = append(factoryOpts, informers.WithNamespace(s.ns))
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, o.ResyncPeriod, factoryOpts...)
	networks := factory.Samplecrd().V1().Networks()
	nc, err := network.NewController(ctx, client, networks, be,
		broadcaster.NewRecorder(scheme, corev1.EventSource{Component: network.ControllerName}), network.Options{
			OrphanSweepInterval: o.OrphanSweepInterval,
			ResyncSpread:        o.ResyncPeriod / 2,
			Runner:              runner.Options{ShutdownTimeout: o.ShutdownTimeout, Observer: c.syncs},
		})
	if err != nil {
		t.Fatalf("creating the network controller: %v", err)
	}
	c.informer = networks.Informer()
	c.backend = be
	factory.Start(ctx.Done())
	go func() {
		defer close(c.done)
		nc.Run(ctx, o.NetworkWorkers)
	}()
	// In the manager's order: the controller, then the informers, the backend, the events.
	c.cleanup = []func(){factory.Shutdown, be.Close, broadcaster.Shutdown}
	t.Cleanup(func() { c.stop(t) })
	t.Cleanup(func() { s.deleteAll(t) })
	return c
}

// stop stops the controller and waits for it to return; stopping twice is fine.
func (c *controller) stop(t *testing.T) {
	t.Helper()
	c.stopOnce.Do(func() {
		c.cancel()
		select {
		case <-c.done:
		case <-time.After(timeout):
			t.Errorf("the controller did not stop within %v", timeout)
		}
		for _, f := range c.cleanup {
			f()
		}
	})
}

// deleteAll deletes the setup's Networks, in all its namespaces, and waits until they are gone,
// finalizers and all.
func (s *setup) deleteAll(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	namespaces := append([]string{s.ns}, s.others...)
	for _, ns := range namespaces {
		if err := s.client.SamplecrdV1().Networks(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			t.Errorf("deleting the test's Networks in %s: %v", ns, err)
			return
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, ns := range namespaces {
			list, err := s.client.SamplecrdV1().Networks(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(list.Items) != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("the test's Networks were not all deleted: %v", err)
	}
}

func (s *setup) create(t *testing.T, name, cidr, gateway string) *samplecrdv1.Network {
	t.Helper()
	n, err := s.client.SamplecrdV1().Networks(s.ns).Create(context.Background(), &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Network %s: %v", name, err)
	}
	return n
}

// ready describes the Ready condition of n as "Status/Reason", or "" without one or when the
// condition describes an older generation.
func ready(n *samplecrdv1.Network) string {
	c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
	if c == nil || c.ObservedGeneration != n.Generation {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// waitFor polls the Network until cond holds, and returns it.
func (s *setup) waitFor(t *testing.T, name, what string, cond func(*samplecrdv1.Network) bool) *samplecrdv1.Network {
	t.Helper()
	var last *samplecrdv1.Network
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := s.client.SamplecrdV1().Networks(s.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = n
		return cond(n), nil
	})
	if err != nil {
		t.Fatalf("waiting for Network %s to be %s: %v; last seen: status %+v", name, what, err, statusOf(last))
	}
	return last
}

func statusOf(n *samplecrdv1.Network) any {
	if n == nil {
		return nil
	}
	return n.Status
}

func (s *setup) waitReady(t *testing.T, name string) *samplecrdv1.Network {
	t.Helper()
	return s.waitFor(t, name, "Ready", func(n *samplecrdv1.Network) bool { return ready(n) == "True/Synced" })
}

// waitConflict waits until the Network reports CIDRConflict with the message.
func (s *setup) waitConflict(t *testing.T, name, message string) *samplecrdv1.Network {
	t.Helper()
	return s.waitFor(t, name, "CIDRConflict: "+message, func(n *samplecrdv1.Network) bool {
		c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
		return ready(n) == "False/CIDRConflict" && c.Message == message
	})
}

func (s *setup) waitGone(t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := s.client.SamplecrdV1().Networks(s.ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("waiting for Network %s to be gone: %v", name, err)
	}
}

// waitRows polls the database until cond holds for its rows, and returns them.
func (s *setup) waitRows(t *testing.T, what string, cond func(framework.OVNRows) bool) framework.OVNRows {
	t.Helper()
	var last framework.OVNRows
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = s.db.Dump(t)
		return cond(last), nil
	})
	if err != nil {
		t.Fatalf("waiting for the OVN database to show %s: %v; last rows: %+v", what, err, last)
	}
	return last
}

// owned selects the rows this cluster wrote for the Network with uid.
func owned(r framework.OVNRows, uid types.UID) framework.OVNRows {
	return r.OfUID(cluster, uid)
}

// checkProgrammed checks that the database holds exactly one switch, switch port and router port
// for n, as its spec calls for, wired to its namespace's router (framework.CheckProgrammed).
func checkProgrammed(t *testing.T, all framework.OVNRows, n *samplecrdv1.Network) {
	t.Helper()
	p := framework.CheckProgrammed(all, cluster, n)
	if p.Counts != "" {
		t.Fatalf("Network %s: %s; want one each", n.Name, p.Counts)
	}
	for _, f := range p.Fields {
		t.Errorf("Network %s: %s", n.Name, f)
	}
}

// checkSwitch checks that the database holds exactly one logical switch for n, an IPv4 Network,
// with its cidr as subnet. It leaves routers and ports alone: how switches reach a router is the
// backend's business.
func checkSwitch(t *testing.T, all framework.OVNRows, n *samplecrdv1.Network) {
	t.Helper()
	r := owned(all, n.UID)
	if len(r.Switches) != 1 {
		t.Errorf("Network %s/%s: %d switches, want one", n.Namespace, n.Name, len(r.Switches))
		return
	}
	if got := r.Switches[0].OtherConfig[ovn.SubnetKey]; got != n.Spec.Cidr {
		t.Errorf("Network %s/%s: switch subnet %q, want %q", n.Namespace, n.Name, got, n.Spec.Cidr)
	}
}

// checkNoSwitch checks that the database holds no logical switch for n.
func checkNoSwitch(t *testing.T, all framework.OVNRows, n *samplecrdv1.Network) {
	t.Helper()
	if r := owned(all, n.UID); len(r.Switches) != 0 {
		t.Errorf("Network %s/%s, which must not be programmed, has %d switches", n.Namespace, n.Name, len(r.Switches))
	}
}

func statusID(n *samplecrdv1.Network) string {
	if n.Status.Backend == nil {
		return ""
	}
	return n.Status.Backend.ID
}
