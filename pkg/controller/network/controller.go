package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/worker"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	samplecrdinformers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions/samplecrd/v1"
	listers "github.com/samplecrd/samplecrd-controller/pkg/generated/listers/samplecrd/v1"
)

// ControllerName names the controller in logs, events and metrics.
const ControllerName = "network-controller"

// Finalizer is put on every Network before its first backend write, and removed once the backend
// no longer holds it, so that a Network deleted while the controller is down is still cleaned up.
const Finalizer = "samplecrd.k8s.io/network-backend"

// DefaultOrphanSweepInterval is how often the backend is searched for objects whose Network is gone.
const DefaultOrphanSweepInterval = 5 * time.Minute

// DefaultBackendStartupWait is how long Run waits for the backend before it starts syncing anyway.
const DefaultBackendStartupWait = 10 * time.Second

// Controller reconciles Networks into a backend.
type Controller struct {
	// client writes finalizers and status.
	client clientset.Interface
	// networksLister reads the informer cache: the desired state.
	networksLister listers.NetworkLister
	// networksIndexer finds overlapping Networks through the CIDR indexes.
	networksIndexer cache.Indexer
	// networks reads the informer cache, or this controller's own last write to a Network when the
	// cache has not caught up with it yet. Without it, a sync that follows a write (the write's own
	// event, or an event queued meanwhile) sees the object as it was before the write and repeats
	// the write and its event.
	networks cache.MutationCache
	// networksSynced reports whether the Network cache has synced.
	networksSynced cache.InformerSynced
	// backend holds the actual state.
	backend backend.Backend
	// recorder records events on Networks.
	recorder record.EventRecorder
	// queue holds the Networks to sync. A key is never handled by two workers at once.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// clock stamps conditions.
	clock clock.PassiveClock
	// orphanSweepInterval is how often orphans are searched for after the one at start-up.
	orphanSweepInterval time.Duration
	// backendStartupWait is how long Run waits for the backend before it starts workers.
	backendStartupWait time.Duration
	// resyncSpread bounds the random delay of the drift check of a periodic resync.
	resyncSpread time.Duration
}

// Options tune a Controller; the zero value gives the defaults.
type Options struct {
	// OrphanSweepInterval is how often backend objects whose Network is gone are removed;
	// DefaultOrphanSweepInterval when zero.
	OrphanSweepInterval time.Duration
	// BackendStartupWait is how long Run waits for the backend to be ready before it starts
	// syncing; DefaultBackendStartupWait when zero.
	BackendStartupWait time.Duration
	// ResyncSpread spreads the drift checks of a periodic resync over this long (each Network is
	// checked after a random delay below it); zero checks them all at once. Drift the backend
	// reports (see backend.Notifier) is repaired at once whatever this says.
	ResyncSpread time.Duration
	// RateLimiter paces retries of failing keys; exponential from 5 ms to 30 s when nil.
	RateLimiter workqueue.TypedRateLimiter[cache.ObjectName]
}

// NewController returns a network controller. It registers its event handlers and indexes on the
// informer but starts nothing: the caller starts the informer factory once every controller is built.
func NewController(
	ctx context.Context,
	client clientset.Interface,
	networkInformer samplecrdinformers.NetworkInformer,
	be backend.Backend,
	recorder record.EventRecorder,
	opts Options,
) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.OrphanSweepInterval == 0 {
		opts.OrphanSweepInterval = DefaultOrphanSweepInterval
	}
	if opts.BackendStartupWait == 0 {
		opts.BackendStartupWait = DefaultBackendStartupWait
	}
	if opts.RateLimiter == nil {
		// The default controller rate limiter backs off to 1000 s; a backend that was down for a
		// minute should not leave Networks waiting a quarter of an hour after it returns.
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](5*time.Millisecond, 30*time.Second)
	}
	c := &Controller{
		client:          client,
		networksLister:  networkInformer.Lister(),
		networksIndexer: networkInformer.Informer().GetIndexer(),
		networksSynced:  networkInformer.Informer().HasSynced,
		backend:         be,
		recorder:        recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter,
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: ControllerName}),
		clock:               clock.RealClock{},
		orphanSweepInterval: opts.OrphanSweepInterval,
		backendStartupWait:  opts.BackendStartupWait,
		resyncSpread:        opts.ResyncSpread,
	}
	c.networks = cache.NewIntegerResourceVersionMutationCacheWithOptions(logger, c.networksIndexer, cache.MutationCacheOptions{
		// Long enough for any watch event to arrive; the informer's own events evict entries
		// sooner (OnAddOrUpdate below).
		TTL:          time.Minute,
		MaxCacheSize: 10000,
	})
	if err := networkInformer.Informer().AddIndexers(indexers()); err != nil {
		return nil, fmt.Errorf("adding the CIDR indexes: %w", err)
	}
	if _, err := networkInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addNetwork,
		UpdateFunc: c.updateNetwork,
		DeleteFunc: c.deleteNetwork,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the Network event handler: %w", err)
	}
	if n, ok := be.(backend.Notifier); ok {
		// Drift repair at once: the backend tells which Network owns a row changed out of band.
		n.OnChange(func(o backend.Owned) {
			c.queue.Add(cache.ObjectName{Namespace: o.Namespace, Name: o.Name})
		})
	}
	return c, nil
}

func (c *Controller) addNetwork(obj any) {
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return
	}
	c.networks.OnAddOrUpdate(n)
	c.queue.Add(cache.MetaObjectToName(n))
	c.enqueueYoungerOverlapping(n)
}

func (c *Controller) updateNetwork(oldObj, newObj any) {
	oldN, ok1 := oldObj.(*samplecrdv1.Network)
	newN, ok2 := newObj.(*samplecrdv1.Network)
	if !ok1 || !ok2 {
		return
	}
	c.networks.OnAddOrUpdate(newN)
	if oldN.ResourceVersion == newN.ResourceVersion {
		// A periodic resync. The tutorial drops these; here they are the drift check: the sync
		// compares the backend with the spec and writes nothing when they agree. Nothing about
		// other Networks changed, so no overlap fan-out. The resync hands over every Network at
		// once: spread them out, so that a new Network does not wait behind thousands of checks.
		c.queue.AddAfter(cache.MetaObjectToName(newN), c.resyncDelay())
		return
	}
	c.queue.Add(cache.MetaObjectToName(newN))
	if oldN.Spec.Cidr != newN.Spec.Cidr {
		c.enqueueYoungerOverlapping(oldN)
	}
	if oldN.Spec.Cidr != newN.Spec.Cidr || oldN.DeletionTimestamp.IsZero() != newN.DeletionTimestamp.IsZero() {
		c.enqueueYoungerOverlapping(newN)
	}
}

func (c *Controller) deleteNetwork(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		utilruntime.HandleError(fmt.Errorf("network controller: deleted object is %T, not a Network", obj))
		return
	}
	c.networks.OnDelete(n)
	c.queue.Add(cache.MetaObjectToName(n))
	// The next Network in line for n's CIDR may now be programmed.
	c.enqueueYoungerOverlapping(n)
}

// resyncDelay is a random delay below resyncSpread, or none when it is zero.
func (c *Controller) resyncDelay() time.Duration {
	if c.resyncSpread <= 0 {
		return 0
	}
	return rand.N(c.resyncSpread)
}

// enqueueYoungerOverlapping enqueues the Networks whose conflict status n's appearance, change or
// disappearance may change: those overlapping it that it takes precedence over.
func (c *Controller) enqueueYoungerOverlapping(n *samplecrdv1.Network) {
	p, ok := networkPrefix(n)
	if !ok {
		return
	}
	others, err := overlapping(c.networksIndexer, p, n)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("finding Networks overlapping %s: %w", klog.KObj(n), err))
		return
	}
	for _, o := range others {
		if older(n, o) {
			c.queue.Add(cache.MetaObjectToName(o))
		}
	}
}

// Run waits for the cache, removes orphans, starts workers and blocks until ctx is done; then it
// shuts the queue down and waits for the workers to finish the item in hand.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting controller", "controller", ControllerName, "workers", workers)
	defer logger.Info("Shutting down controller", "controller", ControllerName)

	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.networksSynced) {
		return
	}
	// A manager that just started is usually still connecting to the backend. Syncing now would
	// mark every Network it reaches BackendError and back to Synced a moment later: two status
	// writes and two events each, for nothing. Wait a little for the backend; one that stays down
	// is reported on the Networks as usual.
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, c.backendStartupWait, true,
		func(context.Context) (bool, error) { return c.backend.Ready() == nil, nil }); err != nil {
		if ctx.Err() != nil {
			return
		}
		logger.Info("Backend is not ready: starting anyway, Networks will report it", "waited", c.backendStartupWait, "err", c.backend.Ready())
	}

	var wg wait.Group
	for range workers {
		wg.StartWithContext(ctx, func(ctx context.Context) {
			wait.UntilWithContext(ctx, c.loop().Run, time.Second)
		})
	}
	wg.StartWithContext(ctx, func(ctx context.Context) {
		// At start-up, then periodically: a sweep that fails (backend down) is retried at the next,
		// or when the backend comes back (below).
		wait.UntilWithContext(ctx, c.sweepOrphans, c.orphanSweepInterval)
	})
	wg.StartWithContext(ctx, func(ctx context.Context) {
		wasReady := c.backend.Ready() == nil
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			ready := c.backend.Ready() == nil
			if ready && !wasReady {
				c.backendReturned(ctx)
			}
			wasReady = ready
		}, backendReadinessInterval)
	})
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
}

// backendReadinessInterval is how often Run checks whether the backend came back.
const backendReadinessInterval = time.Second

// backendReturned handles a backend that is ready again after it was not: whatever changed in it
// meanwhile was not reported, so every Network is checked against it again, and orphans swept.
func (c *Controller) backendReturned(ctx context.Context) {
	networks, err := c.networksLister.List(labels.Everything())
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Listing Networks to resync after the backend returned")
		return
	}
	klog.FromContext(ctx).Info("Backend is ready again: checking every Network against it", "networks", len(networks))
	for _, n := range networks {
		c.queue.Add(cache.MetaObjectToName(n))
	}
	c.sweepOrphans(ctx)
}

func (c *Controller) sweepOrphans(ctx context.Context) {
	if err := c.removeOrphans(ctx); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Removing orphaned backend objects")
	}
}

// loop is the work loop: each key is synced with a logger that names the Network.
func (c *Controller) loop() worker.Loop[cache.ObjectName] {
	return worker.Loop[cache.ObjectName]{
		Controller: ControllerName,
		Queue:      c.queue,
		Sync: func(ctx context.Context, key cache.ObjectName) error {
			logger := klog.LoggerWithValues(klog.FromContext(ctx), "network", key)
			return c.syncNetwork(klog.NewContext(ctx, logger), key)
		},
	}
}
