// Package worker holds the work loop every controller here shares: take a key from a typed
// rate-limited queue, sync it, record the reconcile metrics, and forget, retry or drop the key.
package worker

import (
	"context"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/util/workqueue"

	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// Loop takes keys from queue and syncs them until the queue shuts down.
type Loop[T comparable] struct {
	// Controller names the controller in metrics and logs.
	Controller string
	// Queue holds the keys to sync.
	Queue workqueue.TypedRateLimitingInterface[T]
	// Sync brings one key to its desired state. An error retries the key with backoff.
	Sync func(ctx context.Context, key T) error
	// MaxRetries, when positive, drops a key with a log line once it has failed that many
	// retries; zero retries it for as long as it fails.
	MaxRetries int
}

// Run processes keys until the queue shuts down. Run it in as many goroutines as there are
// workers; the queue never hands one key to two of them at once.
func (l Loop[T]) Run(ctx context.Context) {
	for l.ProcessNextItem(ctx) {
	}
}

// ProcessNextItem syncs one key, and reports false once the queue has shut down.
func (l Loop[T]) ProcessNextItem(ctx context.Context) bool {
	key, shutdown := l.Queue.Get()
	if shutdown {
		return false
	}
	defer l.Queue.Done(key)

	start := time.Now()
	err := l.Sync(ctx, key)
	metrics.ObserveReconcile(l.Controller, start, err)
	switch {
	case err == nil:
		l.Queue.Forget(key)
	case l.MaxRetries > 0 && l.Queue.NumRequeues(key) >= l.MaxRetries:
		// A key that keeps failing must not hold the queue forever.
		l.Queue.Forget(key)
		utilruntime.HandleErrorWithContext(ctx, err, "Dropping key out of the queue", "controller", l.Controller, "key", key, "retries", l.MaxRetries)
	default:
		utilruntime.HandleErrorWithContext(ctx, err, "Sync failed, will retry", "controller", l.Controller, "key", key)
		l.Queue.AddRateLimited(key)
	}
	return true
}
