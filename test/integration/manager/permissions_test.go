package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// grant is one verb on one resource, as a rule of config/rbac grants it.
type grant struct {
	// kind is the kind of the role that grants it: ClusterRole or Role.
	kind                  string
	group, resource, verb string
}

// name is the grant's row name in TestEveryGrantNecessary, VERB_RESOURCE: patch_networks_status.
func (g grant) name() string {
	return g.verb + "_" + strings.ReplaceAll(g.resource, "/", "_")
}

// reported is how the manager names the grant's resource: resource.group/subresource.
func (g grant) reported() string {
	resource, sub, _ := strings.Cut(g.resource, "/")
	if g.group != "" {
		resource += "." + g.group
	}
	if sub != "" {
		resource += "/" + sub
	}
	return resource
}

// shippedRBAC decodes every object of config/rbac, as kubectl apply -k would create them.
func shippedRBAC(t *testing.T) []runtime.Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "config", "rbac", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
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
		objs = append(objs, obj)
	}
	return objs
}

// expand lists every (group, resource, verb) of rules, in order.
func expand(kind string, rules []rbacv1.PolicyRule) []grant {
	var out []grant
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, grant{kind: kind, group: g, resource: res, verb: v})
				}
			}
		}
	}
	return out
}

// shippedGrants are the grants of the shipped roles.
func shippedGrants(t *testing.T) []grant {
	var out []grant
	for _, obj := range shippedRBAC(t) {
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			out = append(out, expand("ClusterRole", o.Rules)...)
		case *rbacv1.Role:
			out = append(out, expand("Role", o.Rules)...)
		}
	}
	return out
}

// without is rules with drop taken out, one rule per grant, which RBAC reads as the same set.
func without(kind string, rules []rbacv1.PolicyRule, drop *grant) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	// The scrapers' rules, on non-resource URLs, are kept as they are: no row drops them
	// (TestMetricsAuthentication shows what they give).
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			out = append(out, r)
		}
	}
	for _, g := range expand(kind, rules) {
		if drop != nil && g == *drop {
			continue
		}
		out = append(out, rbacv1.PolicyRule{APIGroups: []string{g.group}, Resources: []string{g.resource}, Verbs: []string{g.verb}})
	}
	return out
}

// installRBAC creates the shipped RBAC objects for a service account of its own in ns, less
// drop: the ServiceAccount, Role and RoleBinding in ns (the Lease's namespace), the ClusterRole
// and ClusterRoleBinding under names ending in ns. It returns the path of a kubeconfig with a
// token of the service account (a TokenRequest, as the kubelet mounts it) and the user name.
func installRBAC(t *testing.T, admin kubernetes.Interface, ns string, drop *grant) (string, string) {
	t.Helper()
	ctx := context.Background()
	var saName string
	dropped := drop == nil
	for _, obj := range shippedRBAC(t) {
		var err error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			o.Namespace = ns
			saName = o.Name
			_, err = admin.CoreV1().ServiceAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			dropped = dropped || (drop.kind == "ClusterRole" && slices.Contains(expand("ClusterRole", o.Rules), *drop))
			o.Name += "-" + ns
			o.Rules = without("ClusterRole", o.Rules, drop)
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
			t.Cleanup(func() { _ = admin.RbacV1().ClusterRoles().Delete(context.Background(), o.Name, metav1.DeleteOptions{}) })
		case *rbacv1.ClusterRoleBinding:
			o.Name += "-" + ns
			o.RoleRef.Name += "-" + ns
			for i := range o.Subjects {
				o.Subjects[i].Namespace = ns
			}
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
			t.Cleanup(func() {
				_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), o.Name, metav1.DeleteOptions{})
			})
		case *rbacv1.Role:
			dropped = dropped || (drop.kind == "Role" && slices.Contains(expand("Role", o.Rules), *drop))
			o.Namespace = ns
			o.Rules = without("Role", o.Rules, drop)
			_, err = admin.RbacV1().Roles(ns).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			o.Namespace = ns
			for i := range o.Subjects {
				o.Subjects[i].Namespace = ns
			}
			_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("config/rbac holds an unexpected kind %s", obj.GetObjectKind().GroupVersionKind())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !dropped {
		t.Fatalf("no shipped role grants %+v", *drop)
	}
	if saName == "" {
		t.Fatal("config/rbac holds no ServiceAccount")
	}
	expiry := int64(3600)
	token, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, saName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for the service account: %v", err)
	}
	cfg := env.Config(t)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "sa"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path, "system:serviceaccount:" + ns + ":" + saName
}

// permCase is one manager running under the shipped RBAC (less one grant, or not), in a namespace
// of its own that holds its service account, its Lease, its pods and its Networks.
type permCase struct {
	ns       string
	user     string
	m        *framework.Process
	probes   string
	metrics  string
	db       *framework.OVSDB
	labelKey string
	admin    kubernetes.Interface
	client   clientset.Interface
	// secureMetrics is set when the row serves metrics over HTTPS (--metrics-secure=true), which
	// metricValue's plain scrapes cannot read.
	secureMetrics bool
}

// startPermCase installs the RBAC less drop, runs setup (when not nil), and starts the manager
// with controllers (and an OVN database of its own when they include network) and extra flags.
func startPermCase(t *testing.T, drop *grant, controllers string, setup func(*testing.T, *permCase), extra ...string) *permCase {
	t.Helper()
	c := &permCase{admin: env.KubeClient(t), client: clientset.NewForConfigOrDie(env.Config(t))}
	c.ns = framework.CreateNamespace(t, c.admin)
	c.labelKey = "perms.test/pod-count-" + c.ns
	var kubeconfig string
	kubeconfig, c.user = installRBAC(t, c.admin, c.ns, drop)
	args := []string{
		"--kubeconfig=" + kubeconfig, "--logging-format=json",
		// Plain HTTP metrics, which the rows poll; the rows of the metrics server's own grants
		// serve them over HTTPS (extra --metrics-secure=true).
		"--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false", "--health-probe-bind-address=127.0.0.1:0",
		"--controllers=" + controllers,
		"--leader-elect-resource-namespace=" + c.ns,
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=250ms",
		"--cluster-name=" + c.ns, "--podwatch-namespace=" + c.ns, "--podcount-label-key=" + c.labelKey,
	}
	if strings.Contains(controllers, "network") || controllers == "*" {
		c.db = framework.StartOVSDB(t)
		args = append(args, "--ovn-nb="+c.db.Endpoint())
	}
	if setup != nil {
		setup(t, c)
	}
	c.secureMetrics = slices.Contains(extra, "--metrics-secure=true")
	c.m = framework.StartProcess(t, "manager", managerBin, append(args, extra...)...)
	c.probes = c.m.ServingAddress(t, "health probes", timeout)
	c.metrics = c.m.ServingAddress(t, "metrics", timeout)
	return c
}

// readyz returns /readyz's status code and body.
func (c *permCase) readyz(t *testing.T) (int, string) {
	t.Helper()
	return get(t, "http://"+c.probes+"/readyz")
}

// waitLeading waits until the manager says it leads.
func (c *permCase) waitLeading(t *testing.T) {
	t.Helper()
	waitUntil(t, "the manager to lead", timeout, func() bool { return metricValue(t, c.metrics, "samplecrd_leader", nil) == 1 })
}

// never fails the test if cond becomes true within d: what a removed grant must prevent.
func never(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err == nil {
		t.Errorf("%s, which the removed grant should have prevented", what)
	}
}

// negativeWindow is how long a row waits for what its removal must prevent, after the manager
// had the chance to do it.
const negativeWindow = 3 * time.Second

// waitLogged waits until the manager logged msg with an error containing errPart.
func (c *permCase) waitLogged(t *testing.T, msg, errPart string, count int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d log entries %q with %q", count, msg, errPart), timeout, func() bool {
		n := 0
		for _, e := range c.m.LogEntries(msg) {
			if s, _ := e["err"].(string); strings.Contains(s, errPart) {
				n++
			}
		}
		return n >= count
	})
}

// watchFailures counts the failed watches of the informers of typ whose error contains errPart.
func (c *permCase) watchFailures(typ, errPart string) int {
	n := 0
	for _, e := range c.m.LogEntries("Failed to watch") {
		if s, _ := e["err"].(string); e["type"] == typ && strings.Contains(s, errPart) {
			n++
		}
	}
	return n
}

// waitWatchFailures waits until the informer of typ failed to watch four times. client-go's
// reflector then lists again after a backoff that doubles from 0.8 s (jitter only lengthens
// it): after the fourth failure it waits at least 6.4 s, longer than negativeWindow.
func (c *permCase) waitWatchFailures(t *testing.T, typ string) {
	t.Helper()
	waitUntil(t, "four failed watches of "+typ, timeout, func() bool { return c.watchFailures(typ, "") >= 4 })
}

// waitNewWatchFailure waits for a failed watch of typ with errPart in its error that comes after
// the call and is at least the fourth: the next list is then at least 6.4 s away (see
// waitWatchFailures), however long the row took to get here. The metadata informers all have
// the type *v1.PartialObjectMetadata; errPart tells their resources apart.
func (c *permCase) waitNewWatchFailure(t *testing.T, typ, errPart string) {
	t.Helper()
	want := max(4, c.watchFailures(typ, errPart)+1)
	waitUntil(t, fmt.Sprintf("failed watch %d of %s (%s)", want, typ, errPart), timeout, func() bool {
		return c.watchFailures(typ, errPart) >= want
	})
}

func (c *permCase) createNetwork(t *testing.T, name, cidr, gateway string) {
	t.Helper()
	if _, err := c.client.SamplecrdV1().Networks(c.ns).Create(context.Background(), &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       samplecrdv1.NetworkSpec{Cidr: cidr, Gateway: gateway},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (c *permCase) network(t *testing.T, name string) *samplecrdv1.Network {
	t.Helper()
	n, err := c.client.SamplecrdV1().Networks(c.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ready(n *samplecrdv1.Network) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == samplecrdv1.ConditionReady && cond.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}

// rowsOf counts the logical switches the OVN database holds for the UID.
func (c *permCase) rowsOf(t *testing.T, uid types.UID) int {
	t.Helper()
	n := 0
	for _, s := range c.db.Dump(t).Switches {
		if s.ExternalIDs[ovn.UIDKey] == string(uid) {
			n++
		}
	}
	return n
}

// writeOrphan programs, with the OVN backend itself, a network for a Network that does not exist
// (ns/gone), as one whose finalizer someone removed leaves behind, and returns its UID.
func (c *permCase) writeOrphan(t *testing.T) types.UID {
	t.Helper()
	ctx, cancel := context.WithTimeout(klog.NewContext(context.Background(), logr.Discard()), timeout)
	defer cancel()
	be, err := ovn.New(ctx, ovn.Options{Endpoint: c.db.Endpoint(), ClusterName: c.ns})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	waitUntil(t, "the OVN backend to connect", timeout, func() bool { return be.Ready() == nil })
	uid := types.UID(uuid.NewString())
	if _, err := be.Ensure(ctx, backend.Network{Namespace: c.ns, Name: "gone", UID: uid,
		CIDR: netip.MustParsePrefix("10.79.0.0/16"), Gateway: netip.MustParseAddr("10.79.0.1")}); err != nil {
		t.Fatal(err)
	}
	return uid
}

// eventsOn returns the events in the case's namespace (or ns) on the object named name.
func eventsOn(t *testing.T, client kubernetes.Interface, ns, name string) []corev1.Event {
	t.Helper()
	list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": name}.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// createPod creates the pod name in the case's namespace with annotations, and returns its UID.
// The pod is deleted at the end of the test, so that a later manager that attaches pods does not
// find it asking for a Network.
func (c *permCase) createPod(t *testing.T, name string, annotations map[string]string) types.UID {
	t.Helper()
	p, err := c.admin.CoreV1().Pods(c.ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.admin.CoreV1().Pods(c.ns).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return p.UID
}

// allocated reports whether podnetwork wrote the pod's allocation into its annotations.
func (c *permCase) allocated(t *testing.T, pod string) bool {
	t.Helper()
	p, err := c.admin.CoreV1().Pods(c.ns).Get(context.Background(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Annotations[samplecrdv1.AllocatedAnnotation] == "true"
}

// setDefaultNetwork makes network the default Network of the pods of the case's namespace.
func (c *permCase) setDefaultNetwork(t *testing.T, network string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{samplecrdv1.NetworkAnnotation: network}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.CoreV1().Namespaces().Patch(context.Background(), c.ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// portsOf counts the logical switch ports the OVN database holds for the pod's UID.
func (c *permCase) portsOf(t *testing.T, uid types.UID) int {
	t.Helper()
	n := 0
	for _, p := range c.db.Dump(t).SwitchPorts {
		if p.ExternalIDs[ovn.PodUIDKey] == string(uid) {
			n++
		}
	}
	return n
}

// listingInformers is the environment of a manager whose informers start with a list, as they do
// against an API server without streaming lists (the API server's WatchList feature, which older
// releases lack or have off), and whenever client-go falls back from a streaming list that failed. client-go's
// informers otherwise fill their caches by one watch with the initial events, and need no list.
var listingInformers = map[string]string{"KUBE_FEATURE_WatchListClient": "false"}

// permissionRows are the rows of TestEveryGrantNecessary, by grant name: each starts a manager
// without that grant and asserts the failure its removal causes. The report (the log and
// /readyz naming the permission) is asserted for every row by the test itself.
var permissionRows = map[string]struct {
	// controllers is --controllers: the controllers the row needs.
	controllers string
	// exclusive rows run one at a time: those that run the network controller, which acts on
	// every Network of the cluster, so that no other manager writes their Networks; and those
	// that set env.
	exclusive bool
	// extra flags.
	extra []string
	// env is set in the manager's environment; a row with env is exclusive (t.Setenv).
	env map[string]string
	// setup runs before the manager starts.
	setup func(t *testing.T, c *permCase)
	// fails asserts the failure that the removal causes.
	fails func(t *testing.T, c *permCase)
}{
	"get_networks": {
		// The orphan sweep confirms with a read that the Network is gone before it removes its
		// rows: without the read the rows stay.
		controllers: "network", exclusive: true,
		extra: []string{"--orphan-sweep-interval=1s"},
		fails: func(t *testing.T, c *permCase) {
			uid := c.writeOrphan(t)
			c.waitLogged(t, "Sync failed, will retry", "reading Network "+c.ns+"/gone to confirm its orphans", 1)
			if got := c.rowsOf(t, uid); got != 1 {
				t.Errorf("the orphan has %d logical switches, want it kept (1)", got)
			}
		},
	},
	"list_networks": {
		controllers: "network", exclusive: true, env: listingInformers,
		fails: func(t *testing.T, c *permCase) {
			c.createNetwork(t, "n", "10.80.0.0/16", "10.80.0.1")
			c.waitLeading(t)
			waitUntil(t, "/readyz to say the caches did not sync", timeout, func() bool {
				_, body := c.readyz(t)
				return strings.Contains(body, "[-]informers failed")
			})
			never(t, "the Network got its finalizer", negativeWindow, func() bool { return len(c.network(t, "n").Finalizers) > 0 })
		},
	},
	"watch_networks": {
		// Listed, the Networks are synced; a new one waits for the next list, which follows an
		// ever longer backoff.
		controllers: "network", exclusive: true,
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			c.waitWatchFailures(t, "*v1.Network")
			c.createNetwork(t, "n", "10.81.0.0/16", "10.81.0.1")
			never(t, "a Network created after the list was seen", negativeWindow, func() bool { return len(c.network(t, "n").Finalizers) > 0 })
		},
	},
	"patch_networks": {
		// The finalizer comes before the first OVN write: nothing is programmed, no status.
		controllers: "network", exclusive: true,
		fails: func(t *testing.T, c *permCase) {
			c.createNetwork(t, "n", "10.82.0.0/16", "10.82.0.1")
			c.waitLogged(t, "Sync failed, will retry", "setting the finalizers of Network "+c.ns+"/n", 1)
			n := c.network(t, "n")
			if ready(n) || len(n.Finalizers) > 0 || c.rowsOf(t, n.UID) != 0 {
				t.Errorf("the Network was programmed without its finalizer: finalizers %v, status %+v", n.Finalizers, n.Status)
			}
		},
	},
	"patch_networks_status": {
		// Programmed in OVN, the Network never says so.
		controllers: "network", exclusive: true,
		fails: func(t *testing.T, c *permCase) {
			c.createNetwork(t, "n", "10.83.0.0/16", "10.83.0.1")
			c.waitLogged(t, "Sync failed, will retry", "writing the status of Network "+c.ns+"/n", 1)
			n := c.network(t, "n")
			if c.rowsOf(t, n.UID) != 1 {
				t.Errorf("the Network is not programmed in OVN")
			}
			if len(n.Status.Conditions) != 0 {
				t.Errorf("the Network has a status: %+v", n.Status)
			}
		},
	},
	"list_nodes": {
		controllers: "nodewatch", exclusive: true, env: listingInformers,
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			never(t, "nodewatch printed the node list", negativeWindow, func() bool { return strings.Contains(c.m.Stdout(), "nodelist:") })
		},
	},
	"watch_nodes": {
		controllers: "nodewatch",
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			c.m.WaitForOutput(t, "nodelist:", timeout)
			c.waitWatchFailures(t, "*v1.Node")
			node := "watch-" + c.ns
			createNode(t, c.admin, node, nil)
			never(t, "nodewatch printed a node added after the list", negativeWindow, func() bool {
				return strings.Contains(c.m.Stdout(), "add a node: "+node+"\n")
			})
		},
	},
	"patch_nodes": {
		controllers: "podcount",
		setup: func(t *testing.T, c *permCase) {
			createNode(t, c.admin, "cp-"+c.ns, map[string]string{"node-role.kubernetes.io/control-plane": ""})
		},
		fails: func(t *testing.T, c *permCase) {
			waitUntil(t, "a LabelFailed event on the node", timeout, func() bool {
				for _, e := range eventsOn(t, c.admin, metav1.NamespaceDefault, "cp-"+c.ns) {
					if e.Reason == "LabelFailed" && strings.Contains(e.Message, c.labelKey) && strings.Contains(e.Message, "forbidden") {
						return true
					}
				}
				return false
			})
			if l, _ := nodeLabel(t, c.admin, "cp-"+c.ns, c.labelKey); l != "" {
				t.Errorf("the node has the pod-count label %q", l)
			}
		},
	},
	"list_pods": {
		// podwatch's informer never syncs, nor does the pod metadata informer of podcount and
		// podnetwork: podnetwork never restores its view of the pods, and the network controller,
		// which waits for that view before it touches a Network, syncs none.
		controllers: "podwatch,network,podnetwork", exclusive: true, env: listingInformers,
		setup: func(t *testing.T, c *permCase) {
			createPods(t, c.admin, c.ns, "p", 1)
			c.createNetwork(t, "n", "10.84.0.0/16", "10.84.0.1")
		},
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			never(t, "podwatch printed the pod", negativeWindow, func() bool { return strings.Contains(c.m.Stdout(), "Sync/Add/Update for Pod p-0\n") })
			if n := c.network(t, "n"); len(n.Finalizers) > 0 {
				t.Errorf("the Network was synced without the pods known: finalizers %v", n.Finalizers)
			}
		},
	},
	"watch_pods": {
		controllers: "podwatch",
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			c.waitWatchFailures(t, "*v1.Pod")
			createPods(t, c.admin, c.ns, "p", 1)
			never(t, "podwatch printed a pod created after the list", negativeWindow, func() bool {
				return strings.Contains(c.m.Stdout(), "Sync/Add/Update for Pod p-0\n")
			})
		},
	},
	"patch_pods": {
		// The pod gets its address and its port, but its annotations never say so: the port
		// comes before the patch.
		controllers: "network,podnetwork", exclusive: true,
		fails: func(t *testing.T, c *permCase) {
			c.createNetwork(t, "n", "10.85.0.0/16", "10.85.0.1")
			uid := c.createPod(t, "p", map[string]string{samplecrdv1.NetworkAnnotation: "n"})
			c.waitLogged(t, "Sync failed, will retry", "writing the allocation of pod "+c.ns+"/p", 1)
			if c.allocated(t, "p") {
				t.Errorf("the pod has the annotation %s", samplecrdv1.AllocatedAnnotation)
			}
			if got := c.portsOf(t, uid); got != 1 {
				t.Errorf("the pod has %d ports in OVN, want 1", got)
			}
		},
	},
	"list_namespaces": {
		// podnetwork's caches never sync: it never restores its view of the pods, and the network
		// controller, which waits for that view, syncs no Network. A pod that asks for a Network
		// through its namespace gets nothing.
		controllers: "network,podnetwork", exclusive: true, env: listingInformers,
		setup: func(t *testing.T, c *permCase) {
			c.setDefaultNetwork(t, "n")
			c.createNetwork(t, "n", "10.86.0.0/16", "10.86.0.1")
			c.createPod(t, "p", nil)
		},
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			waitUntil(t, "/readyz to say the caches did not sync", timeout, func() bool {
				_, body := c.readyz(t)
				return strings.Contains(body, "[-]informers failed")
			})
			never(t, "the pod was attached", negativeWindow, func() bool { return c.allocated(t, "p") })
			if n := c.network(t, "n"); len(n.Finalizers) > 0 {
				t.Errorf("the Network was synced without the pods known: finalizers %v", n.Finalizers)
			}
		},
	},
	"watch_namespaces": {
		// Listed, the namespaces are synced and pods are attached; a default Network that a
		// namespace gets after the list waits for the next list, which follows an ever longer
		// backoff.
		controllers: "network,podnetwork", exclusive: true,
		setup: func(t *testing.T, c *permCase) {
			c.createNetwork(t, "n", "10.87.0.0/16", "10.87.0.1")
			c.createPod(t, "named", map[string]string{samplecrdv1.NetworkAnnotation: "n"})
			c.createPod(t, "defaulted", nil)
		},
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			waitUntil(t, "the pod that names the Network to be attached", timeout, func() bool { return c.allocated(t, "named") })
			c.waitNewWatchFailure(t, "*v1.PartialObjectMetadata", `"namespaces"`)
			c.setDefaultNetwork(t, "n")
			never(t, "the pod was attached to the namespace's default Network set after the list", negativeWindow, func() bool {
				return c.allocated(t, "defaulted")
			})
		},
	},
	"create_events": {
		// The leadership event on the Lease is never recorded; the refusal is counted.
		controllers: "nodewatch",
		fails: func(t *testing.T, c *permCase) {
			c.waitLeading(t)
			waitUntil(t, "a refused event counted", timeout, func() bool {
				return metricValue(t, c.metrics, "samplecrd_events_failed_total", map[string]string{"reason": "Forbidden"}) > 0
			})
			if e := eventsOn(t, c.admin, c.ns, "samplecrd-controller"); len(e) != 0 {
				t.Errorf("events were recorded on the Lease: %v", e)
			}
		},
	},
	"patch_events": {
		// A repeated event (podcount's per-pod event every second) is a patch of the first one:
		// its count stays 1, and the refusals are counted.
		controllers: "podcount",
		extra:       []string{"--podcount-event-mode=all", "--podcount-period=1s"},
		setup:       func(t *testing.T, c *permCase) { createPods(t, c.admin, c.ns, "p", 1) },
		fails: func(t *testing.T, c *permCase) {
			waitUntil(t, "a refused event patch counted", timeout, func() bool {
				return metricValue(t, c.metrics, "samplecrd_events_failed_total", map[string]string{"component": "podcount-controller", "reason": "Forbidden"}) > 0
			})
			events := eventsOn(t, c.admin, c.ns, "p-0")
			if len(events) != 1 || events[0].Count != 1 {
				t.Errorf("want the pod's first event only, count 1; got %d events %+v", len(events), events)
			}
		},
	},
	"get_leases": {
		controllers: "nodewatch",
		fails:       leaseNeverHeld("reading"),
	},
	"create_leases": {
		controllers: "nodewatch",
		fails:       leaseNeverHeld("creating"),
	},
	"update_leases": {
		// Created, the Lease is never renewed: the manager leads for the renew deadline, then
		// exits 1 naming the refused update.
		controllers: "nodewatch",
		fails: func(t *testing.T, c *permCase) {
			if code := c.m.Wait(t, timeout); code != 1 {
				t.Errorf("exited %d, want 1", code)
			}
			stopped := c.m.LogEntries("Manager stopped")
			if len(stopped) != 1 {
				t.Fatalf("logged %d \"Manager stopped\" entries, want 1", len(stopped))
			}
			want := `leader election lost: updating the Lease ` + c.ns + `/samplecrd-controller: leases.coordination.k8s.io "samplecrd-controller" is forbidden: User "` + c.user + `" cannot update resource "leases" in API group "coordination.k8s.io"`
			if got, _ := stopped[0]["err"].(string); !strings.HasPrefix(got, want) {
				t.Errorf("the exit says %q, want it to start with %q", got, want)
			}
		},
	},
	"create_tokenreviews": {
		// The secure metrics server asks the API server who a scrape's bearer token is: without
		// it nobody, not even the metrics reader, gets the metrics.
		controllers: "nodewatch", extra: []string{"--metrics-secure=true"},
		fails: metricsRefused("tokenreviews"),
	},
	"create_subjectaccessreviews": {
		// ... and whether that user may get the path: without it, again, nobody gets the metrics.
		controllers: "nodewatch", extra: []string{"--metrics-secure=true"},
		fails: metricsRefused("subjectaccessreviews"),
	},
}

// metricsRefused is the failure of a secure metrics server that may not create resource
// (tokenreviews or subjectaccessreviews): a token bound to the shipped metrics reader role is
// refused with 500, and the manager logs the refusal.
func metricsRefused(resource string) func(t *testing.T, c *permCase) {
	return func(t *testing.T, c *permCase) {
		reader, err := testenv.ServiceAccountToken(context.Background(), c.admin, c.ns, "metrics-reader", time.Hour, metricsReaderRole+"-"+c.ns)
		if err != nil {
			t.Fatal(err)
		}
		code, _, body := getWithToken(t, "https://"+c.metrics+"/metrics", reader)
		if code != http.StatusInternalServerError {
			t.Errorf("the metrics reader got %d, want 500:\n%s", code, body)
		}
		waitUntil(t, "the manager to log the refused "+resource, timeout, func() bool {
			return strings.Contains(c.m.Stderr(), resource) && strings.Contains(c.m.Stderr(), "forbidden")
		})
	}
}

// leaseNeverHeld is the failure of a manager that cannot read (or create) its Lease: /readyz
// names the Lease and the refusal, it never leads, and at SIGTERM it says it never led.
func leaseNeverHeld(what string) func(t *testing.T, c *permCase) {
	return func(t *testing.T, c *permCase) {
		want := "[-]leader-election failed: " + what + " the Lease " + c.ns + "/samplecrd-controller: "
		waitUntil(t, "/readyz to name the Lease", timeout, func() bool {
			code, body := c.readyz(t)
			return code == 500 && strings.Contains(body, want) && strings.Contains(body, "forbidden")
		})
		never(t, "the manager led", negativeWindow, func() bool { return metricValue(t, c.metrics, "samplecrd_leader", nil) == 1 })
		c.m.Signal(t, syscall.SIGTERM)
		if code := c.m.Wait(t, timeout); code != 0 {
			t.Errorf("exited %d after SIGTERM, want 0", code)
		}
		if len(c.m.LogEntries("Released the leader lease")) != 0 || len(c.m.LogEntries("Stopped without having led")) != 1 {
			t.Errorf("the stop should say it never led, and release nothing")
		}
	}
}

// TestEveryGrantHasARow requires a row of TestEveryGrantNecessary for every verb of every
// shipped rule, and a shipped grant for every row: a grant nobody shows necessary fails here.
func TestEveryGrantHasARow(t *testing.T) {
	shipped := map[string]bool{}
	for _, g := range shippedGrants(t) {
		if shipped[g.name()] {
			t.Errorf("two shipped grants are named %s", g.name())
		}
		shipped[g.name()] = true
		if _, ok := permissionRows[g.name()]; !ok {
			t.Errorf("config/rbac grants %s %s/%s (%s), which no row of TestEveryGrantNecessary shows necessary", g.verb, g.group, g.resource, g.kind)
		}
	}
	for name := range permissionRows {
		if !shipped[name] {
			t.Errorf("row %s tests a grant config/rbac does not ship", name)
		}
	}
}

// TestEveryGrantNecessary removes each verb of each shipped rule, one at a time, runs the manager
// under what is left and asserts what breaks (the rows of permissionRows) and that the manager
// reports the missing permission: an Error log entry and /readyz, naming verb and resource.
// Exclusive rows (those that run the network controller, or set the environment) run one after
// the other; the others at once, a few at a time.
func TestEveryGrantNecessary(t *testing.T) {
	grants := shippedGrants(t)
	run := func(t *testing.T, g grant) {
		row, ok := permissionRows[g.name()]
		if !ok {
			t.Fatalf("no row for %s (TestEveryGrantHasARow says so too)", g.name())
		}
		for k, v := range row.env {
			t.Setenv(k, v)
		}
		start := time.Now()
		c := startPermCase(t, &g, row.controllers, row.setup, row.extra...)
		// The report: /readyz and the log name the permission.
		want := "missing " + g.verb + " " + g.reported()
		waitUntil(t, "/readyz to report "+want, timeout, func() bool {
			if c.m.Exited() {
				return false
			}
			code, body := c.readyz(t)
			return code == 500 && strings.Contains(body, "[-]permissions failed: ") && strings.Contains(body, want)
		})
		// Logged before /readyz says it; the test reads the log as the manager writes it.
		waitUntil(t, "an Error log entry naming "+want, timeout, func() bool {
			for _, e := range c.m.LogEntries("Missing permission: RBAC denies a request the manager needs") {
				if e["verb"] == g.verb && e["resource"] == g.reported() {
					return true
				}
			}
			return false
		})
		// Without the metrics server's grants its metrics are what breaks: the log and /readyz report.
		if !c.secureMetrics {
			if v := metricValue(t, c.metrics, "samplecrd_missing_permissions", map[string]string{"verb": g.verb, "resource": g.reported()}); v < 1 {
				t.Errorf("samplecrd_missing_permissions{verb=%q,resource=%q} = %v, want 1", g.verb, g.reported(), v)
			}
		}
		row.fails(t, c)
		t.Logf("%s: %v", g.name(), time.Since(start).Round(time.Millisecond))
	}
	t.Run("exclusive", func(t *testing.T) {
		for _, g := range grants {
			if permissionRows[g.name()].exclusive {
				t.Run(g.name(), func(t *testing.T) { run(t, g) })
			}
		}
	})
	t.Run("others", func(t *testing.T) {
		slots := make(chan struct{}, 4)
		for _, g := range grants {
			if permissionRows[g.name()].exclusive {
				continue
			}
			t.Run(g.name(), func(t *testing.T) {
				t.Parallel()
				slots <- struct{}{}
				defer func() { <-slots }()
				run(t, g)
			})
		}
	})
}

// TestFixedRBACBecomesReady starts the manager without a grant, then grants it: the manager
// notices at its next check (within permissionRecheckMissing, 10 s), becomes ready and says so,
// without a restart.
func TestFixedRBACBecomesReady(t *testing.T) {
	drop := grant{kind: "ClusterRole", resource: "events", verb: "create"}
	c := startPermCase(t, &drop, "nodewatch", nil)
	waitUntil(t, "/readyz to report the missing permission", timeout, func() bool {
		code, body := c.readyz(t)
		return code == 500 && strings.Contains(body, "missing create events in namespace "+c.ns+" (leader-election)")
	})

	ctx := context.Background()
	for _, obj := range shippedRBAC(t) {
		if shipped, ok := obj.(*rbacv1.ClusterRole); ok {
			role, err := c.admin.RbacV1().ClusterRoles().Get(ctx, shipped.Name+"-"+c.ns, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			role.Rules = shipped.Rules
			if _, err := c.admin.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	waitUntil(t, "/readyz to pass", timeout, func() bool {
		code, _ := c.readyz(t)
		return code == 200
	})
	t.Logf("ready %v after the grant", time.Since(start).Round(time.Millisecond))
	if len(c.m.LogEntries("Permission granted")) == 0 {
		t.Error("the manager did not log the grant")
	}
	if v := metricValue(t, c.metrics, "samplecrd_missing_permissions", nil); v != 0 {
		t.Errorf("samplecrd_missing_permissions sums to %v, want 0", v)
	}
}
