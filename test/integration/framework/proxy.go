package framework

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections from a loopback port to a target address and counts them: the
// number of connection attempts of a client, which a server that refuses their TLS handshakes
// does not tell.
type Proxy struct {
	listener net.Listener
	target   string
	accepted atomic.Int64
	wg       sync.WaitGroup
}

// StartProxy starts a Proxy to target on a free port of 127.0.0.1, stopped by the test's cleanup.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{listener: l, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = l.Close()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address, "127.0.0.1:<port>".
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

// Accepted is how many connections the proxy accepted so far.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		go p.forward(conn)
	}
}

// forward copies both ways until either side closes. Connections in flight outlive the listener:
// their client or the target closes them.
func (p *Proxy) forward(conn net.Conn) {
	defer conn.Close()
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer upstream.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream); done <- struct{}{} }()
	<-done
}
