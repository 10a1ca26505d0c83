package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"

	"github.com/samplecrd/samplecrd-controller/pkg/metrics"
)

// checks is a named set of health checks, safe to extend while served.
type checks struct {
	mu     sync.RWMutex
	checks map[string]func() error
}

func (c *checks) add(name string, check func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil {
		c.checks = map[string]func() error{}
	}
	c.checks[name] = check
}

// ServeHTTP answers 200 when every check passes and 500 otherwise, listing each check as
// kube-apiserver's /readyz does ("[+]name ok" or "[-]name failed: reason").
func (c *checks) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.mu.RLock()
	names := make([]string, 0, len(c.checks))
	for name := range c.checks {
		names = append(names, name)
	}
	sort.Strings(names)
	var body strings.Builder
	failed := false
	for _, name := range names {
		if err := c.checks[name](); err != nil {
			failed = true
			fmt.Fprintf(&body, "[-]%s failed: %v\n", name, err)
		} else {
			fmt.Fprintf(&body, "[+]%s ok\n", name)
		}
	}
	c.mu.RUnlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		w.WriteHeader(http.StatusInternalServerError)
		body.WriteString("check failed\n")
	} else {
		body.WriteString("ok\n")
	}
	_, _ = w.Write([]byte(body.String()))
}

// server is one HTTP server of the manager.
type server struct {
	srv *http.Server
	// addr is the address it listens on.
	addr string
	done chan struct{}
}

// serverTLS is how a server serves HTTPS.
type serverTLS struct {
	// config holds the certificate (or GetCertificate) and the minimum version.
	config *tls.Config
	// http2 serves HTTP/2 besides HTTP/1.1.
	http2 bool
}

// disabled reports whether a server address turns the server off.
func disabled(addr string) bool { return addr == "" || addr == "0" }

// serve listens on addr (nothing when it is "0" or empty) and serves handler, over HTTPS when https
// is not nil, until stop. A server that cannot listen is an error; one that stops serving by
// itself calls fail with an error naming its address, so that the manager stops instead of
// running on without it.
func serve(ctx context.Context, name, addr string, handler http.Handler, https *serverTLS, fail func(error)) (*server, error) {
	if disabled(addr) {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s server: listening on %s: %w", name, addr, err)
	}
	s := &server{srv: &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Failed TLS handshakes (a port scan, a client that does not trust the certificate) are
		// logged as the rest of the log, not as bare lines on standard error.
		ErrorLog: klog.NewStandardLogger("WARNING"),
	}, done: make(chan struct{})}
	scheme := "http"
	if https != nil {
		scheme = "https"
		s.srv.TLSConfig = https.config
		s.srv.Protocols = new(http.Protocols)
		s.srv.Protocols.SetHTTP1(true)
		s.srv.Protocols.SetHTTP2(https.http2)
	}
	bound := ln.Addr().String()
	s.addr = bound
	go func() {
		defer close(s.done)
		var err error
		if https != nil {
			// The certificate comes from TLSConfig, not from files.
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("%s server on %s: %w", name, bound, err))
		}
	}()
	klog.FromContext(ctx).Info("Serving", "server", name, "address", bound, "scheme", scheme)
	return s, nil
}

// stop closes the server, waiting a little for requests in flight.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// metricsServer returns the metrics server's handler and, with --metrics-secure, its TLS: every
// request is authenticated with a TokenReview and authorized with a SubjectAccessReview for the
// verb (get) on the request's path as a non-resource URL, by the API server cfg names, with
// controller-runtime's filter. The certificate is re-read from --metrics-cert-dir when it changes
// (until ctx ends), or generated at start-up. Nothing is built for a disabled server.
func metricsServer(ctx context.Context, o *Options, cfg *rest.Config) (http.Handler, *serverTLS, error) {
	if disabled(o.MetricsBindAddress) {
		return nil, nil, nil
	}
	logger := klog.LoggerWithName(klog.FromContext(ctx), "metrics")
	handler := metricsHandler(o.EnablePprof)
	if !o.Metrics.Secure {
		logger.Info("Serving metrics over plain HTTP without authentication (--metrics-secure=false): for use on one machine only")
		return handler, nil, nil
	}
	tlsConfig, err := metricsTLSConfig(ctx, o.Metrics)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics server: %w", err)
	}
	// The reviews get a client of their own, with a small rate: anyone who reaches the port can
	// make one review per request (every new token is a cache miss), and they must not take the
	// controllers' share of the API server.
	reviewCfg := rest.CopyConfig(cfg)
	reviewCfg.QPS, reviewCfg.Burst = 20, 50
	httpClient, err := rest.HTTPClientFor(reviewCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics server: creating the API server client: %w", err)
	}
	filter, err := filters.WithAuthenticationAndAuthorization(reviewCfg, httpClient)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics server: configuring authentication and authorization: %w", err)
	}
	handler, err = filter(logger, handler)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics server: configuring authentication and authorization: %w", err)
	}
	return handler, &serverTLS{config: tlsConfig, http2: o.Metrics.EnableHTTP2}, nil
}

// metricsTLSConfig is the metrics server's TLS configuration: TLS 1.2 or later, with the
// certificate of m.CertDir, watched until ctx ends, or a self-signed one.
func metricsTLSConfig(ctx context.Context, m MetricsServingOptions) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CertDir == "" {
		// As kube-controller-manager does by default: a scraper cannot verify it, but the
		// bearer tokens it sends are encrypted.
		cert, key, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, nil)
		if err != nil {
			return nil, fmt.Errorf("generating a self-signed certificate: %w", err)
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("loading the self-signed certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{pair}
		return config, nil
	}
	// The certificate watcher logs through controller-runtime's logger: the manager's.
	ctrllog.SetLogger(klog.FromContext(ctx))
	watcher, err := certwatcher.New(filepath.Join(m.CertDir, m.CertName), filepath.Join(m.CertDir, m.CertKey))
	if err != nil {
		return nil, fmt.Errorf("reading the certificate of --metrics-cert-dir: %w", err)
	}
	go func() {
		if err := watcher.Start(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Not watching the metrics certificate for changes", "dir", m.CertDir)
		}
	}()
	config.GetCertificate = watcher.GetCertificate
	return config, nil
}

// metricsHandler serves /metrics, and /debug/pprof/ when enabled.
func metricsHandler(enablePprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	if enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// probeHandler serves /healthz (the process works) and /readyz (it can do its job).
func probeHandler(healthz, readyz *checks) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", healthz)
	mux.Handle("/readyz", readyz)
	return mux
}
