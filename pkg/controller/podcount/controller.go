package podcount

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
)

// ControllerName names the controller in logs, events and metrics.
const ControllerName = "podcount-controller"

// DefaultLabelKey is the label set on control-plane nodes unless told otherwise.
const DefaultLabelKey = "hopegi/pod-count"

// DefaultPeriod is the interval of the periodic count, which catches what the handlers missed.
const DefaultPeriod = 10 * time.Second

// DefaultCoalesce is how long a recount waits after a pod comes or goes, so that a burst of pod
// changes costs one count and at most one write per node.
const DefaultCoalesce = 500 * time.Millisecond

// Node role labels that make a node a control-plane node: the current one and the one older
// clusters use.
const (
	ControlPlaneLabel = "node-role.kubernetes.io/control-plane"
	MasterLabel       = "node-role.kubernetes.io/master"
)

// EventMode says which "pod count is N" events the controller records.
type EventMode string

const (
	// EventsAll records an event on every pod at every count. With many pods
	// this is most of the controller's API traffic.
	EventsAll EventMode = "all"
	// EventsChanged records one event on each control-plane node whose count changed.
	EventsChanged EventMode = "changed"
	// EventsNone records no count events.
	EventsNone EventMode = "none"
)

// countKey is the one key of the queue: there is one count for the whole cluster.
var countKey = cache.ObjectName{Name: "pods"}

// Controller labels control-plane nodes with the number of pods.
type Controller struct {
	// client patches node labels.
	client kubernetes.Interface
	// pods is the metadata-only pod cache that is counted.
	pods cache.Store
	// podsSynced reports whether the pod cache has synced.
	podsSynced cache.InformerSynced
	// nodesLister reads nodes from the shared cache.
	nodesLister corelisters.NodeLister
	// nodesSynced reports whether the node cache has synced.
	nodesSynced cache.InformerSynced
	// recorder records the count events.
	recorder record.EventRecorder
	// queue holds countKey when a count is due; a key being handled is not handed out twice, so
	// counts never overlap.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// labelKey is the label set on control-plane nodes.
	labelKey string
	// eventMode says which events to record.
	eventMode EventMode
	// period is the interval of the periodic count.
	period time.Duration
	// coalesce is how long a count waits after a pod change.
	coalesce time.Duration
	// countDue is set while a count asked for by a pod change has not started: later changes
	// are counted by it and add nothing to the queue.
	countDue atomic.Bool
	// runnerOpts are the manager-wide settings of the work loop.
	runnerOpts runner.Options
}

// Options tune a Controller; the zero value gives the defaults.
type Options struct {
	// LabelKey is the node label to set; DefaultLabelKey when empty.
	LabelKey string
	// EventMode says which events to record; EventsChanged when empty.
	EventMode EventMode
	// Period is the interval of the periodic count; DefaultPeriod when zero.
	Period time.Duration
	// Coalesce is how long a count waits after a pod change; DefaultCoalesce when zero.
	Coalesce time.Duration
	// Clock runs the queue's delays; the real clock when nil. Tests set a fake one.
	Clock clock.WithTicker
	// Runner are the manager-wide settings of the work loop: shutdown timeout and observer.
	Runner runner.Options
}

// NewController returns a podcount controller. pods is a metadata-only pod informer, nodes the
// shared node informer. It registers its handlers and starts nothing.
func NewController(
	ctx context.Context,
	client kubernetes.Interface,
	pods informers.GenericInformer,
	nodes coreinformers.NodeInformer,
	recorder record.EventRecorder,
	opts Options,
) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.LabelKey == "" {
		opts.LabelKey = DefaultLabelKey
	}
	switch opts.EventMode {
	case "":
		opts.EventMode = EventsChanged
	case EventsAll, EventsChanged, EventsNone:
	default:
		return nil, fmt.Errorf("unknown event mode %q: want %s, %s or %s", opts.EventMode, EventsAll, EventsChanged, EventsNone)
	}
	if opts.Period == 0 {
		opts.Period = DefaultPeriod
	}
	if opts.Coalesce == 0 {
		opts.Coalesce = DefaultCoalesce
	}
	c := &Controller{
		client:      client,
		pods:        pods.Informer().GetStore(),
		podsSynced:  pods.Informer().HasSynced,
		nodesLister: nodes.Lister(),
		nodesSynced: nodes.Informer().HasSynced,
		recorder:    recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](5*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: ControllerName, Clock: opts.Clock}),
		labelKey:   opts.LabelKey,
		eventMode:  opts.EventMode,
		period:     opts.Period,
		coalesce:   opts.Coalesce,
		runnerOpts: opts.Runner,
	}
	// Pod updates do not change the count: only adds and deletes matter.
	if _, err := pods.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPodOrDelete,
		DeleteFunc: c.addPodOrDelete,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the pod event handler: %w", err)
	}
	if _, err := nodes.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addNode,
		UpdateFunc: c.updateNode,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the node event handler: %w", err)
	}
	return c, nil
}

// addPodOrDelete asks for a count after the coalescing delay, unless one is already due and has
// not started: a burst of pod changes within the delay adds up to one count and one queue add.
func (c *Controller) addPodOrDelete(any) {
	if c.countDue.CompareAndSwap(false, true) {
		c.queue.AddAfter(countKey, c.coalesce)
	}
}

// addNode counts for a new control-plane node at once: it has no label yet.
func (c *Controller) addNode(obj any) {
	if n, ok := obj.(*corev1.Node); ok && IsControlPlane(n) {
		c.queue.Add(countKey)
	}
}

// updateNode counts when a node becomes a control-plane node or its label was changed by someone
// else, so the label is put back without waiting for the periodic pass.
func (c *Controller) updateNode(oldObj, newObj any) {
	oldN, ok1 := oldObj.(*corev1.Node)
	newN, ok2 := newObj.(*corev1.Node)
	if !ok1 || !ok2 || oldN.ResourceVersion == newN.ResourceVersion || !IsControlPlane(newN) {
		return
	}
	if !IsControlPlane(oldN) || oldN.Labels[c.labelKey] != newN.Labels[c.labelKey] {
		c.queue.Add(countKey)
	}
}

// IsControlPlane reports whether a node carries the control-plane role label, current or old.
func IsControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels[ControlPlaneLabel]
	_, master := n.Labels[MasterLabel]
	return cp || master
}

// Run waits for the caches, counts every period and after pod changes until ctx is done, then
// finishes the count in hand. The queue has one key, so one worker does all the work.
func (c *Controller) Run(ctx context.Context) {
	klog.FromContext(ctx).Info("Counting pods", "labelKey", c.labelKey, "eventMode", c.eventMode, "period", c.period)
	runner.Run(ctx, runner.Config{
		Name:         ControllerName,
		Queue:        c.queue,
		Sync:         func(ctx context.Context, _ cache.ObjectName) error { return c.syncCount(ctx) },
		Workers:      1,
		CachesSynced: []cache.InformerSynced{c.podsSynced, c.nodesSynced},
		// The periodic pass catches anything the handlers missed; the period runs from the start
		// of one pass to the next.
		Passes:  []runner.Pass{{Name: "periodic count", Interval: c.period, Run: func(context.Context) { c.queue.Add(countKey) }}},
		Options: c.runnerOpts,
	})
}

// TrimToIdentity is a transform for the pod informer that keeps only what the count and its
// events use: a pod's namespace, name, UID and resourceVersion. A cached pod then costs a few
// hundred bytes instead of its labels, annotations, owner references and the rest of its metadata.
// Install it with SetTransform only when nothing else reads that informer's pods.
func TrimToIdentity(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       m.Namespace,
			Name:            m.Name,
			UID:             m.UID,
			ResourceVersion: m.ResourceVersion,
		},
	}, nil
}
