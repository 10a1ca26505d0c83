// Package e2e tests the project the way a user runs it: the Makefile's local-up, run and local-down
// targets, and the built manager against the environment they start. Each test uses a state
// directory of its own (LOCAL_DIR), so it never touches a developer's .local.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/samplecrd/samplecrd-controller/internal/scrape"
	"github.com/samplecrd/samplecrd-controller/internal/syncbuf"
	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const (
	// The example the environment applies, from examples/example-network.yaml.
	exampleNamespace = "default"
	exampleName      = "example-network"
	exampleCIDR      = "192.168.0.0/16"
	// clusterName is the manager's default --cluster-name, the prefix of its OVN names.
	clusterName = "kubernetes"
	// podCountLabel is the podcount controller's default label.
	podCountLabel = "hopegi/pod-count"
	// controlPlaneLabel marks the control-plane node the environment creates.
	controlPlaneLabel = "node-role.kubernetes.io/control-plane"

	// upTimeout bounds make local-up and make run until the environment is up; kube-apiserver's
	// start takes most of it, and the first make builds bin/localenv.
	upTimeout = 5 * time.Minute
	// readyTimeout bounds how long the manager may take to make the example Ready and count pods.
	readyTimeout = 2 * time.Minute
	// stopTimeout bounds make local-down and the stop of make run.
	stopTimeout = 3 * time.Minute
)

// requirePrerequisites skips the test, or fails it under CI=true, when something the environment
// needs is missing. make local-up would build or install them, but in minutes and as root: 'make
// test' does it first, through 'make tools'.
func requirePrerequisites(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s is not in PATH", tool))
		}
	}
	if err := testenv.CheckControlPlane(framework.RepoRoot(), "etcd", "kube-apiserver", "kubectl"); err != nil {
		missing = append(missing, err.Error())
	}
	if err := testenv.CheckOVN(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) == 0 {
		return
	}
	if framework.InCI() {
		t.Fatalf("CI=true and a prerequisite is missing: %s", strings.Join(missing, "; "))
	}
	t.Skipf("skipping: %s", strings.Join(missing, "; "))
}

// makeTarget runs make TARGET LOCAL_DIR=dir in the repository and returns its combined output.
func makeTarget(ctx context.Context, target, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", framework.RepoRoot(), target, "LOCAL_DIR="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// readPids reads the processes the environment recorded in DIR/pids.
func readPids(t *testing.T, dir string) []testenv.Proc {
	t.Helper()
	procs, err := testenv.ReadProcs(filepath.Join(dir, "pids"))
	if err != nil || len(procs) == 0 {
		t.Fatalf("reading the processes the environment recorded: %v, %v", procs, err)
	}
	return procs
}

// checkRecorded fails unless every one of names was recorded and runs.
func checkRecorded(t *testing.T, procs []testenv.Proc, names ...string) {
	t.Helper()
	for _, name := range names {
		found := false
		for _, p := range procs {
			if p.Name == name {
				found = true
				if !p.Alive() {
					t.Errorf("%v was recorded but does not run", p)
				}
			}
		}
		if !found {
			t.Errorf("no %s among the recorded processes %v", name, procs)
		}
	}
}

// checkNothingLeft fails if any recorded process still runs, or if the environment's state (all
// but its logs) is still there.
func checkNothingLeft(t *testing.T, dir string, procs []testenv.Proc) {
	t.Helper()
	for _, p := range testenv.Running(procs) {
		t.Errorf("%v still runs after the environment stopped", p)
	}
	for _, name := range []string{"kubeconfig", "ovnnb.sock", "ovnnb.db", "etcd", "certs", "pids", "ready"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is still there after the environment stopped", filepath.Join(dir, name))
		}
	}
}

// clients reads the environment's kubeconfig.
func clients(t *testing.T, dir string) (kubernetes.Interface, clientset.Interface) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatalf("reading the environment's kubeconfig: %v", err)
	}
	cfg.QPS = -1
	return kubernetes.NewForConfigOrDie(rest.CopyConfig(cfg)), clientset.NewForConfigOrDie(cfg)
}

// waitFor polls cond until it holds, failing the test with what when it does not within timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, state := cond(ctx)
		last = state
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %v; last seen: %s", what, timeout, last)
	}
}

// checkSystemWorks waits for what a user looks at: the example Network Ready, its OVN logical
// switch with the example's subnet, and the control-plane node labelled with the number of pods.
func checkSystemWorks(t *testing.T, dir string) {
	t.Helper()
	kube, client := clients(t, dir)

	var network *samplecrdv1.Network
	waitFor(t, "the example Network turns Ready", readyTimeout, func(ctx context.Context) (bool, string) {
		n, err := client.SamplecrdV1().Networks(exampleNamespace).Get(ctx, exampleName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		network = n
		return meta.IsStatusConditionTrue(n.Status.Conditions, samplecrdv1.ConditionReady), fmt.Sprintf("conditions %+v", n.Status.Conditions)
	})

	wantSwitch := ovn.SwitchName(clusterName, exampleNamespace, exampleName)
	if b := network.Status.Backend; b == nil || b.Type != "ovn" || b.Name != wantSwitch {
		t.Errorf("status.backend = %+v; want the OVN logical switch %s", b, wantSwitch)
	}
	nbctl, err := exec.LookPath("ovn-nbctl")
	if err != nil {
		t.Fatalf("ovn-nbctl: %v", err)
	}
	db := "--db=unix:" + filepath.Join(dir, "ovnnb.sock")
	out, err := exec.Command(nbctl, db, "--timeout=20", "get", "Logical_Switch", wantSwitch, "other_config:subnet").CombinedOutput()
	if err != nil {
		t.Fatalf("ovn-nbctl get Logical_Switch %s: %v: %s", wantSwitch, err, out)
	}
	if got := strings.Trim(strings.TrimSpace(string(out)), `"`); got != exampleCIDR {
		t.Errorf("the logical switch %s has subnet %q; want %q", wantSwitch, got, exampleCIDR)
	}

	waitFor(t, "the control-plane node carries the pod count", readyTimeout, func(ctx context.Context) (bool, string) {
		pods, err := kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: controlPlaneLabel})
		if err != nil {
			return false, err.Error()
		}
		if len(pods.Items) == 0 || len(nodes.Items) == 0 {
			return false, fmt.Sprintf("%d pods, %d control-plane nodes: the environment should create both", len(pods.Items), len(nodes.Items))
		}
		want := strconv.Itoa(len(pods.Items))
		var states []string
		ok := true
		for _, n := range nodes.Items {
			got := n.Labels[podCountLabel]
			ok = ok && got == want
			states = append(states, fmt.Sprintf("node %s has %s=%q, want %q", n.Name, podCountLabel, got, want))
		}
		return ok, strings.Join(states, "; ")
	})

	waitFor(t, "the demo pods are attached to the example Network", readyTimeout, func(ctx context.Context) (bool, string) {
		pods, err := kube.CoreV1().Pods(exampleNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=demo"})
		if err != nil {
			return false, err.Error()
		}
		var states []string
		ok := len(pods.Items) > 0
		for _, p := range pods.Items {
			a := p.Annotations
			attached := a[samplecrdv1.AllocatedAnnotation] == "true" && a[samplecrdv1.AllocatedNetworkAnnotation] == exampleName &&
				a[samplecrdv1.LogicalSwitchAnnotation] == wantSwitch && a[samplecrdv1.AllocatedIPAnnotation] != ""
			ok = ok && attached
			states = append(states, fmt.Sprintf("pod %s: %v", p.Name, a))
		}
		return ok, strings.Join(states, "; ")
	})
	out, err = exec.Command(nbctl, db, "--timeout=20", "--columns=name", "find", "Logical_Switch_Port", "external_ids:"+ovn.PodNamespaceKey+"="+exampleNamespace).CombinedOutput()
	if err != nil {
		t.Fatalf("ovn-nbctl find Logical_Switch_Port: %v: %s", err, out)
	}
	if got := strings.Count(string(out), "name "); got != 3 {
		t.Errorf("%d pod ports in OVN, want one for each of the 3 demo pods:\n%s", got, out)
	}
}

// kubectl runs the kubectl that hack/build-control-plane.sh builds, against the environment in dir.
func kubectl(ctx context.Context, dir string, args ...string) (string, error) {
	bin := filepath.Join(testenv.ControlPlaneDir(framework.RepoRoot()), "kubectl")
	out, err := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", filepath.Join(dir, "kubeconfig")}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// checkKubectl looks at the example Network as the printed instructions say: kubectl get shows it
// Ready with its CIDR and its used and available addresses, and kubectl describe shows the event of its sync.
func checkKubectl(t *testing.T, dir string) {
	t.Helper()
	// NAME CIDR GATEWAY READY USED AVAILABLE AGE: the three demo pods are attached, and the
	// status counts them within about a second.
	waitFor(t, "kubectl get networks shows the example Ready with its 3 pods", readyTimeout, func(ctx context.Context) (bool, string) {
		out, err := kubectl(ctx, dir, "get", "networks")
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 7 && f[0] == exampleName {
				return f[1] == exampleCIDR && f[3] == "True" && f[4] == "3" && f[5] == "65530", out
			}
		}
		return false, out
	})
	// Events are written in the background.
	waitFor(t, "kubectl describe network shows the Synced event", readyTimeout, func(ctx context.Context) (bool, string) {
		out, err := kubectl(ctx, dir, "describe", "network", exampleName)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(out, samplecrdv1.ReasonSynced) && strings.Contains(out, network.MessageSynced), out
	})
}

// TestLocalUpAndDown starts the environment with make local-up, runs the built manager against it
// as the printed instructions say, checks that the system works, and stops it with make
// local-down: nothing the environment started may be left.
func TestLocalUpAndDown(t *testing.T) {
	requirePrerequisites(t)
	dir := t.TempDir()
	ctx := context.Background()
	down := sync.OnceValues(func() (string, error) {
		ctx, cancel := context.WithTimeout(ctx, stopTimeout)
		defer cancel()
		return makeTarget(ctx, "local-down", dir)
	})
	t.Cleanup(func() {
		if out, err := down(); err != nil {
			t.Errorf("make local-down: %v\n%s", err, out)
		}
		if t.Failed() {
			for _, name := range []string{"localenv.log", "kube-apiserver.log", "ovsdb-server.log"} {
				if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					t.Logf("%s:\n%s", name, lastLines(string(data), 40))
				}
			}
		}
	})

	bin, err := framework.BuildManager(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	upCtx, cancel := context.WithTimeout(ctx, upTimeout)
	out, err := makeTarget(upCtx, "local-up", dir)
	cancel()
	if err != nil {
		t.Fatalf("make local-up: %v\n%s", err, out)
	}
	t.Logf("make local-up:\n%s", out)
	procs := readPids(t, dir)
	checkRecorded(t, procs, "localenv", "etcd", "kube-apiserver", "ovsdb-server")

	// A second start must say that one runs, and leave it alone.
	out, err = makeTarget(ctx, "local-up", dir)
	if err == nil || !strings.Contains(out, "already running") {
		t.Errorf("a second make local-up: err = %v, output:\n%s\nwant a failure saying an environment is already running", err, out)
	}
	checkRecorded(t, procs, "localenv", "etcd", "kube-apiserver", "ovsdb-server")

	manager := framework.StartProcess(t, "samplecrd-controller", bin,
		"--kubeconfig", filepath.Join(dir, "kubeconfig"),
		"--ovn-nb", "unix:"+filepath.Join(dir, "ovnnb.sock"),
		"--leader-elect=false",
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
	)
	checkSystemWorks(t, dir)
	checkKubectl(t, dir)

	manager.Signal(t, syscall.SIGINT)
	if code := manager.Wait(t, time.Minute); code != 0 {
		t.Errorf("the manager exited with status %d after SIGINT; want 0", code)
	}
	out, err = down()
	if err != nil {
		t.Fatalf("make local-down: %v\n%s", err, out)
	}
	t.Logf("make local-down:\n%s", out)
	checkNothingLeft(t, dir, procs)
}

// makeRun is a make run started by a test, in a process group of its own like a shell's job, so
// that the test can signal it as a whole as a terminal does.
type makeRun struct {
	cmd *exec.Cmd
	// output is what make run printed, when the test does not read it itself.
	output syncbuf.Buffer
	// exited is closed when make has exited, with err from its Wait.
	exited chan struct{}
	err    error
}

// startMakeRun starts make run LOCAL_DIR=dir with its output to out, or to m.output when out is
// nil. The test's cleanup kills what is left and runs make local-down.
func startMakeRun(t *testing.T, dir string, out io.Writer) *makeRun {
	t.Helper()
	m := &makeRun{exited: make(chan struct{})}
	if out == nil {
		out = &m.output
	}
	m.cmd = exec.Command("make", "--no-print-directory", "-C", framework.RepoRoot(), "run", "LOCAL_DIR="+dir)
	m.cmd.Stdout, m.cmd.Stderr = out, out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting make run: %v", err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-m.exited
		}
		// Whatever a failed run left, make local-down stops.
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if out, err := makeTarget(ctx, "local-down", dir); err != nil {
			t.Errorf("make local-down: %v\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("make run:\n%s", lastLines(m.output.String(), 80))
		}
	})
	return m
}

// running fails the test if make run has exited.
func (m *makeRun) running(t *testing.T) {
	t.Helper()
	select {
	case <-m.exited:
		t.Fatalf("make run exited: %v", m.err)
	default:
	}
}

// interrupt presses Ctrl-C: SIGINT to the process group, make and all.
func (m *makeRun) interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-m.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatalf("sending SIGINT to make run: %v", err)
	}
}

// wait waits for make to exit and returns its Wait error.
func (m *makeRun) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-m.exited:
		return m.err
	case <-time.After(timeout):
		t.Fatalf("make run did not exit within %v", timeout)
		return nil
	}
}

// checkInterrupted fails unless make exited as after a Ctrl-C that its command handled. make itself
// got the SIGINT: it waits for its command, then dies of the signal. Had the command failed, make
// would have said so and exited with status 2.
func checkInterrupted(t *testing.T, err error) {
	t.Helper()
	if err != nil && !killedBy(err, syscall.SIGINT) {
		t.Errorf("make run exited with %v after SIGINT; want status 0 or the signal", err)
	}
}

// waitAllGone waits until none of procs runs; a process that dies with its parent is gone at once,
// but the kernel takes its time.
func waitAllGone(t *testing.T, what string, procs []testenv.Proc, timeout time.Duration) {
	t.Helper()
	waitFor(t, what, timeout, func(context.Context) (bool, string) {
		left := testenv.Running(procs)
		return len(left) == 0, fmt.Sprintf("still running: %v", left)
	})
}

// TestMakeRun runs make run as a user does in a terminal, waits for the system to work, and presses
// Ctrl-C: SIGINT to the terminal's foreground process group, make and all. It must stop everything
// it started.
func TestMakeRun(t *testing.T) {
	requirePrerequisites(t)
	dir := t.TempDir()
	m := startMakeRun(t, dir, nil)

	waitFor(t, "make run writes the kubeconfig", upTimeout, func(context.Context) (bool, string) {
		m.running(t)
		_, err := os.Stat(filepath.Join(dir, "kubeconfig"))
		return err == nil, fmt.Sprint(err)
	})
	checkSystemWorks(t, dir)
	checkPrintedMetrics(t, m.output.String())
	procs := readPids(t, dir)
	checkRecorded(t, procs, "localenv", "etcd", "kube-apiserver", "ovsdb-server", "samplecrd-controller")

	m.interrupt(t)
	checkInterrupted(t, m.wait(t, stopTimeout))
	if out := m.output.String(); !strings.Contains(out, "Stopped: nothing is left running") {
		t.Errorf("make run did not say that it stopped everything; its output ends with:\n%s", lastLines(out, 20))
	}
	checkNothingLeft(t, dir, procs)
}

// checkPrintedMetrics reads the metrics URL that make run printed, as its user would with curl:
// the manager's metrics, over plain HTTP on loopback, without a token.
func checkPrintedMetrics(t *testing.T, output string) {
	t.Helper()
	_, rest, ok := strings.Cut(output, "metrics, probes: ")
	url, _, _ := strings.Cut(rest, ",")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("make run printed no loopback metrics URL:\n%s", lastLines(output, 40))
	}
	samples, err := scrape.Get(url)
	if err != nil {
		t.Fatalf("the printed metrics URL: %v", err)
	}
	if len(samples.Matching("samplecrd_leader", nil)) == 0 {
		t.Errorf("%s has no samplecrd_leader", url)
	}
}

// TestMakeRunWithoutOutput runs make run with its output through a pipe, as in
// 'make run 2>&1 | tee run.log', closes the pipe as tee does when it is stopped, and presses
// Ctrl-C. Writing to the closed pipe must not kill localenv before it has stopped everything.
func TestMakeRunWithoutOutput(t *testing.T) {
	requirePrerequisites(t)
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	m := startMakeRun(t, dir, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&m.output, r)
	}()

	waitFor(t, "make run reports the example Network Ready", upTimeout+readyTimeout, func(context.Context) (bool, string) {
		m.running(t)
		out := m.output.String()
		return strings.Contains(out, "is Ready"), lastLines(out, 1)
	})
	procs := readPids(t, dir)
	checkRecorded(t, procs, "localenv", "etcd", "kube-apiserver", "ovsdb-server", "samplecrd-controller")

	// Nobody reads any more: every write of make run fails from now on.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	<-copied
	m.interrupt(t)
	checkInterrupted(t, m.wait(t, stopTimeout))
	waitAllGone(t, "every process of the environment is gone", procs, 10*time.Second)
	checkNothingLeft(t, dir, procs)
	// The logs stay.
	for _, name := range []string{"etcd.log", "kube-apiserver.log", "ovsdb-server.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("the log %s is gone: %v", name, err)
		}
	}
}

// TestLocalenvKilled kills localenv of a make run with SIGKILL, which it cannot handle: every
// process it started must die with it, and make local-down must then remove what is left.
func TestLocalenvKilled(t *testing.T) {
	requirePrerequisites(t)
	dir := t.TempDir()
	m := startMakeRun(t, dir, nil)

	var procs []testenv.Proc
	waitFor(t, "make run starts the manager", upTimeout, func(context.Context) (bool, string) {
		m.running(t)
		var err error
		procs, err = testenv.ReadProcs(filepath.Join(dir, "pids"))
		return slices.ContainsFunc(procs, func(p testenv.Proc) bool { return p.Name == "samplecrd-controller" }), fmt.Sprintf("recorded %v, %v", procs, err)
	})
	checkRecorded(t, procs, "localenv", "etcd", "kube-apiserver", "ovsdb-server", "samplecrd-controller")

	localenv := procs[slices.IndexFunc(procs, func(p testenv.Proc) bool { return p.Name == "localenv" })]
	if err := localenv.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitAllGone(t, "every process of the environment dies with localenv", procs, 5*time.Second)
	if err := m.wait(t, stopTimeout); err == nil {
		t.Error("make run exited with status 0 after its command was killed")
	}
	// Nothing could remove the state; the next make local-down does.
	if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err != nil {
		t.Errorf("the kubeconfig of the killed environment is gone before make local-down: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	out, err := makeTarget(ctx, "local-down", dir)
	if err != nil || !strings.Contains(out, "Nothing runs in") {
		t.Errorf("make local-down after the kill: %v, output:\n%s\nwant it to say that nothing runs", err, out)
	}
	checkNothingLeft(t, dir, procs)
}

// killedBy reports whether err is that of a process killed by sig.
func killedBy(err error, sig syscall.Signal) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	status, ok := exit.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == sig
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
