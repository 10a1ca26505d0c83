package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samplecrd/samplecrd-controller/internal/scrape"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// leaseTimings are the manager's leader election flags.
type leaseTimings struct {
	duration, renewDeadline, retryPeriod time.Duration
}

// defaultLease is the manager's default (kube-controller-manager's lease and deadline).
var defaultLease = leaseTimings{duration: 15 * time.Second, renewDeadline: 10 * time.Second, retryPeriod: 500 * time.Millisecond}

// shortLease is for the scenarios about leadership: a standby takes over within 4 s, and a leader
// that cannot renew for 3 s stops leading.
var shortLease = leaseTimings{duration: 4 * time.Second, renewDeadline: 3 * time.Second, retryPeriod: 250 * time.Millisecond}

// crashMarkers are what the Go runtime, client-go's crash handler and the race detector print.
var crashMarkers = []string{"panic:", "Observed a panic", "fatal error:", "WARNING: DATA RACE"}

// exitRecord is one exit of a manager process.
type exitRecord struct {
	// name is the process's name, at when it was seen to exit.
	name string
	at   time.Time
	code int
	// reason is the suite's signal when the suite sent one, else the error the manager logged
	// when it stopped.
	reason string
}

func (e exitRecord) String() string {
	return fmt.Sprintf("%s exited %d at %s (%s)", e.name, e.code, e.at.Format("15:04:05.000"), e.reason)
}

// incarnation is one process of a replica.
type incarnation struct {
	proc    *framework.Process
	started time.Time
	// signalled is the signal the suite sent it, 0 for none.
	signalled syscall.Signal
	// probes and metrics are its servers' addresses, once logged.
	probes, metrics string
}

// replica is one manager the way a Deployment's pod runs it: a process restarted whenever it exits
// (at once the first time, then with a backoff while it keeps exiting quickly, as the kubelet's
// crash loop backoff does), unless the suite holds it down.
type replica struct {
	t    *testing.T
	name string
	args []string

	mu sync.Mutex
	// incarnations are every process started, the current one last.
	incarnations []*incarnation
	// exits are the exits seen, in order.
	exits []exitRecord
	// restarts counts the processes started after the first.
	restarts int
	// held keeps the replica down after the current process exits, until release.
	held bool
	// quickExits counts consecutive processes that ran less than restartReset, for the backoff.
	quickExits int
	// startErr is why the last start failed.
	startErr error

	// wake is signalled by release; stop ends the supervision, which closes stopped.
	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// restartReset is how long a process must run for its exit to restart the next at once.
const restartReset = 30 * time.Second

// startReplica starts a supervised manager process.
func startReplica(t *testing.T, name string, args []string) *replica {
	t.Helper()
	r := &replica{t: t, name: name, args: args, wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	go r.supervise()
	t.Cleanup(r.shutdown)
	return r
}

// start starts a new process.
func (r *replica) start() error {
	r.mu.Lock()
	name := fmt.Sprintf("%s#%d", r.name, len(r.incarnations)+1)
	r.mu.Unlock()
	p, err := framework.StartProcessE(r.t, name, managerBin, r.args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.startErr = err
		return err
	}
	if len(r.incarnations) > 0 {
		r.restarts++
	}
	r.incarnations = append(r.incarnations, &incarnation{proc: p, started: time.Now()})
	return nil
}

// current is the latest process.
func (r *replica) current() *incarnation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.incarnations[len(r.incarnations)-1]
}

// supervise restarts the process whenever it exits, until shutdown.
func (r *replica) supervise() {
	defer close(r.stopped)
	for {
		cur := r.current()
		select {
		case <-r.stop:
			return
		case <-cur.proc.Done():
		}
		r.recordExit(cur)
		for {
			r.mu.Lock()
			held := r.held
			delay := time.Duration(0)
			if r.quickExits > 1 {
				delay = min(time.Duration(1<<(r.quickExits-2))*500*time.Millisecond, 5*time.Second)
			}
			r.mu.Unlock()
			if held {
				select {
				case <-r.stop:
					return
				case <-r.wake:
				}
				continue
			}
			// The kubelet's backoff, not a synchronisation.
			select {
			case <-r.stop:
				return
			case <-time.After(delay):
			}
			if r.start() == nil {
				break
			}
			r.mu.Lock()
			r.quickExits++
			r.mu.Unlock()
		}
	}
}

func (r *replica) recordExit(inc *incarnation) {
	r.mu.Lock()
	sig := inc.signalled
	r.mu.Unlock()
	reason := "exited by itself"
	if sig != 0 {
		reason = "the suite sent " + signalName(sig)
	} else {
		for _, e := range inc.proc.LogEntries("Manager stopped") {
			if err, ok := e["err"].(string); ok {
				reason = err
			}
		}
	}
	rec := exitRecord{name: inc.proc.Name, at: time.Now(), code: inc.proc.ExitCode(), reason: reason}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exits = append(r.exits, rec)
	if time.Since(inc.started) < restartReset {
		r.quickExits++
	} else {
		r.quickExits = 0
	}
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// signal sends sig to the current process, and remembers it as the reason of its exit.
func (r *replica) signal(sig syscall.Signal) *incarnation {
	r.mu.Lock()
	cur := r.incarnations[len(r.incarnations)-1]
	cur.signalled = sig
	r.mu.Unlock()
	cur.proc.Signal(r.t, sig)
	return cur
}

// hold keeps the replica down once its current process exits, until release.
func (r *replica) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = true
}

// release lets the supervisor start the process again.
func (r *replica) release() {
	r.mu.Lock()
	r.held = false
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// shutdown ends the supervision and kills the process.
func (r *replica) shutdown() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.stopped
	cur := r.current()
	cur.proc.Signal(r.t, syscall.SIGKILL)
	<-cur.proc.Done()
}

// stats returns the replica's restarts and exits so far.
func (r *replica) stats() (int, []exitRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts, append([]exitRecord(nil), r.exits...)
}

// running returns the current process when it runs.
func (r *replica) running() (*incarnation, bool) {
	cur := r.current()
	return cur, !cur.proc.Exited()
}

// addresses returns the process's probe and metrics addresses once it has logged them.
func (inc *incarnation) addresses() (probes, metrics string, ok bool) {
	if inc.probes == "" || inc.metrics == "" {
		for _, e := range inc.proc.LogEntries("Serving") {
			addr, _ := e["address"].(string)
			switch e["server"] {
			case "health probes":
				inc.probes = addr
			case "metrics":
				inc.metrics = addr
			}
		}
	}
	return inc.probes, inc.metrics, inc.probes != "" && inc.metrics != ""
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

// ready reports whether /readyz answers 200, and its body otherwise.
func (inc *incarnation) ready() (bool, string) {
	probes, _, ok := inc.addresses()
	if !ok {
		return false, "has not logged its probe address"
	}
	resp, err := probeClient.Get("http://" + probes + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("/readyz %d: %s", resp.StatusCode, strings.Join(strings.Fields(string(body)), " "))
	}
	return true, ""
}

// leads reports whether the process says it leads (samplecrd_leader).
func (inc *incarnation) leads() bool {
	_, metrics, ok := inc.addresses()
	if !ok {
		return false
	}
	samples, err := scrape.Get("http://" + metrics + "/metrics")
	return err == nil && samples.Sum("samplecrd_leader", nil) == 1
}

// crashes returns the crash markers in any of the replica's processes' output.
func (r *replica) crashes() []string {
	r.mu.Lock()
	incs := append([]*incarnation(nil), r.incarnations...)
	r.mu.Unlock()
	var out []string
	for _, inc := range incs {
		stderr := inc.proc.Stderr()
		for _, m := range crashMarkers {
			if i := strings.Index(stderr, m); i >= 0 {
				line := stderr[i:]
				if j := strings.IndexByte(line, '\n'); j >= 0 {
					line = line[:j]
				}
				out = append(out, fmt.Sprintf("%s printed %q", inc.proc.Name, line))
			}
		}
	}
	return out
}

// managers are a scenario's replicas.
type managers []*replica

// problems says what keeps the managers from being healthy: a crash in any process, a replica
// that does not run, a process whose /readyz fails, not exactly one leader.
func (ms managers) problems() []string {
	var out []string
	leaders := 0
	for _, r := range ms {
		out = append(out, r.crashes()...)
		inc, ok := r.running()
		if !ok {
			out = append(out, fmt.Sprintf("manager %s does not run", r.name))
			continue
		}
		if ok, why := inc.ready(); !ok {
			out = append(out, fmt.Sprintf("manager %s is not ready: %s", inc.proc.Name, why))
		}
		if inc.leads() {
			leaders++
		}
	}
	if leaders != 1 {
		out = append(out, fmt.Sprintf("%d managers lead, want 1", leaders))
	}
	return out
}

// leader returns the replica whose process leads, if one does.
func (ms managers) leader() (*replica, bool) {
	for _, r := range ms {
		if inc, ok := r.running(); ok && inc.leads() {
			return r, true
		}
	}
	return nil, false
}

// restarts is the processes started after the first, over every replica.
func (ms managers) restarts() int {
	n := 0
	for _, r := range ms {
		k, _ := r.stats()
		n += k
	}
	return n
}

// exits are every exit of every replica.
func (ms managers) exits() []exitRecord {
	var out []exitRecord
	for _, r := range ms {
		_, e := r.stats()
		out = append(out, e...)
	}
	return out
}

// waitLeading waits until exactly one manager leads and every one is ready.
func (ms managers) waitLeading(ctx context.Context, timeout time.Duration) error {
	var last []string
	err := poll(ctx, 50*time.Millisecond, timeout, func() bool {
		last = ms.problems()
		return len(last) == 0
	})
	if err != nil {
		return fmt.Errorf("waiting for the managers to be ready with one leader: %w: %s", err, strings.Join(last, "; "))
	}
	return nil
}

// logEntries returns the JSON log entries of every process of the replica with the message msg.
func (r *replica) logEntries(msg string) []map[string]any {
	r.mu.Lock()
	incs := append([]*incarnation(nil), r.incarnations...)
	r.mu.Unlock()
	var out []map[string]any
	for _, inc := range incs {
		out = append(out, inc.proc.LogEntries(msg)...)
	}
	return out
}
