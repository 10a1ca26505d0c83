package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2/ktesting"
)

var key = cache.ObjectName{Namespace: "ns", Name: "k"}

// recorder is an Observer that keeps every observation.
type recorder struct {
	mu   sync.Mutex
	errs []error
	keys []cache.ObjectName
}

func (r *recorder) ObserveSync(controller string, k cache.ObjectName, _ time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, k)
	r.errs = append(r.errs, err)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

func newQueue() workqueue.TypedRateLimitingInterface[cache.ObjectName] {
	// No backoff delay, so retries are in the queue at once.
	return workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](0, 0))
}

func TestProcessNextItem(t *testing.T) {
	tests := []struct {
		name string
		// failures is how many times the sync fails before it succeeds; -1 fails forever.
		failures   int
		maxRetries int
		// wantSyncs is how many times the key is synced before the queue is empty.
		wantSyncs int
	}{
		{name: "success: synced once, forgotten", failures: 0, wantSyncs: 1},
		{name: "transient failure: retried until it succeeds", failures: 3, wantSyncs: 4},
		{name: "permanent failure with a bound: dropped after the retries", failures: -1, maxRetries: 5, wantSyncs: 6},
		{name: "failure under the bound: retried", failures: 2, maxRetries: 5, wantSyncs: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			q := newQueue()
			defer q.ShutDown()
			obs := &recorder{}
			syncs := 0
			c := &Config{Name: "test-controller", Queue: q, MaxRetries: tc.maxRetries, Options: Options{Observer: obs},
				Sync: func(_ context.Context, k cache.ObjectName) error {
					if k != key {
						t.Errorf("synced key %v, want %v", k, key)
					}
					syncs++
					if tc.failures < 0 || syncs <= tc.failures {
						return errors.New("failed")
					}
					return nil
				}}
			q.Add(key)
			for q.Len() > 0 {
				if !c.processNextItem(ctx, ctx) {
					t.Fatal("processNextItem reported a shut-down queue")
				}
			}
			if syncs != tc.wantSyncs {
				t.Errorf("synced %d times, want %d", syncs, tc.wantSyncs)
			}
			if got := q.NumRequeues(key); got != 0 {
				t.Errorf("the key keeps %d requeues; want it forgotten", got)
			}
			if obs.count() != tc.wantSyncs {
				t.Errorf("observer saw %d syncs, want %d", obs.count(), tc.wantSyncs)
			}
		})
	}
}

// TestRunDrain stops a controller while a key is in hand and others are queued: the key in hand
// finishes on a live context, the queued ones are left, and Run returns after the worker.
func TestRunDrain(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, stop := context.WithCancel(ctx)
	q := newQueue()
	inHand, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var synced []string
	var syncErr error
	c := Config{Name: "test-controller", Queue: q, Workers: 1,
		Sync: func(ctx context.Context, k cache.ObjectName) error {
			if k.Name == "first" {
				close(inHand)
				<-release
			}
			mu.Lock()
			defer mu.Unlock()
			synced = append(synced, k.Name)
			syncErr = errors.Join(syncErr, ctx.Err())
			return nil
		}}
	q.Add(cache.ObjectName{Name: "first"})
	q.Add(cache.ObjectName{Name: "second"})
	q.Add(cache.ObjectName{Name: "third"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, c)
	}()
	<-inHand
	stop()
	// The queue shuts down at the stop; the worker still holds the first key.
	if err := waitFor(func() bool { return q.ShuttingDown() }); err != nil {
		t.Fatal("the queue did not shut down at the stop")
	}
	select {
	case <-done:
		t.Fatal("Run returned while a key was in hand")
	default:
	}
	close(release)
	<-done
	if diff := cmp.Diff([]string{"first"}, synced); diff != "" {
		t.Errorf("synced keys (-want +got):\n%s", diff)
	}
	if syncErr != nil {
		t.Errorf("the key in hand ran on a cancelled context: %v", syncErr)
	}
}

// TestRunCancelsSyncsInHand stops a controller whose sync does not finish by itself: its context
// is cancelled after the shutdown timeout, or at once when the stop's cause is ErrAbort, and Run
// returns.
func TestRunCancelsSyncsInHand(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cause   error
		// minWait is how long the sync must run on after the stop.
		minWait time.Duration
	}{
		{name: "shutdown timeout", timeout: 50 * time.Millisecond, minWait: 50 * time.Millisecond},
		{name: "abort", timeout: time.Hour, cause: fmt.Errorf("%w: lease lost", ErrAbort)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			ctx, stop := context.WithCancelCause(ctx)
			q := newQueue()
			inHand := make(chan struct{})
			var syncErr error
			c := Config{Name: "test-controller", Queue: q, Options: Options{ShutdownTimeout: tc.timeout},
				Sync: func(ctx context.Context, _ cache.ObjectName) error {
					close(inHand)
					<-ctx.Done()
					syncErr = ctx.Err()
					return nil
				}}
			q.Add(key)
			done := make(chan struct{})
			go func() {
				defer close(done)
				Run(ctx, c)
			}()
			<-inHand
			stopped := time.Now()
			stop(tc.cause)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			if !errors.Is(syncErr, context.Canceled) {
				t.Errorf("sync context ended with %v, want cancelled", syncErr)
			}
			if took := time.Since(stopped); took < tc.minWait {
				t.Errorf("the sync was cancelled %v after the stop, before %v", took, tc.minWait)
			}
		})
	}
}

// TestRunOrder checks that the informers run, the caches are waited for, BeforeWorkers runs before
// any sync, and a pass runs on its trigger.
func TestRunOrder(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	q := newQueue()
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	synced := make(chan struct{})
	trigger := make(chan struct{})
	triggered := make(chan struct{}, 1)
	c := Config{Name: "test-controller", Queue: q,
		Informers: []func(context.Context){func(ctx context.Context) { record("informer"); close(synced); <-ctx.Done() }},
		CachesSynced: []cache.InformerSynced{func() bool {
			select {
			case <-synced:
				return true
			default:
				return false
			}
		}},
		BeforeWorkers: func(context.Context) { record("before workers") },
		Sync:          func(context.Context, cache.ObjectName) error { record("sync"); return nil },
		Passes: []Pass{{Name: "on trigger", Trigger: trigger, Run: func(context.Context) {
			record("pass")
			triggered <- struct{}{}
		}}},
	}
	q.Add(key)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, c)
	}()
	trigger <- struct{}{}
	<-triggered
	if err := waitFor(func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 4 }); err != nil {
		t.Fatalf("events %v, want 4", events)
	}
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if events[0] != "informer" || events[1] != "before workers" {
		t.Errorf("events %v: want the informer, then before workers, then the sync and the pass", events)
	}
}

// TestRunPassInterval checks that a pass with an interval runs again and again, and not before the
// first interval has passed.
func TestRunPassInterval(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, stop := context.WithCancel(ctx)
	var runs atomic.Int32
	start := time.Now()
	var first time.Duration
	c := Config{Name: "test-controller", Queue: newQueue(), Sync: func(context.Context, cache.ObjectName) error { return nil },
		Passes: []Pass{{Name: "periodic", Interval: 20 * time.Millisecond, Run: func(context.Context) {
			if runs.Add(1) == 1 {
				first = time.Since(start)
			}
		}}}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, c)
	}()
	if err := waitFor(func() bool { return runs.Load() >= 3 }); err != nil {
		t.Fatalf("the pass ran %d times, want at least 3", runs.Load())
	}
	stop()
	<-done
	if first < 20*time.Millisecond {
		t.Errorf("the first run came %v after the start, before the interval", first)
	}
}

// waitFor polls cond for a few seconds.
func waitFor(cond func() bool) error {
	return wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
}
