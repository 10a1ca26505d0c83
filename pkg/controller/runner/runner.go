// Package runner is the one lifecycle every controller here shares. A controller builds a Config
// from its queue, its sync function and its periodic passes, and its Run hands that to Run, which
// waits for the caches, runs the workers and the passes, retries failing keys with backoff, and on
// shutdown stops taking new keys while the keys in hand finish, within a bounded time.
package runner

import (
	"context"
	"errors"
	"sync"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// DefaultShutdownTimeout is how long keys in hand may take after the stop when Options leave it
// unset.
const DefaultShutdownTimeout = 30 * time.Second

// ErrAbort, as the cause of the cancellation of Run's context (context.WithCancelCause), cancels
// the syncs in hand at once instead of letting them finish: for a controller that must stop writing
// now, such as one whose leader lease was lost.
var ErrAbort = errors.New("controller aborted")

// Observer is told the outcome of every sync; the manager's metrics implement it.
type Observer interface {
	// ObserveSync records that controller synced key in took, with err as the result.
	ObserveSync(controller string, key cache.ObjectName, took time.Duration, err error)
}

// Options are what the manager sets on every controller alike.
type Options struct {
	// ShutdownTimeout bounds how long the keys in hand may take after Run's context is done:
	// their syncs run on a context that is cancelled this long after the stop.
	// DefaultShutdownTimeout when zero.
	ShutdownTimeout time.Duration
	// Observer is told of every sync; none when nil.
	Observer Observer
}

// Pass is work a controller does besides its keys: a periodic recount, a sweep, a check after an
// outside event. A pass should only read and enqueue keys, so that every write goes through the
// queue.
type Pass struct {
	// Name names the pass in logs.
	Name string
	// Interval runs the pass this often, the first time one interval after the workers start;
	// zero runs it only when Trigger fires.
	Interval time.Duration
	// Trigger, when not nil, runs the pass (again) whenever it receives.
	Trigger <-chan struct{}
	// Run does the pass. It runs on Run's context and must return soon after it is done.
	Run func(ctx context.Context)
}

// Config is one controller's work.
type Config struct {
	// Name is the controller's name (network-controller), for logs and the observer.
	Name string
	// KeyName is the logging key of the object a key names ("network", "pod").
	KeyName string
	// Queue holds the keys to sync. Run shuts it down.
	Queue workqueue.TypedRateLimitingInterface[cache.ObjectName]
	// Sync brings one key to its desired state; an error retries the key with backoff. Its
	// context carries a logger with the key, and outlives Run's context by at most the shutdown
	// timeout.
	Sync func(ctx context.Context, key cache.ObjectName) error
	// Workers is how many keys are synced at once; at least one.
	Workers int
	// MaxRetries, when positive, drops a key with a log line once it has failed that many
	// retries; zero retries it for as long as it fails.
	MaxRetries int
	// Informers are run for the controller's lifetime, for controllers that own their informer
	// rather than share a factory's.
	Informers []func(ctx context.Context)
	// CachesSynced are waited for before anything else runs.
	CachesSynced []cache.InformerSynced
	// BeforeWorkers, when set, runs once after the caches synced and before the workers start
	// (to wait for a backend, or print an initial list).
	BeforeWorkers func(ctx context.Context)
	// Passes run beside the workers until the stop.
	Passes []Pass
	// Options are the manager-wide settings.
	Options
}

// Run runs the controller until ctx is done. Then it stops taking keys: queued keys stay unsynced
// (the next leader has them from its own caches), keys in hand finish on a context that lives for
// the shutdown timeout (or is cancelled at once when ctx's cause is ErrAbort), and Run returns once
// every worker, pass and informer has returned.
func Run(ctx context.Context, c Config) {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)
	timeout := c.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	workers := max(c.Workers, 1)

	// The keys in hand run on work: it is not cancelled by the stop, only timeout after it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopped := make(chan struct{})
	var watch sync.WaitGroup
	defer func() {
		close(stopped)
		watch.Wait()
	}()
	watch.Go(func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		c.Queue.ShutDown()
		if errors.Is(context.Cause(ctx), ErrAbort) {
			logger.Info("Aborting: cancelling the syncs in hand", "controller", c.Name, "cause", context.Cause(ctx))
			cancelWork()
			return
		}
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-timer.C:
			logger.Info("Shutdown timeout reached: cancelling the syncs in hand", "controller", c.Name, "timeout", timeout)
			cancelWork()
		case <-stopped:
		}
	})

	logger.Info("Starting controller", "controller", c.Name, "workers", workers)
	var wg wait.Group
	defer func() {
		c.Queue.ShutDown()
		wg.Wait()
		logger.Info("Stopped controller", "controller", c.Name)
	}()
	for _, run := range c.Informers {
		wg.StartWithContext(ctx, run)
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.CachesSynced...) {
		return
	}
	if c.BeforeWorkers != nil {
		c.BeforeWorkers(ctx)
		if ctx.Err() != nil {
			return
		}
	}
	for range workers {
		wg.Start(func() {
			defer utilruntime.HandleCrashWithContext(ctx)
			for c.processNextItem(ctx, work) {
			}
		})
	}
	for _, p := range c.Passes {
		wg.StartWithContext(ctx, func(ctx context.Context) { runPass(ctx, p) })
	}
	<-ctx.Done()
	logger.Info("Stopping controller: finishing the keys in hand", "controller", c.Name, "timeout", timeout)
}

// runPass runs p every interval and whenever its trigger fires, until ctx is done.
func runPass(ctx context.Context, p Pass) {
	var tick <-chan time.Time
	if p.Interval > 0 {
		ticker := time.NewTicker(p.Interval)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-p.Trigger:
		}
		if ctx.Err() != nil {
			return
		}
		p.Run(ctx)
	}
}

// processNextItem syncs one key on the work context, and reports false once the queue has shut
// down or the controller is stopping.
func (c *Config) processNextItem(ctx, work context.Context) bool {
	key, shutdown := c.Queue.Get()
	if shutdown {
		return false
	}
	defer c.Queue.Done(key)
	if ctx.Err() != nil {
		// A shut-down queue still hands out what it holds: leave it unsynced.
		return false
	}
	logger := klog.LoggerWithValues(klog.FromContext(work), c.keyName(), key)
	start := time.Now()
	err := c.Sync(klog.NewContext(work, logger), key)
	if c.Observer != nil {
		c.Observer.ObserveSync(c.Name, key, time.Since(start), err)
	}
	switch {
	case err == nil:
		c.Queue.Forget(key)
	case c.MaxRetries > 0 && c.Queue.NumRequeues(key) >= c.MaxRetries:
		// A key that keeps failing must not hold the queue forever.
		c.Queue.Forget(key)
		utilruntime.HandleErrorWithLogger(logger, err, "Dropping key out of the queue", "controller", c.Name, "retries", c.MaxRetries)
	default:
		utilruntime.HandleErrorWithLogger(logger, err, "Sync failed, will retry", "controller", c.Name)
		c.Queue.AddRateLimited(key)
	}
	return true
}

func (c *Config) keyName() string {
	if c.KeyName == "" {
		return "key"
	}
	return c.KeyName
}
