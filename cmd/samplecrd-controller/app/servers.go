package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

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

// serve listens on addr (nothing when it is "0" or empty) and serves handler until ctx is done.
// It returns the address it listens on, so that ":0" can be used.
func serve(ctx context.Context, name, addr string, handler http.Handler) (string, error) {
	if addr == "" || addr == "0" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listening for %s on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger := klog.FromContext(ctx)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Server failed", "server", name)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	logger.Info("Serving", "server", name, "address", ln.Addr().String())
	return ln.Addr().String(), nil
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
