package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/samplecrd/samplecrd-controller/internal/sbin"
	"github.com/samplecrd/samplecrd-controller/internal/scrape"
	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// env is what every scenario runs against: a control plane, an ovsdb-server, and the manager binary.
type env struct {
	root       string // repository root
	dir        string // scratch directory
	cp         *testenv.ControlPlane
	cfg        *rest.Config // admin, no client-side rate limit
	kubeconfig string
	ovsdb      *testenv.OVSDB
	managerBin string
	// scraper reads the managers' metrics and profiles, as a service account bound to the
	// shipped metrics and pprof reader roles.
	scraper *scrape.Client
}

func startEnv(ctx context.Context, root string) (*env, error) {
	// A short directory: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "samplecrd-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{root: root, dir: dir, managerBin: filepath.Join(root, "bin", "samplecrd-controller")}
	if _, err := os.Stat(e.managerBin); err != nil {
		return e, fmt.Errorf("the manager binary is missing (make bench builds it): %w", err)
	}
	// etcd and kube-apiserver die with the bench, however it ends.
	e.cp, err = testenv.StartControlPlane(testenv.ControlPlaneOptions{Root: root, LauncherDir: filepath.Join(dir, "launch")})
	if err != nil {
		return e, fmt.Errorf("%w (make tools builds the control plane)", err)
	}
	e.cfg = e.cp.Config()
	e.cfg.QPS, e.cfg.Burst = -1, 0
	e.cfg.UserAgent = "samplecrd-bench"
	e.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, e.cp.AdminKubeconfig(), 0o600); err != nil {
		return e, err
	}
	if e.scraper, err = newScraper(ctx, e.cfg, root); err != nil {
		return e, err
	}
	if e.ovsdb, err = testenv.NewOVSDB(filepath.Join(dir, "ovn"), nil); err != nil {
		return e, fmt.Errorf("%w (make tools installs OVN)", err)
	}
	if err := e.ovsdb.Create(ctx); err != nil {
		return e, err
	}
	return e, e.ovsdb.Start(ctx)
}

// newScraper applies the shipped reader roles and returns a client with a token of a service
// account bound to them: the managers serve metrics and pprof as in a cluster, over HTTPS to
// authorized clients.
func newScraper(ctx context.Context, cfg *rest.Config, root string) (*scrape.Client, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dir := testenv.RBACDir(root)
	if err := testenv.ApplyClusterRoles(ctx, client, filepath.Join(dir, "metrics_reader_role.yaml"), filepath.Join(dir, "pprof_reader_role.yaml")); err != nil {
		return nil, err
	}
	// Longer than any run: the token is read once.
	token, err := testenv.ServiceAccountToken(ctx, client, "samplecrd-bench", "scraper", 24*time.Hour,
		"samplecrd-controller-metrics-reader", "samplecrd-controller-pprof-reader")
	if err != nil {
		return nil, err
	}
	return scrape.NewClient(token), nil
}

func (e *env) stop() {
	if e.ovsdb != nil {
		e.ovsdb.Kill()
	}
	if e.cp != nil {
		_ = e.cp.Stop()
	}
	_ = os.RemoveAll(e.dir)
}

// processes returns the processes of the environment by name: kube-apiserver, etcd and
// ovsdb-server.
func (e *env) processes() map[string]testenv.Proc {
	out := map[string]testenv.Proc{}
	for _, p := range e.cp.Processes() {
		out[p.Name] = p
	}
	if p, err := e.ovsdb.Proc(); err == nil {
		out[p.Name] = p
	}
	return out
}

// sbinPath finds a program in PATH or in the sbin directories, or returns its bare name, for
// the error of running it to report.
func sbinPath(name string) string {
	if path, err := sbin.Find(name); err == nil {
		return path
	}
	return name
}

// transactions counts the records of the OVN database file: ovsdb-server appends one per
// committed transaction that changed something. Compaction rewrites the file as a snapshot, so a
// count is comparable only with counts taken after the same compact (see compact).
func (e *env) transactions() (int, error) {
	out, err := exec.Command(sbinPath("ovsdb-tool"), "show-log", e.ovsdb.DBFile()).Output()
	if err != nil {
		return 0, fmt.Errorf("ovsdb-tool show-log: %w", err)
	}
	return strings.Count(string(out), "\nrecord "), nil
}

// compact compacts the OVN database now. ovsdb-server compacts on its own at the earliest 10
// minutes after the last compaction, so a window of transactions that starts with compact is not
// cut by one.
func (e *env) compact() error {
	if out, err := exec.Command(sbinPath("ovs-appctl"), "-t", e.ovsdb.Unixctl(), "ovsdb-server/compact").CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-server/compact: %w: %s", err, out)
	}
	return nil
}

// manager is a running samplecrd-controller process.
type manager struct {
	name string
	cmd  *exec.Cmd
	proc testenv.Proc
	done chan struct{}

	mu sync.Mutex
	// entries are the parsed log entries whose message is in keptMessages.
	entries []map[string]any
	// tail holds the last log lines, for error reports.
	tail []string
	// counts counts log entries by message.
	counts map[string]int

	metrics string // address of /metrics
	probes  string // address of /healthz and /readyz
	// scraper reads /metrics and /debug/pprof/.
	scraper *scrape.Client
}

// keptMessages are the log messages the bench reads back; every other line is only counted, since
// a manager recording thousands of events a second logs a lot.
var keptMessages = map[string]bool{
	"Serving": true, "Waiting to become the leader": true, "Started leading": true,
	"Another replica leads": true, "Released the leader lease": true, "Starting controller": true,
	"All controllers stopped": true,
}

// startManager starts the manager with JSON logs and its servers on free loopback ports, and waits
// until it serves them.
func (e *env) startManager(ctx context.Context, name string, args ...string) (*manager, error) {
	base := []string{
		"--kubeconfig=" + e.kubeconfig, "--logging-format=json",
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
		"--ovn-nb=" + e.ovsdb.Endpoint(), "--cluster-name=bench",
	}
	m := &manager{name: name, cmd: exec.Command(e.managerBin, append(base, args...)...), done: make(chan struct{}), counts: map[string]int{}, scraper: e.scraper}
	m.cmd.Stdout = io.Discard
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := testenv.StartCommand(m.cmd); err != nil {
		return nil, err
	}
	// It cannot be gone yet: nothing has waited for it.
	if m.proc, err = testenv.Identify(name, m.cmd.Process.Pid); err != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		return nil, err
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			m.record(sc.Bytes())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		// Wait closes the pipe, so the scanner must be done first.
		<-scanned
		_ = m.cmd.Wait()
		close(m.done)
	}()
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case <-m.done:
			return false, fmt.Errorf("manager %s exited: %v; log:\n%s", name, m.cmd.ProcessState, m.logTail())
		default:
		}
		for _, entry := range m.logEntries("Serving") {
			switch entry["server"] {
			case "metrics":
				m.metrics, _ = entry["address"].(string)
			case "health probes":
				m.probes, _ = entry["address"].(string)
			}
		}
		return m.metrics != "" && m.probes != "", nil
	})
	if err != nil {
		m.kill()
		return nil, err
	}
	return m, nil
}

// record keeps what the bench needs of one log line.
func (m *manager) record(line []byte) {
	var entry struct {
		Msg string `json:"msg"`
	}
	_ = json.Unmarshal(line, &entry)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts[entry.Msg]++
	if len(m.tail) >= 50 {
		m.tail = m.tail[1:]
	}
	m.tail = append(m.tail, string(line))
	if keptMessages[entry.Msg] {
		var full map[string]any
		if json.Unmarshal(line, &full) == nil {
			m.entries = append(m.entries, full)
		}
	}
}

// logEntries returns the kept log entries whose message is msg.
func (m *manager) logEntries(msg string) []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []map[string]any
	for _, e := range m.entries {
		if e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// logCount is how many log lines had the message msg.
func (m *manager) logCount(msg string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[msg]
}

func (m *manager) logTail() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.tail, "\n")
}

// identity is the manager's leader election identity, from its log.
func (m *manager) identity() string {
	for _, e := range m.logEntries("Waiting to become the leader") {
		id, _ := e["identity"].(string)
		return id
	}
	return ""
}

// loggedAt returns when the manager first logged msg, from the entry's timestamp.
func (m *manager) loggedAt(msg string) (time.Time, bool) {
	for _, e := range m.logEntries(msg) {
		if ts, ok := e["ts"].(float64); ok {
			return time.UnixMicro(int64(ts * 1000)), true
		}
	}
	return time.Time{}, false
}

func (m *manager) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *manager) signal(sig syscall.Signal) {
	if !m.exited() {
		_ = m.cmd.Process.Signal(sig)
	}
}

func (m *manager) kill() {
	m.signal(syscall.SIGKILL)
	<-m.done
}

// stop stops the manager gracefully and waits for it.
func (m *manager) stop() error {
	m.signal(syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(time.Minute):
		m.kill()
		return fmt.Errorf("manager %s did not stop within a minute", m.name)
	}
}

// memory is the manager's resident set size, now and at its peak.
func (m *manager) memory() (testenv.Memory, error) {
	return m.proc.Memory()
}

// ready reports whether /readyz answers 200.
func (m *manager) ready() bool {
	resp, err := http.Get("http://" + m.probes + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrape reads the manager's /metrics.
func (m *manager) scrape() (metricSet, error) {
	return m.scraper.Get("https://" + m.metrics + "/metrics")
}

// errManagerExited is returned by waits when the manager they wait on has exited.
var errManagerExited = errors.New("the manager exited")
