package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/samplecrd/samplecrd-controller/internal/syncbuf"
	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// BuildManager builds the samplecrd-controller binary, with the race detector, into dir and returns
// its path. Test packages that run the manager as a process call it once, from TestMain.
func BuildManager(dir string) (string, error) {
	return BuildManagerRace(dir, true)
}

// RunWithManager is the TestMain of a package that runs the manager binary: it builds it (with
// the race detector when race is true) into a temporary directory, sets *bin to its path, runs
// the package's tests in env, removes the directory and returns the exit code.
func RunWithManager(m *testing.M, env *Environment, race bool, bin *string) int {
	dir, err := os.MkdirTemp("", "samplecrd-manager-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = BuildManagerRace(dir, race); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return env.Run(m)
}

// BuildManagerRace is BuildManager with the race detector only when race is true: long runs
// build without it, which makes the manager several times faster.
func BuildManagerRace(dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "samplecrd-controller")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/samplecrd-controller")...)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the manager: %w\n%s", err, out)
	}
	return bin, nil
}

// Kubeconfig writes a kubeconfig for an administrator of the control plane into a temporary file
// and returns its path, for processes started by the test.
func (e *Environment) Kubeconfig(t testing.TB) string {
	t.Helper()
	return e.KubeconfigFor(t, testenv.Admin)
}

// KubeconfigFor is Kubeconfig for a user of the given name and groups, authenticated by a client
// certificate; RBAC decides what it may do. A user named system:serviceaccount:NS:NAME is matched
// by RBAC subjects of kind ServiceAccount, so manifests can be tested unchanged.
func (e *Environment) KubeconfigFor(t testing.TB, u envtest.User) string {
	t.Helper()
	kc, err := e.controlPlane(t).Kubeconfig(u)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Process is a program the test started, with its output captured.
type Process struct {
	// Name tells processes apart in failure messages.
	Name   string
	cmd    *exec.Cmd
	stdout syncbuf.Buffer
	stderr syncbuf.Buffer
	done   chan struct{}
	err    error
}

// StartProcess starts bin with args, as a child that dies with the test (testenv.StartCommand).
// Its output goes to buffers (and, on failure, the test log); the test's cleanup kills it if it
// still runs.
func StartProcess(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	p, err := StartProcessE(t, name, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartProcessE is StartProcess that returns the failure to start instead of failing the test, so
// that it may be called from any goroutine (a supervisor that restarts a process, say).
func StartProcessE(t testing.TB, name, bin string, args ...string) (*Process, error) {
	p := &Process{Name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := testenv.StartCommand(p.cmd); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Signal(t, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s stdout:\n%s", name, p.stdout.String())
			t.Logf("%s stderr:\n%s", name, lastLines(p.stderr.String(), 200))
		}
	})
	return p, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stdout returns what the process printed on standard output so far.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr returns what the process printed on standard error (its log) so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Signal sends sig to the process, unless it has exited.
func (p *Process) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !strings.Contains(err.Error(), "process already finished") {
		t.Errorf("signalling %s: %v", p.Name, err)
	}
}

// Wait waits at most timeout for the process to exit and returns its exit code, failing the test
// when it does not exit in time.
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", p.Name, timeout)
	}
	if p.err == nil {
		return 0
	}
	if exit, ok := p.err.(*exec.ExitError); ok {
		return exit.ExitCode()
	}
	t.Fatalf("%s: %v", p.Name, p.err)
	return -1
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is the exit code of a process that has exited: -1 when a signal ended it, and 0 while
// it runs.
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
	default:
		return 0
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitForOutput waits until the process's standard output contains s.
func (p *Process) WaitForOutput(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	if err := poll(timeout, func() bool { return strings.Contains(p.Stdout(), s) }); err != nil {
		t.Fatalf("%s did not print %q within %v; stdout:\n%s", p.Name, s, timeout, p.Stdout())
	}
}

// LogEntries parses the process's JSON log (--logging-format=json) and returns the entries whose
// "msg" is msg.
func (p *Process) LogEntries(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.Stderr(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == msg {
			out = append(out, entry)
		}
	}
	return out
}

// ServingAddress waits until the process logs that it serves server ("metrics" or "health probes")
// and returns the address.
func (p *Process) ServingAddress(t testing.TB, server string, timeout time.Duration) string {
	t.Helper()
	var addr string
	err := poll(timeout, func() bool {
		for _, e := range p.LogEntries("Serving") {
			if e["server"] == server {
				addr, _ = e["address"].(string)
				return true
			}
		}
		return p.Exited()
	})
	if err != nil || addr == "" {
		t.Fatalf("%s did not log its %s address within %v; log:\n%s", p.Name, server, timeout, lastLines(p.Stderr(), 50))
	}
	return addr
}

func poll(timeout time.Duration, cond func() bool) error {
	return wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond(), nil })
}
