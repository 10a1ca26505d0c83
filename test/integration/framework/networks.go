package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// BurstNetwork is the i-th Network of CreateNetworks: net-NNN on 10.(100+i/256).(i%256).0/24, so
// that up to 39,000 Networks of one burst never overlap.
func BurstNetwork(i int) *samplecrdv1.Network {
	return &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("net-%03d", i)},
		Spec: samplecrdv1.NetworkSpec{
			Cidr:    fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256),
			Gateway: fmt.Sprintf("10.%d.%d.1", 100+i/256, i%256),
		},
	}
}

// CreateNetworks creates count BurstNetworks in namespace at once, from clients concurrent
// clients, and returns every error.
func CreateNetworks(ctx context.Context, client clientset.Interface, namespace string, count, clients int) error {
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < count; i = int(next.Add(1)) - 1 {
				if _, err := client.SamplecrdV1().Networks(namespace).Create(ctx, BurstNetwork(i), metav1.CreateOptions{}); err != nil {
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
