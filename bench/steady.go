package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	informers "github.com/samplecrd/samplecrd-controller/pkg/generated/informers/externalversions"
)

// steadyTargetP99 is the target for the 99th percentile of create-to-Ready latency.
const steadyTargetP99 = 250 * time.Millisecond

// defaultPlan is the controller's writes per Network when the burst scenario did not measure them.
var defaultPlan = writePlan{
	{request{"PATCH", "networks"}, 1}, {request{"PATCH", "networks/status"}, 1}, {request{"POST", "events"}, 1},
}

// runSteady creates Networks at a steady rate and measures create-to-Ready latency: from just
// before the create request to the bench's watch seeing Ready=True (and the logical switch). The
// baseline is the smallest controller possible, in the bench: it watches the Networks and makes
// the same writes as the controller, without a backend; its latency is what the API server and the
// watch alone cost.
func runSteady(ctx context.Context, b *bench) error {
	const sc = "steady"
	plan := b.plan
	if plan == nil {
		plan = defaultPlan
	}

	// Baseline, with no manager running.
	if err := b.stopManager(); err != nil {
		return err
	}
	baseLat, baseRate, baseCPU, err := b.steadyBaseline(ctx, plan)
	if err != nil {
		return err
	}
	if err := b.deleteBaseline(ctx); err != nil {
		return err
	}

	// The controller.
	if err := b.startManager(ctx); err != nil {
		return err
	}
	count := int(b.cfg.steadyRate * b.cfg.steadyDuration.Seconds())
	first := b.allocate(count)
	logf("creating %d Networks at %.0f/s for %s", count, b.cfg.steadyRate, b.cfg.steadyDuration)
	cpu := b.startCPU(b.mgr)
	profiled := b.profile(sc, b.cfg.steadyDuration/2)
	steadyStart := time.Now()
	created, rate, err := createAtRate(ctx, b.cfg.steadyRate, count, func(ctx context.Context, i int) (string, error) {
		n := newNetwork(nsNetworks, "net", first+i)
		_, err := b.client.SamplecrdV1().Networks(nsNetworks).Create(ctx, n, metav1.CreateOptions{})
		return n.Name, err
	})
	if err != nil {
		return err
	}
	if _, err := b.waitAllReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	cpuText := cpu.String()
	<-profiled
	var lat []time.Duration
	var slow []time.Duration
	for name, start := range created {
		ready, _ := b.networks.ready(name)
		if sw, ok := b.switches.seen(name); ok && sw.After(ready) {
			ready = sw
		}
		lat = append(lat, ready.Sub(start))
		if ready.Sub(start) > steadyTargetP99 {
			slow = append(slow, start.Sub(steadyStart))
		}
	}

	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}} {
		v, base := percentile(lat, q.q), percentile(baseLat, q.q)
		r := row{Scenario: sc, Measure: fmt.Sprintf("create-to-Ready latency %s at %.0f/s", q.name, b.cfg.steadyRate),
			Value: fmtDuration(v), Number: float64(v.Milliseconds()), Unit: "ms", Baseline: fmtDuration(base)}
		if q.name == "p99" {
			r.Target, r.Met = "≤ "+fmtDuration(steadyTargetP99), met(v <= steadyTargetP99)
		}
		b.add(r)
	}
	b.explain(sc, "controller: %d Networks at %.1f/s for %s, max latency %s; %s", len(lat), rate, b.cfg.steadyDuration,
		fmtDuration(percentile(lat, 1)), cpuText)
	if len(slow) > 0 {
		b.explain(sc, "controller: %d Networks took more than %s; they were created at %s after the start", len(slow), fmtDuration(steadyTargetP99), spans(slow))
	}
	b.explain(sc, "baseline: %d Networks at %.1f/s for %s, max latency %s; a watch in the bench makes the controller's writes (%s) on each new Network, with 8 workers and no backend; %s",
		len(baseLat), baseRate, b.cfg.steadyBaselineDuration, fmtDuration(percentile(baseLat, 1)), plan, baseCPU)
	return nil
}

// steadyBaseline runs the baseline's reactor and load, and returns the latencies, the rate
// achieved and the CPU use.
func (b *bench) steadyBaseline(ctx context.Context, plan writePlan) ([]time.Duration, float64, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tracker, err := startNetworkTracker(ctx, b.client, nsBaseline)
	if err != nil {
		return nil, 0, "", err
	}
	defer tracker.stop()

	// The reactor: its own watch, a queue, 8 workers, as the controller has.
	factory := informers.NewSharedInformerFactoryWithOptions(b.client, 0, informers.WithNamespace(nsBaseline))
	defer factory.Shutdown()
	queue := make(chan *samplecrdv1.Network, 1<<16)
	if _, err := factory.Samplecrd().V1().Networks().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := obj.(*samplecrdv1.Network); ok {
				queue <- n
			}
		},
	}); err != nil {
		return nil, 0, "", err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case n := <-queue:
					if err := b.applyPlan(ctx, n.DeepCopy(), plan, true); err != nil && ctx.Err() == nil {
						logf("steady baseline: %v", err)
					}
				}
			}
		})
	}

	count := int(b.cfg.steadyRate * b.cfg.steadyBaselineDuration.Seconds())
	first := b.allocate(count)
	logf("baseline: creating %d Networks at %.0f/s for %s", count, b.cfg.steadyRate, b.cfg.steadyBaselineDuration)
	cpu := b.startCPU()
	created, rate, err := createAtRate(ctx, b.cfg.steadyRate, count, func(ctx context.Context, i int) (string, error) {
		n := newNetwork(nsBaseline, "base", first+i)
		_, err := b.client.SamplecrdV1().Networks(nsBaseline).Create(ctx, n, metav1.CreateOptions{})
		return n.Name, err
	})
	if err != nil {
		return nil, 0, "", err
	}
	err = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		_, ready := tracker.counts()
		return ready >= count, nil
	})
	if err != nil {
		return nil, 0, "", fmt.Errorf("baseline: waiting for every Network to be Ready: %w", err)
	}
	cpuText := cpu.String()
	var lat []time.Duration
	for name, start := range created {
		ready, _ := tracker.ready(name)
		lat = append(lat, ready.Sub(start))
	}
	return lat, rate, cpuText, nil
}

// createAtRate calls create count times at rate per second, each call in its own goroutine so
// that a slow request does not delay the next, and returns when each call started, by the name it
// returned, and the rate achieved.
func createAtRate(ctx context.Context, rate float64, count int, create func(ctx context.Context, i int) (string, error)) (map[string]time.Time, float64, error) {
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	started := map[string]time.Time{}
	var firstErr error
	var wg sync.WaitGroup
	begin := time.Now()
	last := begin
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for i := range count {
		if i > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return nil, 0, ctx.Err()
			case <-ticker.C:
			}
		}
		last = time.Now()
		wg.Go(func() {
			start := time.Now()
			name, err := create(ctx, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("creating Network %s: %w", name, err)
				}
				return
			}
			started[name] = start
		})
	}
	wg.Wait()
	return started, float64(count-1) / math.Max(last.Sub(begin).Seconds(), 1e-9), firstErr
}

// percentile returns the q-quantile of d (nearest rank); q=1 is the maximum.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// spans lists offsets as ranges of offsets less than 2 s apart: "+12.1-13.0 s, +42.3-43.1 s".
func spans(offsets []time.Duration) string {
	s := slices.Clone(offsets)
	slices.Sort(s)
	var parts []string
	from, to := s[0], s[0]
	flush := func() {
		parts = append(parts, fmt.Sprintf("+%.1f–%.1f s", from.Seconds(), to.Seconds()))
	}
	for _, d := range s[1:] {
		if d-to > 2*time.Second {
			flush()
			from = d
		}
		to = d
	}
	flush()
	return strings.Join(parts, ", ")
}
