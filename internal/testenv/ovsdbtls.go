package testenv

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// OVSDBTLS is an ovsdb-server's pssl: remote on the loopback address: a TLS listener that verifies
// its clients' certificates against CACert, as OVN's northbound database is served in production.
type OVSDBTLS struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// PrivateKey and Certificate are the server's PEM files; CACert holds the CA certificates
	// that clients' certificates must be signed by. ovsdb-server reads them again when they
	// change.
	PrivateKey, Certificate, CACert string
}

// ServeTLS makes Start serve tls too, besides the unix socket. The server must be stopped.
func (o *OVSDB) ServeTLS(tls OVSDBTLS) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tls = &tls
}

// SSLEndpoint is the pssl: remote's address for libovsdb, the manager's --ovn-nb and
// ovn-nbctl --db ("ssl:127.0.0.1:<port>"), or "" when the server serves no TLS.
func (o *OVSDB) SSLEndpoint() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tls == nil {
		return ""
	}
	return "ssl:" + o.tls.address()
}

func (t *OVSDBTLS) address() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port))
}

// args are ovsdb-server's arguments for the remote; none without one.
func (t *OVSDBTLS) args() []string {
	if t == nil {
		return nil
	}
	return []string{
		fmt.Sprintf("--remote=pssl:%d:127.0.0.1", t.Port),
		"--private-key=" + t.PrivateKey,
		"--certificate=" + t.Certificate,
		"--ca-cert=" + t.CACert,
	}
}

// listening reports whether the remote accepts TCP connections; true without one.
func (t *OVSDBTLS) listening() bool {
	if t == nil {
		return true
	}
	conn, err := net.DialTimeout("tcp", t.address(), time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago, for a server
// that takes its port as an argument.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
