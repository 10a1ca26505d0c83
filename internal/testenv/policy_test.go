package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	samplecrdfake "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned/fake"
)

// TestReadPoliciesOfTheRepository reads config/policy, as StartControlPlane does, and checks what
// the rest of the project relies on: one policy, enforced everywhere by its binding, failing
// closed, reading the annotation that pkg/apis names up to the length it names.
func TestReadPoliciesOfTheRepository(t *testing.T) {
	objs, err := readPolicies(PolicyDir(filepath.Join("..", "..")))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 {
		t.Fatalf("config/policy has %d objects, want a policy and its binding", len(objs))
	}
	policy, ok := objs[0].(*admissionregistrationv1.ValidatingAdmissionPolicy)
	if !ok {
		t.Fatalf("the first object is a %T, want a ValidatingAdmissionPolicy", objs[0])
	}
	binding, ok := objs[1].(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
	if !ok {
		t.Fatalf("the second object is a %T, want a ValidatingAdmissionPolicyBinding", objs[1])
	}
	if binding.Spec.PolicyName != policy.Name {
		t.Errorf("the binding binds %q, not the policy %q", binding.Spec.PolicyName, policy.Name)
	}
	if diff := cmp.Diff([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, binding.Spec.ValidationActions); diff != "" {
		t.Errorf("the binding's validation actions (-want +got):\n%s", diff)
	}
	if binding.Spec.MatchResources != nil || binding.Spec.ParamRef != nil {
		t.Errorf("the binding narrows the policy: %+v", binding.Spec)
	}
	if p := policy.Spec.FailurePolicy; p == nil || *p != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy = %v, want Fail", p)
	}
	var expressions []string
	for _, v := range policy.Spec.Variables {
		expressions = append(expressions, v.Expression)
	}
	all := strings.Join(expressions, "\n")
	for _, want := range []string{
		"'" + samplecrdv1.AllowedCIDRsAnnotation + "'",
		"> " + strconv.Itoa(samplecrdv1.AllowedCIDRsAnnotationMaxLength),
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no variable of the policy contains %s:\n%s", want, all)
		}
	}
}

func TestReadPolicies(t *testing.T) {
	const binding = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: %s
spec:
  policyName: p
  validationActions: ["Deny"]
`
	cases := []struct {
		name  string
		files map[string]string
		// want are the names of the objects read, in order; wantErr a part of the error.
		want    []string
		wantErr string
	}{
		{
			name: "files in the order of the kustomization, documents in file order",
			files: map[string]string{
				"kustomization.yaml": "resources:\n  - b.yaml\n  - a.yaml\n",
				"a.yaml":             fmt.Sprintf(binding, "a"),
				"b.yaml":             "# two documents and an empty one\n" + fmt.Sprintf(binding, "b1") + "---\n---\n" + fmt.Sprintf(binding, "b2"),
			},
			want: []string{"b1", "b2", "a"},
		},
		{
			name: "an unknown field",
			files: map[string]string{
				"kustomization.yaml": "resources: [a.yaml]\n",
				"a.yaml":             strings.ReplaceAll(fmt.Sprintf(binding, "a"), "policyName: p", "policyNam: p"),
			},
			wantErr: `unknown field "spec.policyNam"`,
		},
		{
			name: "a missing resource",
			files: map[string]string{
				"kustomization.yaml": "resources: [missing.yaml]\n",
			},
			wantErr: "missing.yaml: no such file",
		},
		{
			name:    "no kustomization",
			files:   map[string]string{},
			wantErr: "kustomization.yaml: no such file",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := readPolicies(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readPolicies() = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, obj := range objs {
				got = append(got, obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding).Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("objects read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWaitForAllowedCIDRsPolicy(t *testing.T) {
	forbidden := apierrors.NewForbidden(samplecrdv1.Resource("networks"), "policy-check",
		errors.New("ValidatingAdmissionPolicy 'allowed-cidrs.samplecrd.k8s.io' with binding 'allowed-cidrs.samplecrd.k8s.io' denied request: cidr 198.51.100.0/24 is outside the ranges that namespace x allows in its annotation "+samplecrdv1.AllowedCIDRsAnnotation+": 192.0.2.0/24"))
	cases := []struct {
		name string
		// results are what the dry-run creations return, in order; the last one repeats.
		results []error
		// wantErr is a part of the error; empty for none.
		wantErr string
	}{
		{name: "in effect at once", results: []error{forbidden}},
		{name: "in effect after admitting two", results: []error{nil, nil, forbidden}},
		{name: "not ready, then in effect", results: []error{apierrors.NewServiceUnavailable("not yet ready"), forbidden}},
		{name: "another refusal is not the policy", results: []error{apierrors.NewForbidden(samplecrdv1.Resource("networks"), "policy-check", errors.New("RBAC"))},
			wantErr: "last: networks.samplecrd.k8s.io \"policy-check\" is forbidden: RBAC"},
		{name: "never in effect", results: []error{nil},
			wantErr: "last: a Network on 198.51.100.0/24 was admitted in a namespace that allows 192.0.2.0/24"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := kubefake.NewClientset()
			// The fake does not generate names.
			kube.PrependReactor("create", "namespaces", func(action clienttesting.Action) (bool, runtime.Object, error) {
				ns := action.(clienttesting.CreateAction).GetObject().(*corev1.Namespace)
				if ns.Name == "" {
					ns.Name = ns.GenerateName + "x"
				}
				return false, nil, nil
			})
			client := samplecrdfake.NewClientset()
			calls := 0
			var namespaces []string
			client.PrependReactor("create", "networks", func(action clienttesting.Action) (bool, runtime.Object, error) {
				create := action.(clienttesting.CreateActionImpl)
				if diff := cmp.Diff([]string{metav1.DryRunAll}, create.GetCreateOptions().DryRun); diff != "" {
					t.Errorf("dry run (-want +got):\n%s", diff)
				}
				namespaces = append(namespaces, create.GetNamespace())
				err := tc.results[min(calls, len(tc.results)-1)]
				calls++
				return true, create.GetObject(), err
			})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()

			err := waitForAllowedCIDRsPolicy(ctx, kube, client)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && calls != len(tc.results) {
				t.Errorf("%d dry-run creations, want %d", calls, len(tc.results))
			}
			for _, ns := range namespaces {
				if ns != "samplecrd-policy-check-x" {
					t.Errorf("a dry-run creation in namespace %q, not the one created for it", ns)
				}
			}
			// Removed, whether the policy took effect or not.
			list, err := kube.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Errorf("namespaces left: %v", list.Items)
			}
		})
	}
}
