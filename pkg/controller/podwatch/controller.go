package podwatch

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
)

// ControllerName names the controller in logs and metrics.
const ControllerName = "podwatch-controller"

// DefaultMaxRetries is how many times a failing key is retried before it is dropped: a line that
// cannot be printed is not worth holding the queue for.
const DefaultMaxRetries = 5

// Controller prints the pods of one namespace as they change.
type Controller struct {
	// indexer is the informer's cache of the namespace's pods.
	indexer cache.Indexer
	// informer lists and watches the pods. The controller owns it rather than sharing a factory's:
	// it watches one namespace only, with full pod objects.
	informer cache.Controller
	// queue holds the keys of pods that changed.
	queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// out is where the lines are printed.
	out io.Writer
	// maxRetries bounds the retries of a failing key.
	maxRetries int
	// runnerOpts are the manager-wide settings of the work loop.
	runnerOpts runner.Options
	// logger is for the event handlers.
	logger klog.Logger
}

// Options tune a Controller; the zero value gives the defaults.
type Options struct {
	// MaxRetries is how many times a failing key is retried; DefaultMaxRetries when zero.
	MaxRetries int
	// RateLimiter paces retries; client-go's default controller rate limiter when nil.
	RateLimiter workqueue.TypedRateLimiter[cache.ObjectName]
	// Runner are the manager-wide settings of the work loop: shutdown timeout and observer.
	Runner runner.Options
}

// NewController returns a podwatch controller for the pods in namespace, printing to out. It
// starts nothing.
func NewController(ctx context.Context, client kubernetes.Interface, namespace string, out io.Writer, opts Options) (*Controller, error) {
	logger := klog.FromContext(ctx)
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName]()
	}
	// A ListWatch on the namespace's pods, through the typed client.
	pods := client.CoreV1().Pods(namespace)
	// The wrapper lets a client that cannot stream the initial list (a fake one) fall back to
	// list-then-watch, as client-go's generated informers do.
	lw := cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
			return pods.List(ctx, options)
		},
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			return pods.Watch(ctx, options)
		},
	}, client)
	c := &Controller{
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(opts.RateLimiter,
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: ControllerName}),
		out:        out,
		maxRetries: opts.MaxRetries,
		runnerOpts: opts.Runner,
		logger:     logger,
	}
	store, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueue,
			UpdateFunc: func(_, newObj any) { c.enqueue(newObj) },
			DeleteFunc: c.enqueue,
		},
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		Logger:   &logger,
	})
	// With Indexers set, the store is an indexer.
	c.indexer, c.informer = store.(cache.Indexer), informer
	return c, nil
}

// enqueue adds the key of a pod, unwrapping the tombstone of a pod deleted while the watch was
// down.
func (c *Controller) enqueue(obj any) {
	name, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleErrorWithLogger(c.logger, err, "Cannot enqueue a pod")
		return
	}
	c.queue.Add(name)
}

// Run runs the controller's own informer, waits for it to sync, and prints pod changes with
// workers workers until ctx is done. A key that keeps failing is dropped after maxRetries retries.
func (c *Controller) Run(ctx context.Context, workers int) {
	runner.Run(ctx, runner.Config{
		Name:         ControllerName,
		KeyName:      "pod",
		Queue:        c.queue,
		Sync:         c.syncToStdout,
		Workers:      workers,
		MaxRetries:   c.maxRetries,
		Informers:    []func(context.Context){c.informer.RunWithContext},
		CachesSynced: []cache.InformerSynced{c.informer.HasSynced},
		Options:      c.runnerOpts,
	})
}

// syncToStdout prints a line for the pod: it exists (added or updated) or it is gone.
func (c *Controller) syncToStdout(ctx context.Context, key cache.ObjectName) error {
	obj, exists, err := c.indexer.GetByKey(key.String())
	if err != nil {
		return fmt.Errorf("fetching pod %s from the cache: %w", key, err)
	}
	logger := klog.FromContext(ctx)
	if !exists {
		logger.V(4).Info("Pod does not exist anymore")
		_, err = fmt.Fprintf(c.out, "Pod %s does not exist anymore\n", key)
	} else {
		pod := obj.(*corev1.Pod)
		logger.V(4).Info("Sync/Add/Update for Pod")
		_, err = fmt.Fprintf(c.out, "Sync/Add/Update for Pod %s\n", pod.Name)
	}
	if err != nil {
		return fmt.Errorf("printing pod %s: %w", key, err)
	}
	return nil
}
