package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// cluster is the --cluster-name of every manager of the suite; each scenario has an ovsdb-server
// of its own.
const cluster = "faults"

// resyncPeriod is the managers' --resync-period: longer than any scenario, so that no scenario
// converges by the periodic check of every Network. Every repair must come from what the manager
// is told or finds by itself: watch events, the backend's change reports and reconnections, the
// orphan sweep.
const resyncPeriod = 10 * time.Minute

// namespacesPerScenario is how many namespaces a burst spreads over.
const namespacesPerScenario = 3

// scenario is one fault and how it is injected.
type scenario struct {
	// name names the subtest and the report's row.
	name string
	// fault describes the fault in the report; the run adds what it measured (run.note).
	fault string
	// replicas is the number of managers, 1 when zero.
	replicas int
	// lease are the managers' leader election timings, defaultLease when zero.
	lease leaseTimings
	// args are more manager flags.
	args []string
	// extraDeadline is added to the time the scenario may take to converge after the fault: a
	// lease that a restarted manager waits out, say.
	extraDeadline time.Duration
	// inject runs once a third of the burst's Networks exist: it injects the fault, lifts it (and
	// says when with run.lifted) and returns.
	inject func(r *run)
	// outage asserts, after convergence, what an outage of the same OVN database may cost:
	// nothing for the Networks programmed before it (checkOutage).
	outage bool
	// check asserts what is particular to the scenario, after convergence.
	check func(r *run)
}

// run is one scenario's run.
type run struct {
	t  *testing.T
	sc *scenario
	// n is the size of the burst.
	n      int
	ctx    context.Context
	client clientset.Interface
	kube   kubernetes.Interface
	// namespaces are the scenario's own, fresh; the first also holds the Lease.
	namespaces []string
	kubeconfig string
	db         *framework.OVSDB
	mgrs       managers
	tr         *tracker
	burst      *burst

	// want is how many Networks must exist at the end: the burst, less those the scenario deletes.
	want int
	// burstStart, injectAt and liftAt are when the burst started, when the fault came, and when it
	// was lifted.
	burstStart, injectAt, liftAt time.Time
	// before are the Networks programmed as their spec asks when the fault came, with their
	// generation.
	before map[types.UID]int64
	// notes add to the fault's description; failures are the run's failed assertions, for the
	// report.
	notes, failures []string
	// mu guards down, the control plane processes the scenario killed and did not restart yet.
	mu   sync.Mutex
	down map[string]bool
	// ovnPaused and ovnStopped say that ovsdb-server is paused or stopped; the cleanup undoes it.
	ovnPaused, ovnStopped bool
	// convergedAt is when the last waitConverged saw the invariants hold.
	convergedAt time.Time
	// listed are the resourceVersions of the Networks the last check listed.
	listed map[types.UID]string
	// failoverFrom is the replica the failover scenario killed; foreign are the rows of another
	// owner the tamper scenario wrote.
	failoverFrom *replica
	foreign      framework.OVNRows
}

// burstTimeout bounds the creation of a burst, faults included.
const burstTimeout = 5 * time.Minute

// runScenario runs sc as the subtest t and adds its row to the report.
func runScenario(t *testing.T, sc *scenario, n int, rep *report) {
	cfg := env.Config(t)
	cfg.Timeout = requestTimeout
	r := &run{
		t: t, sc: sc, n: n, want: n, ctx: context.Background(),
		client: clientset.NewForConfigOrDie(cfg), kube: kubernetes.NewForConfigOrDie(cfg),
		kubeconfig: env.Kubeconfig(t), down: map[string]bool{},
	}
	res := &result{Scenario: sc.name, Networks: n}
	defer func() {
		res.Fault = sc.fault
		if len(r.notes) > 0 {
			res.Fault += " (" + strings.Join(r.notes, "; ") + ")"
		}
		res.Failures = r.failures
		res.Passed = !t.Failed()
		rep.add(*res)
	}()

	for range namespacesPerScenario {
		r.namespaces = append(r.namespaces, framework.CreateNamespace(t, r.kube))
	}
	r.db = framework.StartOVSDB(t)
	var err error
	if r.tr, err = startTracker(r.ctx, r.client, r.namespaces); err != nil {
		r.fatalf("%v", err)
	}
	t.Cleanup(r.tr.stop)
	t.Cleanup(r.deleteAll)
	t.Cleanup(r.restore)
	r.startManagers()

	specs := make([]*samplecrdv1.Network, n)
	for i := range specs {
		specs[i] = burstSpec(i, r.namespaces)
	}
	r.burstStart = time.Now()
	r.burst = startBurst(r.ctx, r.client, specs, burstTimeout)
	// Mid-burst: a third of the Networks exist, and the manager has processed a third (it is
	// usually slower than the clients), with the rest still to do.
	processed := 0
	err = poll(r.ctx, 10*time.Millisecond, burstTimeout, func() bool {
		processed = 0
		for _, nw := range r.tr.cached() {
			if readyText(nw, true) != "" {
				processed++
			}
		}
		return (r.burst.createdCount() >= n/3 || r.burst.finished()) && processed >= n/3
	})
	if err != nil {
		r.fatalf("waiting for a third of the burst to be created and processed: %v (%d created, %d processed)", err, r.burst.createdCount(), processed)
	}
	r.injectAt = time.Now()
	r.before = map[types.UID]int64{}
	// As the handlers saw them, which the writes counted after injectAt follow.
	for _, nw := range r.tr.handledNetworks() {
		if programmedNow(nw) {
			r.before[nw.UID] = nw.Generation
		}
	}
	res.AtFault = fmt.Sprintf("%d created, %d processed, %d programmed", r.burst.createdCount(), processed, len(r.before))
	sc.inject(r)
	if r.liftAt.IsZero() {
		r.liftAt = time.Now()
	}
	r.waitBurst()

	deadline := r.deadline()
	converged, v := r.waitConverged(r.liftAt, deadline)
	if converged {
		res.AfterFault, res.Total = r.convergedAt.Sub(r.liftAt), r.convergedAt.Sub(r.burstStart)
	}
	res.Converged = converged
	// The watch lags the list the check judged: what it saw by then is what was written by then.
	r.syncTracker()
	end := time.Now()
	res.StatusWrites = r.tr.count(r.burstStart, end)
	events, byReason := r.settledEvents()
	res.Events = events
	res.EventsByReason = byReason
	res.Restarts = r.mgrs.restarts()
	for _, msg := range []string{"Disconnected from the OVN northbound database", "OVN northbound database does not answer, reconnecting",
		"Backend is ready: checking every Network against it", "Started leading"} {
		count := 0
		for _, m := range r.mgrs {
			count += len(m.logEntries(msg))
		}
		res.Logged = append(res.Logged, fmt.Sprintf("%q ×%d", msg, count))
	}
	res.Exits = r.mgrs.exits()
	if !converged {
		r.errorf("the invariants do not hold %v after the fault was lifted: %s", deadline, v)
	} else if final := r.check(true); !final.ok() {
		// They held, then not: the manager undid something after all looked done.
		v = final
		r.errorf("the invariants held %v after the fault was lifted, then not: %s", res.AfterFault, v)
	}
	res.Lost, res.Leaked, res.Duplicated = v.lost, v.leaked, v.duplicated
	if sc.outage {
		r.checkOutage(end)
	}
	if sc.check != nil {
		sc.check(r)
	}
	t.Logf("%s: at the fault %s; converged %v after the fault (%v in all); %d status writes, %d events %v, %d manager restarts; exits %v",
		sc.name, res.AtFault, res.AfterFault.Round(time.Millisecond), res.Total.Round(time.Millisecond), res.StatusWrites, res.Events, byReason, res.Restarts, res.Exits)
}

// deadline is how long a scenario may take to converge after its fault: generous for the machine
// (two shared cores, the race detector), and far shorter than resyncPeriod.
func (r *run) deadline() time.Duration {
	return 30*time.Second + time.Duration(r.n)*60*time.Millisecond + r.sc.extraDeadline
}

// managerArgs are the flags of the scenario's managers.
func (r *run) managerArgs() []string {
	lease := r.sc.lease
	if lease == (leaseTimings{}) {
		lease = defaultLease
	}
	args := []string{
		"--kubeconfig=" + r.kubeconfig,
		"--logging-format=json",
		"--metrics-bind-address=127.0.0.1:0",
		// Plain HTTP: the scenarios poll every replica's samplecrd_leader.
		"--metrics-secure=false",
		"--health-probe-bind-address=127.0.0.1:0",
		"--controllers=network",
		"--ovn-nb=" + r.db.Endpoint(),
		"--cluster-name=" + cluster,
		"--leader-elect-resource-namespace=" + r.namespaces[0],
		"--leader-elect-lease-duration=" + lease.duration.String(),
		"--leader-elect-renew-deadline=" + lease.renewDeadline.String(),
		"--leader-elect-retry-period=" + lease.retryPeriod.String(),
		"--resync-period=" + resyncPeriod.String(),
	}
	return append(args, r.sc.args...)
}

// startManagers starts the replicas, one after the other, so that the first leads.
func (r *run) startManagers() {
	replicas := max(r.sc.replicas, 1)
	for i := range replicas {
		r.mgrs = append(r.mgrs, startReplica(r.t, fmt.Sprintf("manager-%c", 'a'+i), r.managerArgs()))
		if err := r.mgrs.waitLeading(r.ctx, 2*time.Minute); err != nil {
			r.fatalf("%v", err)
		}
	}
}

// waitBurst waits until the burst has created every Network.
func (r *run) waitBurst() {
	select {
	case <-r.burst.done:
	case <-time.After(burstTimeout + time.Minute):
		r.fatalf("the burst did not finish within %v", burstTimeout)
	}
	if r.burst.err != nil {
		r.fatalf("%v", r.burst.err)
	}
}

// lifted records that the fault is lifted now.
func (r *run) lifted() { r.liftAt = time.Now() }

// note adds to the fault's description in the report.
func (r *run) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// errorf fails the scenario and records why for the report.
func (r *run) errorf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	r.t.Error(msg)
}

func (r *run) fatalf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	r.t.Fatal(msg)
}

// waitConverged checks the invariants until they hold, at most timeout after from, and returns
// whether they did, with the last verdict.
func (r *run) waitConverged(from time.Time, timeout time.Duration) (bool, *verdict) {
	var last *verdict
	left := time.Until(from.Add(timeout))
	err := poll(r.ctx, 250*time.Millisecond, max(left, time.Second), func() bool {
		at := time.Now()
		last = r.check(false)
		if last.ok() {
			r.convergedAt = at
			return true
		}
		return false
	})
	if err != nil {
		return false, r.check(true)
	}
	return true, last
}

// syncTracker waits until the suite's watch has handled every Network at least as recent as the
// last check listed it.
func (r *run) syncTracker() {
	err := poll(r.ctx, 10*time.Millisecond, time.Minute, func() bool {
		seen := r.tr.seenVersions()
		for uid, rv := range r.listed {
			if revision(seen[uid]) < revision(rv) {
				return false
			}
		}
		return true
	})
	if err != nil {
		r.errorf("the suite's watch did not catch up with the last list: %v", err)
	}
}

// revision is a resourceVersion as the etcd revision it is, 0 when it is none.
func revision(rv string) int64 {
	n, _ := strconv.ParseInt(rv, 10, 64)
	return n
}

// check lists the scenario's Networks from the API server and dumps the OVN database, and checks
// the invariants; unless full, it leaves OVN out when the API side is wrong already.
func (r *run) check(full bool) *verdict {
	in := checkInput{cluster: cluster, want: r.want, managerProblems: r.mgrs.problems()}
	for _, ns := range r.namespaces {
		ctx, cancel := context.WithTimeout(r.ctx, requestTimeout)
		list, err := r.client.SamplecrdV1().Networks(ns).List(ctx, metav1.ListOptions{})
		cancel()
		if err != nil {
			return &verdict{problems: []string{fmt.Sprintf("listing the Networks of %s: %v", ns, err)}}
		}
		in.networks = append(in.networks, list.Items...)
	}
	r.listed = map[types.UID]string{}
	for _, n := range in.networks {
		r.listed[n.UID] = n.ResourceVersion
	}
	if v := checkInvariants(in); !full && len(v.problems) > 0 {
		return v
	}
	rows, err := r.db.DumpE(r.ctx)
	if err != nil {
		v := checkInvariants(in)
		v.problems = append(v.problems, fmt.Sprintf("dumping the OVN database: %v", err))
		return v
	}
	in.rows = &rows
	return checkInvariants(in)
}

// events sums the count of the Events about the scenario's Networks: in all, by reason, and by
// Network UID and reason.
func (r *run) events() (int, map[string]int, map[types.UID]map[string]int) {
	total, byReason, byUID := 0, map[string]int{}, map[types.UID]map[string]int{}
	for _, ns := range r.namespaces {
		var list *corev1.EventList
		err := retry(r.ctx, time.Minute, func(ctx context.Context) error {
			var err error
			list, err = r.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Network"})
			return err
		})
		if err != nil {
			r.errorf("listing the events of %s: %v", ns, err)
			continue
		}
		for _, e := range list.Items {
			count := max(int(e.Count), 1)
			if e.Series != nil {
				count = max(count, int(e.Series.Count))
			}
			total += count
			byReason[e.Reason] += count
			if byUID[e.InvolvedObject.UID] == nil {
				byUID[e.InvolvedObject.UID] = map[string]int{}
			}
			byUID[e.InvolvedObject.UID][e.Reason] += count
		}
	}
	return total, byReason, byUID
}

// settledEvents is events once the managers have sent what they recorded: the recorder sends
// events in the background, so the count is read until it stays the same for a second.
func (r *run) settledEvents() (int, map[string]int) {
	total, byReason, _ := r.events()
	stable := time.Now()
	_ = poll(r.ctx, 250*time.Millisecond, 30*time.Second, func() bool {
		t, b, _ := r.events()
		if t != total {
			total, byReason, stable = t, b, time.Now()
		}
		return time.Since(stable) >= time.Second
	})
	return total, byReason
}

// checkOutage asserts what an outage of the OVN database, with the same database after it, may
// cost until end: the Networks programmed before it whose spec did not change keep Ready=True,
// with no status write and no event of the outage (BackendUnavailable, or BackendError for a call
// that failed as the connection went); a Network with work pending may report the outage once (at
// most one such status write and one such event) and then its recovery, but once programmed it is
// not flipped back.
func (r *run) checkOutage(end time.Time) {
	final := map[types.UID]*samplecrdv1.Network{}
	for _, n := range r.tr.cached() {
		final[n.UID] = n
	}
	_, _, events := r.events()
	// offence counts the Networks of one kind of violation and shows the first few.
	type offence struct {
		count    int
		examples []string
	}
	add := func(o *offence, n *samplecrdv1.Network, ws []statusWrite, ev int) {
		o.count++
		if len(o.examples) < 3 {
			var seq []string
			for _, w := range ws {
				seq = append(seq, w.ready)
			}
			o.examples = append(o.examples, fmt.Sprintf("%s/%s: writes %v, %d outage events", n.Namespace, n.Name, seq, ev))
		}
	}
	var keptWritten, flipped, twice, noisy offence
	kept, pending, keptWrites := 0, 0, 0
	for uid, n := range final {
		ws := r.tr.writesOf(uid, r.injectAt, end)
		backendErrors, flips := 0, 0
		for i, w := range ws {
			if w.ready == "False/"+samplecrdv1.ReasonBackendError || w.ready == "False/"+samplecrdv1.ReasonBackendUnavailable {
				backendErrors++
				if i > 0 && ws[i-1].ready == "True/"+samplecrdv1.ReasonSynced {
					flips++
				}
			}
		}
		ev := events[uid][samplecrdv1.ReasonBackendError] + events[uid][samplecrdv1.ReasonBackendUnavailable]
		if gen, ok := r.before[uid]; ok && gen == n.Generation {
			kept++
			keptWrites += len(ws)
			// A write of the outage, or one that rewrites it as programmed. Not one that the
			// burst calls for whatever the backend does: an older overlapping Network, still
			// pending at the fault, that wins once synced (False/CIDRConflict).
			rewritten := slices.ContainsFunc(ws, func(w statusWrite) bool { return w.ready == "True/"+samplecrdv1.ReasonSynced })
			if backendErrors > 0 || rewritten || ev > 0 {
				add(&keptWritten, n, ws, ev)
			}
			continue
		}
		// Not programmed at the fault, or its spec changed since: it had work to do.
		pending++
		if flips > 0 {
			add(&flipped, n, ws, ev)
		}
		if backendErrors > 1 {
			add(&twice, n, ws, ev)
		}
		if ev > 1 {
			add(&noisy, n, ws, ev)
		}
	}
	if keptWritten.count > 0 {
		r.errorf("the outage cost %d of the %d Networks programmed before it %d status writes in all and outage events; want none (for example %s)",
			keptWritten.count, kept, keptWrites, strings.Join(keptWritten.examples, "; "))
	}
	if flipped.count > 0 {
		r.errorf("%d of the %d Networks with work pending in the outage were programmed and then flipped to an outage condition (for example %s)",
			flipped.count, pending, strings.Join(flipped.examples, "; "))
	}
	if twice.count > 0 || noisy.count > 0 {
		r.errorf("of the %d Networks with work pending in the outage, %d had more than one outage status write and %d more than one outage event; want at most one each (for example %s)",
			pending, twice.count, noisy.count, strings.Join(append(twice.examples, noisy.examples...), "; "))
	}
	r.t.Logf("outage: %d Networks programmed before it (%d written since), %d with work pending", kept, keptWritten.count, pending)
}

// killControlPlane kills etcd or kube-apiserver.
func (r *run) killControlPlane(name string) {
	r.mu.Lock()
	r.down[name] = true
	r.mu.Unlock()
	env.KillControlPlane(r.t, name)
}

// restartControlPlane starts etcd or kube-apiserver again and returns how long that took.
func (r *run) restartControlPlane(name string) time.Duration {
	start := time.Now()
	env.RestartControlPlane(r.t, name)
	r.mu.Lock()
	delete(r.down, name)
	r.mu.Unlock()
	return time.Since(start)
}

// restore undoes what a scenario that failed midway left broken: a control plane process killed,
// ovsdb-server paused or stopped.
func (r *run) restore() {
	r.mu.Lock()
	down := slices.Sorted(maps.Keys(r.down))
	r.mu.Unlock()
	// etcd first: the API server needs it.
	for _, name := range down {
		r.restartControlPlane(name)
	}
	if r.ovnPaused {
		r.db.Resume(r.t)
	}
	if r.ovnStopped {
		r.db.Start(r.t)
	}
}

// deleteAll removes the scenario's Networks, so that the next scenario's managers, which watch
// every namespace, do not see them. The managers are gone by then: the finalizers are removed by
// hand.
func (r *run) deleteAll() {
	ctx := r.ctx
	for _, ns := range r.namespaces {
		err := retry(ctx, time.Minute, func(ctx context.Context) error {
			return r.client.SamplecrdV1().Networks(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		})
		if err != nil {
			r.t.Errorf("deleting the Networks of %s: %v", ns, err)
			return
		}
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil}})
	err := poll(ctx, 100*time.Millisecond, 2*time.Minute, func() bool {
		left := 0
		for _, ns := range r.namespaces {
			list, err := r.client.SamplecrdV1().Networks(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
			left += len(list.Items)
			_ = parallel(len(list.Items), burstClients, func(i int) error {
				n := list.Items[i]
				if len(n.Finalizers) > 0 {
					_, _ = r.client.SamplecrdV1().Networks(ns).Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
				}
				return nil
			})
		}
		return left == 0
	})
	if err != nil {
		r.t.Errorf("the scenario's Networks are not all gone: %v", err)
	}
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// killLeader kills the leading manager with sig and returns it and its process.
func (r *run) killLeader(sig syscall.Signal) (*replica, *incarnation) {
	leader, ok := r.mgrs.leader()
	if !ok {
		r.fatalf("no manager leads: %v", r.mgrs.problems())
	}
	return leader, leader.signal(sig)
}

// waitRestarted waits until the replica has started a process after inc, and returns when.
func (r *run) waitRestarted(rep *replica, inc *incarnation, timeout time.Duration) time.Time {
	var at time.Time
	err := poll(r.ctx, 10*time.Millisecond, timeout, func() bool {
		cur := rep.current()
		if cur != inc {
			at = cur.started
			return true
		}
		return false
	})
	if err != nil {
		r.fatalf("%s was not restarted within %v", rep.name, timeout)
	}
	return at
}
