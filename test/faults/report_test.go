package faults

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/samplecrd/samplecrd-controller/internal/sbin"
	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// result is one scenario's row of the report.
type result struct {
	Scenario, Fault string
	Networks        int
	// AtFault says how far the burst was when the fault came.
	AtFault string
	// Converged says whether the invariants held before the deadline; AfterFault and Total are
	// how long that took from the lift of the fault and from the start of the burst.
	Converged         bool
	AfterFault, Total time.Duration
	// Lost, Leaked and Duplicated are the verdict's, at convergence or at the deadline.
	Lost, Leaked, Duplicated int
	// StatusWrites are the status writes the suite's watch saw from the burst's start to
	// convergence; Events the count of the Networks' events, by reason too.
	StatusWrites   int
	Events         int
	EventsByReason map[string]int
	// Restarts are the manager processes started after the first; Exits their exits.
	Restarts int
	Exits    []exitRecord
	// Logged counts a few messages of the managers' logs.
	Logged []string
	// Passed says whether every assertion held; Failures are those that did not.
	Passed   bool
	Failures []string
}

// report collects the rows of the scenarios.
type report struct {
	mu   sync.Mutex
	rows []result
}

func (r *report) add(res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, res)
}

// table renders the rows as a markdown table.
func (r *report) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("| scenario | Networks | fault | time to converge (after fault; total) | lost | leaked | duplicated | status writes | events | manager restarts | result |\n")
	b.WriteString("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, row := range r.rows {
		converge := "did not converge"
		if row.Converged {
			converge = fmt.Sprintf("%s; %s", seconds(row.AfterFault), seconds(row.Total))
		}
		verdict := "pass"
		if !row.Passed {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %d | %d | %d | %d | %d | %s |\n",
			row.Scenario, row.Networks, escapeCell(row.Fault), converge, row.Lost, row.Leaked, row.Duplicated,
			row.StatusWrites, row.Events, row.Restarts, verdict)
	}
	return b.String()
}

// details lists, per scenario, the events by reason, the manager exits and every failure.
func (r *report) details() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, row := range r.rows {
		fmt.Fprintf(&b, "- **%s**: at the fault %s; events %s", row.Scenario, row.AtFault, reasons(row.EventsByReason))
		if len(row.Exits) > 0 {
			var exits []string
			for _, e := range row.Exits {
				exits = append(exits, fmt.Sprintf("%s exited %d (%s)", e.name, e.code, e.reason))
			}
			fmt.Fprintf(&b, "; manager exits: %s", strings.Join(exits, ", "))
		}
		if len(row.Logged) > 0 {
			fmt.Fprintf(&b, "; logged %s", strings.Join(row.Logged, ", "))
		}
		b.WriteString(".\n")
		for _, f := range row.Failures {
			// The first line says it; the rest lists the problems.
			lines := strings.Split(f, "\n")
			fmt.Fprintf(&b, "  - FAIL: %s\n", lines[0])
			for i, l := range lines[1:] {
				if i == 8 {
					fmt.Fprintf(&b, "    - ... (%d more lines)\n", len(lines)-1-i)
					break
				}
				fmt.Fprintf(&b, "    - %s\n", strings.TrimSpace(l))
			}
		}
	}
	return b.String()
}

func reasons(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func escapeCell(s string) string {
	return strings.ReplaceAll(s, "|", "\\|")
}

// markdown is the whole report: what the suite does, where it ran, the table and the details.
func (r *report) markdown(networks int, race bool, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString(`# Reliability: the fault-injection suite

` + "`test/faults`" + ` runs the manager binary, as processes, against a real kube-apiserver, etcd and OVN
northbound ovsdb-server, and breaks one of them in each scenario. A scenario starts its managers
(with leader election, in fresh namespaces, on an ovsdb-server of its own), creates a burst of
Networks from 8 clients across 3 namespaces, every 12th of a namespace overlapping the one before
it (the same /24, a /25 inside it, the /22 around it), injects its fault once a third of the burst
exists and the manager has processed a third, lifts it, and then checks the invariants every
250 ms until they all hold:

- every Network that exists has the Ready condition its spec calls for, computed by the suite with
  the controller's greedy rule (per namespace, oldest first, a Network is programmed unless it
  overlaps an older programmed one): True/Synced, or False/CIDRConflict naming the Network it
  overlaps; the condition's observedGeneration and status.observedGeneration equal
  metadata.generation; a programmed Network carries the finalizer and its status names its switch;
- OVN holds exactly one set of rows per programmed Network, as its spec calls for: the switch
  ` + "`<cluster>.<namespace>.<name>`" + ` with its subnet and exclude_ips, the switch port of type router
  pointing to the router port, the router port with gateway/prefix and its MAC on the namespace's
  router, every external_id the backend writes; one router per namespace holding exactly the
  router ports of its programmed Networks;
- no row of the cluster for a Network that is gone or must not be programmed (**leaked**, counted
  in rows, routers left without a programmed Network included), no Network with two sets of rows
  or two switches of one name (**duplicated**);
- no Network stuck deleting; the Networks that must exist do;
- no manager printed a panic or a data race, each runs and answers /readyz 200, exactly one leads.

**Time to converge** runs from the moment the fault is lifted (for a fault without a lift, such as
a kill with a standby, from the fault) until all invariants hold, and from the start of the burst.
**Lost** are the Networks that are not as their spec calls for at convergence or at the deadline
(30 s + 60 ms per Network after the lift, plus the lease a restarted manager waits out); any
failed invariant fails the scenario. **Status writes** are the changes of the Networks' status
that a watch of the suite saw from the start of the burst to convergence (a fault-free burst
writes one per Network); **events** are the sum of the count of the Networks' events;
**manager restarts** are the manager processes started after the first: the suite restarts a
manager that exits, as a Deployment would, at once and then with a backoff.

Some scenarios assert more. After an outage of OVN with the same database after it (ovsdb-kill,
ovn-stopped, ovn-paused), the Networks programmed before it whose spec did not change must keep
Ready=True with no status write and no event of the outage (losing to an older overlapping Network
that was still pending is the burst's doing, not the outage's); a Network with work pending may report
it once (one status write, BackendUnavailable or, for a call that failed as the connection went,
BackendError, and one Warning event) and then its recovery, and once programmed is not flipped
back. leader-failover checks that the standby took over, leader-lost that the leader
exited with "leader election lost", sigterm-delete that the manager drained and exited 0, ovn-tamper
that the rows of another owner are left as they were.

The managers run with ` + "`--resync-period=10m`" + `, longer than any scenario, so that no scenario converges
by the periodic check of every Network: each repair must come from a watch event, the OVN backend's
change reports or its reconnection, or the orphan sweep. The two long OVN outages are the
exception: there a resync every 10 s makes sure that every Network is synced while OVN is away.
Scenarios that restart a manager use the default lease (15 s) unless they are about leadership
(4 s lease, 3 s renew deadline).

Run it with ` + "`make faults`" + ` (1000 Networks per scenario, the manager built without the race detector,
this file written, then the fuzz targets), or in its short form, 100 Networks with the race
detector, as part of ` + "`make test`" + `: ` + "`go test ./test/faults/`" + `;
` + "`go test ./test/faults/ -run 'TestFaults/<scenario>'`" + ` runs one scenario.

`)
	fmt.Fprintf(&b, "## Last run\n\n%s\n\n", machine(networks, race, elapsed))
	b.WriteString(r.table())
	b.WriteString("\n### Details\n\n")
	b.WriteString(r.details())
	return b.String()
}

// machine describes the machine, the commit and the run.
func machine(networks int, race bool, elapsed time.Duration) string {
	cpu := procField("/proc/cpuinfo", "model name")
	memory := procField("/proc/meminfo", "MemTotal")
	if kb, err := strconv.Atoi(strings.TrimSuffix(memory, " kB")); err == nil {
		memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	var uts syscall.Utsname
	kernel := ""
	if syscall.Uname(&uts) == nil {
		var s []byte
		for _, c := range uts.Release {
			if c == 0 {
				break
			}
			s = append(s, byte(c))
		}
		kernel = "Linux " + string(s)
	}
	commit := "unknown commit"
	if out, err := exec.Command("git", "-C", framework.RepoRoot(), "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", framework.RepoRoot(), "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			commit += " with uncommitted changes"
		}
	}
	ovs := "ovsdb-server"
	if path, err := sbin.Find("ovsdb-server"); err == nil {
		if out, err := exec.Command(path, "--version").Output(); err == nil {
			ovs = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
		}
	}
	// VERSION has a "NAME MODULE VERSION GOVERSION" line per binary.
	var cp []string
	if data, err := os.ReadFile(filepath.Join(testenv.ControlPlaneDir(framework.RepoRoot()), "VERSION")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] != "kubectl" {
				cp = append(cp, f[0]+" "+f[2])
			}
		}
	}
	build := "without the race detector"
	if race {
		build = "with the race detector"
	}
	return fmt.Sprintf("%s, commit %s; %d Networks per scenario, the manager built %s; %s in all.\n"+
		"%d × %s, %s of memory, %s, %s; %s; control plane: %s.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit, networks, build, elapsed.Round(time.Second),
		runtime.NumCPU(), cpu, memory, kernel, runtime.Version(), ovs, strings.Join(cp, ", "))
}

// procField returns the value of the first "key: value" line of a /proc file with the key.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown " + key
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown " + key
}
