package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// overlapEvery makes every overlapEvery-th Network of a namespace overlap the one before it: the
// same /24, a /25 inside it or the /22 around it, in turn. Which of two overlapping Networks is
// programmed depends on their creation timestamps, which the suite reads back (expectations).
const overlapEvery = 12

// burstClients is how many clients create (or delete) a burst's Networks at once.
const burstClients = 8

// requestTimeout bounds each request of the suite's clients, which retry: a request to an API
// server whose etcd is down waits for etcd.
const requestTimeout = 10 * time.Second

// burstSpec is the i-th Network of a burst over namespaces, round robin: in its namespace, the
// j-th is net-J on 10.(20+j/256).(j%256).0/24, or one that overlaps the (j-1)-th (overlapEvery).
func burstSpec(i int, namespaces []string) *samplecrdv1.Network {
	ns := namespaces[i%len(namespaces)]
	j := i / len(namespaces)
	a, b := 20+j/256, j%256
	cidr, gateway := fmt.Sprintf("10.%d.%d.0/24", a, b), fmt.Sprintf("10.%d.%d.1", a, b)
	if j%overlapEvery == overlapEvery-1 {
		pa, pb := 20+(j-1)/256, (j-1)%256
		switch (j / overlapEvery) % 3 {
		case 0:
			cidr, gateway = fmt.Sprintf("10.%d.%d.0/24", pa, pb), fmt.Sprintf("10.%d.%d.254", pa, pb)
		case 1:
			cidr, gateway = fmt.Sprintf("10.%d.%d.128/25", pa, pb), fmt.Sprintf("10.%d.%d.129", pa, pb)
		default:
			q := pb &^ 3
			cidr, gateway = fmt.Sprintf("10.%d.%d.0/22", pa, q), fmt.Sprintf("10.%d.%d.1", pa, q)
		}
	}
	return &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("net-%04d", j)},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}
}

// burst creates Networks from several clients, each retried until the API server takes it.
type burst struct {
	specs []*samplecrdv1.Network
	// done is closed when every Network was created, or creating one failed for good (err).
	done chan struct{}
	err  error

	mu sync.Mutex
	// created are the indexes of the specs created so far, in order.
	created []int
}

// startBurst creates the specs in the background.
func startBurst(ctx context.Context, client clientset.Interface, specs []*samplecrdv1.Network, timeout time.Duration) *burst {
	b := &burst{specs: specs, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = parallel(len(specs), burstClients, func(i int) error {
			n := specs[i]
			err := retry(ctx, timeout, func(ctx context.Context) error {
				_, err := client.SamplecrdV1().Networks(n.Namespace).Create(ctx, n, metav1.CreateOptions{})
				if apierrors.IsAlreadyExists(err) {
					// An earlier attempt was taken, its answer lost.
					return nil
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("creating Network %s/%s: %w", n.Namespace, n.Name, err)
			}
			b.mu.Lock()
			b.created = append(b.created, i)
			b.mu.Unlock()
			return nil
		})
	}()
	return b
}

// createdCount is how many Networks were created so far.
func (b *burst) createdCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.created)
}

// createdIndexes returns the indexes of the specs created so far.
func (b *burst) createdIndexes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.created...)
}

func (b *burst) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// deleteNetworks deletes the Networks from several clients, each retried until the API server
// takes it (NotFound counts: an earlier attempt was taken); progress counts the deletions taken.
func deleteNetworks(ctx context.Context, client clientset.Interface, networks []*samplecrdv1.Network, timeout time.Duration, progress *atomic.Int64) error {
	return parallel(len(networks), burstClients, func(i int) error {
		n := networks[i]
		err := retry(ctx, timeout, func(ctx context.Context) error {
			err := client.SamplecrdV1().Networks(n.Namespace).Delete(ctx, n.Name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("deleting Network %s/%s: %w", n.Namespace, n.Name, err)
		}
		if progress != nil {
			progress.Add(1)
		}
		return nil
	})
}

// retry calls f, each call bounded by requestTimeout, every 100 ms until it succeeds or timeout
// passes; then it returns f's last error.
func retry(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		last = f(rctx)
		return last == nil, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last error: %w)", err, last)
	}
	return err
}

// parallel runs f for 0..n-1 on workers goroutines and returns every error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// poll waits until cond holds, checking every interval, at most timeout.
func poll(ctx context.Context, interval, timeout time.Duration, cond func() bool) error {
	return wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
}
