package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// ovnOutage is how long the outage scenarios keep OVN unreachable: longer than the backend's
// reconnection backoff cap (5 s), so that it retries at its slowest.
const ovnOutage = 15 * time.Second

// outageResync is the resync period of the managers of the long outages, so that a resync, which
// syncs every Network, falls in the outage, as the default 30 s one does in half of such outages:
// what a sync of a programmed Network does while OVN is away is part of what they test.
const outageResync = 10 * time.Second

// emptySlowDown is how long ovsdb-server stays down before it restarts on an empty database, in
// the slow case.
const emptySlowDown = 3 * time.Second

// scenarios are the suite's, in the order they run.
var scenarios = []*scenario{
	{
		name:   "baseline",
		fault:  "none",
		inject: func(r *run) {},
	},
	{
		name:   "ovsdb-kill",
		fault:  "kill -9 of ovsdb-server, restarted at once on the same database",
		outage: true,
		inject: func(r *run) {
			r.db.Kill(r.t)
			start := time.Now()
			r.db.Start(r.t)
			r.lifted()
			r.note("down %s", ms(time.Since(start)))
		},
	},
	{
		name:  "ovsdb-empty-slow",
		fault: "kill -9 of ovsdb-server, restarted on an empty database 3 s later",
		inject: func(r *run) {
			r.db.Kill(r.t)
			r.db.ReplaceDatabase(r.t, r.db.CreateEmpty(r.t))
			// The fault's deliberate duration.
			time.Sleep(emptySlowDown)
			r.db.Start(r.t)
			r.lifted()
		},
	},
	{
		name:  "ovsdb-empty-fast",
		fault: "kill -9 of ovsdb-server, restarted on an empty database at once",
		inject: func(r *run) {
			empty := r.db.CreateEmpty(r.t)
			start := time.Now()
			r.db.Kill(r.t)
			r.db.ReplaceDatabase(r.t, empty)
			r.db.Start(r.t)
			r.lifted()
			r.note("down %s", ms(time.Since(start)))
		},
	},
	{
		name:   "ovn-stopped",
		fault:  fmt.Sprintf("ovsdb-server stopped for %s, then started on the same database (resync every %s)", ovnOutage, outageResync),
		args:   []string{"--resync-period=" + outageResync.String()},
		outage: true,
		inject: func(r *run) {
			r.ovnStopped = true
			r.db.Stop(r.t)
			time.Sleep(ovnOutage)
			r.db.Start(r.t)
			r.ovnStopped = false
			r.lifted()
		},
	},
	{
		name:   "ovn-paused",
		fault:  fmt.Sprintf("ovsdb-server paused (SIGSTOP) for %s, then continued (resync every %s)", ovnOutage, outageResync),
		args:   []string{"--resync-period=" + outageResync.String()},
		outage: true,
		inject: func(r *run) {
			r.ovnPaused = true
			r.db.Pause(r.t)
			time.Sleep(ovnOutage)
			r.db.Resume(r.t)
			r.ovnPaused = false
			r.lifted()
		},
	},
	{
		name:  "manager-kill",
		fault: "kill -9 of the manager, restarted at once (it waits out the 15 s lease)",
		// The restarted manager waits for the killed one's lease to expire.
		extraDeadline: defaultLease.duration,
		inject: func(r *run) {
			rep, inc := r.killLeader(syscall.SIGKILL)
			r.liftAt = r.waitRestarted(rep, inc, time.Minute)
		},
	},
	{
		name:          "leader-failover",
		fault:         "kill -9 of the leader, a standby running (4 s lease)",
		replicas:      2,
		lease:         shortLease,
		extraDeadline: shortLease.duration,
		inject: func(r *run) {
			leader, inc := r.killLeader(syscall.SIGKILL)
			r.lifted()
			r.waitRestarted(leader, inc, time.Minute)
			r.failoverFrom = leader
		},
		check: func(r *run) {
			if now, ok := r.mgrs.leader(); !ok || now == r.failoverFrom {
				r.errorf("the standby did not take over from %s", r.failoverFrom.name)
			}
		},
	},
	{
		name:  "apiserver-kill",
		fault: "kill -9 of kube-apiserver, restarted at once",
		inject: func(r *run) {
			r.killControlPlane(testenv.KubeAPIServer)
			took := r.restartControlPlane(testenv.KubeAPIServer)
			r.lifted()
			r.note("restart took %s", seconds(took))
		},
	},
	{
		name:  "etcd-kill",
		fault: "kill -9 of etcd, restarted at once",
		inject: func(r *run) {
			r.killControlPlane(testenv.Etcd)
			took := r.restartControlPlane(testenv.Etcd)
			r.lifted()
			r.note("restart took %s", seconds(took))
		},
	},
	{
		name:          "leader-lost",
		fault:         "kube-apiserver killed until the leader exits (3 s renew deadline), then restarted",
		lease:         shortLease,
		extraDeadline: shortLease.duration,
		inject: func(r *run) {
			before := len(r.mgrs.exits())
			start := time.Now()
			r.killControlPlane(testenv.KubeAPIServer)
			if err := poll(r.ctx, 20*time.Millisecond, shortLease.renewDeadline+time.Minute, func() bool { return len(r.mgrs.exits()) > before }); err != nil {
				r.errorf("the leader did not exit with kube-apiserver down: %v", err)
			}
			r.note("the leader exited %s after the kill", seconds(time.Since(start)))
			r.restartControlPlane(testenv.KubeAPIServer)
			r.lifted()
			r.note("kube-apiserver down %s", seconds(time.Since(start)))
		},
		check: func(r *run) {
			for _, e := range r.mgrs.exits() {
				if strings.Contains(e.reason, "leader election lost") {
					return
				}
			}
			r.errorf("no manager exited with \"leader election lost\": exits %v", r.mgrs.exits())
		},
	},
	{
		name:   "deleted-while-down",
		fault:  "manager killed; the rest of the burst created, then half of all Networks deleted (a tenth of those with the finalizer removed by hand); manager started",
		inject: deletedWhileDown,
	},
	{
		name:   "spec-writer",
		fault:  "a concurrent writer changes cidr and gateway of a quarter of the Networks during the burst",
		inject: specWriter,
	},
	{
		name:   "sigterm-delete",
		fault:  "SIGTERM to the manager a third into a burst deleting two thirds of the Networks, then restarted",
		inject: sigtermDuringDelete,
	},
	{
		name:  "namespace-emptied",
		fault: "none: every Network of one namespace deleted at once, as deleting the namespace does",
		// Some of the deletes race with the finalizer's addition, which the API server can let
		// remove a Network whose finalizer it has just added (kubernetes/kubernetes#77988): the
		// delete event still shows the finalizer, and the rows go without the orphan sweep.
		inject: emptyNamespace,
	},
	{
		name:  "ovn-tamper",
		fault: "ovn-nbctl deletes and alters owned rows, adds orphans of unknown UIDs and foreign rows (orphan sweep every 10 s)",
		// Orphans added behind the manager's back are found by the sweep.
		args:          []string{"--orphan-sweep-interval=10s"},
		extraDeadline: 10 * time.Second,
		inject:        tamper,
		check:         checkForeignUntouched,
	},
}

// TestFaults runs every scenario, and logs the report (and writes it with -faults.report).
func TestFaults(t *testing.T) {
	env.Config(t) // Skips now, outside CI, when the control plane cannot run.
	rep := &report{}
	start := time.Now()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc, *networksFlag, rep) })
	}
	t.Logf("results:\n%s", rep.table())
	if *reportFlag != "" {
		if err := os.WriteFile(*reportFlag, []byte(rep.markdown(*networksFlag, *raceFlag, time.Since(start))), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}
}

// deletedWhileDown kills the manager, lets the burst finish, deletes half of the Networks (and
// removes the finalizer of a tenth of those by hand, which leaves their rows orphaned), then starts
// the manager: it must finish the deletions, remove the orphans and program the rest.
func deletedWhileDown(r *run) {
	rep := r.mgrs[0]
	rep.hold()
	inc := rep.signal(syscall.SIGKILL)
	select {
	case <-inc.proc.Done():
	case <-time.After(time.Minute):
		r.fatalf("the manager did not exit within a minute of SIGKILL")
	}
	r.waitBurst()
	var deleted, forced []*samplecrdv1.Network
	for i, spec := range r.burst.specs {
		if i%2 == 0 {
			deleted = append(deleted, spec)
			if i%20 == 0 {
				forced = append(forced, spec)
			}
		}
	}
	if err := deleteNetworks(r.ctx, r.client, deleted, time.Minute, nil); err != nil {
		r.fatalf("%v", err)
	}
	r.want -= len(deleted)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil}})
	for _, n := range forced {
		if _, err := r.client.SamplecrdV1().Networks(n.Namespace).Patch(r.ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !isNotFound(err) {
			r.fatalf("removing the finalizer of %s/%s: %v", n.Namespace, n.Name, err)
		}
	}
	rep.release()
	r.liftAt = r.waitRestarted(rep, inc, time.Minute)
	r.note("%d deleted, %d of them forced", len(deleted), len(forced))
}

// specWriter changes the spec of a quarter of the Networks while the burst goes on: a new gateway,
// a cidr of its own, or the cidr of another Network of its namespace.
func specWriter(r *run) {
	changes := max(r.n/4, 12)
	var gateways, moves, onto, refused atomic.Int64
	rng := rand.New(rand.NewPCG(1, 2))
	picks := make([]int, changes)
	kinds := make([]int, changes)
	for c := range changes {
		kinds[c] = c % 3
		picks[c] = rng.IntN(1 << 30)
	}
	err := parallel(changes, 4, func(c int) error {
		created := r.burst.createdIndexes()
		i := created[picks[c]%len(created)]
		n := r.burst.specs[i]
		var spec samplecrdv1.NetworkSpec
		switch kinds[c] {
		case 0:
			// Another gateway inside the cidr it has now.
			cur, err := r.client.SamplecrdV1().Networks(n.Namespace).Get(r.ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("reading %s/%s: %w", n.Namespace, n.Name, err)
			}
			p := netip.MustParsePrefix(cur.Spec.Cidr)
			gw := p.Addr()
			for range 2 + c%50 {
				gw = gw.Next()
			}
			spec = samplecrdv1.NetworkSpec{Cidr: cur.Spec.Cidr, Gateway: gw.String()}
			gateways.Add(1)
		case 1:
			spec = samplecrdv1.NetworkSpec{Cidr: fmt.Sprintf("10.%d.%d.0/24", 60+c/256, c%256), Gateway: fmt.Sprintf("10.%d.%d.1", 60+c/256, c%256)}
			moves.Add(1)
		default:
			// Onto the cidr the burst gave another Network of the namespace.
			k := len(r.namespaces) * (1 + c%7)
			o := i - k
			if o < 0 {
				o = i + k
			}
			if o >= len(r.burst.specs) {
				o = i % len(r.namespaces)
			}
			other := burstSpec(o, r.namespaces)
			spec = samplecrdv1.NetworkSpec{Cidr: other.Spec.Cidr, Gateway: other.Spec.Gateway}
			onto.Add(1)
		}
		patch, _ := json.Marshal(map[string]any{"spec": spec})
		return retry(r.ctx, time.Minute, func(ctx context.Context) error {
			_, err := r.client.SamplecrdV1().Networks(n.Namespace).Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			if apierrors.IsInvalid(err) {
				// Another change of the same Network moved its cidr away from the gateway.
				refused.Add(1)
				return nil
			}
			return err
		})
	})
	if err != nil {
		r.fatalf("changing specs: %v", err)
	}
	r.waitBurst()
	r.lifted()
	r.note("%d changes: %d gateways, %d cidrs moved, %d onto another's cidr, %d refused by validation", changes, gateways.Load(), moves.Load(), onto.Load(), refused.Load())
}

// sigtermDuringDelete lets the burst converge, deletes two thirds of the Networks from several
// clients, and sends SIGTERM to the manager a third into the deletions: it must drain and exit 0;
// restarted, it finishes the deletions.
func sigtermDuringDelete(r *run) {
	r.waitBurst()
	if ok, v := r.waitConverged(time.Now(), r.deadline()); !ok {
		r.fatalf("the burst did not converge before the deletions: %s", v)
	}
	// Two thirds of each namespace's: every namespace keeps Networks, and its router.
	var victims []*samplecrdv1.Network
	for i, spec := range r.burst.specs {
		if (i/len(r.namespaces))%3 != 0 {
			victims = append(victims, spec)
		}
	}
	var progress atomic.Int64
	done := make(chan error, 1)
	go func() { done <- deleteNetworks(r.ctx, r.client, victims, 2*time.Minute, &progress) }()
	if err := poll(r.ctx, 5*time.Millisecond, time.Minute, func() bool { return progress.Load() >= int64(len(victims)/3) }); err != nil {
		r.fatalf("waiting for a third of the deletions: %v", err)
	}
	rep := r.mgrs[0]
	rep.hold()
	inc := rep.signal(syscall.SIGTERM)
	termAt := time.Now()
	select {
	case <-inc.proc.Done():
	case <-time.After(defaultShutdownTimeout + 30*time.Second):
		r.fatalf("the manager did not exit within %v of SIGTERM", defaultShutdownTimeout+30*time.Second)
	}
	took := time.Since(termAt)
	code := inc.proc.ExitCode()
	r.note("exited %d %s after SIGTERM", code, seconds(took))
	if code != 0 {
		r.errorf("the manager exited %d after SIGTERM, want 0", code)
	}
	if err := <-done; err != nil {
		r.fatalf("%v", err)
	}
	r.want -= len(victims)
	rep.release()
	r.liftAt = r.waitRestarted(rep, inc, time.Minute)
}

// emptyNamespace lets the burst finish, then deletes every Network of the last namespace from
// several clients: the namespace's router must go with its last Network.
func emptyNamespace(r *run) {
	r.waitBurst()
	var victims []*samplecrdv1.Network
	for i, spec := range r.burst.specs {
		if i%len(r.namespaces) == len(r.namespaces)-1 {
			victims = append(victims, spec)
		}
	}
	if err := deleteNetworks(r.ctx, r.client, victims, time.Minute, nil); err != nil {
		r.fatalf("%v", err)
	}
	r.want -= len(victims)
	r.lifted()
	r.note("%d deleted", len(victims))
}

// defaultShutdownTimeout is the manager's --shutdown-timeout.
const defaultShutdownTimeout = 30 * time.Second

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
