package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// burstTarget is the share of the baseline's throughput the controller should reach.
const burstTarget = 0.70

// runBurst creates -networks Networks at once and times until all are Ready with their logical
// switch. The baseline is a plain client making the same API writes per Network as the controller
// made, counted from the API server's metrics, with no manager running.
func runBurst(ctx context.Context, b *bench) error {
	const sc = "burst"
	n := b.cfg.networks
	if err := b.startManager(ctx); err != nil {
		return err
	}
	before, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return err
	}
	mgrBefore, err := b.mgr.scrape()
	if err != nil {
		return err
	}
	cpu := b.startCPU(b.mgr)
	profiled := b.profile(sc, 10*time.Second)
	logf("creating %d Networks with %d workers", n, b.cfg.workers)
	start := time.Now()
	if _, err := b.createNetworks(ctx, b.allocate(n), n); err != nil {
		return err
	}
	created := time.Since(start)
	done, err := b.waitAllReady(ctx, 10*time.Minute)
	if err != nil {
		return err
	}
	elapsed := done.Sub(start)
	cpuText := cpu.String()
	// Events are recorded asynchronously: count the writes once the manager has made them all.
	mgrAfter, err := b.quiesce(ctx, b.mgr)
	if err != nil {
		return err
	}
	after, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return err
	}
	writes := after.since(before).writes()
	writes[request{"POST", "networks"}] -= float64(n) // the bench's creates
	if writes[request{"POST", "networks"}] <= 0 {
		delete(writes, request{"POST", "networks"})
	}
	perNetwork := writes.total() / float64(n)
	rate := float64(n) / elapsed.Seconds()

	limiterWait := mgrAfter.Sum("samplecrd_rest_client_rate_limiter_duration_seconds_sum", nil) -
		mgrBefore.Sum("samplecrd_rest_client_rate_limiter_duration_seconds_sum", nil)
	limited := mgrAfter.Sum("samplecrd_rest_client_rate_limiter_duration_seconds_count", nil) -
		mgrBefore.Sum("samplecrd_rest_client_rate_limiter_duration_seconds_count", nil)
	delta := func(name string, match map[string]string) float64 {
		return mgrAfter.Sum(name, match) - mgrBefore.Sum(name, match)
	}
	ensure := map[string]string{"operation": "ensure"}
	ensureMean := delta("samplecrd_backend_request_duration_seconds_sum", ensure) / delta("samplecrd_backend_request_duration_seconds_count", ensure)
	patch := map[string]string{"verb": "PATCH"}
	patchMean := delta("samplecrd_rest_client_request_duration_seconds_sum", patch) / delta("samplecrd_rest_client_request_duration_seconds_count", patch)
	syncSum := mgrAfter.Sum("samplecrd_reconcile_duration_seconds_sum", map[string]string{"controller": "network-controller"}) -
		mgrBefore.Sum("samplecrd_reconcile_duration_seconds_sum", map[string]string{"controller": "network-controller"})
	syncs := mgrAfter.Sum("samplecrd_reconcile_duration_seconds_count", map[string]string{"controller": "network-controller"}) -
		mgrBefore.Sum("samplecrd_reconcile_duration_seconds_count", map[string]string{"controller": "network-controller"})
	dropped := b.mgr.logCount(msgEventDropped)
	<-profiled
	if err := b.stopManager(); err != nil {
		return err
	}

	// Baseline: the same writes, by a plain client, with nothing else running.
	plan := baselinePlan(writes, n)
	b.plan = plan
	logf("baseline: %d Networks, each created then written %s", n, plan)
	baseCPU := b.startCPU()
	baseStart := time.Now()
	if err := b.baselineWrites(ctx, plan, b.allocate(n), n); err != nil {
		return err
	}
	baseElapsed := time.Since(baseStart)
	baseCPUText := baseCPU.String()
	baseRate := float64(n) / baseElapsed.Seconds()
	if err := b.deleteBaseline(ctx); err != nil {
		return err
	}
	ratio := rate / baseRate

	b.add(
		row{Scenario: sc, Measure: fmt.Sprintf("%d Networks created at once: Ready with OVN rows", n),
			Value: fmt.Sprintf("%.0f Networks/s (%s)", rate, fmtDuration(elapsed)), Number: rate, Unit: "Networks/s",
			Baseline: fmt.Sprintf("%.0f Networks/s (%s)", baseRate, fmtDuration(baseElapsed)),
			Target:   fmt.Sprintf("≥ %.0f Networks/s", burstTarget*baseRate), Met: met(ratio >= burstTarget)},
		row{Scenario: sc, Measure: "controller / baseline throughput",
			Value: fmt.Sprintf("%.1f %%", 100*ratio), Number: 100 * ratio, Unit: "%",
			Target: fmt.Sprintf("≥ %.0f %%", 100*burstTarget), Met: met(ratio >= burstTarget)},
		row{Scenario: sc, Measure: "controller's API writes per Network",
			Value: fmt.Sprintf("%.2f", perNetwork), Number: perNetwork, Unit: "writes",
			Baseline: fmt.Sprintf("%d + the create", plan.total())},
	)
	b.explain(sc, "the %d creates took %s (%.0f/s); the controller's writes: %s", n, fmtDuration(created), float64(n)/created.Seconds(), writes)
	b.explain(sc, "baseline: a %d-worker client with no rate limit creates each Network, then writes %s, with no manager running", b.cfg.workers, plan)
	b.explain(sc, "controller: %s", cpuText)
	b.explain(sc, "baseline: %s", baseCPUText)
	if dropped > 0 {
		b.explain(sc, "controller: the manager dropped %d events: its event broadcaster's queue (1,000) was full", dropped)
	}
	if limited > 0 && syncs > 0 {
		b.explain(sc, "controller: %.0f syncs of %.1f ms on average (an OVN ensure %.1f ms, a PATCH %.1f ms); API requests waited %.1f s in all for the client-side rate limiter (--kube-api-qps; %.1f ms per request)",
			syncs, 1000*syncSum/syncs, 1000*ensureMean, 1000*patchMean, limiterWait, 1000*limiterWait/limited)
	}
	return nil
}

// msgEventDropped is what client-go's event recorder logs when its queue is full.
const msgEventDropped = "Unable to record event: too many queued events, dropped event"

// quiesce waits until the manager has stopped writing (its count of non-GET requests stays the
// same for a second) and returns its metrics then.
func (b *bench) quiesce(ctx context.Context, m *manager) (metricSet, error) {
	last, lastChange := -1.0, time.Now()
	var set metricSet
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		s, err := m.scrape()
		if err != nil {
			return false, err
		}
		set = s
		w := 0.0
		for _, x := range s {
			if x.Name == "samplecrd_rest_client_requests_total" && x.Labels["method"] != "GET" && x.Labels["method"] != "PUT" {
				w += x.Value
			}
		}
		if w != last {
			last, lastChange = w, time.Now()
			return false, nil
		}
		return time.Since(lastChange) >= time.Second, nil
	})
	return set, err
}

// writePlan is how many writes of each kind the baseline makes per Network after creating it.
type writePlan []struct {
	req   request
	count int
}

func (p writePlan) total() int {
	t := 0
	for _, w := range p {
		t += w.count
	}
	return t
}

func (p writePlan) String() string {
	var parts []string
	for _, w := range p {
		parts = append(parts, fmt.Sprintf("%d × %s", w.count, w.req))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// baselineKinds are the writes the baseline knows how to make, in the controller's order.
var baselineKinds = []request{
	{"PATCH", "networks"}, {"PATCH", "networks/status"}, {"POST", "events"}, {"PATCH", "events"},
}

// baselinePlan rounds the controller's writes per Network to whole writes of the kinds the
// baseline makes.
func baselinePlan(writes requestCounts, n int) writePlan {
	var p writePlan
	for _, k := range baselineKinds {
		if c := int(math.Round(writes[k] / float64(n))); c > 0 {
			p = append(p, struct {
				req   request
				count int
			}{k, c})
		}
	}
	return p
}

// baselineWrites creates count Networks in the baseline namespace and makes plan's writes on
// each, with the bench's workers and no rate limit.
func (b *bench) baselineWrites(ctx context.Context, plan writePlan, first, count int) error {
	return parallel(ctx, count, b.cfg.workers, func(ctx context.Context, i int) error {
		_, err := b.baselineNetwork(ctx, plan, first+i)
		return err
	})
}

// baselineNetwork creates one baseline Network and makes plan's writes on it.
func (b *bench) baselineNetwork(ctx context.Context, plan writePlan, i int) (*samplecrdv1.Network, error) {
	n, err := b.client.SamplecrdV1().Networks(nsBaseline).Create(ctx, newNetwork(nsBaseline, "base", i), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("baseline: creating a Network: %w", err)
	}
	return n, b.applyPlan(ctx, n, plan, false)
}

// applyPlan makes plan's writes on n one after the other, in the controller's order: the metadata
// patch (the controller's finalizer; here an annotation, so that the baseline's Networks delete at
// once), the status patch, the event. With asyncEvents the events are written in the background,
// as an event recorder does.
func (b *bench) applyPlan(ctx context.Context, n *samplecrdv1.Network, plan writePlan, asyncEvents bool) error {
	nets := b.client.SamplecrdV1().Networks(n.Namespace)
	events := b.kube.CoreV1().Events(n.Namespace)
	var err error
	for _, w := range plan {
		for range w.count {
			switch w.req {
			case request{"PATCH", "networks"}:
				patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
					"annotations":     map[string]string{"bench.samplecrd.k8s.io/baseline": "true"},
					"resourceVersion": n.ResourceVersion,
				}})
				n, err = nets.Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			case request{"PATCH", "networks/status"}:
				patch, _ := json.Marshal(map[string]any{"status": map[string]any{
					"observedGeneration": n.Generation,
					"conditions": []metav1.Condition{{
						Type: samplecrdv1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: n.Generation,
						LastTransitionTime: metav1.Now(), Reason: samplecrdv1.ReasonSynced, Message: "Network synced successfully",
					}},
					"backend": samplecrdv1.NetworkBackendStatus{Type: "ovn", Name: "bench." + n.Namespace + "." + n.Name, ID: string(n.UID)},
				}})
				n, err = nets.Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
			case request{"POST", "events"}, request{"PATCH", "events"}:
				write := func() error {
					ev, err := events.Create(ctx, baselineEvent(n), metav1.CreateOptions{})
					if err != nil || w.req.verb == "POST" {
						return err
					}
					patch, _ := json.Marshal(map[string]any{"count": 2, "lastTimestamp": metav1.Now()})
					_, err = events.Patch(ctx, ev.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
					return err
				}
				if asyncEvents {
					go func() { _ = write() }()
				} else {
					err = write()
				}
			}
			if err != nil {
				return fmt.Errorf("baseline: %s: %w", w.req, err)
			}
		}
	}
	return nil
}

// baselineEvent is the event the controller's recorder would write for n.
func baselineEvent(n *samplecrdv1.Network) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", n.Name, time.Now().UnixNano()), Namespace: n.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Network", APIVersion: samplecrdv1.SchemeGroupVersion.String(), Namespace: n.Namespace, Name: n.Name,
			UID: n.UID, ResourceVersion: n.ResourceVersion,
		},
		Reason: "Synced", Message: "Network synced successfully", Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "network-controller"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "network-controller",
	}
}

// deleteBaseline removes the baseline's Networks and events, so that no manager ever sees them.
func (b *bench) deleteBaseline(ctx context.Context) error {
	if err := b.client.SamplecrdV1().Networks(nsBaseline).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the baseline's Networks: %w", err)
	}
	if err := b.kube.CoreV1().Events(nsBaseline).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the baseline's events: %w", err)
	}
	return nil
}

// profile takes a CPU profile of the manager over d in the background, when -profile is set, and
// returns a channel closed when it is written.
func (b *bench) profile(name string, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if !b.cfg.profile {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		b.savePprof(b.mgr, name, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())))
	}()
	return done
}

// savePprof fetches /debug/pprof/<what> of the manager into the results directory.
func (b *bench) savePprof(m *manager, name, what string) {
	resp, err := m.scraper.Do("https://" + m.metrics + "/debug/pprof/" + what)
	if err != nil {
		logf("profiling the manager: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		logf("profiling the manager: %s (is it running with --enable-pprof?)", resp.Status)
		return
	}
	dir := outDir(b.env.root, b.cfg.out)
	_ = os.MkdirAll(dir, 0o755)
	kind, _, _ := strings.Cut(what, "?")
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.pprof", b.rep.Started.UTC().Format("20060102T150405Z"), name, kind))
	f, err := os.Create(path)
	if err != nil {
		logf("profiling the manager: %v", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		logf("profiling the manager: %v", err)
		return
	}
	logf("wrote the manager's %s profile to %s", kind, path)
}
