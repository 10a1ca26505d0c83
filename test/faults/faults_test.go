package faults

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
)

// ovnOutage is how long the outage scenarios keep OVN unreachable: longer than the backend's
// reconnection backoff cap (5 s), so that it retries at its slowest.
const ovnOutage = 15 * time.Second

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
		fault:  fmt.Sprintf("ovsdb-server stopped for %s, then started on the same database", ovnOutage),
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
		fault:  fmt.Sprintf("ovsdb-server paused (SIGSTOP) for %s, then continued", ovnOutage),
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
			took := r.restartControlPlane(testenv.KubeAPIServer)
			r.lifted()
			r.note("kube-apiserver down %s", seconds(time.Since(start)))
			_ = took
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

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
