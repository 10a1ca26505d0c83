package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"net/http"
	"slices"

	"github.com/google/uuid"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	"github.com/samplecrd/samplecrd-controller/pkg/controller/runner"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	samplecrdscheme "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/scheme"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
	"github.com/samplecrd/samplecrd-controller/pkg/version"
)

// ErrLeaderLost is returned by Run when the manager lost its lease: it must exit, so that it never
// writes while another replica leads.
var ErrLeaderLost = errors.New("leader election lost")

// Main parses the arguments, runs until the first SIGINT or SIGTERM, and returns the exit status.
func Main(args []string) int {
	return runMain(args, os.Stdout)
}

// runMain is Main with the standard output --version prints to as an argument, for tests.
func runMain(args []string, stdout io.Writer) int {
	opts := NewOptions()
	fs := pflag.NewFlagSet("samplecrd-controller", pflag.ContinueOnError)
	opts.AddFlags(fs)
	// Not an option of Options: it runs nothing.
	printVersion := fs.Bool("version", false, "Print the version, commit and Go version on one line, and exit.")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *printVersion {
		fmt.Fprintln(stdout, version.Get())
		return 0
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
	v := version.Get()
	klog.FromContext(ctx).Info("Starting samplecrd-controller", "version", v.Version, "commit", v.Commit, "goVersion", v.GoVersion, "platform", v.Platform)
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

// restConfig builds the API server client configuration from the flags: a
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

// RunWithConfig runs the manager on cfg until ctx is cancelled. The integration tests run it in
// process. Its lifetimes, in order:
//
//  1. the metrics and probe servers, which fail the manager when they cannot listen or serve;
//  2. the controllers are built and the informers started, before leadership, so that a new
//     leader starts with full caches (nothing writes before leadership);
//  3. with the lease (or without leader election), the controllers run until ctx is cancelled;
//     then they take no new keys, the keys in hand finish within the shutdown timeout, and the
//     controllers return;
//  4. then the lease is released, the informers stop, the backend disconnects, the servers stop
//     and the events recorded meanwhile are sent.
func RunWithConfig(ctx context.Context, o *Options, cfg *rest.Config) error {
	metrics.Register()
	// stop is ctx, or a server that failed; life lasts until RunWithConfig returns, for what must
	// outlive the controllers.
	stop, stopWith := context.WithCancelCause(ctx)
	defer stopWith(nil)
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	defer endLife()

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

	// Events recorded while stopping (the lease release's own) are still sent: the broadcaster
	// stops last.
	broadcaster := record.NewBroadcaster(record.WithContext(life))
	broadcaster.StartStructuredLogging(2)
	broadcaster.StartRecordingToSink(countingSink{&typedcorev1.EventSinkImpl{Interface: kubeClient.CoreV1().Events("")}})
	defer broadcaster.Shutdown()
	scheme := eventScheme()

	// 1. Servers. A server that stops serving stops the manager.
	healthz, readyz := &checks{}, &checks{}
	healthz.add("ping", func() error { return nil })
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	metricsHandler, metricsTLS, err := metricsServer(life, o, cfg)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		name, addr string
		handler    http.Handler
		tls        *serverTLS
	}{
		{"metrics", o.MetricsBindAddress, metricsHandler, metricsTLS},
		{"health probes", o.HealthProbeBindAddress, probeHandler(healthz, readyz), nil},
	} {
		srv, err := serve(life, s.name, s.addr, s.handler, s.tls, stopWith)
		if err != nil {
			return err
		}
		if srv != nil {
			servers = append(servers, srv)
		}
	}

	// 2. Controllers and informers.
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
			return broadcaster.NewRecorder(scheme, corev1.EventSource{Component: component})
		},
		runner: runner.Options{ShutdownTimeout: o.ShutdownTimeout, Observer: metrics.Reconciles},
		out:    os.Stdout,
		checks: readyz,
	}
	// The backends close after the controllers have stopped (deferred calls run in reverse).
	defer func() {
		for _, c := range slices.Backward(cc.closers) {
			c()
		}
	}()
	runs, err := buildControllers(life, cc)
	if err != nil {
		return err
	}
	// Permissions are checked on every replica, standbys included, so that a denied one shows
	// before the replica leads.
	perms := newPermissionChecker(kubeClient.AuthorizationV1().SelfSubjectAccessReviews(), neededPermissions(o))
	readyz.add("permissions", perms.ready)
	permsCtx, stopPerms := context.WithCancel(life)
	permsDone := make(chan struct{})
	go func() {
		defer close(permsDone)
		perms.run(permsCtx)
	}()
	defer func() {
		stopPerms()
		<-permsDone
	}()

	informerCtx, stopInformers := context.WithCancel(life)
	defer func() {
		stopInformers()
		cc.kubeInformers.Shutdown()
		cc.metadataInformers.Shutdown()
		cc.informers.Shutdown()
	}()
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
	go func() {
		cc.kubeInformers.WaitForCacheSync(informerCtx.Done())
		cc.metadataInformers.WaitForCacheSync(informerCtx.Done())
		cc.informers.WaitForCacheSync(informerCtx.Done())
		synced.Store(informerCtx.Err() == nil)
	}()

	// 3 and 4.
	if o.LeaderElection.Enabled {
		err = runWithLeaderElection(stop, life, o, kubeClient, cc, runs, healthz)
	} else {
		metrics.Leader.Set(1)
		err = runControllers(stop, o, runs)
		metrics.Leader.Set(0)
	}
	if err != nil {
		return err
	}
	if cause := context.Cause(stop); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// eventScheme is the scheme the event recorders resolve objects with: the Kubernetes types and
// the samplecrd ones. It is the manager's own; client-go's global scheme is left alone.
func eventScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(kubescheme.AddToScheme(scheme))
	utilruntime.Must(samplecrdscheme.AddToScheme(scheme))
	return scheme
}

// stopGrace is how long runControllers waits past the shutdown timeout, after which the runner has
// cancelled the syncs in hand, for the controllers to return.
const stopGrace = 2 * time.Second

// errControllersStuck is returned when controllers did not return after their syncs were
// cancelled: the process must exit without releasing the lease, which expires by itself.
var errControllersStuck = errors.New("controllers did not stop within the shutdown timeout")

// runControllers runs every controller until ctx is cancelled and returns once they have all
// returned: they finish the keys in hand within the shutdown timeout.
func runControllers(ctx context.Context, o *Options, runs map[string]runFunc) error {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	for name, run := range runs {
		wg.Go(func() {
			run(klog.NewContext(ctx, klog.LoggerWithName(logger, name)))
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		// Only with no controller enabled.
		return nil
	case <-ctx.Done():
	}
	logger.Info("Stopping controllers: finishing the keys in hand", "timeout", o.ShutdownTimeout)
	timer := time.NewTimer(o.ShutdownTimeout + stopGrace)
	defer timer.Stop()
	select {
	case <-done:
		logger.Info("All controllers stopped")
		return nil
	case <-timer.C:
		return fmt.Errorf("%w (%s)", errControllersStuck, o.ShutdownTimeout)
	}
}

// runWithLeaderElection runs the controllers while this process holds the Lease. On ctx's
// cancellation the controllers stop first and the lease is released after their last write, so
// that the next leader never overlaps with this one. Losing the lease stops the controllers and
// returns ErrLeaderLost.
func runWithLeaderElection(ctx, life context.Context, o *Options, kubeClient kubernetes.Interface,
	cc *controllerContext, runs map[string]runFunc, healthz *checks) error {
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
	// A replica that cannot read, create or renew its Lease can never lead: not ready, and the
	// check says why.
	observed := &observedLock{Interface: lock}
	lock = observed
	if cc.checks != nil {
		cc.checks.add(leaderElectionName, observed.lastError)
	}
	// client-go releases the lease (ReleaseOnCancel) also after a failed renewal, before the
	// controllers have been told to stop: held refuses that release until they have returned, so
	// that a lost lease is never handed over under controllers still writing; it expires instead.
	controllersStopped := make(chan struct{})
	lock = heldLock{Interface: lock, until: controllersStopped}
	// The elector runs on a context of its own: cancelling it releases the lease, which happens
	// only once the controllers have returned. It does not derive from life, whose end would
	// release the lease under controllers that did not stop.
	leCtx, cancelLE := context.WithCancel(context.WithoutCancel(ctx))
	stuck := false
	defer func() {
		if !stuck {
			cancelLE()
		}
	}()
	watchdog := leaderelection.NewLeaderHealthzAdaptor(o.LeaderElection.RenewDeadline)
	healthz.add("leader-election", func() error { return watchdog.Check(nil) })

	// leading says whether the controllers were started; once stopping is set they never are.
	var leading struct {
		sync.Mutex
		started, stopping bool
	}
	controllersDone := make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaderElection.LeaseDuration,
		RenewDeadline:   o.LeaderElection.RenewDeadline,
		RetryPeriod:     o.LeaderElection.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.LeaderElection.Name,
		WatchDog:        watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lease context.Context) {
				leading.Lock()
				if leading.started || leading.stopping {
					leading.Unlock()
					return
				}
				leading.started = true
				leading.Unlock()
				logger.Info("Started leading", "identity", identity)
				metrics.Leader.Set(1)
				defer metrics.Leader.Set(0)
				// Controllers stop on a signal, draining; or at once when the lease is lost, when
				// another replica may already write.
				runCtx, cancel := context.WithCancelCause(ctx)
				defer cancel(nil)
				go func() {
					select {
					case <-lease.Done():
						cancel(fmt.Errorf("%w: %w", runner.ErrAbort, ErrLeaderLost))
					case <-runCtx.Done():
					}
				}()
				controllersDone <- runControllers(runCtx, o, runs)
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
		// Graceful stop: the controllers (if they were started), then the lease.
		leading.Lock()
		leading.stopping = true
		started := leading.started
		leading.Unlock()
		if started {
			if err := <-controllersDone; err != nil {
				// The lease is left to expire: the process exits under controllers that may
				// still write.
				stuck = true
				return err
			}
		}
		held := started || elector.IsLeader()
		close(controllersStopped)
		cancelLE()
		<-electorDone
		if held {
			logger.Info("Released the leader lease")
		} else {
			logger.Info("Stopped without having led", "lease", o.LeaderElection.Namespace+"/"+o.LeaderElection.Name, "lastError", observed.lastError())
		}
		return nil
	case <-electorDone:
		// The elector returns by itself only after it led and failed to renew: the controllers
		// follow the leading context.
		if err := <-controllersDone; err != nil {
			return err
		}
		// Why: a renewal the API server refused (RBAC without update on leases) or did not answer.
		if err := observed.lastError(); err != nil {
			return fmt.Errorf("%w: %w", ErrLeaderLost, err)
		}
		return ErrLeaderLost
	}
}

// heldLock is a leader election lock that refuses to release the lease (an update that empties
// the holder) until until is closed.
type heldLock struct {
	resourcelock.Interface
	until <-chan struct{}
}

// errReleaseRefused is what client-go's elector gets when it tries to release the lease early.
var errReleaseRefused = errors.New("not releasing the lease before the controllers have stopped")

func (l heldLock) Update(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	if record.HolderIdentity == "" {
		select {
		case <-l.until:
		default:
			return errReleaseRefused
		}
	}
	return l.Interface.Update(ctx, record)
}
