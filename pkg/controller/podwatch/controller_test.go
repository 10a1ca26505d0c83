package podwatch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2/ktesting"

	"github.com/samplecrd/samplecrd-controller/internal/syncbuf"
)

// TestRunPrintsPodChanges runs the controller against a fake clientset: pods in the watched
// namespace are printed as they come and go; pods elsewhere are not.
func TestRunPrintsPodChanges(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	existing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "existing"}}
	client := fake.NewClientset(existing)
	out := &syncbuf.Buffer{}
	c, err := NewController(ctx, client, "default", out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, 2)
	}()
	defer func() {
		cancel()
		<-done
	}()

	waitForOutput(t, out, "Sync/Add/Update for Pod existing\n")
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "new"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "elsewhere"}},
	} {
		if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitForOutput(t, out, "Sync/Add/Update for Pod new\n")
	if err := client.CoreV1().Pods("default").Delete(ctx, "existing", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, out, "Pod default/existing does not exist anymore\n")
	if strings.Contains(out.String(), "elsewhere") {
		t.Errorf("printed a pod of another namespace:\n%s", out.String())
	}
}

func waitForOutput(t *testing.T, out *syncbuf.Buffer, s string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return strings.Contains(out.String(), s), nil })
	if err != nil {
		t.Fatalf("waiting for %q in the output:\n%s", s, out.String())
	}
}

// failingWriter fails every write and counts them.
type failingWriter struct {
	mu     sync.Mutex
	writes int
}

func (w *failingWriter) Write([]byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return 0, errors.New("broken pipe")
}

func (w *failingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// TestFailingKeyIsDroppedAfterMaxRetries checks the retry policy: a key that keeps failing is
// tried once and retried MaxRetries times, then dropped; a key that succeeds is forgotten.
func TestFailingKeyIsDroppedAfterMaxRetries(t *testing.T) {
	for _, maxRetries := range []int{0, 2} {
		_, ctx := ktesting.NewTestContext(t)
		out := &failingWriter{}
		c, err := NewController(ctx, fake.NewClientset(), "default", out, Options{
			MaxRetries: maxRetries,
			// No delay, so retries are queued at once and the loop below sees them.
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](0, 0),
		})
		if err != nil {
			t.Fatal(err)
		}
		key := cache.ObjectName{Namespace: "default", Name: "gone"}
		c.queue.Add(key)
		want := maxRetries
		if want == 0 {
			want = DefaultMaxRetries
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Run(runCtx, 1)
		}()
		// Dropped: tried 1+want times, forgotten, and not queued again.
		err = wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return out.count() >= 1+want && c.queue.Len() == 0 && c.queue.NumRequeues(key) == 0, nil
		})
		stop()
		<-done
		if err != nil {
			t.Errorf("MaxRetries %d: the key was not dropped: %d attempts, %d requeues", maxRetries, out.count(), c.queue.NumRequeues(key))
		}
		if diff := cmp.Diff(1+want, out.count()); diff != "" {
			t.Errorf("MaxRetries %d: attempts (-want +got):\n%s", maxRetries, diff)
		}
	}
}
