package framework

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/samplecrd/samplecrd-controller/internal/sbin"
)

// OVNNorthboundSchema is where Debian's ovn-central package installs the OVN northbound schema.
const OVNNorthboundSchema = "/usr/share/ovn/ovn-nb.ovsschema"

// ovsdbStartTimeout bounds how long StartOVSDB and Start wait for the server's socket.
const ovsdbStartTimeout = 20 * time.Second

// ovsdbStopTimeout is how long Stop waits after SIGTERM before it kills the server.
const ovsdbStopTimeout = 10 * time.Second

// OVSDB is an ovsdb-server serving an OVN northbound database on a unix socket in a temporary
// directory, run as a child process of the test.
type OVSDB struct {
	// server and nbctl are the paths of ovsdb-server and ovn-nbctl.
	server, nbctl string
	// dir is the temporary directory that holds the files below.
	dir string
	// db is the database file and sock the server's unix socket.
	db, sock string
	// ctl, pidfile and logfile are the server's control socket, pid file and log.
	ctl, pidfile, logfile string

	// mu protects the fields below.
	mu sync.Mutex
	// cmd is the running server, nil when stopped; exited is closed when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
	// stderr collects the server's output, which is mostly in its log file.
	stderr *bytes.Buffer
}

// ovnBinaries finds ovsdb-server, ovsdb-tool and ovn-nbctl, and checks the northbound schema.
// ovsdb-server lives in /usr/sbin, which is not in every user's PATH.
func ovnBinaries() (server, tool, nbctl string, err error) {
	find := func(name string) (string, error) {
		path, err := sbin.Find(name)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMissingPrerequisite, err)
		}
		return path, nil
	}
	if server, err = find("ovsdb-server"); err != nil {
		return "", "", "", err
	}
	if tool, err = find("ovsdb-tool"); err != nil {
		return "", "", "", err
	}
	if nbctl, err = find("ovn-nbctl"); err != nil {
		return "", "", "", err
	}
	if _, err := os.Stat(OVNNorthboundSchema); err != nil {
		return "", "", "", fmt.Errorf("%w: the OVN northbound schema %s is missing (run hack/ensure-ovn.sh): %v", ErrMissingPrerequisite, OVNNorthboundSchema, err)
	}
	return server, tool, nbctl, nil
}

// CheckOVNBinaries returns an error wrapping ErrMissingPrerequisite when ovsdb-server, ovsdb-tool,
// ovn-nbctl or the OVN northbound schema is missing.
func CheckOVNBinaries() error {
	_, _, _, err := ovnBinaries()
	return err
}

// StartOVSDB creates an empty OVN northbound database in a temporary directory and starts an
// ovsdb-server for it, which the test's cleanup kills. When OVN is not installed the test skips,
// or fails under CI=true.
func StartOVSDB(t testing.TB) *OVSDB {
	t.Helper()
	server, tool, nbctl, err := ovnBinaries()
	if err != nil {
		if InCI() {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	// A short directory, not t.TempDir(): unix socket paths are limited to about 100 bytes, and
	// t.TempDir() contains the test's name.
	dir, err := os.MkdirTemp("", "ovsdb-")
	if err != nil {
		t.Fatalf("creating a directory for ovsdb-server: %v", err)
	}
	o := &OVSDB{
		server:  server,
		nbctl:   nbctl,
		dir:     dir,
		db:      filepath.Join(dir, "nb.db"),
		sock:    filepath.Join(dir, "nb.sock"),
		ctl:     filepath.Join(dir, "ovsdb.ctl"),
		pidfile: filepath.Join(dir, "ovsdb.pid"),
		logfile: filepath.Join(dir, "ovsdb.log"),
	}
	t.Cleanup(func() {
		o.kill()
		if t.Failed() {
			o.dumpLog(t)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	if out, err := exec.Command(tool, "create", o.db, OVNNorthboundSchema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create %s: %v: %s", o.db, err, out)
	}
	o.Start(t)
	return o
}

// Endpoint is the server's address for libovsdb and ovn-nbctl: "unix:<socket>".
func (o *OVSDB) Endpoint() string {
	return "unix:" + o.sock
}

// DBFile is the database file. ovsdb-server appends every transaction it commits to it, so that
// its size tells whether anything was written.
func (o *OVSDB) DBFile() string {
	return o.db
}

// Start starts the server on the database and socket of StartOVSDB, and waits until the socket
// accepts connections. The server must be stopped.
func (o *OVSDB) Start(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil {
		t.Fatal("framework: ovsdb-server is already running")
	}
	cmd := exec.Command(o.server,
		"--remote=punix:"+o.sock,
		"--unixctl="+o.ctl,
		"--pidfile="+o.pidfile,
		"--log-file="+o.logfile,
		o.db,
	)
	o.stderr = &bytes.Buffer{}
	cmd.Stdout = o.stderr
	cmd.Stderr = o.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ovsdb-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	o.cmd, o.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), ovsdbStartTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("ovsdb-server exited: %s: %s", cmd.ProcessState, o.stderr)
		default:
		}
		conn, err := net.DialTimeout("unix", o.sock, time.Second)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for ovsdb-server to listen on %s: %v", o.sock, err)
	}
}

// Stop stops the server and waits for it to exit, keeping the database for Start.
func (o *OVSDB) Stop(t testing.TB) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd == nil {
		t.Fatal("framework: ovsdb-server is not running")
	}
	if err := o.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("stopping ovsdb-server: %v", err)
	}
	select {
	case <-o.exited:
	case <-time.After(ovsdbStopTimeout):
		t.Errorf("ovsdb-server did not exit %s after SIGTERM; killing it", ovsdbStopTimeout)
		_ = o.cmd.Process.Kill()
		<-o.exited
	}
	o.cmd = nil
}

// Pause stops the server with SIGSTOP: its connections stay open, but it answers nothing, like a
// server on a host that hangs or a network that drops packets. Resume continues it.
func (o *OVSDB) Pause(t testing.TB) {
	t.Helper()
	o.signal(t, syscall.SIGSTOP)
}

// Resume continues the server after Pause.
func (o *OVSDB) Resume(t testing.TB) {
	t.Helper()
	o.signal(t, syscall.SIGCONT)
}

func (o *OVSDB) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd == nil {
		t.Fatal("framework: ovsdb-server is not running")
	}
	if err := o.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("sending %s to ovsdb-server: %v", sig, err)
	}
}

// kill kills the server if it runs, for the cleanup.
func (o *OVSDB) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Kill()
	<-o.exited
	o.cmd = nil
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
	cmd := exec.Command(o.nbctl, append([]string{"--db=" + o.Endpoint(), "--timeout=20"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovn-nbctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// dumpLog logs the end of the server's log, for failed tests.
func (o *OVSDB) dumpLog(t testing.TB) {
	data, err := os.ReadFile(o.logfile)
	if err != nil {
		t.Logf("reading the ovsdb-server log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("end of the ovsdb-server log %s:\n%s", o.logfile, strings.Join(lines, "\n"))
}
