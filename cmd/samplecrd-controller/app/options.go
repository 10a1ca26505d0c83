// Package app is the samplecrd-controller command, in the style of kube-controller-manager: its
// options, the registry of controllers, leader election, and the metrics and probe servers.
package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"

	// The JSON log format of --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"

	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
)

// Options are the command's flags.
type Options struct {
	// Controllers selects the controllers to run: "*" for all enabled by default, "name" to enable
	// one, "-name" to disable one.
	Controllers []string

	// Kubeconfig is the path of a kubeconfig file; in-cluster configuration when it and Master are empty.
	Kubeconfig string
	// Master overrides the API server address of the kubeconfig.
	Master string
	// KubeAPIQPS and KubeAPIBurst limit the client's request rate. client-go's defaults (5 and 10)
	// starve a controller that writes a status per object; the API server's own priority and
	// fairness protects it from a client that asks for more.
	KubeAPIQPS   float32
	KubeAPIBurst int

	// LeaderElection configures leader election.
	LeaderElection LeaderElectionOptions

	// MetricsBindAddress is where /metrics is served; "0" disables it.
	MetricsBindAddress string
	// Metrics configures how the metrics server serves: HTTPS with authentication and
	// authorization, or plain HTTP.
	Metrics MetricsServingOptions
	// HealthProbeBindAddress is where /healthz and /readyz are served; "0" disables them.
	HealthProbeBindAddress string
	// EnablePprof serves net/http/pprof on the metrics address, to authorized clients only.
	EnablePprof bool
	// ShutdownTimeout bounds how long a graceful stop waits for the controllers.
	ShutdownTimeout time.Duration

	// OVNNorthbound is the OVN northbound database's address, e.g. unix:/run/ovn/ovnnb_db.sock.
	OVNNorthbound string
	// OVNNorthboundTLS are the private key, certificate and CA certificate files of an ssl:
	// OVNNorthbound, re-read at every connection.
	OVNNorthboundTLS ovn.TLSFiles
	// ClusterName marks every backend object the controller writes, so that clusters sharing one
	// backend never touch each other's objects.
	ClusterName string
	// NetworkWorkers is how many Networks are synced at once.
	NetworkWorkers int
	// ResyncPeriod is the Network informer's resync period, which bounds how long backend drift lasts.
	ResyncPeriod time.Duration
	// OrphanSweepInterval is how often backend objects whose Network is gone are removed.
	OrphanSweepInterval time.Duration

	// PodCount configures the podcount controller.
	PodCount PodCountOptions
	// PodWatchNamespace is the namespace whose pods the podwatch controller prints.
	PodWatchNamespace string
	// PodWatchWorkers is how many pods the podwatch controller handles at once.
	PodWatchWorkers int
	// PodNetworkWorkers is how many pods the podnetwork controller attaches at once.
	PodNetworkWorkers int

	// Logs configures klog: format (text or json), verbosity and more.
	Logs *logsapi.LoggingConfiguration
}

// LeaderElectionOptions configure leader election on a coordination.k8s.io Lease.
type LeaderElectionOptions struct {
	// Enabled turns leader election on; only the leader runs controllers.
	Enabled bool
	// Namespace and Name locate the Lease.
	Namespace, Name string
	// LeaseDuration is how long standbys wait after the last renewal before taking over.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it gives up leading.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to acquire or renew.
	RetryPeriod time.Duration
}

// MetricsServingOptions configure the metrics server.
type MetricsServingOptions struct {
	// Secure serves HTTPS, and only to clients that the API server authenticates (TokenReview)
	// and authorizes (SubjectAccessReview on the request's path). False serves plain HTTP to
	// anyone, for use on one machine.
	Secure bool
	// CertDir holds the serving certificate and key, re-read when they change; empty serves a
	// self-signed certificate generated at start-up.
	CertDir string
	// CertName and CertKey are the certificate's and the key's file names in CertDir.
	CertName, CertKey string
	// EnableHTTP2 serves HTTP/2 besides HTTP/1.1. Off by default: HTTP/2's rapid reset
	// (CVE-2023-44487) and stream multiplexing buy a metrics endpoint nothing.
	EnableHTTP2 bool
}

// PodCountOptions configure the podcount controller.
type PodCountOptions struct {
	// LabelKey is the node label that holds the pod count.
	LabelKey string
	// EventMode is all (every pod, every pass), changed or none.
	EventMode string
	// Period is the interval of the periodic recount.
	Period time.Duration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Controllers:  []string{"*"},
		KubeAPIQPS:   1000,
		KubeAPIBurst: 2000,
		LeaderElection: LeaderElectionOptions{
			Enabled:       true,
			Namespace:     "kube-system",
			Name:          "samplecrd-controller",
			LeaseDuration: 15 * time.Second,
			RenewDeadline: 10 * time.Second,
			// kube-controller-manager's 2 s leaves a standby up to 4.4 s (2 s and up to 120 %
			// jitter) from a released lease; at 500 ms it takes over within about a second, for
			// one Lease write every half second by the leader.
			RetryPeriod: 500 * time.Millisecond,
		},
		// Loopback unless told otherwise: the Deployment binds every interface explicitly.
		MetricsBindAddress: "127.0.0.1:8443",
		Metrics: MetricsServingOptions{
			Secure:   true,
			CertName: "tls.crt",
			CertKey:  "tls.key",
		},
		HealthProbeBindAddress: "127.0.0.1:8081",
		ShutdownTimeout:        30 * time.Second,
		ClusterName:            "kubernetes",
		NetworkWorkers:         32,
		ResyncPeriod:           30 * time.Second,
		OrphanSweepInterval:    network.DefaultOrphanSweepInterval,
		PodCount: PodCountOptions{
			LabelKey:  "hopegi/pod-count",
			EventMode: "changed",
			Period:    10 * time.Second,
		},
		PodWatchNamespace: "default",
		PodWatchWorkers:   1,
		PodNetworkWorkers: 16,
		Logs:              logsapi.NewLoggingConfiguration(),
	}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&o.Controllers, "controllers", o.Controllers, fmt.Sprintf(
		"Controllers to run: '*' runs all enabled by default, 'foo' enables foo, '-foo' disables foo. All: %v.", controllerNames()))
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig. Only required if out-of-cluster.")
	fs.StringVar(&o.Master, "master", o.Master, "The address of the Kubernetes API server. Overrides any value in kubeconfig. Only required if out-of-cluster.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second the client may send to the API server.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of queries the client may send to the API server.")

	le := &o.LeaderElection
	fs.BoolVar(&le.Enabled, "leader-elect", le.Enabled, "Elect a leader on a Lease before running controllers; run two or more replicas for high availability.")
	fs.StringVar(&le.Namespace, "leader-elect-resource-namespace", le.Namespace, "Namespace of the leader election Lease.")
	fs.StringVar(&le.Name, "leader-elect-resource-name", le.Name, "Name of the leader election Lease.")
	fs.DurationVar(&le.LeaseDuration, "leader-elect-lease-duration", le.LeaseDuration, "How long standbys wait after the leader's last renewal before taking over.")
	fs.DurationVar(&le.RenewDeadline, "leader-elect-renew-deadline", le.RenewDeadline, "How long the leader tries to renew before it stops leading; less than the lease duration.")
	fs.DurationVar(&le.RetryPeriod, "leader-elect-retry-period", le.RetryPeriod, "Interval between attempts to acquire or renew the Lease.")

	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the /metrics endpoint, e.g. ':8443' for every interface; '0' disables it.")
	fs.BoolVar(&o.Metrics.Secure, "metrics-secure", o.Metrics.Secure, "Serve metrics over HTTPS to clients the API server authenticates and authorizes (get on the non-resource URL of the path). False serves plain HTTP to anyone: only for use on one machine.")
	fs.StringVar(&o.Metrics.CertDir, "metrics-cert-dir", o.Metrics.CertDir, "Directory of the metrics server's certificate and key, re-read when they change; a self-signed certificate generated at start-up when empty.")
	fs.StringVar(&o.Metrics.CertName, "metrics-cert-name", o.Metrics.CertName, "File name of the metrics server's certificate in --metrics-cert-dir.")
	fs.StringVar(&o.Metrics.CertKey, "metrics-cert-key", o.Metrics.CertKey, "File name of the metrics server's private key in --metrics-cert-dir.")
	fs.BoolVar(&o.Metrics.EnableHTTP2, "enable-http2", o.Metrics.EnableHTTP2, "Serve HTTP/2 on the metrics server besides HTTP/1.1; off because of HTTP/2 rapid reset (CVE-2023-44487).")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of the /healthz and /readyz endpoints (plain HTTP, no authentication), e.g. ':8081' for every interface; '0' disables them.")
	fs.BoolVar(&o.EnablePprof, "enable-pprof", o.EnablePprof, "Serve /debug/pprof/ on the metrics server, to clients authorized for its path (needs --metrics-secure).")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "How long, after the first SIGINT or SIGTERM, the controllers may take to finish the items in hand; then their requests are cancelled and the lease released. A second signal exits at once.")

	fs.StringVar(&o.OVNNorthbound, "ovn-nb", o.OVNNorthbound, "Address of the OVN northbound database (unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT); required by the network controller.")
	fs.StringVar(&o.OVNNorthboundTLS.PrivateKey, "ovn-nb-private-key", o.OVNNorthboundTLS.PrivateKey, "PEM file of the client's private key, for an ssl: --ovn-nb (ovn-nbctl -p).")
	fs.StringVar(&o.OVNNorthboundTLS.Certificate, "ovn-nb-certificate", o.OVNNorthboundTLS.Certificate, "PEM file of the client's certificate, for an ssl: --ovn-nb (ovn-nbctl -c).")
	fs.StringVar(&o.OVNNorthboundTLS.CACert, "ovn-nb-ca-cert", o.OVNNorthboundTLS.CACert, "PEM file of the CA certificates that the database's certificate must be signed by, for an ssl: --ovn-nb (ovn-nbctl -C). The three files are read again at every connection, so replaced files take effect at the next reconnection.")
	fs.StringVar(&o.ClusterName, "cluster-name", o.ClusterName, "Name of this cluster, recorded on every backend object the network controller writes; objects of other clusters are never touched.")
	fs.IntVar(&o.NetworkWorkers, "network-workers", o.NetworkWorkers, "Number of Networks synced at once.")
	fs.IntVar(&o.NetworkWorkers, "workers", o.NetworkWorkers, "Number of Networks synced at once.")
	_ = fs.MarkDeprecated("workers", "use --network-workers instead")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod, "Resync period of the Network informer: how often every Network is checked against the backend.")
	fs.DurationVar(&o.OrphanSweepInterval, "orphan-sweep-interval", o.OrphanSweepInterval, "How often backend objects whose Network no longer exists are removed.")

	fs.StringVar(&o.PodCount.LabelKey, "podcount-label-key", o.PodCount.LabelKey, "Label set on control-plane nodes to the number of pods.")
	fs.StringVar(&o.PodCount.EventMode, "podcount-event-mode", o.PodCount.EventMode, "Events about the pod count: 'all' (an event on every pod every pass), 'changed' (one per control-plane node when the count changes) or 'none'.")
	fs.DurationVar(&o.PodCount.Period, "podcount-period", o.PodCount.Period, "Interval of the periodic pod count, besides the count that follows pod changes.")
	fs.StringVar(&o.PodWatchNamespace, "podwatch-namespace", o.PodWatchNamespace, "Namespace whose pods the podwatch controller prints.")
	fs.IntVar(&o.PodWatchWorkers, "podwatch-workers", o.PodWatchWorkers, "Number of pods the podwatch controller handles at once.")
	fs.IntVar(&o.PodNetworkWorkers, "podnetwork-workers", o.PodNetworkWorkers, "Number of pods the podnetwork controller attaches to Networks at once.")

	logsapi.AddFlags(o.Logs, fs)
}

// Validate returns an error naming every option that is wrong.
func (o *Options) Validate() error {
	var errs []error
	for _, c := range o.Controllers {
		name := c
		if len(name) > 0 && name[0] == '-' {
			name = name[1:]
		}
		if name != "*" && !slices.Contains(controllerNames(), name) {
			errs = append(errs, fmt.Errorf("--controllers: unknown controller %q (known: %v)", c, controllerNames()))
		}
	}
	if o.enabled("network") {
		if o.OVNNorthbound == "" {
			errs = append(errs, errors.New("--ovn-nb is required by the network controller (or disable it with --controllers=*,-network)"))
		}
		errs = append(errs, o.validateOVNNorthboundTLS()...)
		if o.ClusterName == "" {
			errs = append(errs, errors.New("--cluster-name must not be empty"))
		}
	}
	if slices.Contains(o.Controllers, "podnetwork") && !o.enabled("network") {
		errs = append(errs, errors.New("--controllers: podnetwork needs network, which programs the Networks it attaches pods to"))
	}
	for _, w := range []struct {
		flag string
		n    int
	}{{"--network-workers", o.NetworkWorkers}, {"--podwatch-workers", o.PodWatchWorkers}, {"--podnetwork-workers", o.PodNetworkWorkers}} {
		if w.n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", w.flag, w.n))
		}
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive, got %v and %d", o.KubeAPIQPS, o.KubeAPIBurst))
	}
	if o.ResyncPeriod <= 0 || o.OrphanSweepInterval <= 0 || o.PodCount.Period <= 0 || o.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--resync-period, --orphan-sweep-interval, --podcount-period and --shutdown-timeout must be positive"))
	}
	if le := o.LeaderElection; le.Enabled && !(le.RetryPeriod > 0 && le.RetryPeriod < le.RenewDeadline && le.RenewDeadline < le.LeaseDuration) {
		errs = append(errs, fmt.Errorf("leader election needs 0 < retry period (%v) < renew deadline (%v) < lease duration (%v)", le.RetryPeriod, le.RenewDeadline, le.LeaseDuration))
	}
	if m := o.Metrics; !m.Secure {
		// Plain HTTP has no authentication: pprof (the command line, heap contents) is never
		// served that way, and certificate flags that would be ignored are refused.
		if o.EnablePprof {
			errs = append(errs, errors.New("--enable-pprof needs --metrics-secure: pprof is served only to authorized clients"))
		}
		if m.CertDir != "" {
			errs = append(errs, errors.New("--metrics-cert-dir needs --metrics-secure"))
		}
		if m.EnableHTTP2 {
			errs = append(errs, errors.New("--enable-http2 needs --metrics-secure"))
		}
	} else if m.CertDir != "" && (m.CertName == "" || m.CertKey == "") {
		errs = append(errs, errors.New("--metrics-cert-name and --metrics-cert-key must not be empty with --metrics-cert-dir"))
	}
	switch o.PodCount.EventMode {
	case "all", "changed", "none":
	default:
		errs = append(errs, fmt.Errorf("--podcount-event-mode must be all, changed or none, got %q", o.PodCount.EventMode))
	}
	if errList := logsapi.Validate(o.Logs, nil, nil); len(errList) > 0 {
		errs = append(errs, errList.ToAggregate())
	}
	return errors.Join(errs...)
}

// validateOVNNorthboundTLS checks that an ssl: --ovn-nb has its three TLS files, and that no other
// endpoint has any.
func (o *Options) validateOVNNorthboundTLS() []error {
	files := []struct{ flag, path string }{
		{"--ovn-nb-private-key", o.OVNNorthboundTLS.PrivateKey},
		{"--ovn-nb-certificate", o.OVNNorthboundTLS.Certificate},
		{"--ovn-nb-ca-cert", o.OVNNorthboundTLS.CACert},
	}
	var errs []error
	ssl := strings.HasPrefix(o.OVNNorthbound, "ssl:")
	for _, f := range files {
		switch {
		case ssl && f.path == "":
			errs = append(errs, fmt.Errorf("%s is required with --ovn-nb=%s", f.flag, o.OVNNorthbound))
		case !ssl && f.path != "" && o.OVNNorthbound != "":
			errs = append(errs, fmt.Errorf("%s is only for an ssl: --ovn-nb, not --ovn-nb=%s", f.flag, o.OVNNorthbound))
		}
	}
	return errs
}

// enabled reports whether the controller name runs, following the --controllers grammar.
// podnetwork runs only with network: Networks are opened to pods once network programs them.
func (o *Options) enabled(name string) bool {
	if name == "podnetwork" && !o.enabled("network") {
		return false
	}
	star := false
	for _, c := range o.Controllers {
		switch c {
		case name:
			return true
		case "-" + name:
			return false
		case "*":
			star = true
		}
	}
	return star
}
