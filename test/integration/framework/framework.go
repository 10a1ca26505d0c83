package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// RepoRoot is the root of the repository, found from this file's location so that tests work from
// any package directory.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("framework: cannot find the source location")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// InCI reports whether the tests run in CI, where nothing may skip for a missing prerequisite.
func InCI() bool {
	return testenv.InCI()
}

// Require skips the test when err is a missing prerequisite (testenv.ErrMissingPrerequisite),
// or fails it under CI=true, where nothing may skip; any other error fails it.
func Require(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, testenv.ErrMissingPrerequisite) && !InCI():
		t.Skipf("skipping: %v", err)
	case errors.Is(err, testenv.ErrMissingPrerequisite):
		t.Fatalf("CI=true and %v", err)
	default:
		t.Fatal(err)
	}
}

// Environment is one control plane shared by the tests of a package.
type Environment struct {
	cp *testenv.ControlPlane
	// skip is why the package's tests skip; empty when the control plane runs.
	skip string
	// restartable keeps etcd's data and the API server's certificates in a directory of the
	// Environment's, and runs both through the launcher, so that tests can kill and restart them.
	restartable bool
}

// NewEnvironment returns an Environment that Run starts.
func NewEnvironment() *Environment {
	return &Environment{}
}

// NewRestartableEnvironment returns an Environment whose etcd and kube-apiserver tests may kill
// and start again in place (KillControlPlane, RestartControlPlane). They run through testenv's
// launcher, so that they die with the test binary even while a test restarts them: TestMain must
// call testenv.RunLauncher first.
func NewRestartableEnvironment() *Environment {
	return &Environment{restartable: true}
}

// Run starts the control plane, installs the CRDs and the admission policies, runs the package's
// tests and stops the control plane. It returns the exit code for os.Exit. Outside CI a missing
// prerequisite makes every test that asks for the control plane skip with the reason; in CI it
// fails the package.
func (e *Environment) Run(m *testing.M) int {
	if err := testenv.CheckControlPlane(RepoRoot()); err != nil {
		if InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: CI=true and %v\n", err)
			return 1
		}
		e.skip = err.Error()
		return m.Run()
	}
	opts := testenv.ControlPlaneOptions{Root: RepoRoot()}
	if e.restartable {
		// A short directory: the launcher's links and etcd's sockets live in it.
		dir, err := os.MkdirTemp("", "samplecrd-cp-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		opts.EtcdDataDir = filepath.Join(dir, "etcd")
		opts.CertDir = filepath.Join(dir, "certs")
		opts.LauncherDir = filepath.Join(dir, "launch")
		for _, d := range []string{opts.EtcdDataDir, opts.CertDir} {
			if err := os.Mkdir(d, 0o700); err != nil {
				fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
				return 1
			}
		}
	}
	cp, err := testenv.StartControlPlane(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	e.cp = cp
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// controlPlane returns the running control plane, or skips the test when it could not be started
// for a missing prerequisite outside CI.
func (e *Environment) controlPlane(t testing.TB) *testenv.ControlPlane {
	t.Helper()
	if e.skip != "" {
		t.Skipf("skipping: %s", e.skip)
	}
	if e.cp == nil {
		t.Fatal("framework: the control plane is not running; call env.Run from TestMain")
	}
	return e.cp
}

// Config returns a copy of the admin REST config of the control plane, with no client-side rate
// limit so that tests measure the server, or skips the test when the control plane could not be
// started for a missing prerequisite outside CI.
func (e *Environment) Config(t testing.TB) *rest.Config {
	t.Helper()
	cfg := e.controlPlane(t).Config()
	cfg.QPS = -1
	return cfg
}

// ControlPlane gives access to the running envtest environment, for tests that need its details
// (for example the API server's URL to start a process against it).
func (e *Environment) ControlPlane(t testing.TB) *envtest.Environment {
	t.Helper()
	return e.controlPlane(t).Environment()
}

// CreateNamespace creates a namespace with a generated name for one test, so that tests in a
// package do not see each other's objects. Without kube-controller-manager nothing would finish
// deleting it, so it is left with the control plane.
func CreateNamespace(t testing.TB, client kubernetes.Interface) string {
	t.Helper()
	return CreateAnnotatedNamespace(t, client, nil)
}

// CreateAnnotatedNamespace is CreateNamespace with annotations, such as
// samplecrdv1.AllowedCIDRsAnnotation.
func CreateAnnotatedNamespace(t testing.TB, client kubernetes.Interface, annotations map[string]string) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Annotations: annotations},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// KillControlPlane kills etcd or kube-apiserver (testenv.Etcd, testenv.KubeAPIServer) with
// SIGKILL and waits until it is gone. The Environment must be a NewRestartableEnvironment.
func (e *Environment) KillControlPlane(t testing.TB, name string) {
	t.Helper()
	if err := e.controlPlane(t).Kill(name); err != nil {
		t.Fatal(err)
	}
}

// RestartControlPlane starts etcd or kube-apiserver again after KillControlPlane, on the same
// ports, data and certificates, and waits until it is healthy: every configuration and kubeconfig
// of the Environment stays valid.
func (e *Environment) RestartControlPlane(t testing.TB, name string) {
	t.Helper()
	if err := e.controlPlane(t).Restart(name); err != nil {
		t.Fatal(err)
	}
}

// KubeClient returns a Kubernetes clientset for the control plane.
func (e *Environment) KubeClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(e.Config(t))
}
