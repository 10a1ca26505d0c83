package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	// controlPlaneNode is the node the podcount controller labels.
	controlPlaneNode = "bench-control-plane"
	// podCountLabel is the label it sets (the manager's default).
	podCountLabel = "hopegi/pod-count"
	// podCountPeriod is the manager's default --podcount-period.
	podCountPeriod = 10 * time.Second
)

// runPodcount measures the podcount controller with -pods pods: its API writes per minute with no
// churn in the default event mode and in the seed's `all` mode, and how long after a pod is added
// the node's label is right. The baselines are what the `all` mode asks for, and how long the API
// server takes to show a new pod on a watch.
func runPodcount(ctx context.Context, b *bench) error {
	const sc = "podcount"
	if !b.hasController("podcount") {
		return errors.New("the manager binary has no podcount controller")
	}
	if err := b.ensurePods(ctx, b.cfg.pods); err != nil {
		return err
	}
	for name, labels := range map[string]map[string]string{
		controlPlaneNode: {"node-role.kubernetes.io/control-plane": ""},
		"bench-worker":   {"node-role.kubernetes.io/worker": ""},
	} {
		_, err := b.kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
	}
	if b.mgr == nil || b.mgrArgs != "" {
		if err := b.startManager(ctx); err != nil {
			return err
		}
	}
	total, err := b.countPods(ctx, "")
	if err != nil {
		return err
	}
	if err := b.waitLabel(ctx, total); err != nil {
		return err
	}
	if _, err := b.quiesce(ctx, b.mgr); err != nil {
		return err
	}

	// Default mode, no churn.
	logf("counting writes for %s with %d pods, event mode changed", b.cfg.podcountWindow, total)
	changed, _, err := b.writesOver(ctx, b.cfg.podcountWindow)
	if err != nil {
		return err
	}
	perMinute := changed.total() / b.cfg.podcountWindow.Minutes()

	// How long until the label is right after a pod is added.
	var labelLat, watchLat []time.Duration
	for i := range b.cfg.labelProbes {
		l, w, err := b.probeLabel(ctx, fmt.Sprintf("probe-%d-%d", time.Now().Unix(), i), total+i+1)
		if err != nil {
			return err
		}
		labelLat, watchLat = append(labelLat, l), append(watchLat, w)
	}
	total += b.cfg.labelProbes

	// The seed's mode: an event on every pod on every pass.
	logf("counting writes for %s with %d pods, event mode all", b.cfg.podcountWindow, total)
	if err := b.startManager(ctx, "--podcount-event-mode=all"); err != nil {
		return err
	}
	mgrBefore, err := b.mgr.scrape()
	if err != nil {
		return err
	}
	droppedBefore := b.mgr.logCount(msgEventDropped)
	all, cpu, err := b.writesOver(ctx, b.cfg.podcountWindow)
	if err != nil {
		return err
	}
	mgrAfter, err := b.mgr.scrape()
	if err != nil {
		return err
	}
	dropped := b.mgr.logCount(msgEventDropped) - droppedBefore
	passes := mgrAfter.Sum("samplecrd_reconcile_total", map[string]string{"controller": "podcount-controller"}) -
		mgrBefore.Sum("samplecrd_reconcile_total", map[string]string{"controller": "podcount-controller"})
	limiterWait := mgrAfter.Sum("samplecrd_rest_client_rate_limiter_duration_seconds_sum", nil) -
		mgrBefore.Sum("samplecrd_rest_client_rate_limiter_duration_seconds_sum", nil)
	if err := b.stopManager(); err != nil {
		return err
	}
	allPerMinute := all.total() / b.cfg.podcountWindow.Minutes()
	asked := float64(total) * time.Minute.Seconds() / podCountPeriod.Seconds()
	eventWrites := all.of("events").total()

	b.add(
		row{Scenario: sc, Measure: fmt.Sprintf("API writes per minute, %d pods, no churn, default mode (changed)", total),
			Value: fmt.Sprintf("%.0f/min", perMinute), Number: perMinute, Unit: "writes/min",
			Baseline: fmt.Sprintf("%.0f/min in the seed's all mode", allPerMinute), Target: "0", Met: met(perMinute == 0)},
		row{Scenario: sc, Measure: "API writes per minute, seed's all mode",
			Value: fmt.Sprintf("%.0f/min", allPerMinute), Number: allPerMinute, Unit: "writes/min",
			Baseline: fmt.Sprintf("%.0f/min asked for: every pod every %s", asked, podCountPeriod)},
		row{Scenario: sc, Measure: "all mode: events written per pod per pass",
			Value: fmt.Sprintf("%.3f", eventWrites/(float64(total)*max(passes, 1))), Number: eventWrites / (float64(total) * max(passes, 1)), Unit: "events",
			Baseline: "1 asked for"},
		row{Scenario: sc, Measure: fmt.Sprintf("pod added → node label right (median of %d)", len(labelLat)),
			Value: fmtDuration(percentile(labelLat, 0.5)), Number: float64(percentile(labelLat, 0.5).Milliseconds()), Unit: "ms",
			Baseline: fmtDuration(percentile(watchLat, 0.5)) + " pod create → seen on a watch"},
	)
	b.explain(sc, "changed mode over %s: %s", b.cfg.podcountWindow, changed)
	b.explain(sc, "all mode over %s: %.0f passes, writes %s; the manager dropped %d events (its event queue of 1,000 was full) and waited %.1f s for its client-side rate limiter; %s",
		b.cfg.podcountWindow, passes, all, dropped, limiterWait, cpu)
	b.explain(sc, "label after a pod is added: max %s (the controller waits to coalesce pod changes before it counts)", fmtDuration(percentile(labelLat, 1)))
	return nil
}

// writesOver counts the API writes (Leases left out) over a window, and the CPU use.
func (b *bench) writesOver(ctx context.Context, window time.Duration) (requestCounts, string, error) {
	before, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return nil, "", err
	}
	cpu := b.startCPU(b.mgr)
	// A measurement window, not a synchronisation.
	select {
	case <-ctx.Done():
		return nil, "", ctx.Err()
	case <-time.After(window):
	}
	cpuText := cpu.String()
	after, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return nil, "", err
	}
	return after.since(before).writes(), cpuText, nil
}

// nodeLabel reads the count label of the control-plane node.
func (b *bench) nodeLabel(ctx context.Context) (string, string, error) {
	n, err := b.kube.CoreV1().Nodes().Get(ctx, controlPlaneNode, metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	return n.Labels[podCountLabel], n.ResourceVersion, nil
}

// waitLabel waits until the control-plane node's label says want.
func (b *bench) waitLabel(ctx context.Context, want int) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		v, _, err := b.nodeLabel(ctx)
		return err == nil && v == strconv.Itoa(want), nil
	})
	if err != nil {
		v, _, _ := b.nodeLabel(ctx)
		return fmt.Errorf("waiting for %s=%d on node %s (it says %q): %w", podCountLabel, want, controlPlaneNode, v, err)
	}
	return nil
}

// probeLabel creates one pod and returns how long until the node's label said want, and how long
// until the pod was seen on a watch.
func (b *bench) probeLabel(ctx context.Context, name string, want int) (label, seen time.Duration, err error) {
	_, rv, err := b.nodeLabel(ctx)
	if err != nil {
		return 0, 0, err
	}
	nodes, err := b.kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + controlPlaneNode, ResourceVersion: rv})
	if err != nil {
		return 0, 0, err
	}
	defer nodes.Stop()
	pods, err := b.kube.CoreV1().Pods(nsPods).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return 0, 0, err
	}
	defer pods.Stop()

	start := time.Now()
	if _, err := b.kubeProto.CoreV1().Pods(nsPods).Create(ctx, benchPod(name), metav1.CreateOptions{}); err != nil {
		return 0, 0, fmt.Errorf("creating pod %s: %w", name, err)
	}
	timeout := time.After(30 * time.Second)
	value := strconv.Itoa(want)
	for label == 0 || seen == 0 {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-timeout:
			return 0, 0, fmt.Errorf("pod %s: the label did not become %s within 30 s", name, value)
		case ev, ok := <-pods.ResultChan():
			if !ok {
				return 0, 0, errors.New("the pod watch closed")
			}
			if ev.Type == watch.Added && seen == 0 {
				seen = time.Since(start)
			}
		case ev, ok := <-nodes.ResultChan():
			if !ok {
				return 0, 0, errors.New("the node watch closed")
			}
			if n, isNode := ev.Object.(*corev1.Node); isNode && n.Labels[podCountLabel] == value && label == 0 {
				label = time.Since(start)
			}
		}
	}
	return label, seen, nil
}
