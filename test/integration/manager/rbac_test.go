package manager

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

const serviceAccountUser = "system:serviceaccount:samplecrd-system:samplecrd-controller"

// TestLeastPrivilegeRBAC applies config/rbac unchanged and runs every controller as its service
// account: everything works, nothing is forbidden, and what the controllers never do is denied.
func TestLeastPrivilegeRBAC(t *testing.T) {
	admin := env.KubeClient(t)
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "samplecrd-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	applyRBAC(t, admin)

	ns := framework.CreateNamespace(t, admin)
	db := framework.StartOVSDB(t)
	createNode(t, admin, "rbac-control-plane", map[string]string{"node-role.kubernetes.io/control-plane": ""})
	kubeconfig := env.KubeconfigFor(t, envtest.User{Name: serviceAccountUser})
	m := framework.StartProcess(t, "manager", managerBin,
		"--kubeconfig="+kubeconfig, "--logging-format=json",
		"--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
		"--leader-elect-resource-namespace=samplecrd-system", "--leader-elect-resource-name=rbac-test",
		"--ovn-nb="+db.Endpoint(), "--cluster-name=rbac", "--podwatch-namespace="+ns)

	client := clientset.NewForConfigOrDie(env.Config(t))
	if _, err := client.SamplecrdV1().Networks(ns).Create(ctx, &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.70.0.0/16", Gateway: "10.70.0.1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPods(t, admin, ns, "rbac", 1)
	waitUntil(t, "the Network to be Ready", timeout, func() bool {
		n, err := client.SamplecrdV1().Networks(ns).Get(ctx, "rbac", metav1.GetOptions{})
		return err == nil && len(n.Status.Conditions) > 0 && n.Status.Conditions[0].Status == metav1.ConditionTrue
	})
	waitUntil(t, "the pod count label", timeout, func() bool {
		l, _ := nodeLabel(t, admin, "rbac-control-plane", labelKey)
		return l != ""
	})
	m.WaitForOutput(t, "Sync/Add/Update for Pod rbac-0\n", timeout)
	m.WaitForOutput(t, "nodelist:", timeout)
	waitUntil(t, "a Synced event on the Network", timeout, func() bool {
		return len(eventsWith(t, ns, "Synced", "rbac")) > 0
	})
	if strings.Contains(strings.ToLower(m.Stderr()), "forbidden") {
		t.Errorf("the manager was refused something:\n%s", grepLines(m.Stderr(), "forbidden"))
	}

	// What the controllers never do, the service account may not do.
	for _, attr := range []authorizationv1.ResourceAttributes{
		{Verb: "delete", Resource: "nodes"},
		{Verb: "update", Resource: "nodes"},
		{Verb: "get", Resource: "secrets", Namespace: ns},
		{Verb: "create", Resource: "pods", Namespace: ns},
		{Verb: "get", Resource: "pods", Namespace: ns},
		{Verb: "delete", Group: "samplecrd.k8s.io", Resource: "networks", Namespace: ns},
		{Verb: "create", Group: "samplecrd.k8s.io", Resource: "networks", Namespace: ns},
		{Verb: "update", Group: "samplecrd.k8s.io", Resource: "networks", Namespace: ns},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"},
	} {
		review, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: serviceAccountUser, ResourceAttributes: &attr},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed {
			t.Errorf("the service account may %s %s/%s in %q; it never needs to", attr.Verb, attr.Group, attr.Resource, attr.Namespace)
		}
	}
}

// applyRBAC creates every object of config/rbac, as kubectl apply -k would.
func applyRBAC(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "config", "rbac", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := create(ctx, client, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s: %v", file, err)
		}
	}
}

func create(ctx context.Context, client kubernetes.Interface, obj runtime.Object) error {
	var err error
	switch o := obj.(type) {
	case *corev1.ServiceAccount:
		_, err = client.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRole:
		_, err = client.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.ClusterRoleBinding:
		_, err = client.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.Role:
		_, err = client.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *rbacv1.RoleBinding:
		_, err = client.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	default:
		t := obj.GetObjectKind().GroupVersionKind()
		return &unexpectedKind{t.String()}
	}
	return err
}

type unexpectedKind struct{ kind string }

func (u *unexpectedKind) Error() string { return "config/rbac holds an unexpected kind " + u.kind }

func grepLines(s, substr string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(strings.ToLower(line), substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
