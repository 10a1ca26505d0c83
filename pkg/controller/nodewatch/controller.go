package nodewatch

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
)

// ControllerName names the controller in logs and metrics.
const ControllerName = "nodewatch-controller"

// Controller prints the nodes of the cluster and their changes.
//
// It is level-based like every other controller here: the queue carries node names, and the
// worker compares the lister with what it printed last, so a burst of changes to one node prints
// one line and nothing depends on the order of handler calls.
type Controller struct {
	// nodesLister reads the shared node cache.
	nodesLister corelisters.NodeLister
	// nodesSynced reports whether the node cache has synced.
	nodesSynced cache.InformerSynced
	// queue holds the names of nodes that changed.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// out is where the lines are printed.
	out io.Writer
	// printed maps each node printed so far to the resourceVersion it had. Only the one worker
	// uses it, after Run has filled it.
	printed map[string]string
	// runnerOpts are the manager-wide settings of the work loop.
	runnerOpts runner.Options
	// logger is for the event handlers.
	logger klog.Logger
}

// Options tune a Controller; the zero value gives the defaults.
type Options struct {
	// Runner are the manager-wide settings of the work loop: shutdown timeout and observer.
	Runner runner.Options
}

// NewController returns a nodewatch controller on the shared node informer, printing to out. It
// starts nothing.
func NewController(ctx context.Context, nodes coreinformers.NodeInformer, out io.Writer, opts Options) (*Controller, error) {
	logger := klog.FromContext(ctx)
	c := &Controller{
		nodesLister: nodes.Lister(),
		nodesSynced: nodes.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: ControllerName}),
		out:        out,
		printed:    map[string]string{},
		runnerOpts: opts.Runner,
		logger:     logger,
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
		utilruntime.HandleErrorWithLogger(c.logger, err, "Cannot enqueue a node")
		return
	}
	c.queue.Add(name)
}

// Run waits for the node cache, prints the node list, then prints changes until ctx is done. One
// worker prints, so lines come out in the order the changes were seen.
func (c *Controller) Run(ctx context.Context) {
	runner.Run(ctx, runner.Config{
		Name:          ControllerName,
		KeyName:       "node",
		Queue:         c.queue,
		Sync:          c.syncNode,
		Workers:       1,
		CachesSynced:  []cache.InformerSynced{c.nodesSynced},
		BeforeWorkers: c.printNodeList,
		Options:       c.runnerOpts,
	})
}

// printNodeList prints the "nodelist:" line, the names of the cached nodes, sorted.
func (c *Controller) printNodeList(ctx context.Context) {
	nodes, err := c.nodesLister.List(labels.Everything())
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Listing nodes")
		return
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
		c.printed[n.Name] = n.ResourceVersion
	}
	sort.Strings(names)
	if _, err := fmt.Fprintln(c.out, "nodelist:", strings.Join(names, " ")); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Printing the node list")
	}
}

// syncNode prints what changed about one node since it was last printed: added, updated (a new
// resourceVersion) or deleted.
func (c *Controller) syncNode(ctx context.Context, key cache.ObjectName) error {
	name := key.Name
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
	klog.FromContext(ctx).V(4).Info("Node changed", "change", strings.Fields(line)[0])
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
