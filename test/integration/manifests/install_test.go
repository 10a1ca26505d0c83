package manifests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/samplecrd/samplecrd-controller/cmd/samplecrd-controller/app"
	"github.com/samplecrd/samplecrd-controller/internal/manifests"
)

const (
	// testImage is the image the test renders with, as make manifests IMG=... would.
	testImage = "registry.example.com/team/samplecrd-controller:v0.0.0-test"
	// namespace is the manager's namespace in config/manager.
	namespace = "samplecrd-system"
	// deploymentName is the manager's Deployment, and containerName its container.
	deploymentName = "samplecrd-controller"
	containerName  = "manager"
	// stopAfterTimeout is what a stop takes past --shutdown-timeout at most: 2 s for controllers
	// whose requests were cancelled (stopGrace in cmd/samplecrd-controller/app), up to 5 s for the
	// servers' shutdown, and the Lease release and the events' flush.
	stopAfterTimeout = 10 * time.Second
	// benchPeakRSS is the manager's peak RSS in the benchmark's memory scenario (10,000 Networks,
	// 20,000 pods; docs/performance.md): the memory limit must be above it.
	benchPeakRSS = 464 << 20
)

// TestInstallManifestsDryRun renders config/default as make manifests does and applies every
// object with server-side dry-run to the API server, in the manifests' own namespace (created for
// real, with its Pod Security label). The CRD and the admission policies are installed for real by
// the test control plane from the same files, so their dry-run is an update that must be a valid
// one. A Deployment's pods are not checked by Pod Security at dry-run, so a Pod made from its
// template is dry-run created in the namespace too, and must be admitted under restricted.
func TestInstallManifestsDryRun(t *testing.T) {
	objs := render(t, testImage, manifests.Install...)
	a := newApplier(t)
	applyNamespaces(t, a, objs)
	ns := find(t, objs, "Namespace", namespace)
	if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("the Namespace %s enforces Pod Security %q, want restricted", namespace, got)
	}
	dryRunAll(t, a, objs)

	var deploy appsv1.Deployment
	toTyped(t, find(t, objs, "Deployment", deploymentName), &deploy)
	pod := podOf(&deploy)
	kube := env.KubeClient(t)
	if _, err := kube.CoreV1().Pods(namespace).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("a pod of the Deployment is refused in %s: %v", namespace, err)
	}
	if w := a.warnings.take(); len(w) > 0 {
		t.Errorf("the API server warns about a pod of the Deployment: %s", strings.Join(w, "; "))
	}
}

// TestBrokenManifestsAreRefused shows that the dry-runs of TestInstallManifestsDryRun can fail:
// broken copies of the rendered objects are refused.
func TestBrokenManifestsAreRefused(t *testing.T) {
	objs := render(t, testImage, manifests.Install...)
	a := newApplier(t)
	applyNamespaces(t, a, objs)
	deploy := find(t, objs, "Deployment", deploymentName)

	for _, tc := range []struct {
		name   string
		mutate func(*unstructured.Unstructured)
		want   string
	}{
		{name: "unknown field", want: `imagePullPolicyy: field not declared in schema`,
			mutate: func(o *unstructured.Unstructured) {
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				containers[0].(map[string]any)["imagePullPolicyy"] = "Always"
				_ = unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers")
			}},
		{name: "selector that misses the pods", want: "`selector` does not match template `labels`",
			mutate: func(o *unstructured.Unstructured) {
				_ = unstructured.SetNestedStringMap(o.Object, map[string]string{"app.kubernetes.io/name": "other"}, "spec", "selector", "matchLabels")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := deploy.DeepCopy()
			tc.mutate(broken)
			_, err := a.apply(context.Background(), broken, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("dry-run of the broken Deployment = %v, want an error saying %q", err, tc.want)
			}
		})
	}

	t.Run("pod that runs as root", func(t *testing.T) {
		var d appsv1.Deployment
		toTyped(t, deploy, &d)
		pod := podOf(&d)
		pod.Spec.SecurityContext.RunAsNonRoot = nil
		pod.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
		pod.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		_, err := env.KubeClient(t).CoreV1().Pods(namespace).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
			t.Errorf("dry-run of a pod that may run as root = %v, want Pod Security restricted to refuse it", err)
		}
	})
}

// TestDeploymentInvariants checks what the rendered Deployment must have in production: the image
// asked for, two replicas spread over nodes, a PodDisruptionBudget that selects its pods and lets
// one go at a time, a memory limit above the benchmark's peak, and a grace period that outlasts
// the manager's graceful stop, read from its own flags.
func TestDeploymentInvariants(t *testing.T) {
	objs := render(t, testImage, manifests.Install...)
	var deploy appsv1.Deployment
	toTyped(t, find(t, objs, "Deployment", deploymentName), &deploy)
	spec := deploy.Spec.Template.Spec
	var container *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == containerName {
			container = &spec.Containers[i]
		}
	}
	if container == nil {
		t.Fatalf("the Deployment has no container %s", containerName)
	}
	if container.Image != testImage {
		t.Errorf("the manager's image is %q, want %q as rendered", container.Image, testImage)
	}
	replicas := int32(1)
	if deploy.Spec.Replicas != nil {
		replicas = *deploy.Spec.Replicas
	}
	if replicas != 2 {
		t.Errorf("the Deployment has %d replicas, want 2 (a leader and a standby)", replicas)
	}

	// The flags as the manager parses them, defaults included.
	opts := app.NewOptions()
	fs := pflag.NewFlagSet("samplecrd-controller", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(container.Args); err != nil {
		t.Fatalf("the manager would refuse its args %q: %v", container.Args, err)
	}
	if err := opts.Validate(); err != nil {
		t.Errorf("the manager would refuse its args %q: %v", container.Args, err)
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Error("the Deployment has no terminationGracePeriodSeconds")
	} else if grace, want := time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second, opts.ShutdownTimeout+stopAfterTimeout; grace < want {
		t.Errorf("terminationGracePeriodSeconds is %s, want at least --shutdown-timeout (%s) + %s = %s", grace, opts.ShutdownTimeout, stopAfterTimeout, want)
	}

	limit, ok := container.Resources.Limits[corev1.ResourceMemory]
	switch {
	case !ok:
		t.Error("the manager has no memory limit")
	case limit.Cmp(*resource.NewQuantity(benchPeakRSS, resource.BinarySI)) <= 0:
		t.Errorf("the memory limit %s is not above the benchmark's peak RSS of 464Mi", limit.String())
	case limit.Cmp(container.Resources.Requests[corev1.ResourceMemory]) < 0:
		t.Errorf("the memory limit %s is below the request %s", limit.String(), container.Resources.Requests.Memory())
	}

	podLabels := labels.Set(deploy.Spec.Template.Labels)
	spread := false
	for _, c := range spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			t.Errorf("topology spread over %s: %v", c.TopologyKey, err)
			continue
		}
		if c.TopologyKey == corev1.LabelHostname && c.MaxSkew == 1 && sel.Matches(podLabels) {
			spread = true
		}
	}
	if !spread {
		t.Errorf("the Deployment's pods are not spread over %s with a selector of their labels: %+v", corev1.LabelHostname, spec.TopologySpreadConstraints)
	}

	var pdbs []policyv1.PodDisruptionBudget
	for _, o := range objs {
		if o.GetKind() == "PodDisruptionBudget" {
			var pdb policyv1.PodDisruptionBudget
			toTyped(t, o, &pdb)
			pdbs = append(pdbs, pdb)
		}
	}
	if len(pdbs) != 1 {
		t.Fatalf("the manifests hold %d PodDisruptionBudgets, want 1", len(pdbs))
	}
	pdb := pdbs[0]
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Namespace != deploy.Namespace || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget %s/%s (selector %q) does not select the Deployment's pods (%s/%s, labels %q)",
			pdb.Namespace, pdb.Name, sel, deploy.Namespace, deploy.Name, podLabels)
	}
	// With every replica healthy, a drain may take one at a time: at least one, never all.
	var allowed int
	switch {
	case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MinAvailable == nil:
		allowed, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(replicas), true)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable == nil:
		var minAvailable int
		minAvailable, err = intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(replicas), true)
		allowed = int(replicas) - minAvailable
	default:
		t.Fatal("the PodDisruptionBudget sets neither or both of minAvailable and maxUnavailable")
	}
	if err != nil {
		t.Fatal(err)
	}
	if allowed < 1 || allowed >= int(replicas) {
		t.Errorf("the PodDisruptionBudget allows %d of %d replicas to be disrupted at once, want 1 to %d", allowed, replicas, replicas-1)
	}
}

// podOf is a pod of the Deployment, as its ReplicaSet would create it.
func podOf(d *appsv1.Deployment) *corev1.Pod {
	t := d.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-dry-run", Namespace: d.Namespace,
			Labels: t.Labels, Annotations: t.Annotations,
		},
		Spec: t.Spec,
	}
}
