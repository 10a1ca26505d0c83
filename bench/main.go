// Command bench measures the samplecrd-controller manager on a local control plane (kube-apiserver
// and etcd) and ovsdb-server: Network throughput and latency, restart cost, memory, the podcount
// controller's API writes, leader failover and the podnetwork controller's pod attachment, each
// next to a baseline measured in the same run and to the project's target. `make bench` runs it;
// it prints a table and writes it as Markdown and JSON under bench/results/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// config holds the flags.
type config struct {
	networks               int
	scenarios              []string
	out                    string
	workers                int
	steadyRate             float64
	steadyDuration         time.Duration
	steadyBaselineDuration time.Duration
	restartSettle          time.Duration
	pods                   int
	memoryNetworks         int
	podcountWindow         time.Duration
	labelProbes            int
	failoverTrials         int
	leaseDuration          time.Duration
	renewDeadline          time.Duration
	retryPeriod            time.Duration
	attachPods             int
	attachNetworks         int
	managerArgs            []string
	profile                bool
}

// scenario is one measurement of the report.
type scenario struct {
	name string
	run  func(ctx context.Context, b *bench) error
}

// scenarios are run in this order; later ones reuse what earlier ones created.
var scenarios = []scenario{
	{"burst", runBurst},
	{"steady", runSteady},
	{"restart", runRestart},
	{"memory", runMemory},
	{"podcount", runPodcount},
	{"failover", runFailover},
	{"pods", runPods},
}

func main() {
	// Before anything else: this program is also the launcher of its etcd and kube-apiserver.
	testenv.RunLauncher()
	if len(os.Args) > 1 && os.Args[1] == podCacheCommand {
		os.Exit(podCacheMain(os.Args[2:]))
	}
	os.Exit(benchMain())
}

func benchMain() int {
	var c config
	var scenarioList, managerArgs string
	flag.IntVar(&c.networks, "networks", 2000, "Networks created at once by the burst scenario (and Ready when the manager restarts).")
	flag.StringVar(&scenarioList, "scenarios", "burst,steady,restart,memory,podcount,failover,pods", "Comma-separated scenarios to run, in any subset.")
	flag.StringVar(&c.out, "out", "bench/results", "Directory for the Markdown and JSON results.")
	flag.IntVar(&c.workers, "workers", 32, "Concurrent requests of the bench's clients.")
	flag.Float64Var(&c.steadyRate, "steady-rate", 50, "Networks created per second in the steady scenario.")
	flag.DurationVar(&c.steadyDuration, "steady-duration", 60*time.Second, "How long the steady scenario creates Networks.")
	flag.DurationVar(&c.steadyBaselineDuration, "steady-baseline-duration", 20*time.Second, "How long the steady scenario's baseline creates Networks, at the same rate.")
	flag.DurationVar(&c.restartSettle, "restart-settle", 5*time.Second, "How long writes are still counted after a restarted manager has checked every Network.")
	flag.IntVar(&c.pods, "pods", 20000, "Pods in the memory and podcount scenarios.")
	flag.IntVar(&c.memoryNetworks, "memory-networks", 10000, "Networks in the memory scenario.")
	flag.DurationVar(&c.podcountWindow, "podcount-window", time.Minute, "How long the podcount scenario counts writes in each event mode.")
	flag.IntVar(&c.labelProbes, "label-probes", 5, "Pods added one at a time to time the podcount label.")
	flag.IntVar(&c.failoverTrials, "failover-trials", 3, "Failovers after each of SIGTERM and SIGKILL.")
	le := app.NewOptions().LeaderElection
	flag.DurationVar(&c.leaseDuration, "lease-duration", le.LeaseDuration, "--leader-elect-lease-duration in the failover scenario (default: the manager's).")
	flag.DurationVar(&c.renewDeadline, "renew-deadline", le.RenewDeadline, "--leader-elect-renew-deadline in the failover scenario (default: the manager's).")
	flag.DurationVar(&c.retryPeriod, "retry-period", le.RetryPeriod, "--leader-elect-retry-period in the failover scenario (default: the manager's).")
	flag.IntVar(&c.attachPods, "attach-pods", 10000, "Pods created at once by the pods scenario, each attached to a Network.")
	flag.IntVar(&c.attachNetworks, "attach-networks", 100, "Networks of the pods scenario; its pods are spread evenly over them.")
	flag.StringVar(&managerArgs, "manager-args", "", "Extra flags for every manager, space-separated (e.g. \"--kube-api-qps=400 --network-workers=16\").")
	flag.BoolVar(&c.profile, "profile", false, "Serve pprof from the managers and write their CPU profiles (burst, steady, pods) and heap profiles (memory, pods) into -out.")
	flag.Parse()
	c.scenarios = strings.Split(scenarioList, ",")
	for _, s := range c.scenarios {
		if !slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.name == s }) {
			fmt.Fprintf(os.Stderr, "bench: unknown scenario %q\n", s)
			return 2
		}
	}
	c.managerArgs = strings.Fields(managerArgs)
	// client-go logs through klog (leader election of the failover baseline, for one); the
	// bench's own progress is enough.
	klog.SetLogger(logr.Discard())

	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	rep := &report{Started: time.Now(), Machine: machine(), Commit: commit(root), Flags: map[string]string{}}
	flag.VisitAll(func(f *flag.Flag) { rep.Flags[f.Name] = f.Value.String() })
	b, err := newBench(ctx, root, c, rep)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	for _, sc := range scenarios {
		if !slices.Contains(c.scenarios, sc.name) {
			continue
		}
		start := time.Now()
		logf("scenario %s", sc.name)
		if err := sc.run(ctx, b); err != nil {
			rep.Errors = append(rep.Errors, note{Scenario: sc.name, Text: err.Error()})
			logf("scenario %s failed: %v", sc.name, err)
			if ctx.Err() != nil {
				break
			}
		}
		logf("scenario %s took %s", sc.name, time.Since(start).Round(time.Second))
	}
	rep.Duration = time.Since(rep.Started).Seconds()
	fmt.Println()
	rep.writeText(os.Stdout)
	path, err := rep.save(outDir(root, c.out))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the results:", err)
		return 1
	}
	fmt.Printf("Written to %s and .json\n", path)
	if len(rep.Errors) > 0 {
		return 1
	}
	return 0
}

// bench is the state the scenarios share.
type bench struct {
	cfg  config
	env  *env
	rep  *report
	kube kubernetes.Interface
	// kubeProto talks protobuf, for pods.
	kubeProto kubernetes.Interface
	client    clientset.Interface
	// networks watches the Networks the controller reconciles.
	networks *networkTracker
	// switches watches the logical switches in OVN.
	switches *switchTracker
	// mgr is the manager of the scenarios that run one; nil when none runs.
	mgr *manager
	// mgrArgs are the flags mgr was started with besides the defaults, space-separated.
	mgrArgs string
	// emptyRSS is the peak RSS of a manager that started with no Networks.
	emptyRSS uint64
	// plan is the controller's writes per Network, as measured by the burst scenario.
	plan writePlan
	// nextNetwork numbers Networks across scenarios, so that their CIDRs never overlap.
	nextNetwork int
}

func newBench(ctx context.Context, root string, c config, rep *report) (*bench, error) {
	logf("starting kube-apiserver, etcd and ovsdb-server")
	e, err := startEnv(ctx, root)
	b := &bench{cfg: c, env: e, rep: rep}
	if err != nil {
		return b, err
	}
	if b.kube, err = kubernetes.NewForConfig(e.cfg); err != nil {
		return b, err
	}
	proto := *e.cfg
	proto.ContentType = "application/vnd.kubernetes.protobuf"
	if b.kubeProto, err = kubernetes.NewForConfig(&proto); err != nil {
		return b, err
	}
	if b.client, err = clientset.NewForConfig(e.cfg); err != nil {
		return b, err
	}
	for _, ns := range []string{nsNetworks, nsBaseline, nsPods} {
		if err := createNamespace(ctx, b.kube, ns); err != nil {
			return b, err
		}
	}
	if err := b.warmUp(ctx); err != nil {
		return b, err
	}
	if b.networks, err = startNetworkTracker(ctx, b.client, nsNetworks); err != nil {
		return b, err
	}
	if b.switches, err = startSwitchTracker(ctx, e.ovsdb.Endpoint(), "bench."+nsNetworks+"."); err != nil {
		return b, err
	}
	return b, nil
}

// warmUp waits for the API server's /readyz, then creates and deletes a few hundred Networks, so
// that the first scenario does not measure a control plane that is still starting (its caches,
// the CRD's handlers).
func (b *bench) warmUp(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := b.kube.CoreV1().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the API server's /readyz: %w", err)
	}
	if err := b.baselineWrites(ctx, defaultPlan, b.allocate(300), 300); err != nil {
		return fmt.Errorf("warming up: %w", err)
	}
	return b.deleteBaseline(ctx)
}

func (b *bench) close() {
	if b.mgr != nil {
		b.mgr.kill()
	}
	if b.networks != nil {
		b.networks.stop()
	}
	if b.switches != nil {
		b.switches.stop()
	}
	if b.env != nil {
		b.env.stop()
	}
}

// add appends figures to the report.
func (b *bench) add(rows ...row) { b.rep.Rows = append(b.rep.Rows, rows...) }

// explain appends a note to the report.
func (b *bench) explain(scenario, format string, args ...any) {
	b.rep.Notes = append(b.rep.Notes, note{Scenario: scenario, Text: fmt.Sprintf(format, args...)})
}

// managerArgs are the flags of a manager run by the scenarios, besides those of startManager.
func (b *bench) managerArgs(extra ...string) []string {
	args := append([]string{}, b.cfg.managerArgs...)
	if b.cfg.profile {
		args = append(args, "--enable-pprof")
	}
	return append(args, extra...)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// outDir is the results directory: out, relative to the repository root unless absolute.
func outDir(root, out string) string {
	if filepath.IsAbs(out) {
		return out
	}
	return filepath.Join(root, out)
}

// repoRoot finds the repository root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench inside the repository (no go.mod found)")
		}
		dir = parent
	}
}

// machine describes the machine: CPU model and count, memory.
func machine() string {
	model, mem := "unknown CPU", ""
	if fsys, err := procfs.NewDefaultFS(); err == nil {
		if cpus, err := fsys.CPUInfo(); err == nil && len(cpus) > 0 && cpus[0].ModelName != "" {
			model = cpus[0].ModelName
		}
		if m, err := fsys.Meminfo(); err == nil && m.MemTotal != nil {
			mem = fmt.Sprintf(", %.0f GiB", float64(*m.MemTotal)/(1<<20))
		}
	}
	return fmt.Sprintf("%d × %s%s, %s", runtime.NumCPU(), model, mem, runtime.Version())
}

// commit is the repository's HEAD, marked dirty when the tree has changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}
