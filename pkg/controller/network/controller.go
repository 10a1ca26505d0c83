package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
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
	// runnerOpts are the manager-wide settings of the work loop.
	runnerOpts runner.Options
	// logger is for the event handlers, which have no context of their own.
	logger klog.Logger

	// firstReady is closed when the backend is first ready; readyOnce guards it.
	firstReady chan struct{}
	readyOnce  atomic.Bool
	// backendReady triggers checkAll; it holds at most one request.
	backendReady chan struct{}
	// orphans are the backend UIDs found without a Network, by the key the sync removes them under.
	orphans orphanSet
	// own are this controller's writes whose watch events have not arrived yet.
	own ownWrites
	// eventObject is what backend outages are recorded on, nil for none; they are recorded only
	// while running is set (by Run: a standby's backend connection sees the outage too, and the
	// leader's record is enough). away is when the backend stopped being ready, zero while it is.
	eventObject runtime.Object
	running     atomic.Bool
	awayMu      sync.Mutex
	away        time.Time
	// attachments are the pods attached to Networks, nil when no controller attaches pods.
	attachments Attachments
	// usageDue holds the Networks whose used addresses changed and whose sync is scheduled;
	// usageLimiter spaces those syncs (see UsageWritesPerSecond).
	usageDue     keySet
	usageLimiter workqueue.TypedRateLimiter[cache.ObjectName]
	// misconfiguredCause is the text of the backend's last reported misconfiguration (see
	// backend.MisconfiguredError), "" for none; guarded by awayMu.
	misconfiguredCause string
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
	// Runner are the manager-wide settings of the work loop: shutdown timeout and observer.
	Runner runner.Options
	// Attachments, when set, are the pods attached to Networks (the pod network controller's
	// registry): a Network is opened to pods once programmed, counts its addresses in its status,
	// and is neither removed nor changed in a way its pods' addresses do not fit while pods are
	// attached to it.
	Attachments Attachments
	// EventObject is the object that the backend's outages are recorded on, one Warning event
	// when it goes away and one Normal event when it returns (the manager's leader election
	// Lease, say); none when nil. Networks do not record them: a programmed Network keeps its
	// status through an outage.
	EventObject runtime.Object
}

// Attachments are the pods attached to Networks, as the network controller needs them. The pod
// network controller's Registry implements it.
type Attachments interface {
	// HasSynced reports whether every attachment is known; no Network is synced before.
	HasSynced() bool
	// SetNetwork opens the Network to pods with this cidr and gateway; when pods' addresses do not
	// fit them it changes nothing and returns an error that says so.
	SetNetwork(key cache.ObjectName, uid types.UID, cidr netip.Prefix, gateway netip.Addr) error
	// CloseNetwork stops giving addresses of the Network, when no pod holds one; otherwise it
	// returns how many do and names a few.
	CloseNetwork(uid types.UID) (attached int, some []cache.ObjectName)
	// Addresses counts the Network's addresses, nil when it has none open to pods.
	Addresses(uid types.UID) *samplecrdv1.NetworkAddresses
	// OnUsageChange registers fn, called with a Network whose used addresses changed.
	OnUsageChange(fn func(network cache.ObjectName))
}

// UsageCoalesce is how long a Network's status waits after a change of its used addresses: a burst
// of pods on a Network costs one status write per interval, not one per pod.
const UsageCoalesce = time.Second

// UsageWritesPerSecond bounds the status writes that changes of used addresses cause, across all
// Networks: a burst of pods spread over many Networks, each of which gets a pod now and then,
// would otherwise cost a status write per pod. While fewer Networks change, each is updated within
// UsageCoalesce; when more do, within their number divided by this rate.
const UsageWritesPerSecond = 10

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
		runnerOpts:          opts.Runner,
		logger:              logger,
		firstReady:          make(chan struct{}),
		backendReady:        make(chan struct{}, 1),
		eventObject:         opts.EventObject,
		attachments:         opts.Attachments,
		usageLimiter: &workqueue.TypedBucketRateLimiter[cache.ObjectName]{
			Limiter: rate.NewLimiter(rate.Limit(UsageWritesPerSecond), UsageWritesPerSecond)},
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
	if _, err := networkInformer.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    c.addNetwork,
		UpdateFunc: c.updateNetwork,
		DeleteFunc: c.deleteNetwork,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the Network event handler: %w", err)
	}
	if err := networkInformer.Informer().AddIndexers(cache.Indexers{uidIndex: indexByUID}); err != nil {
		return nil, fmt.Errorf("adding the UID index: %w", err)
	}
	if c.attachments != nil {
		c.attachments.OnUsageChange(c.usageChanged)
	}
	be.OnReady(c.backendBecameReady)
	be.OnNotReady(c.backendWentAway)
	if n, ok := be.(backend.Notifier); ok {
		// Drift repair at once: the backend tells which Network a row changed out of band is for.
		n.OnChange(c.backendChanged)
	}
	return c, nil
}

// usageChanged schedules the sync of a Network whose used addresses changed, once: later changes
// before it runs are counted by it. The sync comes UsageCoalesce later, or later still when many
// Networks are due (see UsageWritesPerSecond).
func (c *Controller) usageChanged(key cache.ObjectName) {
	if !c.usageDue.add(key) {
		return
	}
	c.queue.AddAfter(key, max(UsageCoalesce, c.usageLimiter.When(key)))
}

// keySet is a set of keys safe for concurrent use.
type keySet struct {
	mu   sync.Mutex
	keys map[cache.ObjectName]struct{}
}

// add adds key and reports whether it was not there.
func (s *keySet) add(key cache.ObjectName) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[key]; ok {
		return false
	}
	if s.keys == nil {
		s.keys = map[cache.ObjectName]struct{}{}
	}
	s.keys[key] = struct{}{}
	return true
}

func (s *keySet) remove(key cache.ObjectName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// uidIndex indexes Networks by UID: the backend names Networks by UID, and its rows' namespace
// and name may be wrong or missing.
const uidIndex = "metadata.uid"

func indexByUID(obj any) ([]string, error) {
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return nil, nil
	}
	return []string{string(n.UID)}, nil
}

// backendChanged is the backend's OnChange function: it enqueues the Network that a change in the
// backend concerns. A row of a UID the cache holds is that Network's, whatever namespace and name
// the row says (a row created for it is its own sync's write, and needs nothing); a row of another
// UID, created or changed, is an orphan candidate under the key it names, confirmed and removed by
// that key's sync. A row of another owner that took or gave up one of the names
// (Foreign) concerns the Network of that name, or every Network of the namespace for a router.
// It runs on the backend's event loop, so it only reads the cache and enqueues.
func (c *Controller) backendChanged(change backend.Change) {
	if change.Pod != nil {
		return // a pod's port: the pod controller's, and no sign of drift or orphans of Networks
	}
	if change.UID != "" {
		if objs, err := c.networksIndexer.ByIndex(uidIndex, string(change.UID)); err == nil && len(objs) > 0 {
			if n, ok := objs[0].(*samplecrdv1.Network); ok {
				if !change.Created {
					c.queue.Add(cache.MetaObjectToName(n))
				}
				// A row that appeared for a Network that exists is its sync's own write.
				return
			}
		}
		if change.Foreign {
			return // a port name of a UID that is no Network's
		}
		key := cache.ObjectName{Namespace: change.Namespace, Name: change.Name}
		c.orphans.add(key, change.UID)
		c.queue.Add(key)
		return
	}
	switch {
	case change.Name != "":
		c.queue.Add(cache.ObjectName{Namespace: change.Namespace, Name: change.Name})
	case change.Namespace != "":
		networks, err := c.networksLister.Networks(change.Namespace).List(labels.Everything())
		if err != nil {
			return
		}
		for _, n := range networks {
			c.queue.Add(cache.MetaObjectToName(n))
		}
	}
}

func (c *Controller) addNetwork(obj any, isInInitialList bool) {
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return
	}
	c.networks.OnAddOrUpdate(n)
	c.queue.Add(cache.MetaObjectToName(n))
	if isInInitialList {
		// Every Network of the initial list is enqueued by its own add, and no sync runs before
		// the list is in the cache: a fan-out would only repeat keys, at a cost that grows with
		// the square of the largest overlap component.
		return
	}
	if p, ok := conflictPrefix(n); ok {
		c.enqueueAffected(n, p)
	}
}

func (c *Controller) updateNetwork(oldObj, newObj any) {
	oldN, ok1 := oldObj.(*samplecrdv1.Network)
	newN, ok2 := newObj.(*samplecrdv1.Network)
	if !ok1 || !ok2 {
		return
	}
	c.networks.OnAddOrUpdate(newN)
	key := cache.MetaObjectToName(newN)
	if c.own.seen(key, oldN, newN) {
		// This controller's own write (a status or the finalizer): the sync that made it acted on
		// what it wrote, and retries, when it failed, with backoff. A write changes no spec, so
		// no other Network's conflict answer either.
		return
	}
	if oldN.ResourceVersion == newN.ResourceVersion {
		// A periodic resync: the drift check. The sync compares the backend with the spec and
		// writes nothing when they agree. Nothing about
		// other Networks changed, so no overlap fan-out. The resync hands over every Network at
		// once: spread them out, so that a new Network does not wait behind thousands of checks.
		c.queue.AddAfter(key, c.resyncDelay())
		return
	}
	c.queue.Add(key)
	if oldN.Spec == newN.Spec {
		// Status, finalizers, labels or the start of the deletion: none changes which Networks
		// conflict (a deleting Network keeps its backend objects until its finalizer goes).
		return
	}
	oldP, oldOK := conflictPrefix(oldN)
	newP, newOK := conflictPrefix(newN)
	if oldOK == newOK && oldP == newP {
		return // the gateway moved within the same cidr
	}
	var prefixes []netip.Prefix
	if oldOK {
		prefixes = append(prefixes, oldP)
	}
	if newOK {
		prefixes = append(prefixes, newP)
	}
	c.enqueueAffected(newN, prefixes...)
}

func (c *Controller) deleteNetwork(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		utilruntime.HandleErrorWithLogger(c.logger, nil, "Deleted object is not a Network", "type", fmt.Sprintf("%T", obj))
		return
	}
	c.networks.OnDelete(n)
	key := cache.MetaObjectToName(n)
	c.own.forget(key)
	if n.DeletionTimestamp.IsZero() && slices.Contains(n.Finalizers, Finalizer) {
		// Gone with this controller's finalizer on and never marked for deletion, so its backend
		// objects were not removed: the API server can let a delete that raced with the
		// finalizer's addition remove the object all the same (kubernetes/kubernetes#77988),
		// after the sync that added it went on to program the Network. (A Network deleted as
		// usual has its deletionTimestamp set; its last state shows the finalizer too, as the
		// write that removed it deleted the object instead of storing it.) The key's sync, after
		// the one that programmed it, removes them as orphans.
		c.orphans.add(key, n.UID)
	}
	c.queue.Add(key)
	// The Networks that n blocked, and those that they block in turn, may change.
	if p, ok := conflictPrefix(n); ok {
		c.enqueueAffected(n, p)
	}
}

// resyncDelay is a random delay below resyncSpread, or none when it is zero.
func (c *Controller) resyncDelay() time.Duration {
	if c.resyncSpread <= 0 {
		return 0
	}
	return rand.N(c.resyncSpread)
}

// enqueueAffected enqueues the Networks whose conflict answer can change when n appears,
// disappears, or moves from or to one of prefixes (see affectedBy).
func (c *Controller) enqueueAffected(n *samplecrdv1.Network, prefixes ...netip.Prefix) {
	affected, err := affectedBy(c.networksIndexer, n, prefixes...)
	for _, o := range affected {
		c.queue.Add(cache.MetaObjectToName(o))
	}
	if err != nil {
		utilruntime.HandleErrorWithLogger(c.logger, err, "Finding the Networks that a changed one may unblock or block", "network", klog.KObj(n))
	}
}

// Run syncs Networks with workers workers until ctx is done, then finishes the keys in hand (see
// runner.Run). Each time the backend becomes ready, every Network is checked against it and the
// orphans are swept; the sweep runs every sweep interval too.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.running.Store(true)
	defer c.running.Store(false)
	synced := []cache.InformerSynced{c.networksSynced}
	if c.attachments != nil {
		// A Network's pods must be known before it is removed or its spec applied.
		synced = append(synced, c.attachments.HasSynced)
	}
	runner.Run(ctx, runner.Config{
		Name:          ControllerName,
		KeyName:       "network",
		Queue:         c.queue,
		Sync:          c.syncNetwork,
		Workers:       workers,
		CachesSynced:  synced,
		BeforeWorkers: c.waitForBackend,
		Passes: []runner.Pass{
			{Name: "backend ready", Trigger: c.backendReady, Run: c.checkAll},
			{Name: "orphan sweep", Interval: c.orphanSweepInterval, Run: c.sweepOrphans},
		},
		Options: c.runnerOpts,
	})
}

// waitForBackend waits, at most backendStartupWait, for the backend's first readiness. A manager
// that just started is usually still connecting: syncing now would mark every Network it reaches
// BackendError and back to Synced a moment later, two status writes and two events each, for
// nothing. A backend that stays down is recorded as an outage (see backendWentAway), and the
// Networks with work pending report it.
func (c *Controller) waitForBackend(ctx context.Context) {
	timer := time.NewTimer(c.backendStartupWait)
	defer timer.Stop()
	select {
	case <-c.firstReady:
	case <-ctx.Done():
	case <-timer.C:
		err := c.backend.Ready()
		klog.FromContext(ctx).Info("Backend is not ready: starting anyway, Networks with work pending will report it",
			"waited", c.backendStartupWait, "err", err)
		if err != nil {
			c.backendWentAway(err)
		}
	}
}

// backendBecameReady is the backend's OnReady function. It runs on the backend's goroutine, so it
// only signals: the first readiness lets the workers start, and every readiness runs checkAll.
func (c *Controller) backendBecameReady() {
	if c.readyOnce.CompareAndSwap(false, true) {
		close(c.firstReady)
	}
	c.awayMu.Lock()
	since := c.away
	c.away = time.Time{}
	c.misconfiguredCause = ""
	c.awayMu.Unlock()
	if !since.IsZero() {
		took := c.clock.Since(since).Round(time.Millisecond)
		c.logger.Info("Backend is available again", "backend", c.backend.Type(), "unavailableFor", took)
		if c.eventObject != nil && c.running.Load() {
			c.recorder.Eventf(c.eventObject, corev1.EventTypeNormal, ReasonBackendAvailable,
				"The %s backend is available again after %s: checking every Network against it", c.backend.Type(), took)
		}
	}
	select {
	case c.backendReady <- struct{}{}:
	default: // a check is due already
	}
}

// backendWentAway is the backend's OnNotReady function: it records the outage once, in the log
// and as one event, rather than on every Network (see backendFailed). When the backend's
// misconfiguration changes (it appears, changes or goes while the backend stays away), that is
// recorded too, and every Network is queued, so that those with work pending say the new cause:
// one sync each per change, not per connection attempt. It runs on the backend's goroutine and
// only records and enqueues.
func (c *Controller) backendWentAway(err error) {
	cause := ""
	if m := backend.Misconfigured(err); m != nil {
		cause = m.Error()
	}
	c.awayMu.Lock()
	first := c.away.IsZero()
	if first {
		c.away = c.clock.Now()
	}
	changed := cause != c.misconfiguredCause
	c.misconfiguredCause = cause
	c.awayMu.Unlock()
	if changed {
		c.misconfigurationChanged(cause)
	}
	if !first {
		return
	}
	c.logger.Info("Backend is not available: programmed Networks keep their state, pending ones wait for it",
		"backend", c.backend.Type(), "err", err)
	if c.eventObject != nil && c.running.Load() {
		c.recorder.Eventf(c.eventObject, corev1.EventTypeWarning, samplecrdv1.ReasonBackendUnavailable,
			"The %s backend is not available (%v): programmed Networks keep their state, pending ones wait for it", c.backend.Type(), err)
	}
}

// misconfigurationChanged records the backend's new misconfiguration ("" when it is only away
// now), and queues every Network: those with work pending report it (see backendFailed), the
// programmed ones keep their status.
func (c *Controller) misconfigurationChanged(cause string) {
	if cause == "" {
		c.logger.Info("Backend is no longer misconfigured, but not available yet", "backend", c.backend.Type())
	} else {
		c.logger.Info("Backend is misconfigured: Networks with work pending report it", "backend", c.backend.Type(), "err", cause)
		if c.eventObject != nil && c.running.Load() {
			c.recorder.Eventf(c.eventObject, corev1.EventTypeWarning, samplecrdv1.ReasonBackendError,
				"The %s backend is misconfigured (%s): programmed Networks keep their state, pending ones report it", c.backend.Type(), cause)
		}
	}
	networks, err := c.networksLister.List(labels.Everything())
	if err != nil {
		utilruntime.HandleErrorWithLogger(c.logger, err, "Listing Networks to report the backend's misconfiguration")
		return
	}
	for _, n := range networks {
		c.queue.Add(cache.MetaObjectToName(n))
	}
}

// checkAll checks every Network against a backend that just became ready, and sweeps the
// orphans: whatever changed in the backend while it was away (or before the controller started)
// was not reported. Networks in sync cost a backend read each and no write.
func (c *Controller) checkAll(ctx context.Context) {
	networks, err := c.networksLister.List(labels.Everything())
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Listing Networks to check against the backend")
		return
	}
	klog.FromContext(ctx).Info("Backend is ready: checking every Network against it", "networks", len(networks))
	for _, n := range networks {
		c.queue.Add(cache.MetaObjectToName(n))
	}
	c.sweepOrphans(ctx)
}

// sweepOrphans finds backend objects owned by this cluster whose Network is not in the cache, and
// enqueues their Network's key: the sync, which owns every backend write for a key, removes them.
// It then prunes what the backend's Networks share and none uses (such as an empty router).
func (c *Controller) sweepOrphans(ctx context.Context) {
	c.findOrphans(ctx)
	if n, err := c.backend.Prune(ctx); err != nil && ctx.Err() == nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Pruning unused backend objects")
	} else if n > 0 {
		klog.FromContext(ctx).Info("Pruned unused backend objects", "count", n)
	}
}

func (c *Controller) findOrphans(ctx context.Context) {
	owned, err := c.backend.List(ctx)
	if ctx.Err() != nil {
		return // stopping
	}
	if err != nil {
		// Retried at the next sweep, or when the backend is ready again.
		utilruntime.HandleErrorWithContext(ctx, err, "Listing backend networks for the orphan sweep")
		return
	}
	networks, err := c.networksLister.List(labels.Everything())
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Listing Networks for the orphan sweep")
		return
	}
	live := make(map[types.UID]struct{}, len(networks))
	for _, n := range networks {
		live[n.UID] = struct{}{}
	}
	found := 0
	for _, o := range owned {
		if _, ok := live[o.UID]; ok {
			continue
		}
		key := cache.ObjectName{Namespace: o.Namespace, Name: o.Name}
		c.orphans.add(key, o.UID)
		c.queue.Add(key)
		found++
	}
	if found > 0 {
		klog.FromContext(ctx).V(2).Info("Found orphaned backend objects", "count", found)
	}
}
