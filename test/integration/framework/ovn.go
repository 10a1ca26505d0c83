package framework

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// OVSDB is an ovsdb-server serving an OVN northbound database on a unix socket in a temporary
// directory, run as a child process of the test: testenv.OVSDB, failing the test on errors.
type OVSDB struct {
	server *testenv.OVSDB
	// tcp is the TCP endpoint of StartOVSDBWithTCP; empty otherwise.
	tcp string
}

// StartOVSDB creates an empty OVN northbound database in a temporary directory and starts an
// ovsdb-server for it, which the test's cleanup kills. When OVN is not installed the test skips,
// or fails under CI=true.
func StartOVSDB(t testing.TB) *OVSDB {
	t.Helper()
	return startOVSDB(t, false, nil)
}

// StartOVSDBWithTCP is StartOVSDB with the server also listening on a TCP port of 127.0.0.1
// (TCPEndpoint), for a manager that cannot reach the socket: one in a container.
func StartOVSDBWithTCP(t testing.TB) *OVSDB {
	t.Helper()
	return startOVSDB(t, true, nil)
}

// StartOVSDBTLS is StartOVSDB with a pssl: remote on a free port of 127.0.0.1 too, with the
// server's files of tls (whose Port it sets); SSLEndpoint is its address.
func StartOVSDBTLS(t testing.TB, tls testenv.OVSDBTLS) *OVSDB {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatalf("finding a free port for ovsdb-server: %v", err)
	}
	tls.Port = port
	return startOVSDB(t, false, &tls)
}

func startOVSDB(t testing.TB, tcp bool, tls *testenv.OVSDBTLS) *OVSDB {
	t.Helper()
	// A short directory, not t.TempDir(): unix socket paths are limited to about 100 bytes, and
	// t.TempDir() contains the test's name.
	dir, err := os.MkdirTemp("", "ovsdb-")
	if err != nil {
		t.Fatalf("creating a directory for ovsdb-server: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	server, err := testenv.NewOVSDB(dir, nil)
	Require(t, err)
	o := &OVSDB{server: server}
	if tcp {
		if o.tcp, err = server.ListenTCP(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		server.Kill()
		if t.Failed() {
			o.dumpLog(t)
		}
	})
	if err := server.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	if tls != nil {
		server.ServeTLS(*tls)
	}
	o.Start(t)
	return o
}

// Endpoint is the server's address for libovsdb and ovn-nbctl: "unix:<socket>".
func (o *OVSDB) Endpoint() string {
	return o.server.Endpoint()
}

// TCPEndpoint is the server's TCP address, "tcp:127.0.0.1:PORT", for a server of
// StartOVSDBWithTCP; it fails the test for one of StartOVSDB.
func (o *OVSDB) TCPEndpoint(t testing.TB) string {
	t.Helper()
	if o.tcp == "" {
		t.Fatal("framework: TCPEndpoint of an ovsdb-server started without TCP; use StartOVSDBWithTCP")
	}
	return o.tcp
}

// SSLEndpoint is the server's pssl: remote for libovsdb and --ovn-nb ("ssl:127.0.0.1:<port>"),
// "" unless the server was started by StartOVSDBTLS.
func (o *OVSDB) SSLEndpoint() string {
	return o.server.SSLEndpoint()
}

// DBFile is the database file. ovsdb-server appends every transaction it commits to it, so that
// its size tells whether anything was written.
func (o *OVSDB) DBFile() string {
	return o.server.DBFile()
}

// Start starts the server on the database and socket of StartOVSDB, and waits until the socket
// accepts connections. The server must be stopped.
func (o *OVSDB) Start(t testing.TB) {
	t.Helper()
	if err := o.server.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the server and waits for it to exit, keeping the database for Start.
func (o *OVSDB) Stop(t testing.TB) {
	t.Helper()
	if err := o.server.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it to exit, keeping the
// database for Start.
func (o *OVSDB) Kill(t testing.TB) {
	t.Helper()
	o.server.Kill()
}

// CreateEmpty creates an empty OVN northbound database in a new file next to the server's, for
// ReplaceDatabase, and returns its path.
func (o *OVSDB) CreateEmpty(t testing.TB) string {
	t.Helper()
	path, err := o.server.CreateEmpty(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// ReplaceDatabase makes the database file at path (from CreateEmpty) the server's, at once; the
// server must be stopped.
func (o *OVSDB) ReplaceDatabase(t testing.TB, path string) {
	t.Helper()
	if err := o.server.ReplaceDatabase(path); err != nil {
		t.Fatal(err)
	}
}

// Pause stops the server with SIGSTOP: its connections stay open, but it answers nothing, like a
// server on a host that hangs or a network that drops packets. Resume continues it.
func (o *OVSDB) Pause(t testing.TB) {
	t.Helper()
	if err := o.server.Pause(); err != nil {
		t.Fatal(err)
	}
}

// Resume continues the server after Pause.
func (o *OVSDB) Resume(t testing.TB) {
	t.Helper()
	if err := o.server.Resume(); err != nil {
		t.Fatal(err)
	}
}

// NBCtl runs ovn-nbctl against the server and returns its standard output without the trailing
// newline. It fails the test when ovn-nbctl fails.
func (o *OVSDB) NBCtl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.NBCtlE(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// NBCtlE is NBCtl that returns ovn-nbctl's failure instead of failing the test.
func (o *OVSDB) NBCtlE(args ...string) (string, error) {
	return o.server.NBCtl(args...)
}

// dumpLog logs the end of the server's log, for failed tests.
func (o *OVSDB) dumpLog(t testing.TB) {
	data, err := os.ReadFile(o.server.LogFile())
	if err != nil {
		t.Logf("reading the ovsdb-server log: %v", err)
		return
	}
	t.Logf("end of the ovsdb-server log %s:\n%s", o.server.LogFile(), lastLines(strings.TrimSpace(string(data)), 40))
}
