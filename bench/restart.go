package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// runRestart restarts the manager with every Network Ready and in OVN: it times the new process
// until /readyz answers 200 and until it has checked every Network, and counts what it writes to
// the API server and to OVN meanwhile and for -restart-settle after. The baseline is the least a
// restart costs: a plain client listing the same Networks, as the manager's informer does.
func runRestart(ctx context.Context, b *bench) error {
	const sc = "restart"
	if b.mgr == nil {
		if err := b.startManager(ctx); err != nil {
			return err
		}
	}
	if existing, _ := b.networks.counts(); existing < b.cfg.networks {
		if err := b.ensureNetworks(ctx, b.cfg.networks); err != nil {
			return err
		}
	}
	if _, err := b.quiesce(ctx, b.mgr); err != nil {
		return err
	}
	count, _ := b.networks.counts()
	if err := b.stopManager(); err != nil {
		return err
	}

	// Baseline: list the Networks in pages of 500, as a reflector does.
	listStart := time.Now()
	beforeList, err := b.listNetworks(ctx)
	if err != nil {
		return err
	}
	listTime := time.Since(listStart)
	listed := len(beforeList)

	if err := b.env.compact(); err != nil {
		return err
	}
	txBefore, err := b.env.transactions()
	if err != nil {
		return err
	}
	before, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return err
	}
	logf("restarting the manager with %d Networks Ready", count)
	start := time.Now()
	m, err := b.env.startManager(ctx, "manager", b.managerArgs()...)
	if err != nil {
		return err
	}
	b.mgr, b.mgrArgs = m, ""
	cpu := b.startCPU(m)
	ready, checked, err := b.waitChecked(ctx, m, start)
	if err != nil {
		return err
	}
	cpuText := cpu.String()
	// A measurement window, not a synchronisation: writes that would follow the checks are counted.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.cfg.restartSettle):
	}
	after, err := apiserverRequests(ctx, b.kube)
	if err != nil {
		return err
	}
	txAfter, err := b.env.transactions()
	if err != nil {
		return err
	}
	set, err := m.scrape()
	if err != nil {
		return err
	}
	writes := after.since(before).writes()
	statusWrites := writes.of("networks/status").total()
	tx := txAfter - txBefore
	reconciles := set.Sum("samplecrd_reconcile_total", map[string]string{"controller": "network-controller"})

	b.add(
		row{Scenario: sc, Measure: fmt.Sprintf("restart with %d Networks: process start to /readyz 200", count),
			Value: fmtDuration(ready), Number: ready.Seconds(), Unit: "s",
			Baseline: fmtDuration(listTime) + " to list them"},
		row{Scenario: sc, Measure: "process start to every Network checked",
			Value: fmtDuration(checked), Number: checked.Seconds(), Unit: "s"},
		row{Scenario: sc, Measure: "API writes (status writes) after the restart",
			Value: fmt.Sprintf("%s (%s)", formatCount(writes.total()), formatCount(statusWrites)), Number: writes.total(), Unit: "writes",
			Baseline: "0", Target: "0 status writes", Met: met(statusWrites == 0)},
		row{Scenario: sc, Measure: "OVN transactions after the restart",
			Value: fmt.Sprint(tx), Number: float64(tx), Unit: "transactions",
			Baseline: "0", Target: "0", Met: met(tx == 0)},
	)
	b.explain(sc, "the new manager synced %.0f Networks (its reconcile count) by %s; writes counted until %s after that, Lease renewals left out: %s",
		reconciles, fmtDuration(checked), b.cfg.restartSettle, writes)
	if statusWrites > 0 {
		afterList, err := b.listNetworks(ctx)
		if err != nil {
			return err
		}
		b.explain(sc, "status rewritten by the restart: %s", statusChanges(beforeList, afterList))
		events, err := b.eventsSince(ctx, nsNetworks, start)
		if err != nil {
			return err
		}
		b.explain(sc, "events since the restart: %s", events)
	}
	b.explain(sc, "baseline: one client listing the %d Networks in pages of 500; restart: %s", listed, cpuText)
	return nil
}

// listNetworks lists every Network in pages of 500, as a reflector does.
func (b *bench) listNetworks(ctx context.Context) (map[string]samplecrdv1.Network, error) {
	out := map[string]samplecrdv1.Network{}
	opts := metav1.ListOptions{Limit: 500}
	for {
		page, err := b.client.SamplecrdV1().Networks("").List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing Networks: %w", err)
		}
		for _, n := range page.Items {
			out[n.Namespace+"/"+n.Name] = n
		}
		if page.Continue == "" {
			return out, nil
		}
		opts.Continue = page.Continue
	}
}

// statusChanges says how many Networks' status changed between two lists, which fields changed
// how often, and shows the first change.
func statusChanges(before, after map[string]samplecrdv1.Network) string {
	fields := map[string]int{}
	changed := 0
	example := ""
	keys := slices.Sorted(maps.Keys(after))
	for _, k := range keys {
		a, b := before[k], after[k]
		if a.ResourceVersion == b.ResourceVersion {
			continue
		}
		changed++
		var diffs []string
		oldStatus, newStatus := flatten(a.Status), flatten(b.Status)
		for _, f := range slices.Sorted(maps.Keys(newStatus)) {
			if oldStatus[f] != newStatus[f] {
				diffs = append(diffs, f)
				fields[f]++
			}
		}
		for f := range oldStatus {
			if _, ok := newStatus[f]; !ok {
				diffs = append(diffs, f)
				fields[f]++
			}
		}
		if example == "" && len(diffs) > 0 {
			var parts []string
			for _, f := range diffs {
				parts = append(parts, fmt.Sprintf("%s %q → %q", f, oldStatus[f], newStatus[f]))
			}
			example = fmt.Sprintf("%s (created %s): %s", k, a.CreationTimestamp.UTC().Format(time.TimeOnly), strings.Join(parts, ", "))
		}
	}
	var counts []string
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		counts = append(counts, fmt.Sprintf("%s in %d", f, fields[f]))
	}
	return fmt.Sprintf("%d Networks changed (%s); for example %s", changed, strings.Join(counts, ", "), example)
}

// flatten turns a value into its JSON leaves, by path.
func flatten(v any) map[string]string {
	raw, _ := json.Marshal(v)
	var tree any
	_ = json.Unmarshal(raw, &tree)
	out := map[string]string{}
	var walk func(prefix string, t any)
	walk = func(prefix string, t any) {
		switch x := t.(type) {
		case map[string]any:
			for k, v := range x {
				walk(strings.TrimPrefix(prefix+"."+k, "."), v)
			}
		case []any:
			for i, v := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), v)
			}
		default:
			out[prefix] = fmt.Sprint(x)
		}
	}
	walk("", tree)
	return out
}

// eventsSince summarises the events of a namespace last seen at or after since: how many of each
// type and reason, and one message of each.
func (b *bench) eventsSince(ctx context.Context, namespace string, since time.Time) (string, error) {
	list, err := b.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing events: %w", err)
	}
	counts := map[string]int{}
	messages := map[string]string{}
	for _, e := range list.Items {
		if e.LastTimestamp.Time.Before(since.Truncate(time.Second)) {
			continue
		}
		k := e.Type + " " + e.Reason
		counts[k]++
		messages[k] = e.Message
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d × %s (%q)", counts[k], k, messages[k]))
	}
	if len(parts) == 0 {
		return "none", nil
	}
	return strings.Join(parts, ", "), nil
}
