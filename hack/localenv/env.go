package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// Files and directories in the state directory.
const (
	kubeconfigFile = "kubeconfig"
	ovnSocket      = testenv.OVSDBSocket
	readyFile      = "ready"
	etcdDir        = "etcd"
	certDir        = "certs"
	// launchDir holds the links through which etcd and kube-apiserver start, so that they die
	// with localenv (testenv.ControlPlaneOptions.LauncherDir).
	launchDir = "launch"
)

// Timeouts of the environment's processes.
const (
	controlPlaneStartTimeout = 2 * time.Minute
	controlPlaneStopTimeout  = 30 * time.Second
)

// Env is a local environment: etcd and kube-apiserver (through envtest) and an OVN northbound
// ovsdb-server, with every file under one state directory.
type Env struct {
	// dir is the state directory.
	dir string
	// owner is the process that owns the environment (this one), first in the pids file.
	owner testenv.Proc

	// controlPlane runs etcd and kube-apiserver.
	controlPlane *testenv.ControlPlane
	// config is the administrator's client configuration.
	config *rest.Config
	// ovsdb is the OVN northbound ovsdb-server.
	ovsdb *testenv.OVSDB
	// procs are the processes started so far, recorded in the pids file.
	procs []testenv.Proc
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
	owner, err := testenv.Identify("localenv", os.Getpid())
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
	if left := testenv.Running(procs); len(left) > 0 {
		step(fmt.Sprintf("Stopping %v, left running in %s by an earlier run that did not stop cleanly", left, e.dir))
		if err := testenv.KillAll(left); err != nil {
			return err
		}
	}
	return e.removeState()
}

// removeState removes everything but the logs and the lock.
func (e *Env) removeState() error {
	var errs []error
	paths := testenv.OVSDBStateFiles(e.dir)
	for _, name := range []string{etcdDir, certDir, launchDir, kubeconfigFile, readyFile, pidsFile} {
		paths = append(paths, e.path(name))
	}
	for _, path := range paths {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pidsFile is the file in the state directory that lists every process the environment started
// (testenv.WriteProcs), so that 'localenv down', the next start and tests can make sure none is
// left.
const pidsFile = "pids"

// readPids reads the pids file of the state directory dir; a missing file is an empty list.
func readPids(dir string) ([]testenv.Proc, error) {
	return testenv.ReadProcs(filepath.Join(dir, pidsFile))
}

// record adds processes to the pids file.
func (e *Env) record(procs ...testenv.Proc) error {
	e.procs = append(e.procs, procs...)
	return testenv.WriteProcs(e.path(pidsFile), append([]testenv.Proc{e.owner}, e.procs...))
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

// Start starts ovsdb-server, etcd and kube-apiserver, installs the CRDs and the admission policy,
// writes the kubeconfig and creates the example objects. On failure the caller must still call Stop.
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
	step("Starting the OVN northbound ovsdb-server (log: " + e.path(testenv.OVSDBLog) + ")")
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
	cp, startErr := testenv.StartControlPlane(testenv.ControlPlaneOptions{
		Root: ".",
		// Fixed directories instead of envtest's temporary ones, so that nothing lands in /tmp.
		EtcdDataDir:     filepath.Join(abs, etcdDir),
		CertDir:         filepath.Join(abs, certDir),
		EtcdOutput:      etcdLog,
		APIServerOutput: apiLog,
		StartTimeout:    controlPlaneStartTimeout,
		StopTimeout:     controlPlaneStopTimeout,
		LauncherDir:     filepath.Join(abs, launchDir),
	})
	e.controlPlane = cp
	// Record whatever started, even on failure, so that Stop and the next start can find it.
	if err := e.record(cp.Processes()...); err != nil {
		return errors.Join(startErr, err)
	}
	if startErr != nil {
		return fmt.Errorf("%w (see %s)", startErr, apiLog.Name())
	}
	e.config = cp.Config()
	return os.WriteFile(e.Kubeconfig(), cp.AdminKubeconfig(), 0o600)
}

func (e *Env) startOVSDB(ctx context.Context) error {
	logFile, err := e.openLog(testenv.OVSDBLog)
	if err != nil {
		return err
	}
	// It copes with socket paths longer than a sockaddr_un holds; its clients do not
	// (checkSocketPath).
	o, err := testenv.NewOVSDB(e.dir, logFile)
	if err != nil {
		return err
	}
	if err := o.Create(ctx); err != nil {
		return err
	}
	e.ovsdb = o
	startErr := o.Start(ctx)
	if p, err := o.Proc(); err == nil {
		if err := e.record(p); err != nil {
			return errors.Join(startErr, err)
		}
	}
	return startErr
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
		PID:           e.owner.PID,
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
				if !p.Alive() {
					ch <- fmt.Sprintf("%s exited unexpectedly (see %s)", p, e.path(p.Name+".log"))
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
		if err := e.ovsdb.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if e.controlPlane != nil {
		if err := e.controlPlane.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	// Whatever survived the graceful stop (or was started by a Start that failed half-way).
	if err := testenv.KillAll(e.procs); err != nil {
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
