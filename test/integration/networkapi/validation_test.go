package networkapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var networksResource = schema.GroupVersionResource{Group: "samplecrd.k8s.io", Version: "v1", Resource: "networks"}

// networkObject builds a Network as unstructured data so that a case can leave fields out. A nil
// spec leaves out the spec; a key absent from spec is absent from the request.
func networkObject(name string, spec map[string]any) *unstructured.Unstructured {
	obj := map[string]any{
		"apiVersion": "samplecrd.k8s.io/v1",
		"kind":       "Network",
		"metadata":   map[string]any{"name": name},
	}
	if spec != nil {
		obj["spec"] = spec
	}
	return &unstructured.Unstructured{Object: obj}
}

// The causes of the API server's refusals, each "field: message"; the API server puts the
// offending value between the two.
const (
	notCIDR     = "spec.cidr: cidr must be a CIDR such as 192.168.0.0/16 or fd00:10::/64"
	hostBits    = "spec.cidr: cidr must not have host bits set: give the network address, such as 192.168.0.0/16 rather than 192.168.1.0/16"
	tooSmall    = "spec.cidr: cidr is too small: it must hold the gateway and at least one more host (at most /30 for IPv4, /126 for IPv6)"
	notIP       = "spec.gateway: gateway must be an IP address such as 192.168.0.1 or fd00:10::1"
	outside     = "spec: gateway must be inside cidr"
	family      = "spec: gateway must be of the same IP family as cidr"
	networkAddr = "spec: gateway must not be the network address of cidr"
	broadcast   = "spec: gateway must not be the broadcast address of cidr"
)

func TestAdmissionRefusesInvalidSpecs(t *testing.T) {
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	networks := dynamic.NewForConfigOrDie(cfg).Resource(networksResource).Namespace(ns)
	long := strings.Repeat("1", 1000)

	cases := []struct {
		name string
		spec map[string]any
		// want are the causes of the refusal, all of them: a case that also produced an unexpected
		// cause (a CEL runtime error, or a rule that speaks out of turn) fails.
		want []string
	}{
		{"cidr is an address", map[string]any{"cidr": "192.168.0.0", "gateway": "192.168.0.1"}, []string{notCIDR}},
		{"cidr is a word", map[string]any{"cidr": "my-network", "gateway": "192.168.0.1"}, []string{notCIDR}},
		{"cidr prefix out of range", map[string]any{"cidr": "10.0.0.0/33", "gateway": "10.0.0.1"}, []string{notCIDR}},
		{"cidr with leading zeros", map[string]any{"cidr": "010.0.0.0/8", "gateway": "10.0.0.1"}, []string{notCIDR}},
		{"cidr has host bits set", map[string]any{"cidr": "192.168.1.0/16", "gateway": "192.168.0.1"},
			[]string{hostBits}},
		{"ipv6 cidr has host bits set", map[string]any{"cidr": "fd00::1/64", "gateway": "fd00::2"},
			[]string{hostBits}},
		{"gateway is not an IP", map[string]any{"cidr": "10.0.0.0/24", "gateway": "router"}, []string{notIP}},
		{"gateway octet out of range", map[string]any{"cidr": "10.0.0.0/24", "gateway": "10.0.0.256"}, []string{notIP}},
		{"gateway with a prefix", map[string]any{"cidr": "10.0.0.0/24", "gateway": "10.0.0.1/24"}, []string{notIP}},
		{"gateway outside cidr", map[string]any{"cidr": "10.0.0.0/24", "gateway": "10.0.1.1"}, []string{outside}},
		{"ipv6 gateway outside cidr", map[string]any{"cidr": "fd00:10::/64", "gateway": "fd00:11::1"}, []string{outside}},
		{"ipv4 gateway in ipv6 cidr", map[string]any{"cidr": "fd00::/64", "gateway": "10.0.0.1"}, []string{family}},
		{"ipv6 gateway in ipv4 cidr", map[string]any{"cidr": "10.0.0.0/8", "gateway": "fd00::1"}, []string{family}},
		{"gateway is the network address", map[string]any{"cidr": "10.0.0.0/24", "gateway": "10.0.0.0"}, []string{networkAddr}},
		{"ipv6 gateway is the network address", map[string]any{"cidr": "fd00:10::/64", "gateway": "fd00:10::"}, []string{networkAddr}},
		{"gateway is the broadcast address", map[string]any{"cidr": "10.0.0.0/24", "gateway": "10.0.0.255"}, []string{broadcast}},
		{"gateway is the broadcast address of a /30", map[string]any{"cidr": "10.0.0.4/30", "gateway": "10.0.0.7"}, []string{broadcast}},
		{"gateway is the broadcast address of the seed's /16", map[string]any{"cidr": "192.168.0.0/16", "gateway": "192.168.255.255"}, []string{broadcast}},
		// Every /1 and /2 overlaps a reserved range: a /3 is the largest IPv4 block accepted.
		{"gateway is the broadcast address of a /3", map[string]any{"cidr": "128.0.0.0/3", "gateway": "159.255.255.255"}, []string{broadcast}},
		{"a /32", map[string]any{"cidr": "10.0.0.1/32", "gateway": "10.0.0.1"}, []string{tooSmall, networkAddr}},
		{"a /31", map[string]any{"cidr": "10.0.0.0/31", "gateway": "10.0.0.1"}, []string{tooSmall}},
		{"an ipv6 /127", map[string]any{"cidr": "fd00::/127", "gateway": "fd00::1"}, []string{tooSmall}},
		{"an ipv6 /128", map[string]any{"cidr": "fd00::1/128", "gateway": "fd00::1"}, []string{tooSmall, networkAddr}},
		{"empty strings", map[string]any{"cidr": "", "gateway": ""}, []string{notCIDR, notIP}},
		{"missing cidr", map[string]any{"gateway": "10.0.0.1"}, []string{"spec.cidr: Required value"}},
		{"missing gateway", map[string]any{"cidr": "10.0.0.0/24"}, []string{"spec.gateway: Required value"}},
		{"missing spec", nil, []string{"spec: Required value"}},
		{"cidr is not a string", map[string]any{"cidr": 10, "gateway": "10.0.0.1"},
			[]string{`spec.cidr: spec.cidr in body must be of type string: "integer"`}},
		{"absurdly long cidr", map[string]any{"cidr": long, "gateway": "10.0.0.1"},
			[]string{"spec.cidr: may not be more than 49 bytes"}},
		{"absurdly long gateway", map[string]any{"cidr": "10.0.0.0/24", "gateway": long},
			[]string{"spec.gateway: may not be more than 45 bytes"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := networks.Create(context.Background(), networkObject(fmt.Sprintf("invalid-%d", i), tc.spec), metav1.CreateOptions{})
			checkInvalid(t, err, tc.spec, tc.want)
		})
	}
}

// checkInvalid fails the test unless err is an Invalid error whose causes are exactly want.
func checkInvalid(t *testing.T, err error, spec map[string]any, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server accepted %v", spec)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want an Invalid error", err)
	}
	got := causes(err)
	for _, w := range want {
		if !slices.ContainsFunc(got, func(c cause) bool { return c.matches(w) }) {
			t.Errorf("no cause %q; causes:\n  %v", w, got)
		}
	}
	for _, c := range got {
		if !slices.ContainsFunc(want, c.matches) {
			t.Errorf("unexpected cause %v", c)
		}
	}
}

func TestAdmissionAcceptsValidSpecs(t *testing.T) {
	cfg := env.Config(t)
	ns := framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	networks := dynamic.NewForConfigOrDie(cfg).Resource(networksResource).Namespace(ns)
	cases := []struct{ name, cidr, gateway string }{
		{"the seed's network", "192.168.0.0/16", "192.168.0.1"},
		{"a /30 with its first host", "10.0.0.0/30", "10.0.0.2"},
		{"the last host of a /8", "10.0.0.0/8", "10.255.255.254"},
		{"a /3, the largest IPv4 block outside the reserved ranges", "64.0.0.0/3", "95.255.255.254"},
		{"ipv6 /64", "fd00:10::/64", "fd00:10::1"},
		{"ipv6 /126 with its last address (no broadcast in IPv6)", "fd00::/126", "fd00::3"},
		{"ipv6 /48", "2001:db8:abcd::/48", "2001:db8:abcd:12::1"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := map[string]any{"cidr": tc.cidr, "gateway": tc.gateway}
			if _, err := networks.Create(context.Background(), networkObject(fmt.Sprintf("valid-%d", i), spec), metav1.CreateOptions{}); err != nil {
				t.Fatalf("the API server refused %v: %v", spec, err)
			}
		})
	}
}

// cause is one cause of an Invalid error.
type cause struct{ field, message string }

func (c cause) String() string { return c.field + ": " + c.message }

// matches reports whether the cause is want, "field: message", where the API server may put the
// offending value or a detail before the message.
func (c cause) matches(want string) bool {
	field, message, _ := strings.Cut(want, ": ")
	return c.field == field && strings.HasSuffix(c.message, message)
}

// incompleteValidation is the API server's note that CEL rules did not run because the schema
// already refused the object; it comes with the schema's causes.
const incompleteValidation = "some validation rules were not checked because the object was invalid"

// causes returns the causes of an Invalid error, less the API server's incompleteValidation note.
func causes(err error) []cause {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return []cause{{message: err.Error()}}
	}
	var out []cause
	for _, c := range status.Status().Details.Causes {
		if strings.Contains(c.Message, incompleteValidation) {
			continue
		}
		out = append(out, cause{field: c.Field, message: c.Message})
	}
	return out
}
