package manager

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const (
	leaseDuration = 4 * time.Second
	retryPeriod   = 250 * time.Millisecond
)

// TestLeaderElection runs two managers on one Lease: exactly one leads; after a SIGTERM the
// leader releases the lease and exits 0, and the standby leads within a few seconds; after a
// SIGKILL the standby leads within the lease duration.
func TestLeaderElection(t *testing.T) {
	client := env.KubeClient(t)
	ns := framework.CreateNamespace(t, client)
	args := []string{
		"--controllers=nodewatch",
		"--leader-elect-resource-namespace=" + ns,
		"--leader-elect-lease-duration=" + leaseDuration.String(),
		"--leader-elect-renew-deadline=3s",
		"--leader-elect-retry-period=" + retryPeriod.String(),
	}
	holder := func() string {
		lease, err := client.CoordinationV1().Leases(ns).Get(context.Background(), "samplecrd-controller", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return ""
		}
		return *lease.Spec.HolderIdentity
	}
	// leading returns the processes that say they lead, through their /metrics.
	leading := func(procs map[*framework.Process]string) []*framework.Process {
		var out []*framework.Process
		for p, addr := range procs {
			if !p.Exited() && metricValue(t, addr, "samplecrd_leader", nil) == 1 {
				out = append(out, p)
			}
		}
		return out
	}
	identity := func(p *framework.Process) string {
		for _, e := range p.LogEntries("Waiting to become the leader") {
			id, _ := e["identity"].(string)
			return id
		}
		return ""
	}

	a := startManager(t, "manager-a", args...)
	b := startManager(t, "manager-b", args...)
	procs := map[*framework.Process]string{
		a: a.ServingAddress(t, "metrics", timeout),
		b: b.ServingAddress(t, "metrics", timeout),
	}
	waitUntil(t, "one leader", timeout, func() bool { return len(leading(procs)) == 1 && holder() != "" })
	leader := leading(procs)[0]
	standby := a
	if leader == a {
		standby = b
	}
	if got, want := holder(), identity(leader); got != want {
		t.Fatalf("the Lease is held by %q, but the leader's identity is %q", got, want)
	}
	if !strings.Contains(leader.Stdout(), "nodelist:") || strings.Contains(standby.Stdout(), "nodelist:") {
		t.Errorf("only the leader should run controllers; leader printed %q, standby %q", leader.Stdout(), standby.Stdout())
	}

	// SIGTERM: the leader stops its controllers, releases the lease and exits 0.
	start := time.Now()
	leader.Signal(t, syscall.SIGTERM)
	waitUntil(t, "the standby to lead after SIGTERM", timeout, func() bool { return holder() == identity(standby) })
	afterTerm := time.Since(start)
	if code := leader.Wait(t, 30*time.Second); code != 0 {
		t.Errorf("the leader exited %d after SIGTERM, want 0", code)
	}
	if len(leader.LogEntries("Released the leader lease")) != 1 {
		t.Errorf("the leader did not log releasing the lease")
	}

	// A new standby; SIGKILL the leader: the standby waits out the lease.
	c := startManager(t, "manager-c", args...)
	procs = map[*framework.Process]string{standby: procs[standby], c: c.ServingAddress(t, "metrics", timeout)}
	waitUntil(t, "the new standby to be up", timeout, func() bool { return len(c.LogEntries("Another replica leads")) > 0 })
	start = time.Now()
	standby.Signal(t, syscall.SIGKILL)
	waitUntil(t, "the standby to lead after SIGKILL", timeout, func() bool { return holder() == identity(c) })
	afterKill := time.Since(start)

	t.Logf("failover after SIGTERM: %v; after SIGKILL: %v (lease duration %v)", afterTerm.Round(time.Millisecond), afterKill.Round(time.Millisecond), leaseDuration)
	if afterTerm > 2*time.Second+retryPeriod {
		t.Errorf("failover after SIGTERM took %v", afterTerm)
	}
	if afterKill > leaseDuration+4*retryPeriod {
		t.Errorf("failover after SIGKILL took %v, more than the lease duration %v", afterKill, leaseDuration)
	}
}
