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

// server is one HTTP server of the manager.
type server struct {
	srv  *http.Server
	done chan struct{}
}

// serve listens on addr (nothing when it is "0" or empty) and serves handler, until stop. A server
// that cannot listen is an error; one that stops serving by itself calls fail with an error
// naming its address, so that the manager stops instead of running on without it.
func serve(ctx context.Context, name, addr string, handler http.Handler, fail func(error)) (*server, error) {
	if addr == "" || addr == "0" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s server: listening on %s: %w", name, addr, err)
	}
	s := &server{srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	bound := ln.Addr().String()
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("%s server on %s: %w", name, bound, err))
		}
	}()
	klog.FromContext(ctx).Info("Serving", "server", name, "address", bound)
	return s, nil
}

// stop closes the server, waiting a little for requests in flight.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
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
