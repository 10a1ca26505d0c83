package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/samplecrd/samplecrd-controller/internal/sbin"
	"github.com/samplecrd/samplecrd-controller/internal/scrape"
)

// env is what every scenario runs against: a control plane, an ovsdb-server, and the manager binary.
type env struct {
	root       string // repository root
	dir        string // scratch directory
	cp         *envtest.Environment
	cfg        *rest.Config // admin, no client-side rate limit
	kubeconfig string
	ovsdb      *ovsdb
	managerBin string
	// apiserverPID and etcdPID are the control plane's processes, for their CPU time.
	apiserverPID, etcdPID int
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
	e.cp = &envtest.Environment{
		BinaryAssetsDirectory:    filepath.Join(root, "bin", "control-plane"),
		CRDDirectoryPaths:        []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err := e.cp.Start()
	if err != nil {
		return e, fmt.Errorf("starting the control plane (make tools builds it): %w", err)
	}
	e.cfg = rest.CopyConfig(cfg)
	e.cfg.QPS, e.cfg.Burst = -1, 0
	e.cfg.UserAgent = "samplecrd-bench"
	user, err := e.cp.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return e, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return e, err
	}
	e.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, kc, 0o600); err != nil {
		return e, err
	}
	e.apiserverPID = childPID("kube-apiserver")
	e.etcdPID = childPID("etcd")
	e.ovsdb, err = startOVSDB(ctx, filepath.Join(dir, "ovn"))
	if err != nil {
		return e, err
	}
	return e, nil
}

func (e *env) stop() {
	if e.ovsdb != nil {
		e.ovsdb.stop()
	}
	if e.cp != nil {
		_ = e.cp.Stop()
	}
	_ = os.RemoveAll(e.dir)
}

// childPID returns the pid of this process's child whose command is comm, or 0.
func childPID(comm string) int {
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err == nil && st.comm == comm && st.ppid == os.Getpid() {
			return pid
		}
	}
	return 0
}

// procStat is what the bench reads from /proc/PID/stat.
type procStat struct {
	comm string
	ppid int
	// cpu is user plus system time.
	cpu time.Duration
}

// clockTick is the kernel's USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 10 * time.Millisecond

func readProcStat(pid int) (procStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(raw)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[closing+1:])
	// f[0] is the state; ppid is field 4 of stat, utime and stime fields 14 and 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{comm: s[open+1 : closing], ppid: ppid, cpu: time.Duration(utime+stime) * clockTick}, nil
}

// cpuTime is the CPU time pid used so far, or 0 when it is gone.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	st, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	return st.cpu
}

// ovsdb is an ovsdb-server serving a fresh OVN northbound database.
type ovsdb struct {
	dir, db, sock, ctl string
	cmd                *exec.Cmd
}

// sbinPath finds a program in PATH or in the sbin directories, or returns its bare name, for
// the error of running it to report.
func sbinPath(name string) string {
	if path, err := sbin.Find(name); err == nil {
		return path
	}
	return name
}

func startOVSDB(ctx context.Context, dir string) (*ovsdb, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	o := &ovsdb{dir: dir, db: filepath.Join(dir, "nb.db"), sock: filepath.Join(dir, "nb.sock"), ctl: filepath.Join(dir, "ctl")}
	if out, err := exec.Command(sbinPath("ovsdb-tool"), "create", o.db, "/usr/share/ovn/ovn-nb.ovsschema").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("creating the OVN database (make tools installs OVN): %w: %s", err, out)
	}
	o.cmd = exec.Command(sbinPath("ovsdb-server"), "--remote=punix:"+o.sock, "--unixctl="+o.ctl,
		"--log-file="+filepath.Join(dir, "ovsdb-server.log"), o.db)
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := o.cmd.Start(); err != nil {
		return nil, err
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		conn, err := net.DialTimeout("unix", o.sock, time.Second)
		if err != nil {
			return false, nil
		}
		_ = conn.Close()
		return true, nil
	})
	return o, err
}

func (o *ovsdb) endpoint() string { return "unix:" + o.sock }

func (o *ovsdb) pid() int { return o.cmd.Process.Pid }

func (o *ovsdb) stop() {
	_ = o.cmd.Process.Kill()
	_ = o.cmd.Wait()
}

// transactions counts the records of the database file: ovsdb-server appends one per committed
// transaction that changed something. Compaction rewrites the file as a snapshot, so a count is
// comparable only with counts taken after the same compact (see compact).
func (o *ovsdb) transactions() (int, error) {
	out, err := exec.Command(sbinPath("ovsdb-tool"), "show-log", o.db).Output()
	if err != nil {
		return 0, fmt.Errorf("ovsdb-tool show-log: %w", err)
	}
	return strings.Count(string(out), "\nrecord "), nil
}

// compact compacts the database now. ovsdb-server compacts on its own at the earliest 10 minutes
// after the last compaction, so a window of transactions that starts with compact is not cut by one.
func (o *ovsdb) compact() error {
	if out, err := exec.Command(sbinPath("ovs-appctl"), "-t", o.ctl, "ovsdb-server/compact").CombinedOutput(); err != nil {
		return fmt.Errorf("ovsdb-server/compact: %w: %s", err, out)
	}
	return nil
}

// manager is a running samplecrd-controller process.
type manager struct {
	name string
	cmd  *exec.Cmd
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
		"--ovn-nb=" + e.ovsdb.endpoint(), "--cluster-name=bench",
	}
	m := &manager{name: name, cmd: exec.Command(e.managerBin, append(base, args...)...), done: make(chan struct{}), counts: map[string]int{}}
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	m.cmd.Stdout = io.Discard
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
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

func (m *manager) pid() int { return m.cmd.Process.Pid }

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

// peakRSS is the manager's peak resident set size in bytes (VmHWM).
func (m *manager) peakRSS() (int64, error) {
	return procStatusBytes(m.pid(), "VmHWM:")
}

// rss is the manager's current resident set size in bytes (VmRSS).
func (m *manager) rss() (int64, error) {
	return procStatusBytes(m.pid(), "VmRSS:")
}

func procStatusBytes(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
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
	return scrape.Get("http://" + m.metrics + "/metrics")
}

// errManagerExited is returned by waits when the manager they wait on has exited.
var errManagerExited = errors.New("the manager exited")
