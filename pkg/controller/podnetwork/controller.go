package podnetwork

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/podcount"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
	samplecrdinformers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions/samplecrd/v1"
	listers "github.com/samplecrd/samplecrd-controller/pkg/generated/listers/samplecrd/v1"
)

// ControllerName names the controller in logs, events and metrics.
const ControllerName = "podnetwork-controller"

// podUIDIndex indexes cached pods by UID: the backend names ports by pod UID.
const podUIDIndex = "metadata.uid"

// Controller attaches pods to Networks.
type Controller struct {
	// client patches pods' annotations.
	client kubernetes.Interface
	// pods is the metadata-only pod cache, indexed by namespace and UID.
	pods       cache.Indexer
	podsSynced cache.InformerSynced
	// namespaces is the metadata-only namespace cache, for the namespaces' default Network.
	namespaces       cache.Indexer
	namespacesSynced cache.InformerSynced
	// networksLister reads Networks, to find the one a pod asks for.
	networksLister listers.NetworkLister
	networksSynced cache.InformerSynced
	// backend tells the backend's readiness; ports holds the pods' ports.
	backend backend.Backend
	ports   backend.Ports
	// registry holds the allocations.
	registry *Registry
	// recorder records events on pods.
	recorder record.EventRecorder
	// queue holds the pods to sync.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// waiting holds the pods that wait for a Network: it does not exist, is not programmed, or has
	// no free address. A change of the Network, of its backend objects, or a release of one of its
	// addresses syncs them again.
	waiting waitSet
	// warned holds the last warning recorded on each pod, so that a pod that keeps waiting for the
	// same reason gets one event, not one per sync.
	warnedMu sync.Mutex
	warned   map[cache.ObjectName]string
	// firstReady is closed when the backend is first ready; readyOnce guards it. backendReady
	// triggers a check of every pod after a reconnection.
	firstReady   chan struct{}
	readyOnce    atomic.Bool
	backendReady chan struct{}
	runnerOpts   runner.Options
	logger       klog.Logger
}

// Options tune a Controller; the zero value gives the defaults.
type Options struct {
	// RateLimiter paces retries of failing keys; exponential from 5 ms to 30 s when nil.
	RateLimiter workqueue.TypedRateLimiter[cache.ObjectName]
	// Runner are the manager-wide settings of the work loop.
	Runner runner.Options
}

// NewController returns a pod network controller. pods and namespaces are metadata-only
// informers (annotations are metadata); registry is shared with the network controller. It
// registers its handlers and starts nothing.
func NewController(
	ctx context.Context,
	client kubernetes.Interface,
	pods, namespaces informers.GenericInformer,
	networks samplecrdinformers.NetworkInformer,
	be backend.Backend,
	ports backend.Ports,
	registry *Registry,
	recorder record.EventRecorder,
	opts Options,
) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](5*time.Millisecond, 30*time.Second)
	}
	c := &Controller{
		client:           client,
		pods:             pods.Informer().GetIndexer(),
		podsSynced:       pods.Informer().HasSynced,
		namespaces:       namespaces.Informer().GetIndexer(),
		namespacesSynced: namespaces.Informer().HasSynced,
		networksLister:   networks.Lister(),
		networksSynced:   networks.Informer().HasSynced,
		backend:          be,
		ports:            ports,
		registry:         registry,
		recorder:         recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter,
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: ControllerName}),
		warned:       map[cache.ObjectName]string{},
		firstReady:   make(chan struct{}),
		backendReady: make(chan struct{}, 1),
		runnerOpts:   opts.Runner,
		logger:       logger,
	}
	if err := pods.Informer().AddIndexers(cache.Indexers{podUIDIndex: indexByUID}); err != nil {
		return nil, fmt.Errorf("adding the pod UID index: %w", err)
	}
	if _, err := pods.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the pod event handler: %w", err)
	}
	if _, err := namespaces.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		UpdateFunc: c.updateNamespace,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the namespace event handler: %w", err)
	}
	if _, err := networks.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addNetwork,
		UpdateFunc: c.updateNetwork,
		DeleteFunc: c.deleteNetwork,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the Network event handler: %w", err)
	}
	registry.onNetworkChange(c.networkChanged)
	be.OnReady(c.backendBecameReady)
	if n, ok := be.(backend.Notifier); ok {
		n.OnChange(c.backendChanged)
	}
	return c, nil
}

func indexByUID(obj any) ([]string, error) {
	m, err := metaOf(obj)
	if err != nil {
		return nil, nil
	}
	return []string{string(m.GetUID())}, nil
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("object is %T, not one with metadata", obj)
	}
	return m, nil
}

func (c *Controller) addPod(obj any) {
	if m, err := metaOf(obj); err == nil {
		c.queue.Add(cache.ObjectName{Namespace: m.GetNamespace(), Name: m.GetName()})
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	o, err1 := metaOf(oldObj)
	n, err2 := metaOf(newObj)
	if err1 != nil || err2 != nil || o.GetResourceVersion() == n.GetResourceVersion() {
		return // a resync: nothing changed
	}
	c.queue.Add(cache.ObjectName{Namespace: n.GetNamespace(), Name: n.GetName()})
}

func (c *Controller) deletePod(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if m, err := metaOf(obj); err == nil {
		c.queue.Add(cache.ObjectName{Namespace: m.GetNamespace(), Name: m.GetName()})
	}
}

// updateNamespace syncs a namespace's pods when its default Network changes.
func (c *Controller) updateNamespace(oldObj, newObj any) {
	o, err1 := metaOf(oldObj)
	n, err2 := metaOf(newObj)
	if err1 != nil || err2 != nil || o.GetAnnotations()[samplecrdv1.NetworkAnnotation] == n.GetAnnotations()[samplecrdv1.NetworkAnnotation] {
		return
	}
	pods, err := c.pods.ByIndex(cache.NamespaceIndex, n.GetName())
	if err != nil {
		utilruntime.HandleErrorWithLogger(c.logger, err, "Listing the pods of a namespace whose default Network changed", "namespace", n.GetName())
		return
	}
	for _, p := range pods {
		c.addPod(p)
	}
}

func (c *Controller) addNetwork(obj any) {
	if n, ok := obj.(*samplecrdv1.Network); ok {
		c.wakeWaiting(cache.MetaObjectToName(n))
	}
}

func (c *Controller) updateNetwork(_, newObj any) {
	if n, ok := newObj.(*samplecrdv1.Network); ok {
		c.wakeWaiting(cache.MetaObjectToName(n))
	}
}

// deleteNetwork: a Network is deleted only once no pod holds its addresses, unless its finalizer
// was removed by hand; the pods that still do are released by their syncs.
func (c *Controller) deleteNetwork(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return
	}
	key := cache.MetaObjectToName(n)
	c.registry.Forget(n.UID)
	for _, p := range c.registry.podsOf(n.UID) {
		c.queue.Add(p)
	}
	c.wakeWaiting(key)
}

// networkChanged is the registry's function for a Network that opened or changed its spec: the
// pods that wait for it, and those on it (whose annotations say the old prefix or gateway).
func (c *Controller) networkChanged(network cache.ObjectName, attached []cache.ObjectName) {
	c.wakeWaiting(network)
	for _, p := range attached {
		c.queue.Add(p)
	}
}

// wakeWaiting syncs the pods that wait for the Network key.
func (c *Controller) wakeWaiting(key cache.ObjectName) {
	for _, p := range c.waiting.take(key) {
		c.queue.Add(p)
	}
}

// backendChanged is the backend's OnChange function: a pod's port changed (by someone else, or
// a row of another owner took or gave up its name), or a Network's objects changed, such as its
// switch appearing, which the pods waiting for it need.
func (c *Controller) backendChanged(change backend.Change) {
	if change.Pod != nil {
		c.queue.Add(cache.ObjectName{Namespace: change.Pod.Namespace, Name: change.Pod.Name})
		return
	}
	if change.Name != "" {
		c.wakeWaiting(cache.ObjectName{Namespace: change.Namespace, Name: change.Name})
	}
}

// backendBecameReady is the backend's OnReady function: the first readiness lets the controller
// restore what the backend holds and start; every later one checks every pod, since what changed
// while the backend was away was not reported.
func (c *Controller) backendBecameReady() {
	if c.readyOnce.CompareAndSwap(false, true) {
		close(c.firstReady)
		return
	}
	select {
	case c.backendReady <- struct{}{}:
	default:
	}
}

// Run attaches pods with workers workers until ctx is done (see runner.Run). Before the workers
// start, it restores the allocations from the pods' annotations (after which the network
// controller can count them), waits for the backend, and settles the ports it holds with the pods.
func (c *Controller) Run(ctx context.Context, workers int) {
	runner.Run(ctx, runner.Config{
		Name:          ControllerName,
		KeyName:       "pod",
		Queue:         c.queue,
		Sync:          c.syncPod,
		Workers:       workers,
		CachesSynced:  []cache.InformerSynced{c.podsSynced, c.namespacesSynced, c.networksSynced},
		BeforeWorkers: c.restore,
		Passes: []runner.Pass{
			{Name: "backend ready", Trigger: c.backendReady, Run: c.checkAll},
		},
		Options: c.runnerOpts,
	})
}

// checkAll syncs every pod.
func (c *Controller) checkAll(ctx context.Context) {
	pods := c.pods.List()
	klog.FromContext(ctx).Info("Backend is ready again: checking every pod against it", "pods", len(pods))
	for _, p := range pods {
		c.addPod(p)
	}
}

// waitSet holds pod keys by the Network key they wait for.
type waitSet struct {
	mu   sync.Mutex
	pods map[cache.ObjectName]map[cache.ObjectName]struct{}
	// of is the Network each waiting pod waits for.
	of map[cache.ObjectName]cache.ObjectName
}

func (w *waitSet) add(network, pod cache.ObjectName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods == nil {
		w.pods = map[cache.ObjectName]map[cache.ObjectName]struct{}{}
		w.of = map[cache.ObjectName]cache.ObjectName{}
	}
	if prev, ok := w.of[pod]; ok && prev != network {
		w.removeLocked(pod)
	}
	if w.pods[network] == nil {
		w.pods[network] = map[cache.ObjectName]struct{}{}
	}
	w.pods[network][pod] = struct{}{}
	w.of[pod] = network
}

func (w *waitSet) remove(pod cache.ObjectName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(pod)
}

func (w *waitSet) removeLocked(pod cache.ObjectName) {
	network, ok := w.of[pod]
	if !ok {
		return
	}
	delete(w.of, pod)
	delete(w.pods[network], pod)
	if len(w.pods[network]) == 0 {
		delete(w.pods, network)
	}
}

// take returns the pods waiting for network and forgets them: each sync adds its pod again if it
// still waits.
func (w *waitSet) take(network cache.ObjectName) []cache.ObjectName {
	w.mu.Lock()
	defer w.mu.Unlock()
	var pods []cache.ObjectName
	for p := range w.pods[network] {
		pods = append(pods, p)
		delete(w.of, p)
	}
	delete(w.pods, network)
	return pods
}

// TrimPod is a transform for the pod metadata informer that keeps what this controller reads (a
// pod's identity, its deletion and the annotations of this API group) and what the pod count
// reads (the identity), dropping labels, owner references and every other annotation.
func TrimPod(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	trimmed, err := podcount.TrimToIdentity(m)
	if err != nil {
		return nil, err
	}
	t := trimmed.(*metav1.PartialObjectMetadata)
	t.DeletionTimestamp = m.DeletionTimestamp
	t.Annotations = groupAnnotations(m.Annotations)
	return t, nil
}

// TrimNamespace is a transform for the namespace metadata informer that keeps a namespace's
// identity and its default Network.
func TrimNamespace(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	var ann map[string]string
	if v, ok := m.Annotations[samplecrdv1.NetworkAnnotation]; ok {
		ann = map[string]string{samplecrdv1.NetworkAnnotation: v}
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, Annotations: ann,
		},
	}, nil
}

// groupAnnotations returns the annotations of this API group, nil when there are none.
func groupAnnotations(all map[string]string) map[string]string {
	var out map[string]string
	for k, v := range all {
		if strings.HasPrefix(k, samplecrdv1.GroupName+"/") {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
