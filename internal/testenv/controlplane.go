package testenv

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Default timeouts of the control plane's processes.
const (
	defaultControlPlaneStartTimeout = 2 * time.Minute
	defaultControlPlaneStopTimeout  = time.Minute
)

// Admin is a user in system:masters, whom RBAC lets do anything.
var Admin = envtest.User{Name: "admin", Groups: []string{"system:masters"}}

// ControlPlaneOptions configure StartControlPlane. Only Root is required.
type ControlPlaneOptions struct {
	// Root is the repository root: the binaries are in ControlPlaneDir(Root), the CRDs in
	// CRDDir(Root), the admission policies in PolicyDir(Root).
	Root string
	// EtcdDataDir and CertDir, when set, hold etcd's data and the API server's certificates instead
	// of temporary directories that Stop removes.
	EtcdDataDir, CertDir string
	// EtcdOutput and APIServerOutput receive the output of etcd and kube-apiserver; it is discarded
	// when they are nil.
	EtcdOutput, APIServerOutput io.Writer
	// StartTimeout bounds the start of each process, and the wait for the admission policies to
	// take effect, 2 minutes when zero; StopTimeout bounds a process's graceful stop, a minute
	// when zero.
	StartTimeout, StopTimeout time.Duration
	// LauncherDir, when set, makes etcd and kube-apiserver die with this process, as the children
	// StartCommand starts do. They are started through links to this program in this directory
	// (see RunLauncher, which main must call first).
	LauncherDir string
}

// The processes of a ControlPlane, by the names Kill and Restart take.
const (
	Etcd          = "etcd"
	KubeAPIServer = "kube-apiserver"
)

// ControlPlane is a running etcd and kube-apiserver (through envtest) with the project's CRDs
// and admission policies installed.
type ControlPlane struct {
	env *envtest.Environment
	// opts are StartControlPlane's options, for Restart.
	opts ControlPlaneOptions
	// binDir is the absolute directory of the real binaries, which the launcher executes.
	binDir string

	// mu guards procs, which Kill and Restart change.
	mu sync.Mutex
	// procs are etcd and kube-apiserver, as found once they started.
	procs []Proc
}

// StartControlPlane starts etcd and kube-apiserver, installs the CRDs, then the admission
// policies of PolicyDir, and waits until the API server enforces them. It returns a ControlPlane
// even on failure, whose Stop stops whatever started.
func StartControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	env := &envtest.Environment{
		BinaryAssetsDirectory:    ControlPlaneDir(opts.Root),
		CRDDirectoryPaths:        []string{CRDDir(opts.Root)},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: cmp.Or(opts.StartTimeout, defaultControlPlaneStartTimeout),
		ControlPlaneStopTimeout:  cmp.Or(opts.StopTimeout, defaultControlPlaneStopTimeout),
	}
	c := &ControlPlane{env: env, opts: opts}
	if err := CheckControlPlane(opts.Root); err != nil {
		return c, err
	}
	apiServer := env.ControlPlane.GetAPIServer()
	apiServer.CertDir = opts.CertDir
	apiServer.Out, apiServer.Err = opts.APIServerOutput, opts.APIServerOutput
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: opts.EtcdDataDir, Out: opts.EtcdOutput, Err: opts.EtcdOutput}

	start := func() error {
		_, err := env.Start()
		return err
	}
	var startErr error
	if opts.LauncherDir != "" {
		links, err := launcherLinks(opts.LauncherDir, controlPlaneBinaries)
		if err != nil {
			return c, fmt.Errorf("linking the launcher: %w", err)
		}
		env.ControlPlane.Etcd.Path = links["etcd"]
		apiServer.Path = links["kube-apiserver"]
		dir, err := filepath.Abs(ControlPlaneDir(opts.Root))
		if err != nil {
			return c, err
		}
		c.binDir = dir
		startErr = withLaunchEnv(dir, start)
	} else {
		startErr = start()
	}
	// Whatever started, even on failure, so that the caller can record it and Stop can check it.
	procs, err := Children(controlPlaneBinaries...)
	c.procs = procs
	if startErr != nil {
		return c, fmt.Errorf("starting etcd and kube-apiserver: %w", startErr)
	}
	if err != nil {
		return c, err
	}
	if err := installPolicies(env.Config, PolicyDir(opts.Root), env.ControlPlaneStartTimeout); err != nil {
		return c, fmt.Errorf("installing the admission policies: %w", err)
	}
	return c, nil
}

// Config returns a copy of the administrator's client configuration.
func (c *ControlPlane) Config() *rest.Config {
	return rest.CopyConfig(c.env.Config)
}

// AdminKubeconfig is a kubeconfig for the administrator, with client certificates.
func (c *ControlPlane) AdminKubeconfig() []byte {
	return c.env.KubeConfig
}

// Kubeconfig returns a kubeconfig for a user authenticated by a client certificate; RBAC decides
// what it may do. A user named system:serviceaccount:NS:NAME is matched by RBAC subjects of kind
// ServiceAccount.
func (c *ControlPlane) Kubeconfig(u envtest.User) ([]byte, error) {
	user, err := c.env.AddUser(u, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the user %s: %w", u.Name, err)
	}
	return user.KubeConfig()
}

// Environment is the envtest environment, for what this type does not cover.
func (c *ControlPlane) Environment() *envtest.Environment {
	return c.env
}

// Processes are etcd and kube-apiserver.
func (c *ControlPlane) Processes() []Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.procs)
}

// Kill kills etcd or kube-apiserver (Etcd, KubeAPIServer) with SIGKILL, as a crash would, and waits
// until it is gone. Restart starts it again.
func (c *ControlPlane) Kill(name string) error {
	if err := c.restartable(name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var procs []Proc
	for _, p := range c.procs {
		if p.Name == name {
			procs = append(procs, p)
		}
	}
	if len(Running(procs)) == 0 {
		return fmt.Errorf("killing %s: it is not running", name)
	}
	return KillAll(procs)
}

// Restart starts etcd or kube-apiserver again after Kill, in place: on the same ports, with the
// same data (EtcdDataDir) and certificates (CertDir), so that every client configuration of the
// control plane, the admin kubeconfig included, stays valid. It waits until the process answers
// its health check. Both directories must have been given to StartControlPlane.
//
// envtest supports this: its Start makes a new process state each time, keeps the ports it chose
// and the client CA it made, and reuses the serving certificates it finds in CertDir. Its peer port
// for etcd is chosen again, which a single member ignores.
func (c *ControlPlane) Restart(name string) error {
	if err := c.restartable(name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.Name == name && p.Alive() {
			return fmt.Errorf("restarting %s: %s still runs", name, p)
		}
	}
	start := c.env.ControlPlane.Etcd.Start
	if name == KubeAPIServer {
		start = c.env.ControlPlane.APIServer.Start
	}
	var err error
	if c.opts.LauncherDir != "" {
		err = withLaunchEnv(c.binDir, start)
	} else {
		err = start()
	}
	// What runs now, even on failure, so that Stop can check it.
	procs, listErr := Children(controlPlaneBinaries...)
	if listErr == nil {
		c.procs = procs
	}
	if err != nil {
		return fmt.Errorf("restarting %s: %w", name, err)
	}
	return listErr
}

// restartable checks that name is a process Kill and Restart know, and that its state is kept in
// directories of the caller's, which a restart finds again.
func (c *ControlPlane) restartable(name string) error {
	switch {
	case name != Etcd && name != KubeAPIServer:
		return fmt.Errorf("unknown control plane process %q: want %s or %s", name, Etcd, KubeAPIServer)
	case c.opts.EtcdDataDir == "" || c.opts.CertDir == "":
		return errors.New("restarting the control plane needs ControlPlaneOptions.EtcdDataDir and CertDir")
	}
	return nil
}

// Stop stops kube-apiserver and etcd, waits until they are gone, and removes their temporary
// directories. It kills what does not stop in time.
func (c *ControlPlane) Stop() error {
	var errs []error
	if err := c.env.Stop(); err != nil {
		errs = append(errs, err)
	}
	if err := KillAll(c.Processes()); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stopping etcd and kube-apiserver: %w", err)
	}
	return nil
}
