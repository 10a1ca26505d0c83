package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/samplecrd/samplecrd-controller/internal/sbin"
)

// Files and directories in the state directory.
const (
	kubeconfigFile = "kubeconfig"
	ovnSocket      = "ovnnb.sock"
	ovnDB          = "ovnnb.db"
	readyFile      = "ready"
	etcdDir        = "etcd"
	certDir        = "certs"
)

// Timeouts of the environment's processes.
const (
	controlPlaneStartTimeout = 2 * time.Minute
	controlPlaneStopTimeout  = 30 * time.Second
	ovsdbStartTimeout        = 20 * time.Second
	ovsdbStopTimeout         = 10 * time.Second
)

// ovnSchema is where Debian's ovn-central package installs the OVN northbound schema.
const ovnSchema = "/usr/share/ovn/ovn-nb.ovsschema"

// Env is a local environment: etcd and kube-apiserver (through envtest) and an OVN northbound
// ovsdb-server, with every file under one state directory.
type Env struct {
	// dir is the state directory.
	dir string
	// owner is the process that owns the environment (this one), first in the pids file.
	owner proc

	// testEnv runs etcd and kube-apiserver.
	testEnv *envtest.Environment
	// config is the administrator's client configuration.
	config *rest.Config
	// ovsdb is the running ovsdb-server; ovsdbExited is closed when it has exited.
	ovsdb       *exec.Cmd
	ovsdbExited chan struct{}
	// procs are the processes started so far, recorded in the pids file.
	procs []proc
	// logs are the open log files, closed by Stop.
	logs []*os.File
}

// Ready is what the ready file holds once the environment is up. Its paths are absolute.
type Ready struct {
	// Kubeconfig is the administrator's kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// OVNNorthbound is the OVN northbound database's address for --ovn-nb and ovn-nbctl --db.
	OVNNorthbound string `json:"ovnNorthbound"`
	// APIServer is the API server's URL.
	APIServer string `json:"apiServer"`
	// PID is the process that owns the environment.
	PID int `json:"pid"`
}

// newEnv returns an environment in dir, owned by this process; Start starts it.
func newEnv(dir string) (*Env, error) {
	owner, err := self("localenv", os.Getpid())
	if err != nil {
		return nil, err
	}
	return &Env{dir: dir, owner: owner}, nil
}

func (e *Env) path(name string) string { return filepath.Join(e.dir, name) }

// Kubeconfig is the path of the administrator's kubeconfig.
func (e *Env) Kubeconfig() string { return e.path(kubeconfigFile) }

// OVNNorthbound is the address of the OVN northbound database: "unix:" and the socket's absolute
// path. OVS tools resolve a relative one against their run directory, and the manager refuses it.
func (e *Env) OVNNorthbound() string {
	abs, err := filepath.Abs(e.path(ovnSocket))
	if err != nil {
		abs = e.path(ovnSocket)
	}
	return "unix:" + abs
}

// maxSocketPath is the longest unix socket path a client can connect to: sockaddr_un holds 108
// bytes with the terminating NUL.
const maxSocketPath = 107

// checkSocketPath fails when the OVN socket's path is too long for clients such as the manager.
func (e *Env) checkSocketPath() error {
	if sock := strings.TrimPrefix(e.OVNNorthbound(), "unix:"); len(sock) > maxSocketPath {
		return fmt.Errorf("the OVN socket path %s is %d bytes, longer than the %d a unix socket address holds: use a shorter state directory (--dir, or LOCAL_DIR with make)",
			sock, len(sock), maxSocketPath)
	}
	return nil
}

// Config is the administrator's client configuration, once started.
func (e *Env) Config() *rest.Config { return rest.CopyConfig(e.config) }

// cleanStale stops what an earlier owner of the directory left running (it can only have been
// killed, or it would have stopped them) and removes its state. The caller holds the lock.
func (e *Env) cleanStale() error {
	procs, err := readPids(e.dir)
	if err != nil {
		return err
	}
	var left []proc
	for _, p := range procs {
		if p.alive() {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		step(fmt.Sprintf("Stopping %v, left running in %s by an earlier run that did not stop cleanly", left, e.dir))
		if err := killAll(left); err != nil {
			return err
		}
	}
	return e.removeState()
}

// removeState removes everything but the logs and the lock.
func (e *Env) removeState() error {
	var errs []error
	for _, name := range []string{etcdDir, certDir, kubeconfigFile, ovnDB, "." + ovnDB + ".~lock~", ovnSocket, "ovsdb-server.ctl", "ovsdb-server.pid", readyFile, pidsFile} {
		if err := os.RemoveAll(e.path(name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// record adds processes to the pids file.
func (e *Env) record(procs ...proc) error {
	e.procs = append(e.procs, procs...)
	return writePids(e.dir, append([]proc{e.owner}, e.procs...))
}

// openLog opens (truncating) a log file in the state directory.
func (e *Env) openLog(name string) (*os.File, error) {
	f, err := os.OpenFile(e.path(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	e.logs = append(e.logs, f)
	return f, nil
}

// Start starts ovsdb-server, etcd and kube-apiserver, installs the CRDs, writes the kubeconfig and
// creates the example objects. On failure the caller must still call Stop.
func (e *Env) Start(ctx context.Context) error {
	if err := e.checkSocketPath(); err != nil {
		return err
	}
	if err := e.cleanStale(); err != nil {
		return err
	}
	if err := e.record(); err != nil {
		return err
	}
	step("Starting the OVN northbound ovsdb-server (log: " + e.path("ovsdb-server.log") + ")")
	if err := e.startOVSDB(ctx); err != nil {
		return err
	}
	step("Starting etcd and kube-apiserver (logs: " + e.path("etcd.log") + ", " + e.path("kube-apiserver.log") + ")")
	if err := e.startControlPlane(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	step("Creating the example objects: a control-plane Node, pods and the example Network")
	return seed(ctx, e.config)
}

func (e *Env) startControlPlane() error {
	abs, err := filepath.Abs(e.dir)
	if err != nil {
		return err
	}
	for _, d := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(e.path(d), 0o700); err != nil {
			return err
		}
	}
	etcdLog, err := e.openLog("etcd.log")
	if err != nil {
		return err
	}
	apiLog, err := e.openLog("kube-apiserver.log")
	if err != nil {
		return err
	}
	e.testEnv = &envtest.Environment{
		BinaryAssetsDirectory:    filepath.Join("bin", "control-plane"),
		CRDDirectoryPaths:        []string{filepath.Join("config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: controlPlaneStartTimeout,
		ControlPlaneStopTimeout:  controlPlaneStopTimeout,
	}
	// Fixed directories instead of envtest's temporary ones, so that nothing lands in /tmp.
	e.testEnv.ControlPlane.GetAPIServer().CertDir = filepath.Join(abs, certDir)
	e.testEnv.ControlPlane.GetAPIServer().Out = apiLog
	e.testEnv.ControlPlane.GetAPIServer().Err = apiLog
	e.testEnv.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(abs, etcdDir), Out: etcdLog, Err: etcdLog}

	_, startErr := e.testEnv.Start()
	// Record whatever started, even on failure, so that Stop and the next start can find it.
	started, err := children("etcd", "kube-apiserver")
	if err != nil {
		return errors.Join(startErr, err)
	}
	if err := e.record(started...); err != nil {
		return errors.Join(startErr, err)
	}
	if startErr != nil {
		return fmt.Errorf("starting etcd and kube-apiserver (see %s): %w", apiLog.Name(), startErr)
	}

	user, err := e.testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	e.config = user.Config()
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return os.WriteFile(e.Kubeconfig(), kubeconfig, 0o600)
}

func (e *Env) startOVSDB(ctx context.Context) error {
	server, err := sbin.Find("ovsdb-server")
	if err != nil {
		return err
	}
	tool, err := sbin.Find("ovsdb-tool")
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, tool, "create", e.path(ovnDB), ovnSchema).CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-tool create %s %s: %w: %s", e.path(ovnDB), ovnSchema, err, out)
	}
	logFile, err := e.openLog("ovsdb-server.log")
	if err != nil {
		return err
	}
	// Absolute paths: ovsdb-server resolves relative ones against its run directory, not the
	// working directory. It copes with socket paths longer than a sockaddr_un holds.
	abs, err := filepath.Abs(e.dir)
	if err != nil {
		return err
	}
	cmd := exec.Command(server,
		"--remote=punix:"+filepath.Join(abs, ovnSocket),
		"--unixctl="+filepath.Join(abs, "ovsdb-server.ctl"),
		"--pidfile="+filepath.Join(abs, "ovsdb-server.pid"),
		"--log-file="+filepath.Join(abs, "ovsdb-server.log"),
		"-vconsole:off",
		filepath.Join(abs, ovnDB),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that Ctrl-C reaches this program only, which stops everything in
	// order; and SIGTERM should this program die without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting ovsdb-server: %w", err)
	}
	e.ovsdb, e.ovsdbExited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(e.ovsdbExited)
	}()
	p, err := self("ovsdb-server", cmd.Process.Pid)
	if err != nil {
		return err
	}
	if err := e.record(p); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, ovsdbStartTimeout, true, func(context.Context) (bool, error) {
		select {
		case <-e.ovsdbExited:
			return false, fmt.Errorf("ovsdb-server exited: %s (see %s)", cmd.ProcessState, logFile.Name())
		default:
		}
		conn, err := net.DialTimeout("unix", e.path(ovnSocket), time.Second)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
}

// WriteReady writes the ready file, which says that the environment is up and how to reach it.
func (e *Env) WriteReady() error {
	abs, err := filepath.Abs(e.dir)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(Ready{
		Kubeconfig:    filepath.Join(abs, kubeconfigFile),
		OVNNorthbound: e.OVNNorthbound(),
		APIServer:     e.config.Host,
		PID:           e.owner.pid,
	}, "", "  ")
	if err != nil {
		return err
	}
	tmp := e.path(readyFile + ".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, e.path(readyFile))
}

// Failed returns a channel that receives a message when a process of the environment exits while
// it should run. It checks once a second: etcd and kube-apiserver are envtest's children, which
// offers no way to wait for them.
func (e *Env) Failed(ctx context.Context) <-chan string {
	ch := make(chan string, 1)
	procs := slices.Clone(e.procs)
	go func() {
		_ = wait.PollUntilContextCancel(ctx, time.Second, false, func(context.Context) (bool, error) {
			for _, p := range procs {
				if !p.alive() {
					ch <- fmt.Sprintf("%s exited unexpectedly (see %s)", p, e.path(p.name+".log"))
					return true, nil
				}
			}
			return false, nil
		})
	}()
	return ch
}

// Stop stops every process the environment started, waits until they are gone, and removes the
// state but the logs. It is safe to call after a failed or partial Start.
func (e *Env) Stop() error {
	var errs []error
	if e.ovsdb != nil {
		_ = e.ovsdb.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.ovsdbExited:
		case <-time.After(ovsdbStopTimeout):
			errs = append(errs, fmt.Errorf("ovsdb-server did not stop within %s of SIGTERM; killing it", ovsdbStopTimeout))
			_ = e.ovsdb.Process.Kill()
			<-e.ovsdbExited
		}
	}
	if e.testEnv != nil {
		if err := e.testEnv.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
	}
	// Whatever survived the graceful stop (or was started by a Start that failed half-way).
	if err := killAll(e.procs); err != nil {
		errs = append(errs, err)
	} else if err := e.removeState(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range e.logs {
		_ = f.Close()
	}
	return errors.Join(errs...)
}

// displayPath is how a path in the state directory is shown: relative to the working directory
// (the repository) when it is inside it.
func displayPath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return abs
	}
	return rel
}
