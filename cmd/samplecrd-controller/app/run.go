package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	kubescheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/internal/cachetransform"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	samplecrdscheme "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/scheme"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

func init() {
	// Events about Networks need the samplecrd types in the scheme the recorder uses. The scheme is
	// global and read by every client: it is written once, here, never while a manager runs (tests
	// run several managers in one process).
	utilruntime.Must(samplecrdscheme.AddToScheme(kubescheme.Scheme))
}

// ErrLeaderLost is returned by Run when the manager lost its lease: it must exit, so that it never
// writes while another replica leads.
var ErrLeaderLost = errors.New("leader election lost")

// Main parses the arguments, runs until the first SIGINT or SIGTERM, and returns the exit status.
func Main(args []string) int {
	opts := NewOptions()
	fs := pflag.NewFlagSet("samplecrd-controller", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "samplecrd-controller: %v\n", err)
		return 2
	}
	if err := logsapi.ValidateAndApply(opts.Logs, nil); err != nil {
		fmt.Fprintf(os.Stderr, "samplecrd-controller: %v\n", err)
		return 2
	}
	ctx := signalContext()
	err := Run(ctx, opts)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Manager stopped")
	}
	klog.Flush()
	if err != nil {
		return 1
	}
	return 0
}

// restConfig builds the API server client configuration the way the tutorial's flags describe: a
// kubeconfig and/or a master URL, or in-cluster configuration when both are empty.
func restConfig(o *Options) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags(o.Master, o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("building the API server configuration: %w", err)
	}
	return cfg, nil
}

// Run connects to the API server the options name and runs the manager until ctx is cancelled.
func Run(ctx context.Context, o *Options) error {
	cfg, err := restConfig(o)
	if err != nil {
		return err
	}
	return RunWithConfig(ctx, o, cfg)
}

// RunWithConfig runs the manager on cfg until ctx is cancelled: it builds the enabled controllers,
// warms up the informers, waits for leadership (when enabled), runs the controllers, and on
// cancellation stops them, waits (bounded by the shutdown timeout) for the items in hand, and only
// then releases the lease. The integration tests run the manager through it, in process.
func RunWithConfig(ctx context.Context, o *Options, cfg *rest.Config) error {
	metrics.Register()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = o.KubeAPIQPS
	cfg.Burst = o.KubeAPIBurst
	cfg.UserAgent = "samplecrd-controller"
	kubeClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the samplecrd client: %w", err)
	}
	metadataClient, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating the metadata client: %w", err)
	}

	// The broadcaster outlives ctx: events recorded during the graceful stop (the leader election's
	// own, when the lease is released) are still sent; the deferred Shutdown ends it.
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	broadcaster.StartStructuredLogging(2)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	// Servers stop with the manager, after the controllers.
	serverCtx, stopServers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServers()
	healthz, readyz := &checks{}, &checks{}
	healthz.add("ping", func() error { return nil })

	cc := &controllerContext{
		opts:       o,
		kubeClient: kubeClient,
		client:     client,
		// No controller reads managedFields, which are often the largest part of an object's
		// metadata: the caches drop them, as kube-controller-manager's do.
		kubeInformers: kubeinformers.NewSharedInformerFactoryWithOptions(kubeClient, 0,
			kubeinformers.WithTransform(cachetransform.StripManagedFields)),
		metadataInformers: metadatainformer.NewSharedInformerFactoryWithOptions(metadataClient, 0,
			metadatainformer.WithTransform(cachetransform.StripManagedFields)),
		informers: informers.NewSharedInformerFactoryWithOptions(client, o.ResyncPeriod,
			informers.WithTransform(cachetransform.StripManagedFields)),
		recorder: func(component string) record.EventRecorder {
			return broadcaster.NewRecorder(kubescheme.Scheme, corev1.EventSource{Component: component})
		},
		out:         os.Stdout,
		readyChecks: map[string]func() error{},
	}
	defer func() {
		for _, c := range cc.closers {
			c()
		}
	}()
	runs, err := buildControllers(ctx, cc)
	if err != nil {
		return err
	}
	for name, check := range cc.readyChecks {
		readyz.add(name, check)
	}

	// Informers warm up before leadership, so that a new leader starts with full caches.
	// Nothing writes before leadership: only the controllers' workers do.
	informerCtx, stopInformers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInformers()
	var synced atomic.Bool
	readyz.add("informers", func() error {
		if !synced.Load() {
			return errors.New("caches not synced")
		}
		return nil
	})
	cc.kubeInformers.Start(informerCtx.Done())
	cc.metadataInformers.Start(informerCtx.Done())
	cc.informers.Start(informerCtx.Done())
	defer func() {
		stopInformers()
		cc.kubeInformers.Shutdown()
		cc.metadataInformers.Shutdown()
		cc.informers.Shutdown()
	}()
	go func() {
		cc.kubeInformers.WaitForCacheSync(informerCtx.Done())
		cc.metadataInformers.WaitForCacheSync(informerCtx.Done())
		cc.informers.WaitForCacheSync(informerCtx.Done())
		synced.Store(informerCtx.Err() == nil)
	}()

	if _, err := serve(serverCtx, "metrics", o.MetricsBindAddress, metricsHandler(o.EnablePprof)); err != nil {
		return err
	}

	if !o.LeaderElection.Enabled {
		if _, err := serve(serverCtx, "health probes", o.HealthProbeBindAddress, probeHandler(healthz, readyz)); err != nil {
			return err
		}
		metrics.Leader.Set(1)
		defer metrics.Leader.Set(0)
		runControllers(ctx, o, runs)
		return nil
	}
	return runWithLeaderElection(ctx, serverCtx, o, kubeClient, cc, runs, healthz, readyz)
}

// runControllers runs every controller until ctx is cancelled, then waits for them, at most the
// shutdown timeout.
func runControllers(ctx context.Context, o *Options, runs map[string]runFunc) {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	for name, run := range runs {
		wg.Go(func() {
			run(klog.NewContext(ctx, klog.LoggerWithName(logger, name)))
		})
	}
	<-ctx.Done()
	logger.Info("Stopping controllers: waiting for the items in hand", "timeout", o.ShutdownTimeout)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		logger.Info("All controllers stopped")
	case <-time.After(o.ShutdownTimeout):
		logger.Info("Controllers did not stop within the shutdown timeout; exiting anyway", "timeout", o.ShutdownTimeout)
	}
}

// runWithLeaderElection runs the controllers while this process holds the Lease. On ctx's
// cancellation the controllers stop first and the lease is released after them, so that the next
// leader never overlaps with this one's last writes. Losing the lease stops the controllers and
// returns ErrLeaderLost.
func runWithLeaderElection(ctx, serverCtx context.Context, o *Options, kubeClient kubernetes.Interface,
	cc *controllerContext, runs map[string]runFunc, healthz, readyz *checks) error {
	logger := klog.FromContext(ctx)
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("reading the hostname for the leader election identity: %w", err)
	}
	identity := hostname + "_" + uuid.NewString()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.LeaderElection.Namespace, o.LeaderElection.Name,
		kubeClient.CoreV1(), kubeClient.CoordinationV1(), resourcelock.ResourceLockConfig{
			Identity:      identity,
			EventRecorder: cc.recorder("samplecrd-controller"),
		})
	if err != nil {
		return fmt.Errorf("creating the leader election lock: %w", err)
	}
	// The lease outlives ctx: it is released once the controllers have stopped.
	leCtx, cancelLE := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLE()
	watchdog := leaderelection.NewLeaderHealthzAdaptor(o.LeaderElection.RenewDeadline)
	healthz.add("leader-election", func() error { return watchdog.Check(nil) })
	if _, err := serve(serverCtx, "health probes", o.HealthProbeBindAddress, probeHandler(healthz, readyz)); err != nil {
		return err
	}

	controllersDone := make(chan struct{})
	var startOnce sync.Once
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaderElection.LeaseDuration,
		RenewDeadline:   o.LeaderElection.RenewDeadline,
		RetryPeriod:     o.LeaderElection.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.LeaderElection.Name,
		WatchDog:        watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				startOnce.Do(func() {
					defer close(controllersDone)
					logger.Info("Started leading", "identity", identity)
					metrics.Leader.Set(1)
					defer metrics.Leader.Set(0)
					// Controllers stop on a signal or when leadership ends, whichever comes first.
					runCtx, cancel := context.WithCancel(ctx)
					defer cancel()
					go func() {
						select {
						case <-leading.Done():
							cancel()
						case <-runCtx.Done():
						}
					}()
					runControllers(runCtx, o, runs)
				})
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					logger.Info("Lost the leader lease", "identity", identity)
				}
			},
			OnNewLeader: func(current string) {
				if current != identity {
					logger.Info("Another replica leads", "leader", current)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("configuring leader election: %w", err)
	}
	logger.Info("Waiting to become the leader", "lease", o.LeaderElection.Namespace+"/"+o.LeaderElection.Name, "identity", identity)
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(leCtx)
	}()

	select {
	case <-ctx.Done():
		// Graceful stop: controllers first (if they run), then the lease.
		if elector.IsLeader() {
			<-controllersDone
		}
		cancelLE()
		<-electorDone
		logger.Info("Released the leader lease")
		return nil
	case <-electorDone:
		// The elector returns by itself only after it led and failed to renew: stop the
		// controllers (they follow the leading context) and exit.
		<-controllersDone
		return ErrLeaderLost
	}
}
