package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
)

// podCountLabel is the label the podcount controller sets on control-plane nodes (its default).
const podCountLabel = "hopegi/pod-count"

// showTimeout bounds get and describe.
const showTimeout = 30 * time.Second

// isNetworkResource reports whether s names the Network resource as kubectl accepts it.
func isNetworkResource(s string) bool {
	return slices.Contains([]string{"network", "networks", "net", "network.samplecrd.k8s.io", "networks.samplecrd.k8s.io"}, s)
}

// clientConfig reads the environment's kubeconfig.
func clientConfig(dir string) (*rest.Config, error) {
	env := &Env{dir: dir}
	if _, err := os.Stat(env.Kubeconfig()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no environment runs in %s (%s is missing): start one with 'make run' or 'make local-up%s'",
			dir, env.Kubeconfig(), dirArg(dir))
	}
	return clientcmd.BuildConfigFromFlags("", env.Kubeconfig())
}

// age formats the time since t as kubectl does.
func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// cmdGet lists networks, nodes or pods, with the columns kubectl shows for them.
func cmdGet(dir, namespace, resource string) error {
	cfg, err := clientConfig(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), showTimeout)
	defer cancel()
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	defer w.Flush()
	switch {
	case isNetworkResource(resource):
		client, err := clientset.NewForConfig(cfg)
		if err != nil {
			return err
		}
		list, err := client.SamplecrdV1().Networks(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "NAMESPACE\tNAME\tCIDR\tGATEWAY\tREADY\tREASON\tAGE")
		for _, n := range list.Items {
			status, reason := "", ""
			if c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady); c != nil {
				status, reason = string(c.Status), c.Reason
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Namespace, n.Name, n.Spec.Cidr, n.Spec.Gateway, status, reason, age(n.CreationTimestamp))
		}
	case resource == "nodes" || resource == "node" || resource == "no":
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "NAME\tROLES\t%s\tAGE\n", strings.ToUpper(podCountLabel))
		for _, n := range list.Items {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Name, roles(n.Labels), n.Labels[podCountLabel], age(n.CreationTimestamp))
		}
	case resource == "pods" || resource == "pod" || resource == "po":
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		list, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "NAME\tSTATUS\tNODE\tAGE")
		for _, p := range list.Items {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Status.Phase, p.Spec.NodeName, age(p.CreationTimestamp))
		}
	default:
		return fmt.Errorf("unknown resource %q: get networks, nodes or pods", resource)
	}
	return nil
}

// roles lists a node's node-role.kubernetes.io/ labels, as kubectl's ROLES column does.
func roles(labels map[string]string) string {
	var out []string
	for k := range labels {
		if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok {
			out = append(out, role)
		}
	}
	if len(out) == 0 {
		return "<none>"
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// cmdDescribe prints a Network, its status and its events.
func cmdDescribe(dir, namespace, name string) error {
	cfg, err := clientConfig(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), showTimeout)
	defer cancel()
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	n, err := client.SamplecrdV1().Networks(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	events, err := kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.kind": "Network", "involvedObject.name": name}.String(),
	})
	if err != nil {
		return err
	}

	// One tabwriter per section, so that each table has its own columns.
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", n.Name)
	fmt.Fprintf(w, "Namespace:\t%s\n", n.Namespace)
	fmt.Fprintf(w, "Created:\t%s (%s ago)\n", n.CreationTimestamp.UTC().Format(time.RFC3339), age(n.CreationTimestamp))
	fmt.Fprintf(w, "Finalizers:\t%s\n", strings.Join(n.Finalizers, ", "))
	fmt.Fprintf(w, "CIDR:\t%s\n", n.Spec.Cidr)
	fmt.Fprintf(w, "Gateway:\t%s\n", n.Spec.Gateway)
	fmt.Fprintf(w, "Generation:\t%d (status observed %d)\n", n.Generation, n.Status.ObservedGeneration)
	if b := n.Status.Backend; b != nil {
		fmt.Fprintf(w, "Backend:\t%s %s (%s)\n", b.Type, b.Name, b.ID)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Println("Conditions:")
	if len(n.Status.Conditions) == 0 {
		fmt.Println("  <none>")
	} else {
		w = tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(w, "  Type\tStatus\tReason\tAge\tMessage")
		for _, c := range n.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, age(c.LastTransitionTime), c.Message)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}

	fmt.Println("Events:")
	if len(events.Items) == 0 {
		fmt.Println("  <none>")
		return nil
	}
	slices.SortFunc(events.Items, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) })
	w = tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "  Type\tReason\tAge\tFrom\tMessage")
	for _, e := range events.Items {
		count := ""
		if n := max(e.Count, seriesCount(e)); n > 1 {
			count = fmt.Sprintf(" (x%d)", n)
		}
		from := e.Source.Component
		if from == "" {
			// Recorded through events.k8s.io/v1, which names the controller here.
			from = e.ReportingController
		}
		fmt.Fprintf(w, "  %s\t%s\t%s%s\t%s\t%s\n", e.Type, e.Reason, age(metav1.NewTime(eventTime(e))), count, from, e.Message)
	}
	return w.Flush()
}

// eventTime is when an event last happened.
func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// seriesCount is how many times an event recorded through events.k8s.io/v1 occurred, 0 for one.
func seriesCount(e corev1.Event) int32 {
	if e.Series == nil {
		return 0
	}
	return e.Series.Count
}
