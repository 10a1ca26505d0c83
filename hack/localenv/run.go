package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// managerStopTimeout is how long a stop waits for the manager after SIGINT: its own graceful stop
// is bounded by --shutdown-timeout (30 s by default), then it releases its lease.
const managerStopTimeout = time.Minute

// readyReportTimeout is how long run watches the example Network for Ready before it says where to
// look instead.
const readyReportTimeout = 2 * time.Minute

// exitInterrupted is the exit status after a second signal, which kills everything at once.
const exitInterrupted = 130

// interruptible returns a context cancelled by the first SIGINT, SIGTERM or SIGHUP, or when the
// output has gone away (see console). A second signal runs onSecond, which must not return.
func interruptible(onSecond func()) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		select {
		case <-sigs:
			fmt.Fprintln(term.Out)
			step("Stopping everything (a second Ctrl-C kills it all at once)")
			cancel()
		case <-term.Gone():
			// Nobody reads any more. The Ctrl-C that usually follows asks for what is under way:
			// only a second one kills everything at once.
			cancel()
			<-sigs
		}
		<-sigs
		onSecond()
	}()
	return ctx, cancel
}

// killEverything kills at once every process recorded in dir and every etcd, kube-apiserver and
// ovsdb-server this process started, removes the state but the logs, and exits: the second Ctrl-C.
func killEverything(dir string) {
	step("Killing every process at once")
	procs, _ := readPids(dir)
	own, _ := testenv.Children("etcd", "kube-apiserver", "ovsdb-server", "samplecrd-controller")
	var others []testenv.Proc
	for _, p := range append(procs, own...) {
		if p.PID != os.Getpid() {
			others = append(others, p)
		}
	}
	if err := testenv.KillAll(others); err != nil {
		fmt.Fprintf(term.Err, "localenv: %v\n", err)
	} else if err := (&Env{dir: dir}).removeState(); err != nil {
		fmt.Fprintf(term.Err, "localenv: %v\n", err)
	}
	os.Exit(exitInterrupted)
}

// cmdRun is 'make run'.
func cmdRun(dir string, managerArgs []string) int {
	start := time.Now()
	lockf, ok := lockOrSay(dir, "run")
	if !ok {
		return 1
	}
	defer lockf.Close()
	if err := writeOwner(lockf, os.Getpid()); err != nil {
		fmt.Fprintf(term.Err, "localenv run: %v\n", err)
		return 1
	}
	ctx, cancel := interruptible(func() { killEverything(dir) })
	defer cancel()

	fail := func(err error) int {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintf(term.Err, "localenv run: %v\n", err)
		return 1
	}
	if err := ensureTools(ctx); err != nil {
		return fail(err)
	}
	bin, err := buildManager(ctx)
	if err != nil {
		return fail(err)
	}
	env, err := newEnv(dir)
	if err != nil {
		return fail(err)
	}
	if err := env.Start(ctx); err != nil {
		code := fail(err)
		return max(code, stopEnv(env, dir))
	}

	// Watch the environment's processes only: the manager's exit is seen directly.
	failed := env.Failed(ctx)

	metricsAddr, err := freeLoopbackAddr()
	if err != nil {
		return max(fail(err), stopEnv(env, dir))
	}
	probeAddr, err := freeLoopbackAddr()
	if err != nil {
		return max(fail(err), stopEnv(env, dir))
	}
	args := append([]string{
		"--kubeconfig", env.Kubeconfig(),
		"--ovn-nb", env.OVNNorthbound(),
		"--metrics-bind-address", metricsAddr,
		// Plain HTTP on loopback, so that the metrics URL below works as printed, with curl or a
		// browser; in a cluster they are served over HTTPS to authorized clients only.
		"--metrics-secure=false",
		"--health-probe-bind-address", probeAddr,
		// Verbosity 2 logs each change the controllers make and each event they record.
		"-v=2",
	}, managerArgs...)
	printBanner(dir, env, metricsAddr, probeAddr)

	cmd := exec.Command(bin, args...)
	// Through this program, which outlives its output (see console).
	cmd.Stdout, cmd.Stderr = term.Out, term.Err
	// Its own process group, so that Ctrl-C reaches only this program, which forwards exactly one
	// SIGINT: the manager exits at once on a second one. It dies with this program.
	if err := testenv.StartCommand(cmd); err != nil {
		return max(fail(fmt.Errorf("starting the manager: %w", err)), stopEnv(env, dir))
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	if p, err := testenv.Identify("samplecrd-controller", cmd.Process.Pid); err == nil {
		_ = env.record(p)
	}
	go reportReady(ctx, env, start)

	code := 0
	select {
	case <-ctx.Done():
		stopManager(cmd, exited)
	case <-exited:
		fmt.Fprintln(term.Out)
		step(fmt.Sprintf("The manager exited (%s); stopping the environment", cmd.ProcessState))
		code = max(cmd.ProcessState.ExitCode(), 1)
	case msg := <-failed:
		fmt.Fprintln(term.Out)
		step(msg + "; stopping everything")
		stopManager(cmd, exited)
		code = 1
	}
	cancel()
	return max(code, stopEnv(env, dir))
}

// stopManager sends SIGINT to the manager and waits for it to exit, killing it if it takes too long.
func stopManager(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(managerStopTimeout):
		fmt.Fprintf(term.Err, "localenv: the manager did not stop within %s of SIGINT; killing it\n", managerStopTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// stopEnv stops the environment and says so; it returns the exit status.
func stopEnv(env *Env, dir string) int {
	step("Stopping ovsdb-server, kube-apiserver and etcd")
	if err := env.Stop(); err != nil {
		fmt.Fprintf(term.Err, "localenv: %v\n", err)
		return 1
	}
	step(fmt.Sprintf("Stopped: nothing is left running. The logs are in %s/.", dir))
	return 0
}

// freeLoopbackAddr returns a loopback address with a port that is free now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// kubectl is the kubectl that hack/build-control-plane.sh builds beside kube-apiserver.
func kubectl() string {
	return displayPath(filepath.Join(testenv.ControlPlaneDir("."), "kubectl"))
}

// tryCommands are the three things to try, as printed by run and up.
func tryCommands(env *Env) string {
	var b strings.Builder
	fmt.Fprintf(&b, "      %s --kubeconfig %s get networks\n", kubectl(), env.Kubeconfig())
	fmt.Fprintf(&b, "      %s --kubeconfig %s describe network example-network\n", kubectl(), env.Kubeconfig())
	fmt.Fprintf(&b, "      ovn-nbctl --db=%s show\n", env.OVNNorthbound())
	return b.String()
}

func printBanner(dir string, env *Env, metricsAddr, probeAddr string) {
	fmt.Fprintf(term.Out, `
==> Starting samplecrd-controller with every controller. Ctrl-C stops it and everything above.

    kubeconfig:      %s
    OVN northbound:  %s
    metrics, probes: http://%s/metrics, http://%s/readyz
    logs:            %s/ (the manager logs here, below)

    From another terminal, in this directory, try:
%s
`, env.Kubeconfig(), env.OVNNorthbound(), metricsAddr, probeAddr, dir, tryCommands(env))
}

// reportReady waits for the example Network to be Ready and says so, with the time since start.
func reportReady(ctx context.Context, env *Env, start time.Time) {
	network, err := readNetwork(exampleFile)
	if err != nil {
		return
	}
	client, err := clientset.NewForConfig(env.Config())
	if err != nil {
		return
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, readyReportTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := client.SamplecrdV1().Networks(network.Namespace).Get(ctx, network.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return meta.IsStatusConditionTrue(got.Status.Conditions, samplecrdv1.ConditionReady), nil
	})
	switch {
	case err == nil:
		step(fmt.Sprintf("Network %s/%s is Ready, %.1f s after start. Try the commands above from another terminal.",
			network.Namespace, network.Name, time.Since(start).Seconds()))
	case ctx.Err() == nil:
		step(fmt.Sprintf("Network %s/%s is not Ready after %s: see the manager's log above and its events (%s --kubeconfig %s describe network %s).",
			network.Namespace, network.Name, readyReportTimeout, kubectl(), env.Kubeconfig(), network.Name))
	}
}
