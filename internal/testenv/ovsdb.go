package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/samplecrd/samplecrd-controller/internal/sbin"
	"github.com/samplecrd/samplecrd-controller/internal/syncbuf"
)

// OVNNorthboundSchema is where Debian's ovn-central package installs the OVN northbound schema.
const OVNNorthboundSchema = "/usr/share/ovn/ovn-nb.ovsschema"

// The files of an ovsdb-server in its directory.
const (
	// OVSDBDatabase is the database file.
	OVSDBDatabase = "ovnnb.db"
	// OVSDBSocket is the socket clients connect to.
	OVSDBSocket = "ovnnb.sock"
	// OVSDBLog is the server's log.
	OVSDBLog   = "ovsdb-server.log"
	ovsdbCtl   = "ovsdb-server.ctl"
	ovsdbPID   = "ovsdb-server.pid"
	ovsdbLockf = "." + OVSDBDatabase + ".~lock~"
)

// OVSDBStateFiles are the files an ovsdb-server in dir leaves but its log.
func OVSDBStateFiles(dir string) []string {
	var out []string
	for _, name := range []string{OVSDBDatabase, ovsdbLockf, OVSDBSocket, ovsdbCtl, ovsdbPID} {
		out = append(out, filepath.Join(dir, name))
	}
	return out
}

// Timeouts of ovsdb-server.
const (
	// ovsdbStartTimeout bounds how long Start waits for the server's socket.
	ovsdbStartTimeout = 20 * time.Second
	// ovsdbStopTimeout is how long Stop waits after SIGTERM before it kills the server.
	ovsdbStopTimeout = 10 * time.Second
)

// ovnPrograms are the paths of the OVN programs an OVSDB runs.
type ovnPrograms struct {
	server, tool, nbctl string
}

// findOVN finds ovsdb-server, ovsdb-tool and ovn-nbctl, and checks the northbound schema.
func findOVN() (ovnPrograms, error) {
	var p ovnPrograms
	for _, prog := range []struct {
		name string
		path *string
	}{{"ovsdb-server", &p.server}, {"ovsdb-tool", &p.tool}, {"ovn-nbctl", &p.nbctl}} {
		path, err := sbin.Find(prog.name)
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrMissingPrerequisite, err)
		}
		*prog.path = path
	}
	if _, err := os.Stat(OVNNorthboundSchema); err != nil {
		return p, fmt.Errorf("%w: the OVN northbound schema %s is missing (run hack/ensure-ovn.sh): %v", ErrMissingPrerequisite, OVNNorthboundSchema, err)
	}
	return p, nil
}

// CheckOVN returns an error wrapping ErrMissingPrerequisite when ovsdb-server, ovsdb-tool,
// ovn-nbctl or the OVN northbound schema is missing.
func CheckOVN() error {
	_, err := findOVN()
	return err
}

// OVSDB is an ovsdb-server serving an OVN northbound database on a unix socket, as a child of this
// process (see StartCommand), with its files in one directory.
type OVSDB struct {
	// progs are the OVN programs; dir is the absolute directory of the files.
	progs ovnPrograms
	dir   string
	// output receives the server's standard output and error.
	output io.Writer

	// mu protects the fields below.
	mu sync.Mutex
	// tcpPort is the port of 127.0.0.1 the server also listens on (ListenTCP); 0 for the socket
	// alone.
	tcpPort int
	// cmd is the running server, nil when stopped; exited is closed when it has exited.
	cmd    *exec.Cmd
	exited chan struct{}
	// tls, when set, is the pssl: remote that Start serves besides the socket (see ServeTLS).
	tls *OVSDBTLS
}

// NewOVSDB returns the server of a database in dir, which it creates if needed; Create creates the
// database and Start starts the server. The server prints little but to its log (OVSDBLog in dir):
// what it prints before the log opens, such as why it cannot start, goes to output, or nowhere
// when output is nil. It fails with an error wrapping ErrMissingPrerequisite when OVN is missing.
func NewOVSDB(dir string, output io.Writer) (*OVSDB, error) {
	progs, err := findOVN()
	if err != nil {
		return nil, err
	}
	// Absolute paths: ovsdb-server resolves relative ones against its run directory, not the
	// working directory.
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	return &OVSDB{progs: progs, dir: abs, output: output}, nil
}

func (o *OVSDB) path(name string) string { return filepath.Join(o.dir, name) }

// Endpoint is the server's address for libovsdb, the manager's --ovn-nb and ovn-nbctl --db:
// "unix:" and the socket's absolute path.
func (o *OVSDB) Endpoint() string { return "unix:" + o.path(OVSDBSocket) }

// ListenTCP makes the server also listen on a free TCP port of 127.0.0.1 from its next Start on,
// for clients that cannot reach its socket (a container, say), and returns that endpoint,
// "tcp:127.0.0.1:PORT". Every later start listens on the same port.
func (o *OVSDB) ListenTCP() (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tcpPort == 0 {
		// A port the kernel just handed out and released, as envtest picks the API server's:
		// ovsdb-server takes only a fixed port or 0, whose choice only its log would tell.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("finding a free port for ovsdb-server: %w", err)
		}
		o.tcpPort = l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return "", err
		}
	}
	return o.tcpEndpoint(), nil
}

// tcpEndpoint is the TCP endpoint; the caller holds mu and tcpPort is set.
func (o *OVSDB) tcpEndpoint() string {
	return fmt.Sprintf("tcp:127.0.0.1:%d", o.tcpPort)
}

// DBFile is the database file. ovsdb-server appends every transaction it commits to it, so that
// its size tells whether anything was written.
func (o *OVSDB) DBFile() string { return o.path(OVSDBDatabase) }

// LogFile is the server's log.
func (o *OVSDB) LogFile() string { return o.path(OVSDBLog) }

// Unixctl is the server's control socket, for ovs-appctl -t.
func (o *OVSDB) Unixctl() string { return o.path(ovsdbCtl) }

// Create creates an empty OVN northbound database from the schema.
func (o *OVSDB) Create(ctx context.Context) error {
	return o.createAt(ctx, o.DBFile())
}

// createAt creates an empty OVN northbound database at path.
func (o *OVSDB) createAt(ctx context.Context, path string) error {
	if out, err := exec.CommandContext(ctx, o.progs.tool, "create", path, OVNNorthboundSchema).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create %s %s: %w: %s", path, OVNNorthboundSchema, err, out)
	}
	return nil
}

// CreateEmpty creates an empty OVN northbound database in a new file of the server's directory
// and returns its path, for ReplaceDatabase.
func (o *OVSDB) CreateEmpty(ctx context.Context) (string, error) {
	f, err := os.CreateTemp(o.dir, "empty-*.db")
	if err != nil {
		return "", err
	}
	path := f.Name()
	// ovsdb-tool create refuses an existing file.
	if err := errors.Join(f.Close(), os.Remove(path)); err != nil {
		return "", err
	}
	if err := o.createAt(ctx, path); err != nil {
		return "", err
	}
	return path, nil
}

// ReplaceDatabase makes the database file at path (one of CreateEmpty, say) the server's
// database, by renaming it, which takes no time. The server must be stopped.
func (o *OVSDB) ReplaceDatabase(path string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil {
		return errors.New("replacing the database of a running ovsdb-server")
	}
	if err := os.Rename(path, o.DBFile()); err != nil {
		return fmt.Errorf("replacing the OVN northbound database: %w", err)
	}
	return nil
}

// Start starts the server on the database, and waits until its socket accepts connections. The
// server must not run.
func (o *OVSDB) Start(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil {
		return errors.New("ovsdb-server is already running")
	}
	args := []string{
		"--remote=punix:" + o.path(OVSDBSocket),
		"--unixctl=" + o.Unixctl(),
		"--pidfile=" + o.path(ovsdbPID),
		"--log-file=" + o.LogFile(),
		// Everything goes to the log file, once.
		"-vconsole:off",
	}
	if o.tcpPort != 0 {
		args = append(args, fmt.Sprintf("--remote=ptcp:%d:127.0.0.1", o.tcpPort))
	}
	args = append(append(args, o.tls.args()...), o.DBFile())
	cmd := exec.Command(o.progs.server, args...)
	// What it prints before it exits at once, for the error.
	var early syncbuf.Buffer
	out := io.Writer(&early)
	if o.output != nil {
		out = io.MultiWriter(o.output, &early)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := StartCommand(cmd); err != nil {
		return fmt.Errorf("starting ovsdb-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	o.cmd, o.exited = cmd, exited

	// Where it listens: the socket, and the TCP port of ListenTCP.
	listening := []struct{ network, address string }{{"unix", o.path(OVSDBSocket)}}
	if o.tcpPort != 0 {
		listening = append(listening, struct{ network, address string }{"tcp", fmt.Sprintf("127.0.0.1:%d", o.tcpPort)})
	}
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, ovsdbStartTimeout, true, func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("ovsdb-server exited: %s: %s (see %s)", cmd.ProcessState, strings.TrimSpace(early.String()), o.LogFile())
		default:
		}
		for _, addr := range listening {
			conn, err := net.DialTimeout(addr.network, addr.address, time.Second)
			if err != nil {
				return false, nil
			}
			_ = conn.Close()
		}
		return o.tls.listening(), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for ovsdb-server to listen on %v: %w", listening, err)
	}
	return nil
}

// running returns the running server, or an error when it is stopped. The caller holds mu.
func (o *OVSDB) running() (*exec.Cmd, error) {
	if o.cmd == nil {
		return nil, errors.New("ovsdb-server is not running")
	}
	return o.cmd, nil
}

// Proc is the running server's identity.
func (o *OVSDB) Proc() (Proc, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cmd, err := o.running()
	if err != nil {
		return Proc{}, err
	}
	return Identify("ovsdb-server", cmd.Process.Pid)
}

// Stop stops the server with SIGTERM and waits for it to exit, keeping the database for Start. It
// kills a server that does not exit in time, and says so.
func (o *OVSDB) Stop() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cmd, err := o.running()
	if err != nil {
		return err
	}
	defer func() { o.cmd = nil }()
	// SIGCONT too, should it be paused: a stopped process acts on no signal but SIGKILL.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGCONT} {
		if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("stopping ovsdb-server: %w", err)
		}
	}
	select {
	case <-o.exited:
		return nil
	case <-time.After(ovsdbStopTimeout):
		_ = cmd.Process.Kill()
		<-o.exited
		return fmt.Errorf("ovsdb-server did not exit within %s of SIGTERM; killed it", ovsdbStopTimeout)
	}
}

// Kill kills the server, if it runs, and waits for it to exit.
func (o *OVSDB) Kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Kill()
	<-o.exited
	o.cmd = nil
}

// Pause stops the server with SIGSTOP: its connections stay open, but it answers nothing, like a
// server on a host that hangs or a network that drops packets. Resume continues it.
func (o *OVSDB) Pause() error { return o.signal(syscall.SIGSTOP) }

// Resume continues the server after Pause.
func (o *OVSDB) Resume() error { return o.signal(syscall.SIGCONT) }

func (o *OVSDB) signal(sig syscall.Signal) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cmd, err := o.running()
	if err != nil {
		return err
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("sending %s to ovsdb-server: %w", sig, err)
	}
	return nil
}

// NBCtl runs ovn-nbctl against the server and returns its standard output without the trailing
// newline.
func (o *OVSDB) NBCtl(args ...string) (string, error) {
	cmd := exec.Command(o.progs.nbctl, append([]string{"--db=" + o.Endpoint(), "--timeout=20"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovn-nbctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
