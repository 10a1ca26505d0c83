package networkapi

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// policyDenied starts every refusal of the allowed-cidrs policy (config/policy), which the
// framework's control plane enforces.
const policyDenied = "ValidatingAdmissionPolicy 'allowed-cidrs.samplecrd.k8s.io' with binding 'allowed-cidrs.samplecrd.k8s.io' denied request: "

// outsideMessage is the policy's refusal of cidr in namespace ns, which allows ranges.
func outsideMessage(ns, cidr, ranges string) string {
	return fmt.Sprintf("cidr %s is outside the ranges that namespace %s allows in its annotation %s: %s",
		cidr, ns, samplecrdv1.AllowedCIDRsAnnotation, ranges)
}

// malformedMessage is the policy's refusal of every Network of namespace ns, whose annotation is
// malformed as problem says.
func malformedMessage(ns, problem string) string {
	return fmt.Sprintf("the annotation %s of namespace %s is malformed: %s; it must list CIDRs separated by commas, "+
		"such as 10.20.0.0/16,fd00:20::/48, and until it is fixed, no Network can be created in the namespace or have its cidr changed",
		samplecrdv1.AllowedCIDRsAnnotation, ns, problem)
}

// tooLongMessage is the policy's refusal of every Network of namespace ns, whose annotation is
// length characters long.
func tooLongMessage(ns string, length int) string {
	return fmt.Sprintf("the annotation %s of namespace %s is malformed: it is %d characters long, more than the %d this policy reads; "+
		"until it is fixed, no Network can be created in the namespace or have its cidr changed",
		samplecrdv1.AllowedCIDRsAnnotation, ns, length, samplecrdv1.AllowedCIDRsAnnotationMaxLength)
}

// checkDenied fails the test unless err is the policy's refusal with message want.
func checkDenied(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server admitted it; want the refusal %q", want)
	}
	if !apierrors.IsForbidden(err) || !strings.HasSuffix(err.Error(), policyDenied+want) {
		t.Fatalf("got %v\nwant Forbidden: ...%s%s", err, policyDenied, want)
	}
}

// network is a Network on cidr with its first host as gateway.
func network(name, cidr string) *samplecrdv1.Network {
	p := netip.MustParsePrefix(cidr)
	return &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: p.Addr().Next().String()},
	}
}

// padded is value followed by spaces up to length characters.
func padded(value string, length int) string {
	return value + strings.Repeat(" ", length-len(value))
}

func TestAllowedCIDRsPolicy(t *testing.T) {
	cfg := env.Config(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	client := clientset.NewForConfigOrDie(cfg)
	maxLength := samplecrdv1.AllowedCIDRsAnnotationMaxLength

	// A want of "" is admitted; otherwise want(ns) is the policy's message.
	admitted := func(string) string { return "" }
	outside := func(cidr, ranges string) func(string) string {
		return func(ns string) string { return outsideMessage(ns, cidr, ranges) }
	}
	malformed := func(problem string) func(string) string {
		return func(ns string) string { return malformedMessage(ns, problem) }
	}
	tooLong := func(length int) func(string) string {
		return func(ns string) string { return tooLongMessage(ns, length) }
	}
	cases := []struct {
		name string
		// annotations of the namespace.
		annotations map[string]string
		cidr        string
		want        func(ns string) string
	}{
		{"inside the one range", allowed("10.20.0.0/16"), "10.20.5.0/24", admitted},
		{"the range itself", allowed("10.20.0.0/16"), "10.20.0.0/16", admitted},
		{"the last block of the range", allowed("10.20.0.0/16"), "10.20.255.252/30", admitted},
		{"outside the range", allowed("10.20.0.0/16"), "10.21.0.0/24", outside("10.21.0.0/24", "10.20.0.0/16")},
		{"containing the range", allowed("10.20.0.0/16"), "10.0.0.0/8", outside("10.0.0.0/8", "10.20.0.0/16")},
		{"the block just before the range", allowed("10.20.0.0/16"), "10.19.255.252/30", outside("10.19.255.252/30", "10.20.0.0/16")},
		{"IPv6 where only IPv4 is allowed", allowed("10.20.0.0/16"), "fd00:20::/64", outside("fd00:20::/64", "10.20.0.0/16")},
		{"IPv6 inside the IPv6 range", allowed("fd00:20::/48"), "fd00:20:0:ff::/64", admitted},
		{"IPv6 outside the IPv6 range", allowed("fd00:20::/48"), "fd00:21::/64", outside("fd00:21::/64", "fd00:20::/48")},
		{"IPv4 where only IPv6 is allowed", allowed("fd00:20::/48"), "10.20.0.0/24", outside("10.20.0.0/24", "fd00:20::/48")},
		{"inside the first of several", allowed("10.20.0.0/16,fd00:20::/48,192.168.7.0/24"), "10.20.1.0/24", admitted},
		{"inside the IPv6 one of several", allowed("10.20.0.0/16,fd00:20::/48,192.168.7.0/24"), "fd00:20:0:1::/64", admitted},
		{"inside the last of several", allowed("10.20.0.0/16,fd00:20::/48,192.168.7.0/24"), "192.168.7.0/24", admitted},
		{"outside all of several", allowed("10.20.0.0/16,fd00:20::/48,192.168.7.0/24"), "192.168.8.0/24",
			outside("192.168.8.0/24", "10.20.0.0/16, fd00:20::/48, 192.168.7.0/24")},
		{"spaces around entries", allowed(" 10.20.0.0/16 ,  fd00:20::/48\t"), "fd00:20::/64", admitted},
		{"spaces around entries, outside", allowed(" 10.20.0.0/16 ,  fd00:20::/48\t"), "10.30.0.0/24",
			outside("10.30.0.0/24", "10.20.0.0/16, fd00:20::/48")},
		{"the longest annotation read", allowed(padded("10.20.0.0/16", maxLength)), "10.20.1.0/24", admitted},

		{"a word", allowed("10.20.0.0/16,bogus"), "10.20.1.0/24", malformed(`"bogus" is not a CIDR with no host bits set`)},
		{"an entry with host bits", allowed("10.20.0.1/16"), "10.20.1.0/24", malformed(`"10.20.0.1/16" is not a CIDR with no host bits set`)},
		{"an address, not a CIDR", allowed("10.20.0.1"), "10.20.1.0/24", malformed(`"10.20.0.1" is not a CIDR with no host bits set`)},
		{"an IPv4-mapped entry", allowed("::ffff:10.20.0.0/112"), "10.20.1.0/24", malformed(`"::ffff:10.20.0.0/112" is not a CIDR with no host bits set`)},
		{"semicolons", allowed("10.20.0.0/16;fd00:20::/48"), "10.20.1.0/24", malformed(`"10.20.0.0/16;fd00:20::/48" is not a CIDR with no host bits set`)},
		{"a trailing comma", allowed("10.20.0.0/16,"), "10.20.1.0/24", malformed("an entry is empty")},
		{"an empty value", allowed(""), "10.20.1.0/24", malformed("an entry is empty")},
		{"longer than the policy reads", allowed(padded("10.20.0.0/16", maxLength+1)), "10.20.1.0/24", tooLong(maxLength + 1)},
		// Unbounded, the policy's cost grows with the value: 260,000 commas exceed the CEL cost
		// limit after 10 s. The length is checked before anything reads the value.
		{"huge", allowed(strings.Repeat(",", 200000)), "10.20.1.0/24", tooLong(200000)},

		{"no annotation", nil, "10.21.0.0/24", admitted},
		{"other annotations only", map[string]string{"example.com/allowed-cidrs": "10.20.0.0/16"}, "10.21.0.0/24", admitted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := framework.CreateAnnotatedNamespace(t, kube, tc.annotations)
			_, err := client.SamplecrdV1().Networks(ns).Create(context.Background(), network("policy", tc.cidr), metav1.CreateOptions{})
			want := tc.want(ns)
			if want == "" {
				if err != nil {
					t.Fatalf("the API server refused %s in a namespace annotated %q: %v", tc.cidr, tc.annotations, err)
				}
				return
			}
			checkDenied(t, err, want)
		})
	}
}

// allowed is the annotations of a namespace that allows value.
func allowed(value string) map[string]string {
	return map[string]string{samplecrdv1.AllowedCIDRsAnnotation: value}
}

// TestAllowedCIDRsPolicyOnUpdate checks that an update cannot move a Network outside its
// namespace's ranges, and that an update that leaves the cidr alone passes, so that a Network
// created before the annotation can still be finalized and deleted.
func TestAllowedCIDRsPolicyOnUpdate(t *testing.T) {
	cfg := env.Config(t)
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(cfg)
	client := clientset.NewForConfigOrDie(cfg)

	t.Run("moving inside and outside", func(t *testing.T) {
		ns := framework.CreateAnnotatedNamespace(t, kube, allowed("10.20.0.0/16"))
		networks := client.SamplecrdV1().Networks(ns)
		n, err := networks.Create(ctx, network("moving", "10.20.1.0/24"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Spec = network("", "10.20.2.0/24").Spec
		if n, err = networks.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("moving the Network inside the range: %v", err)
		}
		n.Spec = network("", "10.21.0.0/24").Spec
		_, err = networks.Update(ctx, n, metav1.UpdateOptions{})
		checkDenied(t, err, outsideMessage(ns, "10.21.0.0/24", "10.20.0.0/16"))
		// kubectl apply and edit patch.
		_, err = networks.Patch(ctx, "moving", types.MergePatchType,
			[]byte(`{"spec":{"cidr":"fd00:21::/64","gateway":"fd00:21::1"}}`), metav1.PatchOptions{})
		checkDenied(t, err, outsideMessage(ns, "fd00:21::/64", "10.20.0.0/16"))
		got, err := networks.Get(ctx, "moving", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Cidr != "10.20.2.0/24" {
			t.Errorf("cidr after the refused updates = %s, want 10.20.2.0/24", got.Spec.Cidr)
		}
	})

	for _, tc := range []struct {
		name, annotation string
		// want is the refusal of a change of the cidr, in namespace ns.
		want func(ns string) string
	}{
		{"bounds that exclude it", "10.20.0.0/16", func(ns string) string {
			return outsideMessage(ns, "10.22.0.0/24", "10.20.0.0/16")
		}},
		{"a malformed annotation", "bogus", func(ns string) string {
			return malformedMessage(ns, `"bogus" is not a CIDR with no host bits set`)
		}},
	} {
		t.Run("created before "+tc.name, func(t *testing.T) {
			ns := framework.CreateNamespace(t, kube)
			networks := client.SamplecrdV1().Networks(ns)
			n, err := networks.Create(ctx, network("older", "10.21.0.0/24"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			annotateAndWait(t, kube, client, ns, tc.annotation)

			// The cidr cannot change...
			moved := n.DeepCopy()
			moved.Spec = network("", "10.22.0.0/24").Spec
			_, err = networks.Update(ctx, moved, metav1.UpdateOptions{})
			checkDenied(t, err, tc.want(ns))

			// ...but everything else can, as the network controller does: a label, the status, a
			// finalizer added, the Network deleted, the finalizer removed.
			n.Labels = map[string]string{"tier": "old"}
			n.Finalizers = []string{"samplecrd.k8s.io/test"}
			if n, err = networks.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("adding a label and a finalizer: %v", err)
			}
			n.Status.ObservedGeneration = n.Generation
			if _, err := networks.UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("writing the status: %v", err)
			}
			if err := networks.Delete(ctx, "older", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if n, err = networks.Get(ctx, "older", metav1.GetOptions{}); err != nil {
				t.Fatal(err)
			}
			n.Finalizers = nil
			if _, err := networks.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("removing the finalizer: %v", err)
			}
			if _, err := networks.Get(ctx, "older", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after its finalizer was removed, getting the deleted Network: %v, want NotFound", err)
			}
		})
	}
}

// annotateAndWait sets the allowed-cidrs annotation of namespace ns and waits until the policy
// sees it: the API server reads the namespace from an informer cache, which lags behind the
// update. It retries a dry-run creation that the new annotation refuses until it is refused.
func annotateAndWait(t *testing.T, kube kubernetes.Interface, client clientset.Interface, ns, value string) {
	t.Helper()
	ctx := context.Background()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, samplecrdv1.AllowedCIDRsAnnotation, value)
	if _, err := kube.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// Outside any range a test allows.
	probe := network("probe", "10.99.0.0/24")
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, wait.ForeverTestTimeout, true, func(ctx context.Context) (bool, error) {
		_, last = client.SamplecrdV1().Networks(ns).Create(ctx, probe, dryRun)
		return apierrors.IsForbidden(last), nil
	})
	if err != nil {
		t.Fatalf("waiting for the policy to see the annotation %q of %s: %v; last: %v", value, ns, err, last)
	}
}
