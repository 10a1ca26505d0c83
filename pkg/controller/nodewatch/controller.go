package nodewatch

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/controller/worker"
)

// ControllerName names the controller in logs and metrics.
const ControllerName = "nodewatch-controller"

// Controller prints the nodes of the cluster and their changes.
//
// It is level-based like every other controller here: the queue carries node names, and the
// worker compares the lister with what it printed last, so a burst of changes to one node prints
// one line and nothing depends on the order of handler calls.
type Controller struct {
	// nodesLister is the client-side cache the tutorial is about.
	nodesLister corelisters.NodeLister
	// nodesSynced reports whether the node cache has synced.
	nodesSynced cache.InformerSynced
	// queue holds the names of nodes that changed.
	queue workqueue.TypedRateLimitingInterface[string]
	// out is where the tutorial's lines are printed.
	out io.Writer
	// printed maps each node printed so far to the resourceVersion it had. Only the one worker
	// uses it, after Run has filled it.
	printed map[string]string
}

// NewController returns a nodewatch controller on the shared node informer, printing to out. It
// starts nothing.
func NewController(ctx context.Context, nodes coreinformers.NodeInformer, out io.Writer) (*Controller, error) {
	logger := klog.FromContext(ctx)
	c := &Controller{
		nodesLister: nodes.Lister(),
		nodesSynced: nodes.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: ControllerName}),
		out:     out,
		printed: map[string]string{},
	}
	if _, err := nodes.Informer().AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, newObj any) { c.enqueue(newObj) },
		DeleteFunc: c.enqueue,
	}, cache.HandlerOptions{Logger: &logger}); err != nil {
		return nil, fmt.Errorf("adding the node event handler: %w", err)
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	name, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("nodewatch: %w", err))
		return
	}
	c.queue.Add(name.Name)
}

// Run waits for the node cache, prints the node list, then prints changes until ctx is done. One
// worker prints, so lines come out in the order the changes were seen.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting controller", "controller", ControllerName)
	defer logger.Info("Shutting down controller", "controller", ControllerName)

	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.nodesSynced) {
		return
	}
	if err := c.printNodeList(); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Printing the node list")
	}
	var wg wait.Group
	wg.StartWithContext(ctx, func(ctx context.Context) {
		loop := worker.Loop[string]{Controller: ControllerName, Queue: c.queue, Sync: c.syncNode}
		wait.UntilWithContext(ctx, loop.Run, time.Second)
	})
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
}

// printNodeList prints the tutorial's "nodelist:" line, the names of the cached nodes, sorted.
func (c *Controller) printNodeList() error {
	nodes, err := c.nodesLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
		c.printed[n.Name] = n.ResourceVersion
	}
	sort.Strings(names)
	_, err = fmt.Fprintln(c.out, "nodelist:", strings.Join(names, " "))
	return err
}

// syncNode prints what changed about one node since it was last printed: added, updated (a new
// resourceVersion) or deleted.
func (c *Controller) syncNode(ctx context.Context, name string) error {
	node, err := c.nodesLister.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading node %s from the cache: %w", name, err)
	}
	last, wasPrinted := c.printed[name]
	var line string
	switch {
	case node == nil && wasPrinted:
		line = "delete a node:"
	case node == nil:
		return nil
	case !wasPrinted:
		line = "add a node:"
	case last != node.ResourceVersion:
		line = "update a node:"
	default:
		return nil
	}
	klog.FromContext(ctx).V(4).Info("Node changed", "node", name, "change", strings.Fields(line)[0])
	if _, err := fmt.Fprintln(c.out, line, name); err != nil {
		return fmt.Errorf("printing node %s: %w", name, err)
	}
	if node == nil {
		delete(c.printed, name)
	} else {
		c.printed[name] = node.ResourceVersion
	}
	return nil
}
