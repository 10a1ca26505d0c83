package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	ovsdbclient "github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
)

// Namespaces of the bench's objects.
const (
	// nsNetworks holds the Networks the controller reconciles.
	nsNetworks = "bench"
	// nsBaseline holds the Networks of the baselines, written by the bench itself while no manager runs.
	nsBaseline = "bench-baseline"
	// nsPods holds the pods of the memory and podcount scenarios.
	nsPods = "bench-pods"
)

func createNamespace(ctx context.Context, kube kubernetes.Interface, name string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// newNetwork returns the i-th Network: a /24 of 10.0.0.0/8, so that no two of the run overlap.
func newNetwork(namespace, prefix string, i int) *samplecrdv1.Network {
	return &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("%s-%05d", prefix, i)},
		Spec: samplecrdv1.NetworkSpec{
			Cidr:    fmt.Sprintf("10.%d.%d.0/24", i>>8&255, i&255),
			Gateway: fmt.Sprintf("10.%d.%d.1", i>>8&255, i&255),
		},
	}
}

// allocate reserves n Network numbers and returns the first.
func (b *bench) allocate(n int) int {
	first := b.nextNetwork
	b.nextNetwork += n
	if b.nextNetwork > 1<<16 {
		panic("bench: more than 65,536 Networks")
	}
	return first
}

// parallel runs fn for 0..n-1 on workers goroutines and returns the first error. A stop makes
// the workers stop taking new items.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

// networkTracker watches the Networks of one namespace and stamps when each is first seen Ready.
type networkTracker struct {
	factory informers.SharedInformerFactory
	cancel  context.CancelFunc

	mu sync.Mutex
	// readyAt is when each Network (by name) was first seen with Ready=True.
	readyAt map[string]time.Time
	// seenAt is when each Network was first seen at all.
	seenAt map[string]time.Time
	// existing counts the Networks that exist now.
	existing int
}

func startNetworkTracker(ctx context.Context, client clientset.Interface, namespace string) (*networkTracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &networkTracker{
		factory: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace)),
		cancel:  cancel,
		readyAt: map[string]time.Time{},
		seenAt:  map[string]time.Time{},
	}
	inf := t.factory.Samplecrd().V1().Networks().Informer()
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			t.mu.Lock()
			t.existing++
			t.mu.Unlock()
			t.observe(obj)
		},
		UpdateFunc: func(_, obj any) { t.observe(obj) },
		DeleteFunc: func(any) {
			t.mu.Lock()
			t.existing--
			t.mu.Unlock()
		},
	}); err != nil {
		return nil, err
	}
	t.factory.Start(ctx.Done())
	for typ, ok := range t.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("the Network watch of the bench did not sync (%v)", typ)
		}
	}
	return t, nil
}

func (t *networkTracker) observe(obj any) {
	now := time.Now()
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seenAt[n.Name]; !ok {
		t.seenAt[n.Name] = now
	}
	if _, done := t.readyAt[n.Name]; !done && meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady) {
		t.readyAt[n.Name] = now
	}
}

func (t *networkTracker) stop() {
	t.cancel()
	t.factory.Shutdown()
}

// ready returns when the Network was first seen Ready.
func (t *networkTracker) ready(name string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.readyAt[name]
	return at, ok
}

// counts returns how many Networks exist and how many of all ever seen were Ready.
func (t *networkTracker) counts() (existing, ready int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.existing, len(t.readyAt)
}

// switchTracker follows the OVN logical switches whose names start with a prefix.
type switchTracker struct {
	client ovsdbclient.Client
	prefix string
	count  atomic.Int64

	mu sync.Mutex
	// seenAt is when each switch (by name) appeared.
	seenAt map[string]time.Time
}

func startSwitchTracker(ctx context.Context, endpoint, prefix string) (*switchTracker, error) {
	dbModel, err := nbdb.ClientDBModel()
	if err != nil {
		return nil, err
	}
	discard := logr.Discard()
	c, err := ovsdbclient.NewOVSDBClient(dbModel, ovsdbclient.WithEndpoint(endpoint), ovsdbclient.WithLogger(&discard))
	if err != nil {
		return nil, err
	}
	t := &switchTracker{client: c, prefix: prefix, seenAt: map[string]time.Time{}}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connecting to ovsdb-server: %w", err)
	}
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(table string, m model.Model) {
			if ls, ok := m.(*nbdb.LogicalSwitch); ok && strings.HasPrefix(ls.Name, prefix) {
				t.count.Add(1)
				t.mu.Lock()
				if _, ok := t.seenAt[ls.Name]; !ok {
					t.seenAt[ls.Name] = time.Now()
				}
				t.mu.Unlock()
			}
		},
		DeleteFunc: func(table string, m model.Model) {
			if ls, ok := m.(*nbdb.LogicalSwitch); ok && strings.HasPrefix(ls.Name, prefix) {
				t.count.Add(-1)
			}
		},
	})
	ls := &nbdb.LogicalSwitch{}
	if _, err := c.Monitor(ctx, c.NewMonitor(ovsdbclient.WithTable(ls, &ls.Name))); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitoring logical switches: %w", err)
	}
	return t, nil
}

func (t *switchTracker) stop() { t.client.Close() }

// seen returns when the switch of the Network name appeared.
func (t *switchTracker) seen(name string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.seenAt[t.prefix+name]
	return at, ok
}

// createNetworks creates count Networks numbered from first in the bench's namespace, with the
// bench's workers, and returns their names.
func (b *bench) createNetworks(ctx context.Context, first, count int) ([]string, error) {
	names := make([]string, count)
	err := parallel(ctx, count, b.cfg.workers, func(ctx context.Context, i int) error {
		n := newNetwork(nsNetworks, "net", first+i)
		names[i] = n.Name
		_, err := b.client.SamplecrdV1().Networks(nsNetworks).Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Network %s: %w", n.Name, err)
		}
		return nil
	})
	return names, err
}

// waitAllReady waits until every Network of the bench's namespace is Ready and has its logical
// switch, and returns when that was first true.
func (b *bench) waitAllReady(ctx context.Context, timeout time.Duration) (time.Time, error) {
	var at time.Time
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if b.mgr != nil && b.mgr.exited() {
			return false, fmt.Errorf("%w: %s", errManagerExited, b.mgr.logTail())
		}
		existing, ready := b.networks.counts()
		if ready >= existing && int(b.switches.count.Load()) >= existing {
			at = time.Now()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		existing, ready := b.networks.counts()
		return at, fmt.Errorf("waiting for %d Networks to be Ready with their logical switch (%d Ready, %d switches): %w",
			existing, ready, b.switches.count.Load(), err)
	}
	return at, nil
}

// ensureNetworks creates Networks until the bench's namespace holds total, and waits until all
// are Ready.
func (b *bench) ensureNetworks(ctx context.Context, total int) error {
	existing, _ := b.networks.counts()
	if existing < total {
		logf("creating %d Networks", total-existing)
		if _, err := b.createNetworks(ctx, b.allocate(total-existing), total-existing); err != nil {
			return err
		}
	}
	_, err := b.waitAllReady(ctx, 10*time.Minute)
	return err
}

// startManager starts the scenarios' manager (stopping the one running, if any) and waits until
// it leads, is ready, and has checked every Network: its network reconcile count reaches the
// Networks that exist and its queue is empty.
func (b *bench) startManager(ctx context.Context, args ...string) error {
	if err := b.stopManager(); err != nil {
		return err
	}
	m, err := b.env.startManager(ctx, "manager", b.managerArgs(args...)...)
	if err != nil {
		return err
	}
	b.mgr = m
	b.mgrArgs = strings.Join(args, " ")
	if _, _, err = b.waitChecked(ctx, m, time.Now()); err != nil {
		return err
	}
	if existing, _ := b.networks.counts(); existing == 0 && b.emptyRSS == 0 {
		if mem, err := m.memory(); err == nil {
			b.emptyRSS = mem.Peak
		}
	}
	return nil
}

// stopManager stops the scenarios' manager gracefully, when one runs.
func (b *bench) stopManager() error {
	if b.mgr == nil {
		return nil
	}
	err := b.mgr.stop()
	b.mgr = nil
	return err
}

// waitChecked waits until m is ready and leads, then until it has checked every Network, and
// returns how long each took from start.
func (b *bench) waitChecked(ctx context.Context, m *manager, start time.Time) (ready, checked time.Duration, err error) {
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		if m.exited() {
			return false, fmt.Errorf("%w: %s", errManagerExited, m.logTail())
		}
		return m.ready(), nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("waiting for the manager's /readyz: %w", err)
	}
	ready = time.Since(start)
	existing, _ := b.networks.counts()
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Minute, true, func(context.Context) (bool, error) {
		if m.exited() {
			return false, fmt.Errorf("%w: %s", errManagerExited, m.logTail())
		}
		set, err := m.scrape()
		if err != nil {
			return false, nil
		}
		reconciled := set.Sum("samplecrd_reconcile_total", map[string]string{"controller": "network-controller"})
		depth := set.Sum("workqueue_depth", map[string]string{"name": "network-controller"})
		return set.Sum("samplecrd_leader", nil) == 1 && reconciled >= float64(existing) && depth == 0, nil
	})
	if err != nil {
		return ready, 0, fmt.Errorf("waiting for the manager to check %d Networks: %w", existing, err)
	}
	return ready, time.Since(start), nil
}

// cpuWindow measures the CPU time of the processes of a run over a window.
type cpuWindow struct {
	start    time.Time
	procs    map[string]testenv.Proc
	cpuStart map[string]time.Duration
	// busyStart is the machine's busy time, all cores, at the start.
	busyStart time.Duration
}

// startCPU starts a window over the control plane, ovsdb-server, the bench and the given managers.
func (b *bench) startCPU(managers ...*manager) *cpuWindow {
	w := &cpuWindow{start: time.Now(), procs: b.env.processes(), cpuStart: map[string]time.Duration{}}
	if me, err := testenv.Identify("bench", os.Getpid()); err == nil {
		w.procs[me.Name] = me
	}
	for i, m := range managers {
		name := "manager"
		if i > 0 {
			name = fmt.Sprintf("manager-%d", i+1)
		}
		w.procs[name] = m.proc
	}
	for name, p := range w.procs {
		w.cpuStart[name] = p.CPUTime()
	}
	w.busyStart, _ = testenv.MachineBusy()
	return w
}

// String gives each process's share of the machine over the window, busiest first, as
// "kube-apiserver 45%, etcd 20%, ..." of all cores.
func (w *cpuWindow) String() string {
	elapsed := time.Since(w.start)
	type share struct {
		name string
		pct  float64
	}
	var shares []share
	var total float64
	for name, p := range w.procs {
		used := p.CPUTime() - w.cpuStart[name]
		pct := 100 * used.Seconds() / (elapsed.Seconds() * float64(runtime.NumCPU()))
		total += pct
		shares = append(shares, share{name, pct})
	}
	busy, _ := testenv.MachineBusy()
	machine := 100 * (busy - w.busyStart).Seconds() / (elapsed.Seconds() * float64(runtime.NumCPU()))
	shares = append(shares, share{"other processes", max(0, machine-total)})
	sort.Slice(shares, func(i, j int) bool { return shares[i].pct > shares[j].pct })
	parts := make([]string, 0, len(shares))
	for _, s := range shares {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", s.name, s.pct))
	}
	return fmt.Sprintf("CPU over %s (%% of %d cores): %s; machine busy %.0f%%", fmtDuration(elapsed), runtime.NumCPU(), strings.Join(parts, ", "), machine)
}
