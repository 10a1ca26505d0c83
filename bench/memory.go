package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/samplecrd/samplecrd-controller/internal/cachetransform"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/podcount"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	samplecrdinformers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions/samplecrd/v1"
)

// podCacheTarget is the most a pod may cost in the podcount controller's metadata-only cache.
const podCacheTarget = 1024

// runMemory fills the cluster with -memory-networks Networks and -pods pods, starts a fresh
// manager, and reads its peak RSS once it has checked every Network. Beside it, a small program
// (this binary, run as a child) caches the same pods with a metadata-only informer and with a
// full pod informer, and reports the heap each needs per pod.
func runMemory(ctx context.Context, b *bench) error {
	const sc = "memory"
	if b.mgr == nil {
		if err := b.startManager(ctx); err != nil {
			return err
		}
	}
	if err := b.ensurePods(ctx, b.cfg.pods); err != nil {
		return err
	}
	if err := b.ensureNetworks(ctx, b.cfg.memoryNetworks); err != nil {
		return err
	}
	networks, _ := b.networks.counts()
	pods, err := b.countPods(ctx, nsPods)
	if err != nil {
		return err
	}
	podcount := b.hasController("podcount")

	logf("restarting the manager with %d Networks and %d pods", networks, pods)
	if err := b.startManager(ctx); err != nil {
		return err
	}
	if _, err := b.quiesce(ctx, b.mgr); err != nil {
		return err
	}
	mem, err := b.mgr.memory()
	if err != nil {
		return err
	}
	if b.cfg.profile {
		b.savePprof(b.mgr, sc, "heap")
	}
	set, err := b.mgr.scrape()
	if err != nil {
		return err
	}
	heap := set.Sum("go_memstats_heap_inuse_bytes", nil)

	var sizes = map[string]podCacheResult{}
	for _, mode := range []string{"identity", "metadata", "metadata-stripped", "full", "full-stripped"} {
		r, err := b.measurePodCache(ctx, mode, pods)
		if err != nil {
			return err
		}
		sizes[mode] = r
	}
	perPod := func(mode string) string { return fmtBytes(sizes[mode].PerPod) }

	cached := fmt.Sprintf("%d Networks, %d pods cached", networks, pods)
	if !podcount {
		cached = fmt.Sprintf("%d Networks (this build has no podcount controller: no pods cached)", networks)
	}
	r := row{Scenario: sc, Measure: "manager peak RSS, " + cached,
		Value: fmtBytes(float64(mem.Peak)), Number: float64(mem.Peak) / (1 << 20), Unit: "MiB"}
	if b.emptyRSS > 0 {
		r.Baseline = fmtBytes(float64(b.emptyRSS)) + " with no objects"
	}
	identity := sizes["identity"].PerPod
	b.add(r,
		row{Scenario: sc, Measure: "heap per cached pod as podcount caches it (metadata-only, podcount.TrimToIdentity)",
			Value: perPod("identity"), Number: identity, Unit: "B",
			Baseline: perPod("full-stripped") + " full pod informer", Target: "≤ 1 KiB", Met: met(identity <= podCacheTarget)},
		row{Scenario: sc, Measure: "heap per cached pod, metadata-only with all its metadata",
			Value: perPod("metadata-stripped"), Number: sizes["metadata-stripped"].PerPod, Unit: "B",
			Baseline: perPod("full-stripped") + " full pod informer"},
	)
	nets, err := b.measureNetworkLabels(ctx)
	if err != nil {
		return err
	}
	labelled, unlabelled := nets["labelled"], nets["unlabelled"]
	b.add(row{Scenario: sc, Measure: fmt.Sprintf("heap per cached Network with %s of labels, as the manager caches it (network.TrimForCache)", fmtBytes(networkLabelBytes)),
		Value: fmtBytes(labelled), Number: labelled, Unit: "B",
		Baseline: fmtBytes(unlabelled) + " without labels, " + fmtBytes(nets["labelled-untrimmed"]) + " untrimmed",
		Target:   "≤ one without labels + 1 KiB", Met: met(labelled <= unlabelled+1024)})
	b.explain(sc, "per Network: the heap of a cache of %d Networks of a kind less that of a cache of %d, divided by %d (namespaces of their own, deleted afterwards): what a cache holds beside its objects is in both. Each cache is measured with its watch stopped, and filled by a list: filled by client-go's streaming list, the 20 labelled Networks left the client holding about 4.5 MiB more (its connection's buffers, not the cache)",
		2*labelledNetworks, labelledNetworks, labelledNetworks)
	b.explain(sc, "per pod with managedFields kept (the manager drops them from every cache): metadata-only %s, full %s",
		perPod("metadata"), perPod("full"))
	b.explain(sc, "the manager after checking every Network: RSS %s, Go heap in use %s; peak RSS is VmHWM of a manager started with everything in place",
		fmtBytes(float64(mem.RSS)), fmtBytes(heap))
	b.explain(sc, "per pod: the heap after GC of a program that lists and watches the %d pods with the informer, less its heap before, divided by the pods; the pods are Pending pods of two containers with env, resources, probes and a volume, created by the bench (%s each as JSON)",
		pods, fmtBytes(float64(samplePodSize())))
	return nil
}

// hasController reports whether the manager binary knows the controller name.
func (b *bench) hasController(name string) bool {
	out, _ := exec.Command(b.env.managerBin, "--help").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "--controllers") {
			_, all, _ := strings.Cut(line, "All: [")
			all, _, _ = strings.Cut(all, "]")
			for _, c := range strings.Fields(all) {
				if c == name {
					return true
				}
			}
		}
	}
	return false
}

// countPods counts the pods of a namespace ("" for all) with a one-item list.
func (b *bench) countPods(ctx context.Context, namespace string) (int, error) {
	list, err := b.kubeProto.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, fmt.Errorf("counting pods: %w", err)
	}
	n := len(list.Items)
	if list.RemainingItemCount != nil {
		n += int(*list.RemainingItemCount)
	}
	return n, nil
}

// ensurePods creates pods in the pods namespace until it holds count.
func (b *bench) ensurePods(ctx context.Context, count int) error {
	have, err := b.countPods(ctx, nsPods)
	if err != nil {
		return err
	}
	if have >= count {
		return nil
	}
	logf("creating %d pods with %d workers", count-have, b.cfg.workers)
	start := time.Now()
	err = parallel(ctx, count-have, b.cfg.workers, func(ctx context.Context, i int) error {
		_, err := b.kubeProto.CoreV1().Pods(nsPods).Create(ctx, benchPod(fmt.Sprintf("pod-%05d", have+i)), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("creating pods: %w", err)
	}
	logf("created %d pods in %s", count-have, time.Since(start).Round(time.Millisecond))
	return nil
}

// benchPod is a pod as a Deployment would make it: two containers with env, resources, probes,
// ports and a volume. No kubelet or scheduler runs, so it stays Pending.
func benchPod(name string) *corev1.Pod {
	res := func(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuReq), corev1.ResourceMemory: resource.MustParse(memReq)},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLim), corev1.ResourceMemory: resource.MustParse(memLim)},
		}
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	probe := &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		InitialDelaySeconds: 5, PeriodSeconds: 10,
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: nsPods,
			Labels:      map[string]string{"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "bench", "pod-template-hash": "7d9c5b8f6d"},
			Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "app"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
				Args:  []string{"netexec", "--http-port=8080"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					fieldEnv("POD_NAME", "metadata.name"), fieldEnv("POD_NAMESPACE", "metadata.namespace"),
					fieldEnv("POD_IP", "status.podIP"), {Name: "LOG_LEVEL", Value: "info"},
					{Name: "CONFIG_PATH", Value: "/etc/web/config.yaml"},
				},
				Resources:      res("100m", "128Mi", "500m", "256Mi"),
				ReadinessProbe: probe, LivenessProbe: probe,
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/web", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot: ptr(true), AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}, {
				Name: "proxy", Image: "registry.k8s.io/e2e-test-images/nginx:1.15-4",
				Ports:     []corev1.ContainerPort{{Name: "https", ContainerPort: 8443, Protocol: corev1.ProtocolTCP}},
				Env:       []corev1.EnvVar{{Name: "UPSTREAM", Value: "127.0.0.1:8080"}, fieldEnv("NODE_NAME", "spec.nodeName")},
				Resources: res("50m", "64Mi", "200m", "128Mi"),
			}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}},
			}}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// samplePodSize is the JSON size of a bench pod as written (before the API server's defaults).
func samplePodSize() int {
	raw, _ := json.Marshal(benchPod("pod-00000"))
	return len(raw)
}

// podCacheCommand makes this binary measure a pod cache instead of running the bench.
const podCacheCommand = "measure-pod-cache"

// podCacheResult is what the measuring program reports.
type podCacheResult struct {
	// Mode is the informer measured.
	Mode string `json:"mode"`
	// Pods is how many objects (pods or Networks) it cached.
	Pods int `json:"pods"`
	// Heap is the live heap the cache added, in bytes.
	Heap int64 `json:"heap"`
	// PerPod is Heap divided by Pods.
	PerPod float64 `json:"perPod"`
}

// measurePodCache runs this binary as a separate process that caches the pods with an informer
// of the mode, so that nothing else shares its heap.
func (b *bench) measurePodCache(ctx context.Context, mode string, pods int) (podCacheResult, error) {
	return b.measureCache(ctx, nsPods, mode, pods)
}

// measureCache runs this binary as a separate process that caches the objects of namespace with
// an informer of the mode, and reports the heap that took.
func (b *bench) measureCache(ctx context.Context, namespace, mode string, objects int) (podCacheResult, error) {
	self, err := os.Executable()
	if err != nil {
		return podCacheResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, podCacheCommand, "-kubeconfig="+b.env.kubeconfig,
		"-namespace="+namespace, "-mode="+mode, fmt.Sprintf("-expect=%d", objects))
	if strings.HasPrefix(mode, "network") {
		// A list, not client-go's streaming list, fills the Network caches: streamed at once, the
		// Networks with large labels leave the client's connection holding buffers of some MiB,
		// which a per-Network figure would count as the cache's (docs/performance.md).
		cmd.Env = append(os.Environ(), "KUBE_FEATURE_WatchListClient=false")
	}
	out, err := cmd.Output()
	if err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			return podCacheResult{}, fmt.Errorf("measuring the %s pod cache: %w: %s", mode, err, exit.Stderr)
		}
		return podCacheResult{}, fmt.Errorf("measuring the %s pod cache: %w", mode, err)
	}
	var r podCacheResult
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("reading the %s pod cache measurement %q: %w", mode, out, err)
	}
	logf("cache %s of %s: %d objects, %s each", mode, namespace, r.Pods, fmtBytes(r.PerPod))
	return r, nil
}

// podCacheMain is the measuring program: it caches the pods of a namespace with one informer and
// prints, as JSON, the live heap that took.
func podCacheMain(args []string) int {
	fs := flag.NewFlagSet(podCacheCommand, flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster")
	namespace := fs.String("namespace", "", "namespace of the pods")
	mode := fs.String("mode", "metadata", "pods: identity, metadata, metadata-stripped, full or full-stripped; Networks: network-stripped or network-trimmed")
	expect := fs.Int("expect", 0, "objects expected")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := measure(*kubeconfig, *namespace, *mode, *expect)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

func measure(kubeconfig, namespace, mode string, expect int) (podCacheResult, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return podCacheResult{}, err
	}
	cfg.QPS = -1
	indexers := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	var informer cache.SharedIndexInformer
	kind, transform := mode, cache.TransformFunc(nil)
	switch {
	case strings.HasSuffix(mode, "-stripped"):
		kind, transform = strings.TrimSuffix(mode, "-stripped"), cachetransform.StripManagedFields
	case mode == "identity":
		kind, transform = "metadata", podcount.TrimToIdentity
	case mode == "network-trimmed":
		kind, transform = "network", network.TrimForCache
	}

	heapNow := func() int64 {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	// The clients exist before the first reading, so that only the cache is measured.
	switch kind {
	case "metadata":
		client, err := metadata.NewForConfig(cfg)
		if err != nil {
			return podCacheResult{}, err
		}
		informer = metadatainformer.NewFilteredMetadataInformer(client, corev1.SchemeGroupVersion.WithResource("pods"), namespace, 0, indexers, nil).Informer()
	case "full":
		cfg.ContentType = "application/vnd.kubernetes.protobuf"
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return podCacheResult{}, err
		}
		informer = coreinformers.NewPodInformer(client, namespace, 0, indexers)
	case "network":
		client, err := clientset.NewForConfig(cfg)
		if err != nil {
			return podCacheResult{}, err
		}
		informer = samplecrdinformers.NewNetworkInformer(client, namespace, 0, indexers)
	default:
		return podCacheResult{}, fmt.Errorf("unknown mode %q", mode)
	}
	if transform != nil {
		if err := informer.SetTransform(transform); err != nil {
			return podCacheResult{}, err
		}
	}
	before := heapNow()
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		informer.Run(stop)
	}()
	if !cache.WaitForCacheSync(stop, informer.HasSynced) {
		close(stop)
		return podCacheResult{}, fmt.Errorf("the %s informer did not sync", mode)
	}
	store := informer.GetStore()
	pods := len(store.ListKeys())
	if pods < expect {
		close(stop)
		return podCacheResult{}, fmt.Errorf("the %s informer holds %d objects, want %d", mode, pods, expect)
	}
	// The cache alone: with the watch stopped, its connection's buffers, which grow with the
	// largest objects in flight (client-go's streaming list reads many at once), are not counted.
	close(stop)
	<-stopped
	after := heapNow()
	runtime.KeepAlive(store)
	return podCacheResult{Mode: mode, Pods: pods, Heap: after - before, PerPod: float64(after-before) / float64(max(pods, 1))}, nil
}

// What the memory scenario caches to show what a Network's labels cost the manager: Networks with
// networkLabelBytes of labels each and Networks without, labelledNetworks and twice as many of
// each, each set in a namespace of its own. The cost of one is the difference between the two
// sizes of its kind, divided by labelledNetworks: what a cache holds beside its Networks (the
// watch connection's buffers, which grow to the largest object read) is the same in both.
const (
	labelledNetworks  = 10
	networkLabelBytes = 900 << 10
)

// networkLabels returns about size bytes of labels: keys and values of the longest names allowed.
func networkLabels(size int) map[string]string {
	labels := map[string]string{}
	for i := 0; size > 0; i++ {
		k := fmt.Sprintf("l%05d-%s", i, strings.Repeat("k", 56))
		v := strings.Repeat("v", 63)
		labels[k] = v
		size -= len(k) + len(v)
	}
	return labels
}

// labelSet is one namespace of measureNetworkLabels.
type labelSet struct {
	ns       string
	labelled bool
	networks int
}

// measureNetworkLabels creates the Networks of the label sets, measures the cost of one Network
// with large labels and of one without in a Network cache as the manager keeps it
// (network.TrimForCache) and, for the labelled ones, untrimmed; then deletes them again. It
// returns the per-Network costs by "labelled", "unlabelled" and "labelled-untrimmed".
func (b *bench) measureNetworkLabels(ctx context.Context) (map[string]float64, error) {
	labels := networkLabels(networkLabelBytes)
	sets := []labelSet{
		{"bench-unlabelled-a", false, labelledNetworks}, {"bench-unlabelled-b", false, 2 * labelledNetworks},
		{"bench-labelled-a", true, labelledNetworks}, {"bench-labelled-b", true, 2 * labelledNetworks},
	}
	next := 0 // the /24s of 192.168.0.0/16, outside the scenarios' 10.0.0.0/8 and apart
	for _, set := range sets {
		if err := createNamespace(ctx, b.kube, set.ns); err != nil {
			return nil, err
		}
		for i := range set.networks {
			n := newNetwork(set.ns, "labels", i)
			n.Spec.Cidr, n.Spec.Gateway = fmt.Sprintf("192.168.%d.0/24", next), fmt.Sprintf("192.168.%d.1", next)
			next++
			if set.labelled {
				n.Labels = labels
			}
			if _, err := b.client.SamplecrdV1().Networks(set.ns).Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("creating Network %s/%s: %w", set.ns, n.Name, err)
			}
		}
	}
	heap := func(set labelSet, mode string) (int64, error) {
		r, err := b.measureCache(ctx, set.ns, mode, set.networks)
		return r.Heap, err
	}
	costs := map[string]float64{}
	for _, m := range []struct {
		key, mode  string
		small, big labelSet
	}{
		{"unlabelled", "network-trimmed", sets[0], sets[1]},
		{"labelled", "network-trimmed", sets[2], sets[3]},
		{"labelled-untrimmed", "network-stripped", sets[2], sets[3]},
	} {
		small, err := heap(m.small, m.mode)
		if err != nil {
			return nil, err
		}
		big, err := heap(m.big, m.mode)
		if err != nil {
			return nil, err
		}
		costs[m.key] = float64(big-small) / float64(m.big.networks-m.small.networks)
	}
	// The manager reconciled them meanwhile: it removes its finalizer once they are deleted.
	for _, set := range sets {
		// One by one: a collection of Networks this large can take the API server longer than
		// a request may.
		for i := range set.networks {
			name := newNetwork(set.ns, "labels", i).Name
			if err := b.client.SamplecrdV1().Networks(set.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("deleting Network %s/%s: %w", set.ns, name, err)
			}
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			l, err := b.client.SamplecrdV1().Networks(set.ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(l.Items) == 0, nil
		})
		if err != nil {
			return nil, fmt.Errorf("waiting for the Networks of %s to go: %w", set.ns, err)
		}
	}
	return costs, nil
}
