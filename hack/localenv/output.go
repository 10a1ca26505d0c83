package main

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// console is where localenv and the programs it runs in the foreground write: its standard output
// and error, through writers that survive their reader going away. With 'make run | tee run.log',
// closing tee (or a Ctrl-C, which stops tee too) makes every later write fail with EPIPE; Go kills
// a program whose write to its standard output or error fails so, unless it handles SIGPIPE. That
// would leave what localenv started running. So localenv handles SIGPIPE, writes through these
// writers, which drop what can no longer be read, and stops everything once its output is gone.
type console struct {
	// Out and Err are the standard output and error.
	Out, Err *output
	// gone is closed when a write found its reader gone.
	gone     chan struct{}
	goneOnce sync.Once
}

// output is one of the console's streams.
type output struct {
	f *os.File
	c *console
	// gone is set once a write found its reader gone; later writes are dropped.
	gone atomic.Bool
}

// newConsole returns the console of out and err.
func newConsole(out, err *os.File) *console {
	c := &console{gone: make(chan struct{})}
	c.Out, c.Err = &output{f: out, c: c}, &output{f: err, c: c}
	return c
}

// term is this process's console.
var term = newConsole(os.Stdout, os.Stderr)

// handleSIGPIPE makes a write to a broken pipe fail with EPIPE instead of killing the process.
// signal.Notify, not signal.Ignore: an ignored signal stays ignored in the programs it starts,
// which must die of SIGPIPE as usual.
func handleSIGPIPE() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// Gone returns a channel closed once the reader of standard output or error has gone away.
func (c *console) Gone() <-chan struct{} { return c.gone }

// Write writes p, or drops it, with no error, when the reader has gone away.
func (o *output) Write(p []byte) (int, error) {
	if o.gone.Load() {
		return len(p), nil
	}
	n, err := o.f.Write(p)
	if errors.Is(err, syscall.EPIPE) {
		o.gone.Store(true)
		o.c.goneOnce.Do(func() { close(o.c.gone) })
		return len(p), nil
	}
	return n, err
}
