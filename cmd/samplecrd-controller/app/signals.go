package app

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
)

// signalContext returns a context cancelled by the first SIGINT or SIGTERM, so that the manager
// stops gracefully; a second signal exits at once with status 1.
func signalContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		klog.Flush()
		os.Exit(1)
	}()
	return ctx
}
