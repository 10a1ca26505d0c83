package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	ovsdbclient "github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	"github.com/samplecrd/samplecrd-controller/internal/cachetransform"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
	"github.com/samplecrd/samplecrd-controller/pkg/ipam"
)

// podsTarget is the share of the baseline's attachment throughput the controller should reach.
const podsTarget = 0.90

// Namespaces of the pods scenario, apart from the memory and podcount scenarios' pods, which ask
// for no Network.
const (
	// nsAttach holds the scenario's Networks and the pods the controller attaches to them.
	nsAttach = "bench-attach"
	// nsAttachBaseline holds the baseline's pods, written by the bench while no manager runs.
	nsAttachBaseline = "bench-attach-baseline"
)

// clusterName is the managers' --cluster-name (env.startManager): the prefix of the OVN names.
const clusterName = "bench"

// attachBlockMin is the fewest addresses of a Network of the pods scenario: a /20.
const attachBlockMin = 4096

// runPods creates -attach-networks Networks and, once they are Ready, -attach-pods pods at once,
// spread evenly over them, each annotated with its Network, and times from the first create until
// every pod has samplecrd.k8s.io/allocated "true" (seen on the bench's pod watch) and its port in
// OVN (seen on the bench's libovsdb monitor). It reads the manager's Go heap after a GC before
// and after. The baseline stops the manager and has a client make the controller's writes per
// pod: the create, one OVSDB transaction that creates the pod's port on its Network's switch, and
// one merge patch of the pod's annotations; with the controller's concurrency and API rate limit.
// It runs last: it leaves its Networks and attached pods, and removes the baseline's pods and ports.
func runPods(ctx context.Context, b *bench) error {
	const sc = "pods"
	n, nets := b.cfg.attachPods, b.cfg.attachNetworks
	if n < 1 || nets < 1 {
		return fmt.Errorf("-attach-pods and -attach-networks must be at least 1, got %d and %d", n, nets)
	}
	if !b.hasController("podnetwork") {
		return errors.New("the manager binary has no podnetwork controller")
	}
	block, err := attachBlock(n, nets)
	if err != nil {
		return err
	}
	for _, ns := range []string{nsAttach, nsAttachBaseline} {
		if err := createNamespace(ctx, b.kube, ns); err != nil {
			return err
		}
	}
	tr, err := startAttachTracker(ctx, b.env.cfg, b.env.ovsdb.Endpoint(), nsAttach, nsAttachBaseline)
	if err != nil {
		return err
	}
	defer tr.stop()
	nt, err := startNetworkTracker(ctx, b.client, nsAttach)
	if err != nil {
		return err
	}
	defer nt.stop()

	// pprof serves heap?gc=1, which collects garbage before the heap is read.
	if err := b.startManager(ctx, "--enable-pprof"); err != nil {
		return err
	}
	mopts := b.managerOptions()
	logf("creating %d Networks of %d addresses in %s", nets, block, nsAttach)
	networks, err := b.createAttachNetworks(ctx, nets, block)
	if err != nil {
		return err
	}
	if err := waitAttachNetworks(ctx, b.mgr, nt, tr, nets); err != nil {
		return err
	}
	if _, err := b.quiesce(ctx, b.mgr); err != nil {
		return err
	}
	heapBefore, err := heapAfterGC(b.mgr)
	if err != nil {
		return err
	}

	// The controller.
	if err := b.env.compact(); err != nil {
		return err
	}
	txBefore, err := b.env.transactions()
	if err != nil {
		return err
	}
	before, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return err
	}
	mgrBefore, err := b.mgr.scrape()
	if err != nil {
		return err
	}
	cpu := b.startCPU(b.mgr)
	profiled := b.profile(sc, 10*time.Second)
	logf("creating %d pods on %d Networks with %d workers", n, nets, b.cfg.workers)
	start := time.Now()
	starts, err := b.createAttachPods(ctx, nsAttach, networks, n, nil)
	if err != nil {
		return err
	}
	created := time.Since(start)
	done, err := tr.waitAttached(ctx, nsAttach, n, b.mgr)
	if err != nil {
		return err
	}
	elapsed := done.Sub(start)
	cpuText := cpu.String()
	// The Networks' status writes follow the pods by a second (network.UsageCoalesce).
	mgrAfter, err := b.quiesce(ctx, b.mgr)
	if err != nil {
		return err
	}
	after, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return err
	}
	txAfter, err := b.env.transactions()
	if err != nil {
		return err
	}
	<-profiled
	heapAfter, err := heapAfterGC(b.mgr)
	if err != nil {
		return err
	}
	if b.cfg.profile {
		b.savePprof(b.mgr, sc, "heap")
	}
	if err := tr.verify(ctx, nsAttach, n); err != nil {
		return err
	}
	lat := tr.latencies(nsAttach, starts)
	writes := after.since(before).writes()
	writes[request{"POST", "pods"}] -= float64(n) // the bench's creates
	if writes[request{"POST", "pods"}] <= 0 {
		delete(writes, request{"POST", "pods"})
	}
	perPod := writes.total() / float64(n)
	txPerPod := float64(txAfter-txBefore) / float64(n)
	rate := float64(n) / elapsed.Seconds()
	heapPerPod := (heapAfter - heapBefore) / float64(n)
	delta := func(name string, match map[string]string) float64 {
		return mgrAfter.Sum(name, match) - mgrBefore.Sum(name, match)
	}
	mean := func(name string, match map[string]string) float64 {
		return delta(name+"_sum", match) / max(delta(name+"_count", match), 1)
	}
	podController := map[string]string{"controller": "podnetwork-controller"}
	syncs := delta("samplecrd_reconcile_duration_seconds_count", podController)
	syncMean := mean("samplecrd_reconcile_duration_seconds", podController)
	ensureMean := mean("samplecrd_backend_request_duration_seconds", map[string]string{"operation": "ensure_port"})
	patchMean := mean("samplecrd_rest_client_request_duration_seconds", map[string]string{"verb": "PATCH"})
	queueMean := mean("workqueue_queue_duration_seconds", map[string]string{"name": "podnetwork-controller"})
	limiterWait := delta("samplecrd_rest_client_rate_limiter_duration_seconds_sum", nil)
	networkSyncs := delta("samplecrd_reconcile_total", map[string]string{"controller": "network-controller"})
	if err := b.stopManager(); err != nil {
		return err
	}

	// The baseline: the same writes per pod, by a plain client, with no manager running.
	workers := mopts.PodNetworkWorkers
	logf("baseline: %d pods created by %d workers, each then given its port and annotations by %d workers (%.0f QPS, burst %d)",
		n, b.cfg.workers, workers, mopts.KubeAPIQPS, mopts.KubeAPIBurst)
	w, err := startPortWriter(ctx, b.env.ovsdb.Endpoint())
	if err != nil {
		return err
	}
	defer w.close()
	targets, err := attachTargets(ctx, w, networks, block)
	if err != nil {
		return err
	}
	patchCfg := rest.CopyConfig(b.env.cfg)
	patchCfg.QPS, patchCfg.Burst = mopts.KubeAPIQPS, mopts.KubeAPIBurst
	patchCfg.UserAgent = "samplecrd-bench-baseline"
	patcher, err := kubernetes.NewForConfig(patchCfg)
	if err != nil {
		return err
	}
	if err := b.env.compact(); err != nil {
		return err
	}
	baseTxBefore, err := b.env.transactions()
	if err != nil {
		return err
	}
	baseCPU := b.startCPU()
	baseStart := time.Now()
	var baseTimes baselineTimes
	baseStarts, err := b.baselineAttach(ctx, n, workers, targets, w, patcher, &baseTimes)
	if err != nil {
		return err
	}
	baseDone, err := tr.waitAttached(ctx, nsAttachBaseline, n, nil)
	if err != nil {
		return err
	}
	baseElapsed := baseDone.Sub(baseStart)
	baseCPUText := baseCPU.String()
	baseTxAfter, err := b.env.transactions()
	if err != nil {
		return err
	}
	if err := tr.verify(ctx, nsAttachBaseline, n); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	baseLat := tr.latencies(nsAttachBaseline, baseStarts)
	baseRate := float64(n) / baseElapsed.Seconds()
	ratio := rate / baseRate

	b.add(
		row{Scenario: sc, Measure: fmt.Sprintf("%d pods created at once on %d Networks: allocated, with OVN ports", n, nets),
			Value: fmt.Sprintf("%.0f pods/s (%s)", rate, fmtDuration(elapsed)), Number: rate, Unit: "pods/s",
			Baseline: fmt.Sprintf("%.0f pods/s (%s)", baseRate, fmtDuration(baseElapsed)),
			Target:   fmt.Sprintf("≥ %.0f pods/s", podsTarget*baseRate), Met: met(ratio >= podsTarget)},
		row{Scenario: sc, Measure: "controller / baseline throughput",
			Value: fmt.Sprintf("%.1f %%", 100*ratio), Number: 100 * ratio, Unit: "%",
			Target: fmt.Sprintf("≥ %.0f %%", 100*podsTarget), Met: met(ratio >= podsTarget)},
		row{Scenario: sc, Measure: "create-to-allocated latency p50",
			Value: fmtDuration(percentile(lat, 0.5)), Number: float64(percentile(lat, 0.5).Milliseconds()), Unit: "ms",
			Baseline: fmtDuration(percentile(baseLat, 0.5))},
		row{Scenario: sc, Measure: "create-to-allocated latency p99",
			Value: fmtDuration(percentile(lat, 0.99)), Number: float64(percentile(lat, 0.99).Milliseconds()), Unit: "ms",
			Baseline: fmtDuration(percentile(baseLat, 0.99))},
		row{Scenario: sc, Measure: "controller's API writes per pod",
			Value: fmt.Sprintf("%.2f", perPod), Number: perPod, Unit: "writes", Baseline: "1 + the create"},
		row{Scenario: sc, Measure: "OVN transactions per pod",
			Value: fmt.Sprintf("%.2f", txPerPod), Number: txPerPod, Unit: "transactions",
			Baseline: fmt.Sprintf("%.2f", float64(baseTxAfter-baseTxBefore)/float64(n))},
		row{Scenario: sc, Measure: "manager Go heap per attached pod",
			Value: fmtBytes(heapPerPod), Number: heapPerPod, Unit: "B"},
	)
	b.explain(sc, "the %d creates took %s (%.0f/s, %d workers, no rate limit); the controller's writes: %s", n, fmtDuration(created), float64(n)/created.Seconds(), b.cfg.workers, writes)
	b.explain(sc, "a pod is allocated when the bench's pod watch sees %s \"true\" and its libovsdb monitor sees the port %s; at the end every pod's port is checked to be on the switch its annotations name with addresses and port_security \"MAC IP\" as they say",
		samplecrdv1.AllocatedAnnotation, ovn.PodPortName(clusterName, "<pod UID>"))
	b.explain(sc, "baseline: %d workers create the pods as for the controller; %d workers (--podnetwork-workers), through one client limited to %.0f QPS and burst %d (--kube-api-qps, --kube-api-burst), each give a created pod its port (one OVSDB transaction: the insert and the mutation of the switch's ports, on the Network's switch; the controller's also holds two wait guards) and patch its annotations (one merge patch, the controller's keys), with no manager running; the addresses are the client's own, from the middle of each Network",
		b.cfg.workers, workers, mopts.KubeAPIQPS, mopts.KubeAPIBurst)
	b.explain(sc, "controller: %.0f pod syncs of %.1f ms on average (a port ensure %.1f ms, a PATCH %.1f ms), %.1f ms in the queue on average; %.0f Network syncs; API requests waited %.1f s in all for the client-side rate limiter",
		syncs, 1000*syncMean, 1000*ensureMean, 1000*patchMean, 1000*queueMean, networkSyncs, limiterWait)
	b.explain(sc, "baseline: a port transaction %.1f ms, a pod PATCH %.1f ms on average", baseTimes.mean(&baseTimes.port), baseTimes.mean(&baseTimes.patch))
	b.explain(sc, "heap per pod: the manager's go_memstats_heap_alloc_bytes after a GC (pprof heap?gc=1, the least of three readings) with the %d pods attached, %s, less that with the %d Networks Ready and no pod, %s, divided by the pods",
		n, fmtBytes(heapAfter), nets, fmtBytes(heapBefore))
	b.explain(sc, "controller: %s", cpuText)
	b.explain(sc, "baseline: %s", baseCPUText)
	logf("removing the baseline's ports and pods")
	return b.deleteAttachBaseline(ctx, w)
}

// attachBlock is the number of addresses of each Network: a power of two, at least a /20, that
// holds twice its pods and the network, gateway and broadcast addresses, so that the baseline's
// addresses (the upper half) never meet the controller's (allocated from the bottom).
func attachBlock(pods, networks int) (int, error) {
	perNetwork := (pods + networks - 1) / networks
	size := max(attachBlockMin, 1<<bits.Len(uint(2*perNetwork+3)))
	if networks*size > 1<<24 {
		return 0, fmt.Errorf("%d Networks of %d addresses do not fit in 10.0.0.0/8: ask for fewer pods or Networks", networks, size)
	}
	return size, nil
}

// attachNetwork is the j-th Network of the pods scenario: the j-th block of size addresses of
// 10.0.0.0/8 (the namespace is its own, so that the other scenarios' CIDRs do not matter).
func attachNetwork(j, size int) *samplecrdv1.Network {
	base := netip.AddrFrom4([4]byte{10, 0, 0, 0})
	cidr := netip.PrefixFrom(addrAdd(base, j*size), 32-bits.TrailingZeros(uint(size)))
	return &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsAttach, Name: fmt.Sprintf("net-%05d", j)},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr.String(), Gateway: addrAdd(cidr.Addr(), 1).String()},
	}
}

// addrAdd returns the IPv4 address n after a.
func addrAdd(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// createAttachNetworks creates the scenario's Networks with the bench's workers.
func (b *bench) createAttachNetworks(ctx context.Context, count, size int) ([]*samplecrdv1.Network, error) {
	out := make([]*samplecrdv1.Network, count)
	err := parallel(ctx, count, b.cfg.workers, func(ctx context.Context, j int) error {
		n, err := b.client.SamplecrdV1().Networks(nsAttach).Create(ctx, attachNetwork(j, size), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Network %s/net-%05d: %w", nsAttach, j, err)
		}
		out[j] = n
		return nil
	})
	return out, err
}

// waitAttachNetworks waits until the scenario's Networks are Ready with their switches.
func waitAttachNetworks(ctx context.Context, m *manager, nt *networkTracker, tr *attachTracker, count int) error {
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		if m.exited() {
			return false, fmt.Errorf("%w: %s", errManagerExited, m.logTail())
		}
		_, ready := nt.counts()
		return ready >= count && tr.switches(nsAttach) >= count, nil
	})
	if err != nil {
		_, ready := nt.counts()
		return fmt.Errorf("waiting for %d Networks of %s to be Ready with their switch (%d Ready, %d switches): %w",
			count, nsAttach, ready, tr.switches(nsAttach), err)
	}
	return nil
}

// attachPodName is the name of the i-th pod of the scenario, in either namespace.
func attachPodName(i int) string { return fmt.Sprintf("pod-%05d", i) }

// attachPod is a bench pod (see benchPod) of the namespace that asks for the Network.
func attachPod(namespace string, i int, network string) *corev1.Pod {
	p := benchPod(attachPodName(i))
	p.Namespace = namespace
	p.Annotations[samplecrdv1.NetworkAnnotation] = network
	return p
}

// createdPod is a pod the bench created: its number and UID.
type createdPod struct {
	i   int
	uid types.UID
}

// createAttachPods creates count pods in namespace with the bench's workers, pod i on Network
// i mod len(networks), and returns when each create was sent. Each created pod goes to created,
// when not nil.
func (b *bench) createAttachPods(ctx context.Context, namespace string, networks []*samplecrdv1.Network, count int, created chan<- createdPod) ([]time.Time, error) {
	starts := make([]time.Time, count)
	err := parallel(ctx, count, b.cfg.workers, func(ctx context.Context, i int) error {
		starts[i] = time.Now()
		p, err := b.kubeProto.CoreV1().Pods(namespace).Create(ctx, attachPod(namespace, i, networks[i%len(networks)].Name), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating pod %s/%s: %w", namespace, attachPodName(i), err)
		}
		if created != nil {
			created <- createdPod{i: i, uid: p.UID}
		}
		return nil
	})
	return starts, err
}

// managerOptions are the options of the scenarios' managers: the defaults, with -manager-args.
func (b *bench) managerOptions() *app.Options {
	o := app.NewOptions()
	fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	// The manager itself refuses flags it does not know; here the defaults stand for them.
	_ = fs.Parse(b.cfg.managerArgs)
	return o
}

// heapAfterGC reads the manager's Go heap after a garbage collection: the least of three readings
// of go_memstats_heap_alloc_bytes, each just after pprof's heap?gc=1 has collected.
func heapAfterGC(m *manager) (float64, error) {
	least := math.Inf(1)
	for range 3 {
		resp, err := m.scraper.Do("https://" + m.metrics + "/debug/pprof/heap?gc=1")
		if err != nil {
			return 0, fmt.Errorf("collecting the manager's garbage: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("collecting the manager's garbage: pprof answered %s", resp.Status)
		}
		set, err := m.scrape()
		if err != nil {
			return 0, err
		}
		least = min(least, set.Sum("go_memstats_heap_alloc_bytes", nil))
	}
	return least, nil
}

// attachTarget is what the baseline needs of one Network to attach pods to it.
type attachTarget struct {
	network  *samplecrdv1.Network
	cidr     netip.Prefix
	gateway  netip.Addr
	switchID string
	// first is the baseline's first address: the middle of the cidr.
	first netip.Addr
}

// attachTargets finds the switches the controller made for the Networks in w's cache.
func attachTargets(ctx context.Context, w *portWriter, networks []*samplecrdv1.Network, size int) ([]attachTarget, error) {
	var switches []nbdb.LogicalSwitch
	if err := w.client.List(ctx, &switches); err != nil {
		return nil, fmt.Errorf("listing logical switches: %w", err)
	}
	byName := map[string]string{}
	for _, s := range switches {
		byName[s.Name] = s.UUID
	}
	out := make([]attachTarget, len(networks))
	for j, n := range networks {
		name := ovn.SwitchName(clusterName, n.Namespace, n.Name)
		id, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("baseline: Network %s/%s has no logical switch %s", n.Namespace, n.Name, name)
		}
		cidr, err := netip.ParsePrefix(n.Spec.Cidr)
		if err != nil {
			return nil, err
		}
		out[j] = attachTarget{network: n, cidr: cidr, gateway: netip.MustParseAddr(n.Spec.Gateway), switchID: id,
			first: addrAdd(cidr.Addr(), size/2)}
	}
	return out, nil
}

// baselineAttach creates count pods in the baseline namespace with the bench's workers, as for
// the controller, and has workers give each created pod its port and annotations, and returns
// when each create was sent.
func (b *bench) baselineAttach(ctx context.Context, count, workers int, targets []attachTarget, w *portWriter, patcher kubernetes.Interface, times *baselineTimes) ([]time.Time, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	networks := make([]*samplecrdv1.Network, len(targets))
	for j, t := range targets {
		networks[j] = t.network
	}
	created := make(chan createdPod, count)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range created {
				if ctx.Err() != nil {
					continue
				}
				if err := baselineAttachPod(ctx, targets, w, patcher, p, times); err != nil {
					cancel(err)
				}
			}
		})
	}
	starts, err := b.createAttachPods(ctx, nsAttachBaseline, networks, count, created)
	close(created)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return nil, cause
	}
	return starts, err
}

// baselineTimes sums how long the baseline's writes took, in nanoseconds, and counts them.
type baselineTimes struct {
	port, patch atomic.Int64
	pods        atomic.Int64
}

// mean returns the mean of one sum, in milliseconds.
func (t *baselineTimes) mean(sum *atomic.Int64) float64 {
	return float64(sum.Load()) / 1e6 / float64(max(t.pods.Load(), 1))
}

// baselineAttachPod makes the controller's writes for one pod: the port, then the annotations.
func baselineAttachPod(ctx context.Context, targets []attachTarget, w *portWriter, patcher kubernetes.Interface, p createdPod, times *baselineTimes) error {
	t := targets[p.i%len(targets)]
	ip := addrAdd(t.first, p.i/len(targets))
	mac := ipam.MACFor(ip)
	name := attachPodName(p.i)
	address := mac.String() + " " + ip.String()
	port := &nbdb.LogicalSwitchPort{
		UUID: "newPodPort", Name: ovn.PodPortName(clusterName, p.uid),
		Addresses: []string{address}, PortSecurity: []string{address},
		ExternalIDs: map[string]string{
			ovn.OwnerKey: clusterName, ovn.NamespaceKey: t.network.Namespace, ovn.NameKey: t.network.Name,
			ovn.UIDKey: string(t.network.UID), ovn.PodNamespaceKey: nsAttachBaseline, ovn.PodNameKey: name,
			ovn.PodUIDKey: string(p.uid),
		},
	}
	t0 := time.Now()
	if err := w.transact(ctx, func(c ovsdbclient.Client) ([]ovsdb.Operation, error) {
		ops, err := c.Create(port)
		if err != nil {
			return nil, err
		}
		sw := &nbdb.LogicalSwitch{UUID: t.switchID}
		attach, err := c.Where(sw).Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{port.UUID}})
		return append(ops, attach...), err
	}); err != nil {
		return fmt.Errorf("baseline: creating the port of pod %s: %w", name, err)
	}
	annotations := map[string]string{
		samplecrdv1.AllocatedAnnotation:           "true",
		samplecrdv1.AllocatedNetworkAnnotation:    t.network.Name,
		samplecrdv1.AllocatedNetworkUIDAnnotation: string(t.network.UID),
		samplecrdv1.AllocatedIPAnnotation:         netip.PrefixFrom(ip, t.cidr.Bits()).String(),
		samplecrdv1.AllocatedMACAnnotation:        mac.String(),
		samplecrdv1.AllocatedGatewayAnnotation:    t.gateway.String(),
		samplecrdv1.LogicalSwitchAnnotation:       ovn.SwitchName(clusterName, t.network.Namespace, t.network.Name),
	}
	t1 := time.Now()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": p.uid, "annotations": annotations}})
	if _, err := patcher.CoreV1().Pods(nsAttachBaseline).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("baseline: patching pod %s: %w", name, err)
	}
	times.port.Add(int64(t1.Sub(t0)))
	times.patch.Add(int64(time.Since(t1)))
	times.pods.Add(1)
	return nil
}

// deleteAttachBaseline removes the baseline's ports (one transaction per switch) and pods, so
// that no manager ever sees them.
func (b *bench) deleteAttachBaseline(ctx context.Context, w *portWriter) error {
	var ports []nbdb.LogicalSwitchPort
	if err := w.client.List(ctx, &ports); err != nil {
		return fmt.Errorf("listing logical switch ports: %w", err)
	}
	ours := map[string]bool{}
	for _, p := range ports {
		if p.ExternalIDs[ovn.PodNamespaceKey] == nsAttachBaseline {
			ours[p.UUID] = true
		}
	}
	var switches []nbdb.LogicalSwitch
	if err := w.client.List(ctx, &switches); err != nil {
		return fmt.Errorf("listing logical switches: %w", err)
	}
	for _, s := range switches {
		detach := slices.DeleteFunc(slices.Clone(s.Ports), func(id string) bool { return !ours[id] })
		if len(detach) == 0 {
			continue
		}
		// A port that no switch refers to is gone: Logical_Switch_Port is not a root table.
		err := w.transact(ctx, func(c ovsdbclient.Client) ([]ovsdb.Operation, error) {
			sw := &nbdb.LogicalSwitch{UUID: s.UUID}
			return c.Where(sw).Mutate(sw, model.Mutation{Field: &sw.Ports, Mutator: ovsdb.MutateOperationDelete, Value: detach})
		})
		if err != nil {
			return fmt.Errorf("deleting the baseline's ports from switch %s: %w", s.Name, err)
		}
	}
	// One by one: a collection of 10,000 pods takes the API server longer than a request may.
	pods, err := b.kubeProto.CoreV1().Pods(nsAttachBaseline).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the baseline's pods: %w", err)
	}
	err = parallel(ctx, len(pods.Items), b.cfg.workers, func(ctx context.Context, i int) error {
		err := b.kubeProto.CoreV1().Pods(nsAttachBaseline).Delete(ctx, pods.Items[i].Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting the baseline's pod %s: %w", pods.Items[i].Name, err)
		}
		return nil
	})
	return err
}

// portWriter is the baseline's OVSDB client: connected and monitoring as the manager's is.
type portWriter struct {
	client ovsdbclient.Client
}

func startPortWriter(ctx context.Context, endpoint string) (*portWriter, error) {
	c, err := newOVSDBClient(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	if _, err := c.Monitor(ctx, c.NewMonitor(nbdb.MonitorTables()...)); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitoring the northbound tables: %w", err)
	}
	return &portWriter{client: c}, nil
}

func (w *portWriter) close() { w.client.Close() }

// transact sends the operations build returns as one transaction and checks every result.
func (w *portWriter) transact(ctx context.Context, build func(ovsdbclient.Client) ([]ovsdb.Operation, error)) error {
	ops, err := build(w.client)
	if err != nil {
		return err
	}
	results, err := w.client.Transact(ctx, ops...)
	if err != nil {
		return err
	}
	_, err = ovsdb.CheckOperationResults(results, ops)
	return err
}

func newOVSDBClient(ctx context.Context, endpoint string) (ovsdbclient.Client, error) {
	dbModel, err := nbdb.ClientDBModel()
	if err != nil {
		return nil, err
	}
	discard := logr.Discard()
	c, err := ovsdbclient.NewOVSDBClient(dbModel, ovsdbclient.WithEndpoint(endpoint), ovsdbclient.WithLogger(&discard))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connecting to ovsdb-server: %w", err)
	}
	return c, nil
}

// attachTracker stamps when each pod of some namespaces is first seen allocated on a pod watch,
// and when its port first appears in OVN on a libovsdb monitor; a pod is attached once both are.
type attachTracker struct {
	ovs       ovsdbclient.Client
	informers map[string]toolscache.SharedIndexInformer
	cancel    context.CancelFunc
	// portPrefix starts the names of the cluster's pod ports; the pod's UID follows.
	portPrefix string

	mu sync.Mutex
	// allocatedAt is when each pod (by UID) was first seen with the allocated annotation, keys its key.
	allocatedAt map[types.UID]time.Time
	keys        map[types.UID]toolscache.ObjectName
	// portAt is when each pod's port (by pod UID) first appeared.
	portAt map[types.UID]time.Time
	// doneAt is when each pod was attached, last the latest of a namespace; attached and
	// allocated count a namespace's pods.
	doneAt    map[toolscache.ObjectName]time.Time
	last      map[string]time.Time
	attached  map[string]int
	allocated map[string]int
}

func startAttachTracker(ctx context.Context, cfg *rest.Config, endpoint string, namespaces ...string) (*attachTracker, error) {
	ctx, cancel := context.WithCancel(ctx)
	t := &attachTracker{
		informers: map[string]toolscache.SharedIndexInformer{}, cancel: cancel,
		portPrefix:  ovn.PodPortName(clusterName, ""),
		allocatedAt: map[types.UID]time.Time{}, keys: map[types.UID]toolscache.ObjectName{},
		portAt: map[types.UID]time.Time{}, doneAt: map[toolscache.ObjectName]time.Time{},
		last: map[string]time.Time{}, attached: map[string]int{}, allocated: map[string]int{},
	}
	ok := false
	defer func() {
		if !ok {
			t.stop()
		}
	}()
	c, err := newOVSDBClient(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	t.ovs = c
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(_ string, m model.Model) {
			if p, isPort := m.(*nbdb.LogicalSwitchPort); isPort {
				t.observePort(p.Name)
			}
		},
	})
	lsp, ls := &nbdb.LogicalSwitchPort{}, &nbdb.LogicalSwitch{}
	if _, err := c.Monitor(ctx, c.NewMonitor(
		ovsdbclient.WithTable(lsp, &lsp.Name, &lsp.Addresses, &lsp.PortSecurity, &lsp.ExternalIDs),
		ovsdbclient.WithTable(ls, &ls.Name, &ls.Ports),
	)); err != nil {
		return nil, fmt.Errorf("monitoring logical switches and their ports: %w", err)
	}

	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	for _, ns := range namespaces {
		inf := metadatainformer.NewFilteredMetadataInformer(mc, corev1.SchemeGroupVersion.WithResource("pods"), ns, 0,
			toolscache.Indexers{}, nil).Informer()
		if err := inf.SetTransform(cachetransform.StripManagedFields); err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    t.observePod,
			UpdateFunc: func(_, obj any) { t.observePod(obj) },
		}); err != nil {
			return nil, err
		}
		t.informers[ns] = inf
		go inf.Run(ctx.Done())
		if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return nil, fmt.Errorf("the pod watch of %s did not sync", ns)
		}
	}
	ok = true
	return t, nil
}

func (t *attachTracker) stop() {
	t.cancel()
	if t.ovs != nil {
		t.ovs.Close()
	}
}

func (t *attachTracker) observePod(obj any) {
	now := time.Now()
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok || m.Annotations[samplecrdv1.AllocatedAnnotation] != "true" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.allocatedAt[m.UID]; seen {
		return
	}
	t.allocatedAt[m.UID] = now
	t.keys[m.UID] = toolscache.ObjectName{Namespace: m.Namespace, Name: m.Name}
	t.allocated[m.Namespace]++
	if _, ok := t.portAt[m.UID]; ok {
		t.attach(m.UID, now)
	}
}

func (t *attachTracker) observePort(name string) {
	now := time.Now()
	uid, ok := strings.CutPrefix(name, t.portPrefix)
	if !ok || uid == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, seen := t.portAt[types.UID(uid)]; seen {
		return
	}
	t.portAt[types.UID(uid)] = now
	if _, ok := t.allocatedAt[types.UID(uid)]; ok {
		t.attach(types.UID(uid), now)
	}
}

// attach records that the pod is attached. The caller holds mu.
func (t *attachTracker) attach(uid types.UID, at time.Time) {
	key := t.keys[uid]
	t.doneAt[key] = at
	t.attached[key.Namespace]++
	if at.After(t.last[key.Namespace]) {
		t.last[key.Namespace] = at
	}
}

// counts returns how many pods of the namespace are attached, and how many allocated.
func (t *attachTracker) counts(namespace string) (attached, allocated int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attached[namespace], t.allocated[namespace]
}

// switches counts the logical switches of the namespace's Networks.
func (t *attachTracker) switches(namespace string) int {
	prefix := ovn.SwitchName(clusterName, namespace, "")
	var none []*nbdb.LogicalSwitch
	count := 0
	_ = t.ovs.WhereCache(func(s *nbdb.LogicalSwitch) bool {
		if strings.HasPrefix(s.Name, prefix) {
			count++
		}
		return false
	}).List(context.Background(), &none)
	return count
}

// waitAttached waits until want pods of the namespace are attached, and returns when the last
// was. m, when not nil, is the manager doing it.
func (t *attachTracker) waitAttached(ctx context.Context, namespace string, want int, m *manager) (time.Time, error) {
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Minute, true, func(context.Context) (bool, error) {
		if m != nil && m.exited() {
			return false, fmt.Errorf("%w: %s", errManagerExited, m.logTail())
		}
		attached, _ := t.counts(namespace)
		return attached >= want, nil
	})
	if err != nil {
		attached, allocated := t.counts(namespace)
		return time.Time{}, fmt.Errorf("waiting for %d pods of %s to be attached (%d allocated, %d of them with their port): %w",
			want, namespace, allocated, attached, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[namespace], nil
}

// latencies returns, for the pods of the namespace numbered as starts, the time from the create
// to the attachment.
func (t *attachTracker) latencies(namespace string, starts []time.Time) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Duration
	for i, s := range starts {
		if at, ok := t.doneAt[toolscache.ObjectName{Namespace: namespace, Name: attachPodName(i)}]; ok {
			out = append(out, at.Sub(s))
		}
	}
	return out
}

// verify checks that the namespace has want pods, each allocated, with its port on the switch its
// annotations name, and the port's addresses and port_security "MAC IP" as they say.
func (t *attachTracker) verify(ctx context.Context, namespace string, want int) error {
	var ports []nbdb.LogicalSwitchPort
	if err := t.ovs.List(ctx, &ports); err != nil {
		return fmt.Errorf("listing logical switch ports: %w", err)
	}
	var switches []nbdb.LogicalSwitch
	if err := t.ovs.List(ctx, &switches); err != nil {
		return fmt.Errorf("listing logical switches: %w", err)
	}
	portByName := map[string]nbdb.LogicalSwitchPort{}
	for _, p := range ports {
		portByName[p.Name] = p
	}
	onSwitch := map[string]map[string]bool{}
	for _, s := range switches {
		onSwitch[s.Name] = map[string]bool{}
		for _, id := range s.Ports {
			onSwitch[s.Name][id] = true
		}
	}
	var problems []string
	pods := t.informers[namespace].GetStore().List()
	if len(pods) != want {
		problems = append(problems, fmt.Sprintf("%d pods, want %d", len(pods), want))
	}
	for _, obj := range pods {
		m := obj.(*metav1.PartialObjectMetadata)
		ann := m.Annotations
		name := ovn.PodPortName(clusterName, m.UID)
		ip, _, _ := strings.Cut(ann[samplecrdv1.AllocatedIPAnnotation], "/")
		address := []string{ann[samplecrdv1.AllocatedMACAnnotation] + " " + ip}
		p, ok := portByName[name]
		switch {
		case ann[samplecrdv1.AllocatedAnnotation] != "true":
			problems = append(problems, fmt.Sprintf("pod %s is not allocated", m.Name))
		case !ok:
			problems = append(problems, fmt.Sprintf("pod %s has no port %s", m.Name, name))
		case !slices.Equal(p.Addresses, address) || !slices.Equal(p.PortSecurity, address):
			problems = append(problems, fmt.Sprintf("pod %s: port %s has addresses %q and port_security %q, its annotations say %q",
				m.Name, name, p.Addresses, p.PortSecurity, address[0]))
		case !onSwitch[ann[samplecrdv1.LogicalSwitchAnnotation]][p.UUID]:
			problems = append(problems, fmt.Sprintf("pod %s: port %s is not on switch %q", m.Name, name, ann[samplecrdv1.LogicalSwitchAnnotation]))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problems with the pods of %s and their ports, such as: %s", len(problems), namespace,
			strings.Join(problems[:min(len(problems), 3)], "; "))
	}
	return nil
}
