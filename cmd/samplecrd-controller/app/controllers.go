package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/nodewatch"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/podcount"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/podnetwork"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/podwatch"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// controllerContext is what the controllers are built from.
type controllerContext struct {
	opts              *Options
	kubeClient        kubernetes.Interface
	client            clientset.Interface
	kubeInformers     kubeinformers.SharedInformerFactory
	metadataInformers metadatainformer.SharedInformerFactory
	informers         informers.SharedInformerFactory
	// recorder returns an event recorder that names component as the source.
	recorder func(component string) record.EventRecorder
	// runner are the work-loop settings every controller gets.
	runner runner.Options
	// out is where podwatch and nodewatch print their lines (standard output).
	out io.Writer
	// checks is /readyz, to which controllers add their readiness checks.
	checks *checks
	// closers run when the manager stops, after the controllers, last added first.
	closers []func()
	// hub is the OVN backend that the network and podnetwork controllers share, once built.
	hub *backend.Hub
	// registry holds the pods' addresses, shared by the network and podnetwork controllers; nil
	// when podnetwork does not run.
	registry *podnetwork.Registry
}

// ovnBackend returns the OVN backend the controllers share, connecting it the first time.
func (cc *controllerContext) ovnBackend(ctx context.Context) (*backend.Hub, error) {
	if cc.hub != nil {
		return cc.hub, nil
	}
	be, err := ovn.New(ctx, ovn.Options{Endpoint: cc.opts.OVNNorthbound, TLS: cc.opts.OVNNorthboundTLS, ClusterName: cc.opts.ClusterName})
	if err != nil {
		return nil, fmt.Errorf("creating the OVN backend: %w", err)
	}
	cc.closers = append(cc.closers, be.Close)
	cc.checks.add("backend-ovn", be.Ready)
	metrics.WatchBackendReadiness(be)
	cc.hub = backend.NewHub(be)
	return cc.hub, nil
}

// runFunc runs a built controller until ctx is cancelled, and returns once it has stopped.
type runFunc func(ctx context.Context)

// controllerDescriptor is one entry of the registry.
type controllerDescriptor struct {
	// name is what --controllers uses.
	name string
	// controllerName is the controller's own name, for logs and events.
	controllerName string
	// build creates the controller, registering its informers and handlers, and starts nothing.
	build func(ctx context.Context, cc *controllerContext) (runFunc, error)
	// permissions are the API requests the controller makes, which the manager checks at start-up
	// (and reports when denied). config/rbac grants exactly these; a new request needs a line here
	// and a rule there.
	permissions func(o *Options) []permission
}

// controllerDescriptors is the registry of every controller the manager can run.
func controllerDescriptors() []controllerDescriptor {
	return []controllerDescriptor{
		{name: "network", controllerName: network.ControllerName, build: buildNetwork, permissions: networkPermissions},
		{name: "podcount", controllerName: podcount.ControllerName, build: buildPodCount, permissions: podCountPermissions},
		{name: "podwatch", controllerName: podwatch.ControllerName, build: buildPodWatch, permissions: podWatchPermissions},
		{name: "nodewatch", controllerName: nodewatch.ControllerName, build: buildNodeWatch, permissions: nodeWatchPermissions},
		{name: "podnetwork", controllerName: podnetwork.ControllerName, build: buildPodNetwork, permissions: podNetworkPermissions},
	}
}

func controllerNames() []string {
	var names []string
	for _, d := range controllerDescriptors() {
		names = append(names, d.name)
	}
	sort.Strings(names)
	return names
}

// networkPermissions: the Network informer (every namespace), the finalizer (patch), the status,
// the read that confirms orphans before their backend objects go (get), and events on Networks.
func networkPermissions(*Options) []permission {
	g := samplecrdv1.SchemeGroupVersion.Group
	return slices.Concat(listWatch(g, "networks", ""), []permission{
		{verb: "get", group: g, resource: "networks"},
		{verb: "patch", group: g, resource: "networks"},
		{verb: "patch", group: g, resource: "networks", subresource: "status"},
	}, eventPermissions(""))
}

func buildNetwork(ctx context.Context, cc *controllerContext) (runFunc, error) {
	hub, err := cc.ovnBackend(ctx)
	if err != nil {
		return nil, err
	}
	var instrumented = metrics.InstrumentBackend(hub.View())
	networks := cc.informers.Samplecrd().V1().Networks()
	// The network controller is the only reader of Networks, and it reads no labels or annotations,
	// which a Network's author can make as large as a request may be.
	if err := networks.Informer().SetTransform(network.TrimForCache); err != nil {
		return nil, fmt.Errorf("trimming the Network cache: %w", err)
	}
	var attachments network.Attachments
	if cc.registry != nil {
		attachments = cc.registry
	}
	c, err := network.NewController(ctx, cc.client, networks, instrumented,
		cc.recorder(network.ControllerName), network.Options{
			Attachments:         attachments,
			OrphanSweepInterval: cc.opts.OrphanSweepInterval,
			// Each Network is still checked once a period on average, and within one and a half.
			ResyncSpread: cc.opts.ResyncPeriod / 2,
			Runner:       cc.runner,
			EventObject:  managerEventObject(cc.opts),
		})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) { c.Run(ctx, cc.opts.NetworkWorkers) }, nil
}

// managerEventObject is what the manager's own events (a backend outage) are recorded on: the
// leader election Lease, where the leadership events are too, so that they show in the manager's
// namespace. Without leader election there is none; the log and the metrics tell.
func managerEventObject(o *Options) runtime.Object {
	if !o.LeaderElection.Enabled {
		return nil
	}
	return &corev1.ObjectReference{
		APIVersion: coordinationv1.SchemeGroupVersion.String(), Kind: "Lease",
		Namespace: o.LeaderElection.Namespace, Name: o.LeaderElection.Name,
	}
}

// podCountPermissions: the pod metadata and node informers, the label patch, and events on nodes
// (which go to the default namespace) or, with --podcount-event-mode=all, on pods everywhere.
func podCountPermissions(o *Options) []permission {
	events := metav1.NamespaceDefault
	if o.PodCount.EventMode == string(podcount.EventsAll) {
		events = ""
	}
	return slices.Concat(listWatch("", "pods", ""), listWatch("", "nodes", ""),
		[]permission{{verb: "patch", resource: "nodes"}}, eventPermissions(events))
}

func buildPodCount(ctx context.Context, cc *controllerContext) (runFunc, error) {
	// Metadata only: the count needs no pod bodies, and a pod's metadata is a fraction of its size.
	pods := cc.metadataInformers.ForResource(corev1.SchemeGroupVersion.WithResource("pods"))
	// podcount needs the pods' identity only; podnetwork, when it runs, their annotations too.
	trim := podcount.TrimToIdentity
	if cc.registry != nil {
		trim = podnetwork.TrimPod
	}
	if err := pods.Informer().SetTransform(trim); err != nil {
		return nil, fmt.Errorf("trimming the pod cache: %w", err)
	}
	c, err := podcount.NewController(ctx, cc.kubeClient, pods, cc.kubeInformers.Core().V1().Nodes(),
		cc.recorder(podcount.ControllerName), podcount.Options{
			LabelKey:  cc.opts.PodCount.LabelKey,
			EventMode: podcount.EventMode(cc.opts.PodCount.EventMode),
			Period:    cc.opts.PodCount.Period,
			Runner:    cc.runner,
		})
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// podWatchPermissions: its own pod informer, on one namespace.
func podWatchPermissions(o *Options) []permission {
	return listWatch("", "pods", o.PodWatchNamespace)
}

func buildPodWatch(ctx context.Context, cc *controllerContext) (runFunc, error) {
	c, err := podwatch.NewController(ctx, cc.kubeClient, cc.opts.PodWatchNamespace, cc.out, podwatch.Options{Runner: cc.runner})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) { c.Run(ctx, cc.opts.PodWatchWorkers) }, nil
}

// nodeWatchPermissions: the shared node informer.
func nodeWatchPermissions(*Options) []permission {
	return listWatch("", "nodes", "")
}

func buildNodeWatch(ctx context.Context, cc *controllerContext) (runFunc, error) {
	c, err := nodewatch.NewController(ctx, cc.kubeInformers.Core().V1().Nodes(), cc.out, nodewatch.Options{Runner: cc.runner})
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// podNetworkPermissions: the pod and namespace metadata informers, the pods' annotations (patch),
// the Network informer, and events on pods everywhere.
func podNetworkPermissions(*Options) []permission {
	return slices.Concat(listWatch("", "pods", ""), listWatch("", "namespaces", ""),
		listWatch(samplecrdv1.SchemeGroupVersion.Group, "networks", ""),
		[]permission{{verb: "patch", resource: "pods"}}, eventPermissions(""))
}

func buildPodNetwork(ctx context.Context, cc *controllerContext) (runFunc, error) {
	hub, err := cc.ovnBackend(ctx)
	if err != nil {
		return nil, err
	}
	pods := cc.metadataInformers.ForResource(corev1.SchemeGroupVersion.WithResource("pods"))
	if err := pods.Informer().SetTransform(podnetwork.TrimPod); err != nil {
		return nil, fmt.Errorf("trimming the pod cache: %w", err)
	}
	namespaces := cc.metadataInformers.ForResource(corev1.SchemeGroupVersion.WithResource("namespaces"))
	if err := namespaces.Informer().SetTransform(podnetwork.TrimNamespace); err != nil {
		return nil, fmt.Errorf("trimming the namespace cache: %w", err)
	}
	view := hub.View()
	c, err := podnetwork.NewController(ctx, cc.kubeClient, pods, namespaces, cc.informers.Samplecrd().V1().Networks(),
		view, metrics.InstrumentPorts(view), cc.registry, cc.recorder(podnetwork.ControllerName), podnetwork.Options{Runner: cc.runner})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) { c.Run(ctx, cc.opts.PodNetworkWorkers) }, nil
}

// buildControllers builds every enabled controller, each with a logger named after it. ctx lives as
// long as the manager: backends built on it stay connected until their closers run.
func buildControllers(ctx context.Context, cc *controllerContext) (map[string]runFunc, error) {
	runs := map[string]runFunc{}
	if cc.opts.enabled("podnetwork") {
		cc.registry = podnetwork.NewRegistry()
	}
	for _, d := range controllerDescriptors() {
		if !cc.opts.enabled(d.name) {
			klog.FromContext(ctx).Info("Controller is disabled", "controller", d.name)
			continue
		}
		run, err := d.build(klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), d.controllerName)), cc)
		if err != nil {
			return nil, fmt.Errorf("building the %s controller: %w", d.name, err)
		}
		runs[d.controllerName] = run
	}
	return runs, nil
}
