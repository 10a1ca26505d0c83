package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
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

// ControlPlaneDir is where hack/build-control-plane.sh puts kube-apiserver and etcd.
func ControlPlaneDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "bin", "control-plane")
}

// CRDDir holds the project's generated CustomResourceDefinitions.
func CRDDir() string {
	return filepath.Join(RepoRoot(), "config", "crd", "bases")
}

// InCI reports whether the tests run in CI, where nothing may skip for a missing prerequisite.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// ErrMissingPrerequisite marks an error that a test may turn into a skip outside CI.
var ErrMissingPrerequisite = errors.New("missing prerequisite")

// CheckControlPlaneBinaries returns an error wrapping ErrMissingPrerequisite when the control plane
// has not been built.
func CheckControlPlaneBinaries() error {
	for _, name := range []string{"kube-apiserver", "etcd"} {
		path := filepath.Join(ControlPlaneDir(), name)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w: %s not found (run 'make tools' to build the control plane): %v", ErrMissingPrerequisite, path, err)
		}
	}
	return nil
}

// Environment is one control plane shared by the tests of a package.
type Environment struct {
	env    *envtest.Environment
	config *rest.Config
	// skip is why the package's tests skip; empty when the control plane runs.
	skip string
}

// NewEnvironment returns an Environment that Run starts.
func NewEnvironment() *Environment {
	return &Environment{}
}

// Run starts the control plane, installs the CRDs, runs the package's tests and stops the control
// plane. It returns the exit code for os.Exit. Outside CI a missing prerequisite makes every test
// that asks for the control plane skip with the reason; in CI it fails the package.
func (e *Environment) Run(m *testing.M) int {
	if err := CheckControlPlaneBinaries(); err != nil {
		if InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: CI=true and %v\n", err)
			return 1
		}
		e.skip = err.Error()
		return m.Run()
	}
	e.env = &envtest.Environment{
		BinaryAssetsDirectory:    ControlPlaneDir(),
		CRDDirectoryPaths:        []string{CRDDir()},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := e.env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the control plane: %v\n", err)
		_ = e.env.Stop()
		return 1
	}
	e.config = cfg
	code := m.Run()
	if err := e.env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Config returns a copy of the admin REST config of the control plane, with no client-side rate
// limit so that tests measure the server, or skips the test when the control plane could not be
// started for a missing prerequisite outside CI.
func (e *Environment) Config(t testing.TB) *rest.Config {
	t.Helper()
	if e.skip != "" {
		t.Skipf("skipping: %s", e.skip)
	}
	if e.config == nil {
		t.Fatal("framework: the control plane is not running; call env.Run from TestMain")
	}
	cfg := rest.CopyConfig(e.config)
	cfg.QPS = -1
	return cfg
}

// ControlPlane gives access to the running envtest environment, for tests that need its details
// (for example the API server's URL to start a process against it).
func (e *Environment) ControlPlane(t testing.TB) *envtest.Environment {
	t.Helper()
	e.Config(t)
	return e.env
}

// CreateNamespace creates a namespace with a generated name for one test, so that tests in a
// package do not see each other's objects. Without kube-controller-manager nothing would finish
// deleting it, so it is left with the control plane.
func CreateNamespace(t testing.TB, client kubernetes.Interface) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// KubeClient returns a Kubernetes clientset for the control plane.
func (e *Environment) KubeClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(e.Config(t))
}
