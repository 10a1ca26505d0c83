package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2/ktesting"
)

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
			// No backoff delay, so retries are in the queue at once.
			q := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](0, 0))
			defer q.ShutDown()
			syncs := 0
			l := Loop[string]{Controller: "test-controller", Queue: q, MaxRetries: tc.maxRetries,
				Sync: func(_ context.Context, key string) error {
					if key != "k" {
						t.Errorf("synced key %q, want k", key)
					}
					syncs++
					if tc.failures < 0 || syncs <= tc.failures {
						return errors.New("failed")
					}
					return nil
				}}
			q.Add("k")
			for q.Len() > 0 && syncs < 100 {
				if !l.ProcessNextItem(ctx) {
					t.Fatal("the queue shut down")
				}
			}
			if diff := cmp.Diff(tc.wantSyncs, syncs); diff != "" {
				t.Errorf("syncs (-want +got):\n%s", diff)
			}
			if n := q.NumRequeues("k"); n != 0 {
				t.Errorf("the key still has %d requeues: not forgotten", n)
			}
		})
	}
}

func TestProcessNextItemAfterShutdown(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	q.ShutDown()
	l := Loop[string]{Controller: "test-controller", Queue: q, Sync: func(context.Context, string) error {
		t.Error("synced after shutdown")
		return nil
	}}
	if l.ProcessNextItem(ctx) {
		t.Error("ProcessNextItem reported true after the queue shut down")
	}
}
