package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// failoverTargetTerm is the target for a standby to lead after the leader got SIGTERM.
const failoverTargetTerm = 2 * time.Second

// leaseNamespace and leaseName locate the manager's Lease (its defaults).
const (
	leaseNamespace = "kube-system"
	leaseName      = "samplecrd-controller"
)

// runFailover runs two managers on one Lease and times how long after SIGTERM, then SIGKILL, of
// the leader the standby holds the Lease (the bench watches the Lease's holderIdentity). The
// baseline is two bare client-go leader electors in the bench with the same timings, so that it
// shows what the lease protocol alone costs.
func runFailover(ctx context.Context, b *bench) error {
	const sc = "failover"
	if err := b.stopManager(); err != nil {
		return err
	}
	lease := []string{
		"--leader-elect-lease-duration=" + b.cfg.leaseDuration.String(),
		"--leader-elect-renew-deadline=" + b.cfg.renewDeadline.String(),
		"--leader-elect-retry-period=" + b.cfg.retryPeriod.String(),
	}
	holders, err := watchHolder(ctx, b.kube, leaseNamespace, leaseName)
	if err != nil {
		return err
	}
	defer holders.stop()

	start := func(name string) (*manager, error) {
		m, err := b.env.startManager(ctx, name, b.managerArgs(lease...)...)
		if err != nil {
			return nil, err
		}
		err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
			if m.exited() {
				return false, fmt.Errorf("%w: %s", errManagerExited, m.logTail())
			}
			return m.ready() && m.identity() != "", nil
		})
		return m, err
	}
	leader, err := start("manager-a")
	if err != nil {
		return err
	}
	if _, err := holders.waitFor(ctx, leader.identity(), time.Now(), 2*b.cfg.leaseDuration); err != nil {
		leader.kill()
		return err
	}
	standby, err := start("manager-b")
	if err != nil {
		leader.kill()
		return err
	}
	defer func() {
		leader.kill()
		standby.kill()
	}()

	took := map[syscall.Signal][]time.Duration{}
	var stages []string
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for trial := range b.cfg.failoverTrials {
			logf("failover %d: %s to the leader", trial+1, sig)
			t0 := time.Now()
			leader.signal(sig)
			at, err := holders.waitFor(ctx, standby.identity(), t0, 2*b.cfg.leaseDuration+10*time.Second)
			if err != nil {
				return fmt.Errorf("after %s: %w", sig, err)
			}
			took[sig] = append(took[sig], at.Sub(t0))
			<-leader.done
			if sig == syscall.SIGTERM {
				stopped, ok1 := leader.loggedAt("All controllers stopped")
				released, ok2 := leader.loggedAt("Released the leader lease")
				if ok1 && ok2 {
					stages = append(stages, fmt.Sprintf("controllers stopped %s, Lease released %s, standby led %s after the signal",
						fmtDuration(stopped.Sub(t0)), fmtDuration(released.Sub(t0)), fmtDuration(at.Sub(t0))))
				}
			}
			// The old leader comes back as the standby.
			next, err := start(leader.name)
			if err != nil {
				return err
			}
			leader, standby = standby, next
		}
	}

	base, err := b.electorBaseline(ctx)
	if err != nil {
		return err
	}
	leaseText := fmt.Sprintf("lease %s, renew deadline %s, retry %s", b.cfg.leaseDuration, b.cfg.renewDeadline, b.cfg.retryPeriod)
	for _, s := range []struct {
		sig    syscall.Signal
		name   string
		target time.Duration
	}{{syscall.SIGTERM, "SIGTERM", failoverTargetTerm}, {syscall.SIGKILL, "SIGKILL", b.cfg.leaseDuration}} {
		d, bd := took[s.sig], base[s.sig]
		med := percentile(d, 0.5)
		b.add(row{Scenario: sc, Measure: fmt.Sprintf("%s to the leader → the standby leads (median of %d)", s.name, len(d)),
			Value:  fmt.Sprintf("%s (max %s)", fmtDuration(med), fmtDuration(percentile(d, 1))),
			Number: med.Seconds(), Unit: "s",
			Baseline: fmt.Sprintf("%s (max %s)", fmtDuration(percentile(bd, 0.5)), fmtDuration(percentile(bd, 1))),
			Target:   "≤ " + fmtDuration(s.target), Met: met(med <= s.target)})
		b.explain(sc, "after %s: %s; baseline (bare client-go electors, same timings): %s", s.name, fmtDurations(d), fmtDurations(bd))
	}
	if len(stages) > 0 {
		b.explain(sc, "SIGTERM, from the leader's log: %s", strings.Join(stages, "; "))
	}
	b.explain(sc, "two managers with every controller, %s; the time runs from the signal to the Lease naming the standby", leaseText)
	return nil
}

func fmtDurations(d []time.Duration) string {
	s := ""
	for i, x := range d {
		if i > 0 {
			s += ", "
		}
		s += fmtDuration(x)
	}
	return s
}

// holderWatch records each change of a Lease's holder, with when the bench saw it.
type holderWatch struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	seen   []holderChange
	err    error
}

type holderChange struct {
	holder string
	at     time.Time
}

// watchHolder follows the holder of a Lease with a watch, re-opened when the server closes it.
func watchHolder(ctx context.Context, kube kubernetes.Interface, namespace, name string) (*holderWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	h := &holderWatch{cancel: cancel}
	leases := kube.CoordinationV1().Leases(namespace)
	rv := ""
	if l, err := leases.Get(ctx, name, metav1.GetOptions{}); err == nil {
		rv = l.ResourceVersion
		h.observe(l)
	}
	go func() {
		for ctx.Err() == nil {
			w, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
			if err != nil {
				h.mu.Lock()
				h.err = err
				h.mu.Unlock()
				return
			}
			for ev := range w.ResultChan() {
				if l, ok := ev.Object.(*coordinationv1.Lease); ok {
					rv = l.ResourceVersion
					h.observe(l)
				}
			}
			w.Stop()
		}
	}()
	return h, nil
}

func (h *holderWatch) observe(l *coordinationv1.Lease) {
	now := time.Now()
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.seen); n == 0 || h.seen[n-1].holder != holder {
		h.seen = append(h.seen, holderChange{holder, now})
	}
}

func (h *holderWatch) stop() { h.cancel() }

// waitFor waits until the Lease was seen held by holder at or after since, and returns when.
func (h *holderWatch) waitFor(ctx context.Context, holder string, since time.Time, timeout time.Duration) (time.Time, error) {
	var at time.Time
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.err != nil {
			return false, h.err
		}
		for _, c := range h.seen {
			if c.holder == holder && !c.at.Before(since) {
				at = c.at
				return true, nil
			}
		}
		// Already the holder before since (the first wait for a leader).
		if n := len(h.seen); n > 0 && h.seen[n-1].holder == holder {
			at = h.seen[n-1].at
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return at, fmt.Errorf("waiting for %s to hold the Lease: %w", holder, err)
	}
	return at, nil
}

// electorBaseline runs pairs of bare client-go leader electors with the manager's timings, one
// pair per trial on a Lease of its own, the trials of a kind at once: the leader of each pair
// either releases its Lease as it stops (as after SIGTERM) or just stops renewing (as after
// SIGKILL), and the time until the other leads is measured. Each leader stops at a random moment
// of its standby's retry cycle, as a signal would come.
func (b *bench) electorBaseline(ctx context.Context) (map[syscall.Signal][]time.Duration, error) {
	out := map[syscall.Signal][]time.Duration{}
	cycle := time.Duration(float64(b.cfg.retryPeriod) * (1 + leaderelection.JitterFactor))
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		results := make(chan time.Duration, b.cfg.failoverTrials)
		errs := make(chan error, b.cfg.failoverTrials)
		for i := range b.cfg.failoverTrials {
			name := fmt.Sprintf("bench-baseline-%d-%d", sig, i)
			wg.Go(func() {
				d, err := b.electorTrial(ctx, name, sig == syscall.SIGTERM, time.Duration(rand.Int64N(int64(cycle))))
				if err != nil {
					errs <- err
					return
				}
				results <- d
			})
		}
		wg.Wait()
		cancel()
		close(results)
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		for d := range results {
			out[sig] = append(out[sig], d)
		}
	}
	return out, nil
}

// electorTrial runs one pair of electors on the Lease name: once the standby has seen the leader,
// it waits phase, stops the leader, and returns how long until the standby leads.
func (b *bench) electorTrial(ctx context.Context, name string, release bool, phase time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	leaderCtx, stopLeader := context.WithCancel(ctx)
	defer stopLeader()
	led := make(chan struct{})
	if err := b.runElector(leaderCtx, &wg, name, "leader", release, func() { close(led) }, nil); err != nil {
		return 0, err
	}
	select {
	case <-led:
	case <-time.After(2 * b.cfg.leaseDuration):
		return 0, errors.New("baseline: the first elector did not lead")
	}
	sawLeader := make(chan struct{})
	var once sync.Once
	standbyLed := make(chan time.Time, 1)
	if err := b.runElector(ctx, &wg, name, "standby", true, func() { standbyLed <- time.Now() },
		func(string) { once.Do(func() { close(sawLeader) }) }); err != nil {
		return 0, err
	}
	<-sawLeader
	// The signal's moment in the standby's retry cycle: a measurement choice, not a synchronisation.
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(phase):
	}
	t0 := time.Now()
	stopLeader()
	select {
	case at := <-standbyLed:
		return at.Sub(t0), nil
	case <-time.After(2*b.cfg.leaseDuration + 10*time.Second):
		return 0, errors.New("baseline: the standby elector did not lead")
	}
}

// runElector runs a client-go leader elector on the Lease name until ctx is done.
func (b *bench) runElector(ctx context.Context, wg *sync.WaitGroup, name, identity string, release bool, onLead func(), onNewLeader func(string)) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: leaseNamespace, Name: name},
		Client:     b.kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	el, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: b.cfg.leaseDuration, RenewDeadline: b.cfg.renewDeadline, RetryPeriod: b.cfg.retryPeriod,
		ReleaseOnCancel: release, Name: name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { onLead() },
			OnStoppedLeading: func() {},
			OnNewLeader:      onNewLeader,
		},
	})
	if err != nil {
		return err
	}
	wg.Go(func() { el.Run(ctx) })
	return nil
}
