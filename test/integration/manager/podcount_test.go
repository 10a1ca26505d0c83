package manager

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const labelKey = "hopegi/pod-count"

// TestPodCount runs the podcount controller in each event mode: the control-plane node carries the
// pod count within 2 s of pods being created and deleted, no node is written while nothing changes,
// and events follow the mode.
func TestPodCount(t *testing.T) {
	for _, mode := range []string{"changed", "all", "none"} {
		t.Run(mode, func(t *testing.T) {
			client := env.KubeClient(t)
			ctx := context.Background()
			ns := framework.CreateNamespace(t, client)
			node := "control-plane-" + mode
			// The seed's label, on one node, and the current one on another: both are counted.
			createNode(t, client, node, map[string]string{"node-role.kubernetes.io/master": ""})
			createNode(t, client, node+"-cp", map[string]string{"node-role.kubernetes.io/control-plane": ""})
			createNode(t, client, "worker-"+mode, map[string]string{"node-role.kubernetes.io/worker": ""})

			m := startManager(t, "manager", "--controllers=podcount", "--leader-elect=false",
				"--podcount-event-mode="+mode, "--podcount-period=1s")
			metrics := m.ServingAddress(t, "metrics", timeout)

			waitLabel := func(what string) time.Duration {
				t.Helper()
				start := time.Now()
				want := strconv.Itoa(podTotal(t, client))
				waitUntil(t, what, 10*time.Second, func() bool {
					a, _ := nodeLabel(t, client, node, labelKey)
					b, _ := nodeLabel(t, client, node+"-cp", labelKey)
					return a == want && b == want
				})
				return time.Since(start)
			}
			waitLabel("the first count")
			createPods(t, client, ns, "pod", 5)
			afterCreate := waitLabel("the count after creating 5 pods")
			if err := client.CoreV1().Pods(ns).Delete(ctx, "pod-0", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			afterDelete := waitLabel("the count after deleting a pod")
			t.Logf("label right %v after the creates, %v after the delete", afterCreate.Round(time.Millisecond), afterDelete.Round(time.Millisecond))
			for what, d := range map[string]time.Duration{"creating pods": afterCreate, "deleting a pod": afterDelete} {
				if d > 2*time.Second {
					t.Errorf("the label was right %v after %s; want within 2s", d, what)
				}
			}
			if l, _ := nodeLabel(t, client, "worker-"+mode, labelKey); l != "" {
				t.Errorf("a worker node got the label: %q", l)
			}

			// Nothing changes for three periodic passes: no node is written.
			_, rv := nodeLabel(t, client, node, labelKey)
			passes := metricValue(t, metrics, "samplecrd_reconcile_total", map[string]string{"controller": "podcount-controller"})
			waitUntil(t, "three more passes", 10*time.Second, func() bool {
				return metricValue(t, metrics, "samplecrd_reconcile_total", map[string]string{"controller": "podcount-controller"}) >= passes+3
			})
			if _, now := nodeLabel(t, client, node, labelKey); now != rv {
				t.Errorf("the node was written while nothing changed (resourceVersion %s -> %s)", rv, now)
			}

			// Events, as the mode says.
			count := podTotal(t, client)
			msg := fmt.Sprintf("pod count is %d", count)
			switch mode {
			case "all":
				// Every pod gets an event every pass.
				for i := 1; i < 5; i++ {
					waitUntil(t, fmt.Sprintf("pod-%d's event %q", i, msg), 10*time.Second, func() bool {
						return hasEvent(eventsWith(t, ns, "SuccessCalculatePod", ""), fmt.Sprintf("pod-%d", i), msg)
					})
				}
			case "changed":
				waitUntil(t, fmt.Sprintf("node %s's event %q", node, msg), 10*time.Second, func() bool {
					return hasEvent(eventsWith(t, "default", "SuccessCalculatePod", node), node, msg)
				})
				if e := eventsWith(t, ns, "SuccessCalculatePod", ""); len(e) != 0 {
					t.Errorf("pods got events in mode changed: %v", e)
				}
			case "none":
				if e := append(eventsWith(t, ns, "SuccessCalculatePod", ""), eventsWith(t, "default", "SuccessCalculatePod", node)...); len(e) != 0 {
					t.Errorf("events in mode none: %v", e)
				}
			}
		})
	}
}

// eventsWith returns "object: message" for the events in ns with the reason, on the named object
// when name is not empty.
func eventsWith(t *testing.T, ns, reason, name string) []string {
	t.Helper()
	selector := fields.Set{"reason": reason}
	if name != "" {
		selector["involvedObject.name"] = name
	}
	list, err := env.KubeClient(t).CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: selector.String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.InvolvedObject.Name+": "+e.Message)
	}
	return out
}

func hasEvent(events []string, object, message string) bool {
	for _, e := range events {
		if e == object+": "+message {
			return true
		}
	}
	return false
}
