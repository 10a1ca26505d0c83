package network

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/controller/network"
)

// spec is the JSON data of a Network with cidr and gateway.
func spec(cidr, gateway any) map[string]any {
	return map[string]any{"spec": map[string]any{"cidr": cidr, "gateway": gateway}}
}

// with is body with the field at path (dot-separated) set to value, or removed for a nil value;
// the object maps on the way are created.
func with(body map[string]any, path string, value any) map[string]any {
	out := deepCopyJSON(body)
	m := out
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	if value == nil {
		delete(m, parts[len(parts)-1])
	} else {
		m[parts[len(parts)-1]] = value
	}
	return out
}

// withNull is body with the field at path set to JSON null.
func withNull(body map[string]any, path string) map[string]any {
	out := with(body, path, "")
	parts := strings.Split(path, ".")
	m := out
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	m[parts[len(parts)-1]] = nil
	return out
}

// mergePatch sends a JSON merge patch of the case's Network, to the subresource if one is given.
func mergePatch(patch string, subresource ...string) func(context.Context, *hostileRun) error {
	return patchOf(types.MergePatchType, patch, subresource...)
}

func patchOf(pt types.PatchType, patch string, subresource ...string) func(context.Context, *hostileRun) error {
	return func(ctx context.Context, r *hostileRun) error {
		_, err := r.client.SamplecrdV1().Networks(r.s.ns).Patch(ctx, r.name, pt, []byte(patch), metav1.PatchOptions{}, subresource...)
		return err
	}
}

// patchOlder sends a merge patch of the case's first older Network.
func patchOlder(patch string) func(context.Context, *hostileRun) error {
	return func(ctx context.Context, r *hostileRun) error {
		_, err := r.client.SamplecrdV1().Networks(r.s.ns).Patch(ctx, r.older[0], types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}
}

// forgeReady writes a Ready condition through the status subresource, for the Network's current
// generation, as the controller would write it, with a backend object when be is set.
func forgeReady(status metav1.ConditionStatus, reason string, be *samplecrdv1.NetworkBackendStatus) func(context.Context, *hostileRun) error {
	return func(ctx context.Context, r *hostileRun) error {
		n, err := r.client.SamplecrdV1().Networks(r.s.ns).Get(ctx, r.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return forgeStatus(ctx, r, n.Generation, status, reason, be)
	}
}

func forgeStatus(ctx context.Context, r *hostileRun, generation int64, status metav1.ConditionStatus, reason string, be *samplecrdv1.NetworkBackendStatus) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"observedGeneration": generation,
		"conditions": []metav1.Condition{{
			Type: samplecrdv1.ConditionReady, Status: status, Reason: reason, Message: "forged",
			ObservedGeneration: generation, LastTransitionTime: metav1.Now(),
		}},
		"backend": be,
	}})
	if err != nil {
		return err
	}
	return mergePatch(string(patch), "status")(ctx, r)
}

func deleteIt(ctx context.Context, r *hostileRun) error {
	return r.client.SamplecrdV1().Networks(r.s.ns).Delete(ctx, r.name, metav1.DeleteOptions{})
}

// annotateNamespace sets the allowed-cidrs annotation of the case's namespace to a value that
// refuses every Network, and waits until the policy sees it: the API server reads namespaces from
// an informer cache, which lags behind the update. It then sends then.
func annotateNamespace(value string, then func(context.Context, *hostileRun) error) func(context.Context, *hostileRun) error {
	return func(ctx context.Context, r *hostileRun) error {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{samplecrdv1.AllowedCIDRsAnnotation: value}}})
		if _, err := r.kube.CoreV1().Namespaces().Patch(ctx, r.s.ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("annotating the namespace: %w", err)
		}
		probe := &samplecrdv1.Network{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: samplecrdv1.NetworkSpec{Cidr: "10.99.0.0/24", Gateway: "10.99.0.1"}}
		dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			_, err := r.client.SamplecrdV1().Networks(r.s.ns).Create(ctx, probe, dryRun)
			return apierrors.IsForbidden(err), nil
		}); err != nil {
			return fmt.Errorf("waiting for the policy to see the annotation: %w", err)
		}
		return then(ctx, r)
	}
}

// Checks of an accepted Network.

// storedAs checks that the API server kept the spec as sent.
func storedAs(cidr, gateway string) func(*hostileRun, *samplecrdv1.Network) error {
	return func(_ *hostileRun, n *samplecrdv1.Network) error {
		if n.Spec.Cidr != cidr || n.Spec.Gateway != gateway {
			return fmt.Errorf("stored spec %+v, want cidr %q and gateway %q as sent", n.Spec, cidr, gateway)
		}
		return nil
	}
}

// storedJSON is the case's Network as the API server stores it, as JSON data.
func storedJSON(r *hostileRun) (map[string]any, error) {
	raw, err := r.client.SamplecrdV1().RESTClient().Get().Namespace(r.s.ns).Resource("networks").Name(r.name).DoRaw(context.Background())
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	return obj, json.Unmarshal(raw, &obj)
}

// field returns the field at path (dot-separated) of obj, and whether it is there.
func field(obj map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	for _, part := range parts[:len(parts)-1] {
		obj, _ = obj[part].(map[string]any)
	}
	v, ok := obj[parts[len(parts)-1]]
	return v, ok
}

// pruned checks that the stored object has none of the fields (dot-separated paths).
func pruned(paths ...string) func(*hostileRun, *samplecrdv1.Network) error {
	return func(r *hostileRun, _ *samplecrdv1.Network) error {
		obj, err := storedJSON(r)
		if err != nil {
			return err
		}
		for _, p := range paths {
			if _, ok := field(obj, p); ok {
				return fmt.Errorf("the stored object has %s", p)
			}
		}
		return nil
	}
}

// finalizers checks the Network's finalizers.
func finalizers(want ...string) func(*hostileRun, *samplecrdv1.Network) error {
	return func(_ *hostileRun, n *samplecrdv1.Network) error {
		if !slices.Equal(n.Finalizers, want) {
			return fmt.Errorf("finalizers %q, want %q", n.Finalizers, want)
		}
		return nil
	}
}

// terminating checks that the Network is being deleted, held by the finalizers want alone.
func terminating(want ...string) func(*hostileRun, *samplecrdv1.Network) error {
	return func(r *hostileRun, n *samplecrdv1.Network) error {
		if n.DeletionTimestamp == nil {
			return fmt.Errorf("not being deleted")
		}
		return finalizers(want...)(r, n)
	}
}

// createdAs checks the Network as the create returned it.
func createdAs(f func(*samplecrdv1.Network) error) func(*hostileRun, *samplecrdv1.Network) error {
	return func(r *hostileRun, _ *samplecrdv1.Network) error { return f(r.created) }
}

// olderIs checks the Ready condition of the case's first older Network.
func olderIs(want string) func(*hostileRun, *samplecrdv1.Network) error {
	return func(r *hostileRun, _ *samplecrdv1.Network) error {
		n, err := r.client.SamplecrdV1().Networks(r.s.ns).Get(context.Background(), r.older[0], metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := ready(n); got != want {
			return fmt.Errorf("older Network %s is %q, want %q", n.Name, got, want)
		}
		return nil
	}
}

// hostileCases are the cases of TestHostileInput.
func hostileCases() []hostileCase {
	v4 := spec("10.0.0.0/24", "10.0.0.1")
	allowed := func(value string) map[string]string {
		return map[string]string{samplecrdv1.AllowedCIDRsAnnotation: value}
	}
	// A DNS subdomain of 253 characters, the longest name and label prefix there is.
	longSubdomain := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	maxLabels := map[string]any{}
	for i := range 64 {
		maxLabels[fmt.Sprintf("%s/%s%02d", longSubdomain, strings.Repeat("n", 61), i)] = strings.Repeat("v", 63)
	}
	// All the annotations of an object may hold 256 KiB, keys included.
	const annotationsLimit = 256 << 10
	bigKey := "example.com/big"
	// 4096 characters of /24s, as many as fit, the last 10.0.<n>.0/24, then spaces.
	var entries []string
	for i := 0; len(strings.Join(entries, ","))+len(",10.0.255.0/24") <= samplecrdv1.AllowedCIDRsAnnotationMaxLength; i++ {
		entries = append(entries, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
	}
	manyEntries := padTo(strings.Join(entries, ","), samplecrdv1.AllowedCIDRsAnnotationMaxLength)
	lastEntry := entries[len(entries)-1]
	forgedBackend := &samplecrdv1.NetworkBackendStatus{Type: "ovn", Name: "forged", ID: "00000000-0000-0000-0000-000000000000"}

	return []hostileCase{
		// Address classes: the reserved ranges are refused wherever a cidr meets them, and a
		// gateway can only be inside the cidr; the other special-purpose ranges (documentation,
		// unique local, CGNAT, benchmarking, NAT64, 6to4) are unicast, and accepted.
		{category: "address", name: "inside IPv4 loopback", body: spec("127.1.0.0/16", "127.1.0.1"), want: invalid(loopback4)},
		{category: "address", name: "the upper half of IPv4 link-local", body: spec("169.254.128.0/17", "169.254.128.1"), want: invalid(linkLocal4)},
		{category: "address", name: "source-specific multicast", body: spec("232.0.0.0/8", "232.0.0.1"), want: invalid(multicast4)},
		{category: "address", name: "a /8 holding the limited broadcast address", body: spec("255.0.0.0/8", "255.0.0.1"), want: invalid(limitedBroadcast)},
		{category: "address", name: "a /16 of this network", body: spec("0.0.0.0/16", "0.0.0.1"), want: invalid(thisNetwork)},
		{category: "address", name: "the IPv6 /96 of unspecified and loopback", body: spec("::/96", "::2"), want: invalid(unspecified6, loopback6)},
		{category: "address", name: "the end of IPv6 link-local", body: spec("febf::/16", "febf::1"), want: invalid(linkLocal6)},
		{category: "address", name: "global IPv6 multicast", body: spec("ff0e::/16", "ff0e::1"), want: invalid(multicast6)},
		{category: "address", name: "IPv4-mapped, compressed", body: spec("::ffff:0:0/96", "fd00::1"), want: invalid(notCIDR)},
		{category: "address", name: "IPv4-mapped cidr and gateway of a private range", body: spec("::ffff:10.0.0.0/104", "::ffff:10.0.0.1"), want: invalid(notCIDR, notIP)},
		{category: "address", name: "IPv4-mapped gateway in a ULA", body: spec("fd00::/64", "::ffff:10.0.0.1"), want: invalid(notIP)},
		{category: "address", name: "loopback gateway", body: spec("10.0.0.0/8", "127.0.0.1"), want: invalid(outside)},
		{category: "address", name: "IPv6 unspecified gateway", body: spec("fd00::/64", "::"), want: invalid(outside)},
		{category: "address", name: "multicast gateway", body: spec("10.0.0.0/8", "224.0.0.1"), want: invalid(outside)},
		{category: "address", name: "documentation TEST-NET-1", body: spec("192.0.2.0/24", "192.0.2.1"), want: synced()},
		{category: "address", name: "documentation TEST-NET-3", body: spec("203.0.113.0/24", "203.0.113.254"), want: synced()},
		{category: "address", name: "IPv6 documentation", body: spec("2001:db8:1::/48", "2001:db8:1::1"), want: synced()},
		{category: "address", name: "unique local", body: spec("fd12:3456:789a::/48", "fd12:3456:789a::1"), want: synced()},
		{category: "address", name: "CGNAT shared address space", body: spec("100.64.0.0/10", "100.64.0.1"), want: synced()},
		{category: "address", name: "benchmarking", body: spec("198.18.0.0/15", "198.18.0.1"), want: synced()},
		{category: "address", name: "the NAT64 well-known prefix", body: spec("64:ff9b::/96", "64:ff9b::1"), want: synced()},
		{category: "address", name: "6to4", body: spec("2002::/16", "2002::1"), want: synced()},

		// Encodings: only the forms Go's net/netip parses pass, on both sides; the API server
		// keeps the spelling as sent, and OVN gets the canonical form.
		{category: "encoding", name: "octal-looking leading zero", body: spec("192.168.010.0/24", "192.168.10.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "gateway with a leading zero", body: spec("10.0.0.0/24", "10.0.0.01"), want: invalid(notIP)},
		{category: "encoding", name: "hexadecimal octet", body: spec("0x0a.0.0.0/8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "hexadecimal gateway", body: spec("10.0.0.0/8", "0x0a000001"), want: invalid(notIP)},
		{category: "encoding", name: "inet_aton short form", body: spec("10.1/16", "10.1.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "a 32-bit integer", body: spec("167772160/8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "trailing dot", body: spec("10.0.0.0./8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "gateway with a trailing dot", body: spec("10.0.0.0/8", "10.0.0.1."), want: invalid(notIP)},
		{category: "encoding", name: "fullwidth digits", body: spec("１０.０.０.０/８", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "Arabic-Indic digits in the gateway", body: spec("10.0.0.0/8", "١٠.٠.٠.١"), want: invalid(notIP)},
		{category: "encoding", name: "fullwidth solidus", body: spec("10.0.0.0／8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "percent-encoded slash", body: spec("10.0.0.0%2F8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "encoding", name: "two double colons", body: spec("2001:db8::1::/64", "2001:db8::1"), want: invalid(notCIDR)},
		{category: "encoding", name: "a five-digit group", body: spec("2001:00db8::/32", "2001:db8::1"), want: invalid(notCIDR)},
		// The API server decodes the byte as U+FFFD.
		{category: "encoding", name: "invalid UTF-8", raw: `{"apiVersion":"samplecrd.k8s.io/v1","kind":"Network","metadata":{"name":"$name"},"spec":{"cidr":"10.0.0.0/24` + "\xff" + `","gateway":"10.0.0.1"}}`,
			want: invalid(`spec.cidr: Invalid value: "10.0.0.0/24` + "\ufffd" + `": cidr must be a CIDR`)},
		{category: "encoding", name: "the longest spellings: expanded IPv6 with an IPv4 tail",
			body: spec("fd00:0000:0000:0000:0000:0000:100.100.100.100/126", "fd00:0000:0000:0000:0000:0000:100.100.100.101"), want: synced()},
		{category: "encoding", name: "uppercase IPv6", body: spec("2001:DB8::/32", "2001:DB8::A"),
			want: synced().checking(storedAs("2001:DB8::/32", "2001:DB8::A"))},
		{category: "encoding", name: "zero-padded IPv6", body: spec("2001:0db8:0000::/48", "2001:0db8:0000::1"),
			want: synced().checking(storedAs("2001:0db8:0000::/48", "2001:0db8:0000::1"))},
		{category: "encoding", name: "fully expanded IPv6 at maxLength",
			body: spec("2001:0db8:0000:0000:0000:0000:0000:0000/100", "2001:0db8:0000:0000:0000:0000:0000:0001"), want: synced()},
		{category: "encoding", name: "IPv4 tail in an IPv6 gateway", body: spec("fd00:10::/64", "fd00:10::10.0.0.1"), want: synced()},
		{category: "encoding", name: "IPv4 tail in an IPv6 cidr", body: spec("64:ff9b::192.0.2.0/120", "64:ff9b::192.0.2.1"), want: synced()},
		{category: "encoding", name: "mixed-case IPv6", body: spec("Fd00:aBcD::/64", "fD00:AbCd::1"), want: synced()},
		{category: "encoding", name: "another spelling of an older Network's cidr",
			older: []samplecrdv1.NetworkSpec{{Cidr: "fd00:abcd::/64", Gateway: "fd00:abcd::1"}},
			body:  spec("FD00:ABCD:0::/64", "FD00:ABCD::2"),
			want:  conflicting("cidr fd00:abcd::/64 overlaps Network a-older-0 (cidr fd00:abcd::/64), which is programmed")},

		// Spacing: no whitespace anywhere, whatever kind.
		{category: "spacing", name: "leading space", body: spec(" 10.0.0.0/8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "trailing space", body: spec("10.0.0.0/8 ", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "leading tab", body: spec("\t10.0.0.0/8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "trailing newline", body: spec("10.0.0.0/8\n", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "trailing CRLF", body: spec("10.0.0.0/8\r\n", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "trailing NUL", body: spec("10.0.0.0/8\x00", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "spaces around the slash", body: spec("10.0.0.0 / 8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "spacing", name: "gateway with a trailing space", body: spec("10.0.0.0/8", "10.0.0.1 "), want: invalid(notIP)},
		{category: "spacing", name: "gateway with a leading no-break space", body: spec("10.0.0.0/8", "\u00a010.0.0.1"), want: invalid(notIP)},
		{category: "spacing", name: "zero-width space inside", body: spec("10.0.\u200b0.0/8", "10.0.0.1"), want: invalid(notCIDR)},

		// Zones: never, in either field.
		{category: "zone", name: "link-local gateway with a zone", body: spec("fd00::/64", "fe80::1%eth0"), want: invalid(notIP)},
		{category: "zone", name: "gateway inside the cidr with a zone", body: spec("fd00::/64", "fd00::1%eth0"), want: invalid(notIP)},
		{category: "zone", name: "percent-encoded zone", body: spec("2001:db8::/64", "2001:db8::1%25x"), want: invalid(notIP)},
		{category: "zone", name: "IPv4 gateway with a zone", body: spec("10.0.0.0/8", "10.0.0.1%eth0"), want: invalid(notIP)},
		{category: "zone", name: "empty zone", body: spec("fd00::/64", "fd00::1%"), want: invalid(notIP)},
		{category: "zone", name: "zone in the cidr's address", body: spec("fd00::%eth0/64", "fd00::1"), want: invalid(notCIDR)},
		{category: "zone", name: "zone after the cidr", body: spec("fd00::/64%eth0", "fd00::1"), want: invalid(notCIDR)},

		// Lengths of the prefix and of the strings.
		{category: "length", name: "/0 with host bits", body: spec("10.0.0.0/0", "10.0.0.1"),
			want: invalid(hostBits, thisNetwork, loopback4, linkLocal4, multicast4, limitedBroadcast)},
		{category: "length", name: "/32", body: spec("192.0.2.7/32", "192.0.2.7"), want: invalid(tooSmall, networkAddr)},
		{category: "length", name: "/31", body: spec("192.0.2.6/31", "192.0.2.7"), want: invalid(tooSmall)},
		{category: "length", name: "/33", body: spec("192.0.2.0/33", "192.0.2.1"), want: invalid(notCIDR)},
		{category: "length", name: "/-1", body: spec("10.0.0.0/-1", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "/129", body: spec("fd00::/129", "fd00::1"), want: invalid(notCIDR)},
		{category: "length", name: "/128", body: spec("fd00::5/128", "fd00::5"), want: invalid(tooSmall, networkAddr)},
		{category: "length", name: "a slash and no length", body: spec("10.0.0.0/", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "a length and no address", body: spec("/24", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "a leading zero in the length", body: spec("10.0.0.0/08", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "a plus sign in the length", body: spec("10.0.0.0/+8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "a length that wraps around 32 bits", body: spec("10.0.0.0/4294967304", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "two lengths", body: spec("10.0.0.0/8/8", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "empty cidr", body: spec("", "10.0.0.1"), want: invalid(notCIDR)},
		{category: "length", name: "cidr one byte beyond maxLength", body: spec("fd00:0000:0000:0000:0000:0000:100.100.100.100/0126", "fd00::1"), want: invalid(cidrTooLong)},
		{category: "length", name: "a megabyte of cidr", body: spec(strings.Repeat("1", 1<<20), "10.0.0.1"), want: invalid(cidrTooLong)},
		{category: "length", name: "gateway one byte beyond maxLength", body: spec("fd00::/64", "fd00:0000:0000:0000:0000:0000:100.100.100.0101"), want: invalid(gatewayTooLong)},

		// Types, as raw JSON.
		{category: "type", name: "cidr is a number", body: spec(10.5, "10.0.0.1"), want: invalid(`spec.cidr: spec.cidr in body must be of type string: "number"`)},
		{category: "type", name: "cidr is an array", body: spec([]any{"10.0.0.0/8"}, "10.0.0.1"), want: invalid(`spec.cidr: spec.cidr in body must be of type string: "array"`)},
		// The API server prunes the object's fields, with a warning each, then refuses its type.
		{category: "type", name: "cidr is an object", body: spec(map[string]any{"ip": "10.0.0.0", "bits": 8}, "10.0.0.1"),
			want: invalid(`spec.cidr: spec.cidr in body must be of type string: "object"`).warn(`unknown field "spec.cidr.bits"`, `unknown field "spec.cidr.ip"`)},
		{category: "type", name: "cidr is a boolean", body: spec(true, "10.0.0.1"), want: invalid(`spec.cidr: spec.cidr in body must be of type string: "boolean"`)},
		// The API server drops a null it has no default for before it validates.
		{category: "type", name: "cidr is null", body: withNull(v4, "spec.cidr"), want: invalid("spec.cidr: Required value")},
		{category: "type", name: "gateway is an integer", body: spec("10.0.0.0/8", 167772161), want: invalid(`spec.gateway: spec.gateway in body must be of type string: "integer"`)},
		{category: "type", name: "spec is null", body: withNull(v4, "spec"), want: invalid("spec: Required value")},
		{category: "type", name: "spec is a string", body: map[string]any{"spec": "10.0.0.0/8"}, want: invalid(`spec: spec in body must be of type object: "string"`)},
		{category: "type", name: "spec is an array", body: map[string]any{"spec": []any{"10.0.0.0/8", "10.0.0.1"}}, want: invalid(`spec: spec in body must be of type object: "array"`)},
		{category: "type", name: "spec is empty", body: map[string]any{"spec": map[string]any{}}, want: invalid("spec.cidr: Required value", "spec.gateway: Required value")},
		{category: "type", name: "name is a number", body: with(v4, "metadata.name", 7), want: refusal(400, "cannot unmarshal number into Go struct field ObjectMeta.name of type string")},
		{category: "type", name: "not JSON", raw: "cidr: 10.0.0.0/8", want: refusal(400, "json")},
		{category: "type", name: "a JSON array", raw: `[{"apiVersion":"samplecrd.k8s.io/v1","kind":"Network"}]`, want: refusal(400, "cannot unmarshal array")},
		{category: "type", name: "another kind", body: with(v4, "kind", "Pod"), want: invalid(`kind: Invalid value: "Pod": must be Network`)},
		{category: "type", name: "another apiVersion", body: with(v4, "apiVersion", "v1"),
			want: refusal(400, "the API version in the data (v1) does not match the expected API version (samplecrd.k8s.io/v1)")},
		{category: "type", name: "an empty kind", body: with(v4, "kind", ""), want: refusal(400, "Object 'Kind' is missing")},
		{category: "type", name: "cidr is a number beyond float64", body: spec(json.RawMessage("1e400"), "10.0.0.1"),
			want: refusal(400, "cannot unmarshal number 1e400 into Go value of type float64")},
		{category: "type", name: "data after the object", raw: `{"apiVersion":"samplecrd.k8s.io/v1","kind":"Network","metadata":{"name":"$name"},"spec":{"cidr":"10.0.0.0/24","gateway":"10.0.0.1"}} {}`,
			want: refusal(400, "invalid character '{' after top-level value")},

		// Unknown fields: pruned, with a warning unless the request says Ignore; refused under
		// Strict.
		{category: "unknown", name: "spec.extra", body: with(v4, "spec.extra", "x"),
			want: synced().warn(`unknown field "spec.extra"`).checking(pruned("spec.extra"))},
		{category: "unknown", name: "spec.extra, strict", body: with(v4, "spec.extra", "x"), fieldValidation: "Strict", want: refusal(400, `unknown field "spec.extra"`)},
		{category: "unknown", name: "spec.extra, ignored", body: with(v4, "spec.extra", "x"), fieldValidation: "Ignore", want: synced().checking(pruned("spec.extra"))},
		{category: "unknown", name: "top-level extra", body: with(v4, "extra", map[string]any{"deep": []any{1, 2}}),
			want: synced().warn(`unknown field "extra"`).checking(pruned("extra"))},
		{category: "unknown", name: "top-level extra, strict", body: with(v4, "extra", "x"), fieldValidation: "Strict", want: refusal(400, `unknown field "extra"`)},
		{category: "unknown", name: "metadata.extra, strict", body: with(v4, "metadata.extra", "x"), fieldValidation: "Strict", want: refusal(400, `unknown field "metadata.extra"`)},
		{category: "unknown", name: "spec.extra nested 10001 deep",
			raw:  `{"apiVersion":"samplecrd.k8s.io/v1","kind":"Network","metadata":{"name":"$name"},"spec":{"cidr":"10.0.0.0/24","gateway":"10.0.0.1","extra":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`,
			want: refusal(400, "exceeded max depth")},
		{category: "unknown", name: "status.extra, strict", body: with(v4, "status.extra", "x"), fieldValidation: "Strict", want: refusal(400, `unknown field "status.extra"`)},
		{category: "unknown", name: "CIDR in capitals", body: map[string]any{"spec": map[string]any{"CIDR": "10.0.0.0/24", "gateway": "10.0.0.1"}},
			want: invalid("spec.cidr: Required value").warn(`unknown field "spec.CIDR"`)},
		{category: "unknown", name: "cidr twice, the last valid",
			raw:  `{"apiVersion":"samplecrd.k8s.io/v1","kind":"Network","metadata":{"name":"$name"},"spec":{"cidr":"127.0.0.0/8","cidr":"10.0.0.0/24","gateway":"10.0.0.1"}}`,
			want: synced().warn(`duplicate field "spec.cidr"`).checking(storedAs("10.0.0.0/24", "10.0.0.1"))},
		{category: "unknown", name: "cidr twice, strict", fieldValidation: "Strict",
			raw:  `{"apiVersion":"samplecrd.k8s.io/v1","kind":"Network","metadata":{"name":"$name"},"spec":{"cidr":"10.0.0.0/24","cidr":"127.0.0.0/8","gateway":"10.0.0.1"}}`,
			want: refusal(400, `duplicate field "spec.cidr"`)},

		// Status and finalizers of the user's.
		{category: "status", name: "a Ready status in the create body",
			body: with(v4, "status", map[string]any{"observedGeneration": 1, "backend": forgedBackend, "conditions": []any{map[string]any{
				"type": "Ready", "status": "True", "reason": "Synced", "message": "forged", "lastTransitionTime": "2020-01-01T00:00:00Z", "observedGeneration": 1}}}),
			want: synced().checking(createdAs(func(n *samplecrdv1.Network) error {
				if !equalZero(n.Status) {
					return fmt.Errorf("created with status %+v, want none", n.Status)
				}
				return nil
			}))},
		{category: "status", name: "Ready=True written on a conflicting Network",
			older: []samplecrdv1.NetworkSpec{{Cidr: "10.60.0.0/16", Gateway: "10.60.0.1"}},
			body:  spec("10.60.1.0/24", "10.60.1.1"),
			want:  conflicting("overlaps Network a-older-0"),
			steps: []step{{"forged Ready", forgeReady(metav1.ConditionTrue, samplecrdv1.ReasonSynced, forgedBackend), conflicting("overlaps Network a-older-0")}}},
		{category: "status", name: "BackendError written on a Ready Network", body: v4, want: synced(),
			steps: []step{{"forged BackendError", forgeReady(metav1.ConditionFalse, samplecrdv1.ReasonBackendError, nil), synced()}}},
		{category: "status", name: "a forged backend object on a Ready Network", body: v4, want: synced(),
			steps: []step{{"forged backend", forgeReady(metav1.ConditionTrue, samplecrdv1.ReasonSynced, forgedBackend), synced().checking(func(_ *hostileRun, n *samplecrdv1.Network) error {
				if n.Status.Backend == nil || *n.Status.Backend == *forgedBackend {
					return fmt.Errorf("status.backend %+v", n.Status.Backend)
				}
				return nil
			})}}},
		{category: "status", name: "a future observedGeneration", body: v4, want: synced(),
			steps: []step{{"generation 99", func(ctx context.Context, r *hostileRun) error {
				return forgeStatus(ctx, r, 99, metav1.ConditionTrue, samplecrdv1.ReasonSynced, nil)
			}, synced()}}},
		{category: "status", name: "a malformed condition", body: v4, want: synced(),
			steps: []step{{"reason with spaces", mergePatch(`{"status":{"conditions":[{"type":"Ready","status":"True","reason":"not a reason","message":"","lastTransitionTime":"2020-01-01T00:00:00Z"}]}}`, "status"),
				invalid(`status.conditions[0].reason: should match '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$'`)}}},
		{category: "status", name: "a foreign finalizer", body: with(v4, "metadata.finalizers", []any{foreignFinalizer}),
			want: synced().checking(finalizers(foreignFinalizer, network.Finalizer)),
			// The controller removes its rows and its finalizer, and leaves the foreign one. The
			// status is left as it was: Ready for the generation before the deletion.
			steps: []step{{"deleted", deleteIt, outcome{check: terminating(foreignFinalizer)}}}},
		{category: "status", name: "the controller's finalizer set by the user", body: with(v4, "metadata.finalizers", []any{network.Finalizer}),
			want: synced().checking(finalizers(network.Finalizer))},
		{category: "status", name: "the controller's finalizer twice", body: with(v4, "metadata.finalizers", []any{network.Finalizer, network.Finalizer}),
			want:  synced().checking(finalizers(network.Finalizer, network.Finalizer)),
			steps: []step{{"deleted", deleteIt, deleted()}}},
		{category: "status", name: "the controller's finalizer on a conflicting Network",
			older: []samplecrdv1.NetworkSpec{{Cidr: "10.61.0.0/16", Gateway: "10.61.0.1"}},
			body:  with(spec("10.61.0.0/24", "10.61.0.1"), "metadata.finalizers", []any{network.Finalizer}),
			want:  conflicting("overlaps Network a-older-0"),
			steps: []step{{"deleted", deleteIt, deleted()}}},
		{category: "status", name: "the controller's finalizer removed by the user", body: v4, want: synced(),
			steps: []step{{"finalizers emptied", mergePatch(`{"metadata":{"finalizers":null}}`), synced().checking(finalizers(network.Finalizer))}}},
		{category: "status", name: "deletionTimestamp in the create body", body: with(v4, "metadata.deletionTimestamp", "2020-01-01T00:00:00Z"),
			want: synced().checking(createdAs(func(n *samplecrdv1.Network) error {
				if n.DeletionTimestamp != nil {
					return fmt.Errorf("created with deletionTimestamp %v", n.DeletionTimestamp)
				}
				return nil
			}))},
		{category: "status", name: "generation in the create body", body: with(v4, "metadata.generation", 7),
			want: synced().checking(createdAs(func(n *samplecrdv1.Network) error {
				if n.Generation != 1 {
					return fmt.Errorf("created with generation %d", n.Generation)
				}
				return nil
			}))},
		{category: "status", name: "uid in the create body", body: with(v4, "metadata.uid", "00000000-0000-0000-0000-000000000001"),
			want: synced().checking(createdAs(func(n *samplecrdv1.Network) error {
				if n.UID == "00000000-0000-0000-0000-000000000001" {
					return fmt.Errorf("created with the uid of the body")
				}
				return nil
			}))},
		{category: "status", name: "resourceVersion in the create body", body: with(v4, "metadata.resourceVersion", "1"),
			want: refusal(500, "resourceVersion should not be set on objects to be created")},
		{category: "status", name: "a finalizer that is no name", body: with(v4, "metadata.finalizers", []any{"not a finalizer!"}),
			want: invalid("metadata.finalizers: name part must consist of alphanumeric characters")},
		// The API server replaces managedFields it cannot read.
		{category: "status", name: "managedFields in the create body",
			body: with(v4, "metadata.managedFields", []any{map[string]any{"manager": "forged", "operation": "Bogus", "fieldsType": "FieldsV9", "fieldsV1": map[string]any{"f:spec": 1}}}),
			want: synced()},
		{category: "status", name: "Ready twice", body: v4, want: synced(),
			steps: []step{{"written", mergePatch(`{"status":{"conditions":[`+
				`{"type":"Ready","status":"True","reason":"Synced","message":"","lastTransitionTime":"2020-01-01T00:00:00Z"},`+
				`{"type":"Ready","status":"False","reason":"Synced","message":"","lastTransitionTime":"2020-01-01T00:00:00Z"}]}}`, "status"),
				invalid(`status.conditions[1]: Duplicate value: {"type":"Ready"}`)}}},
		{category: "status", name: "the backend's type removed", body: v4, want: synced(),
			steps: []step{{"written", mergePatch(`{"status":{"backend":{"type":null}}}`, "status"), invalid("status.backend.type: Required value")}}},
		// The main resource ignores the status.
		{category: "status", name: "status cleared through the main resource", body: v4, want: synced(),
			steps: []step{{"patched", mergePatch(`{"status":{"conditions":null,"backend":null}}`), synced().checking(func(_ *hostileRun, n *samplecrdv1.Network) error {
				if n.Generation != 1 || n.Status.Backend == nil {
					return fmt.Errorf("generation %d, status.backend %+v", n.Generation, n.Status.Backend)
				}
				return nil
			})}}},
		// The API server adds the orphan finalizer, which the garbage collector (not running
		// here) removes; the controller removes its own and its rows.
		{category: "status", name: "deleted with propagationPolicy Orphan", body: v4, want: synced(),
			steps: []step{{"deleted", func(ctx context.Context, r *hostileRun) error {
				orphan := metav1.DeletePropagationOrphan
				return r.client.SamplecrdV1().Networks(r.s.ns).Delete(ctx, r.name, metav1.DeleteOptions{PropagationPolicy: &orphan})
			}, outcome{check: terminating(metav1.FinalizerOrphanDependents)}}}},

		// Metadata at and beyond the API server's limits.
		{category: "metadata", name: "64 labels at their maximum lengths", body: with(v4, "metadata.labels", maxLabels), want: synced()},
		{category: "metadata", name: "a label value one character too long", body: with(v4, "metadata.labels", map[string]any{"tier": strings.Repeat("v", 64)}),
			want: invalid("metadata.labels: must be no more than 63 bytes")},
		{category: "metadata", name: "annotations of 256 KiB", body: with(v4, "metadata.annotations", map[string]any{bigKey: strings.Repeat("x", annotationsLimit-len(bigKey))}),
			want: synced()},
		{category: "metadata", name: "annotations one byte over 256 KiB", body: with(v4, "metadata.annotations", map[string]any{bigKey: strings.Repeat("x", annotationsLimit-len(bigKey)+1)}),
			want: invalid("metadata.annotations: may not be more than 262144 bytes")},
		{category: "metadata", name: "a name of 253 characters", body: with(v4, "metadata.name", longSubdomain), want: synced()},
		{category: "metadata", name: "a name of 254 characters", body: with(v4, "metadata.name", longSubdomain+"d"),
			want: invalid("metadata.name: must be no more than 253 characters")},
		{category: "metadata", name: "a name of 63 characters", body: with(v4, "metadata.name", strings.Repeat("n", 63)), want: synced()},
		{category: "metadata", name: "a name with dots", body: with(v4, "metadata.name", "my.net.work"), want: synced()},
		{category: "metadata", name: "an uppercase name", body: with(v4, "metadata.name", "Net"), want: invalid("metadata.name: a lowercase RFC 1123 subdomain")},
		{category: "metadata", name: "the name ..", body: with(v4, "metadata.name", ".."), want: invalid("metadata.name: a lowercase RFC 1123 subdomain")},
		{category: "metadata", name: "generateName", body: with(v4, "metadata.generateName", "hostile-"),
			want: synced().checking(func(r *hostileRun, _ *samplecrdv1.Network) error {
				if !strings.HasPrefix(r.name, "hostile-") || len(r.name) != len("hostile-")+5 {
					return fmt.Errorf("generated name %q", r.name)
				}
				return nil
			})},
		{category: "metadata", name: "generateName of 253 characters", body: with(v4, "metadata.generateName", longSubdomain),
			want: synced().checking(func(r *hostileRun, _ *samplecrdv1.Network) error {
				if len(r.name) != 63 || !strings.HasPrefix(r.name, longSubdomain[:58]) {
					return fmt.Errorf("generated name %q", r.name)
				}
				return nil
			})},
		{category: "metadata", name: "generateName that makes no name", body: with(v4, "metadata.generateName", "-"),
			want: invalid("metadata.generateName: a lowercase RFC 1123 subdomain", "metadata.name: a lowercase RFC 1123 subdomain")},
		{category: "metadata", name: "another namespace in the body", body: with(v4, "metadata.namespace", "default"),
			want: refusal(400, "the namespace of the provided object does not match the namespace sent on the request")},

		// Updates: admission runs on every write, and the controller follows the spec.
		{category: "update", name: "gateway moved out of the cidr", body: spec("10.70.0.0/24", "10.70.0.1"), want: synced(),
			steps: []step{{"patched", mergePatch(`{"spec":{"gateway":"10.71.0.1"}}`), invalid(outside)}}},
		{category: "update", name: "cidr moved onto loopback", body: spec("10.70.0.0/24", "10.70.0.1"), want: synced(),
			steps: []step{{"patched", mergePatch(`{"spec":{"cidr":"127.0.0.0/8","gateway":"127.0.0.1"}}`), invalid(loopback4)}}},
		{category: "update", name: "cidr given host bits", body: spec("10.70.0.0/24", "10.70.0.1"), want: synced(),
			steps: []step{{"patched", mergePatch(`{"spec":{"cidr":"10.70.1.0/16"}}`), invalid(hostBits)}}},
		{category: "update", name: "gateway removed", body: v4, want: synced(),
			steps: []step{{"JSON patch", patchOf(types.JSONPatchType, `[{"op":"remove","path":"/spec/gateway"}]`), invalid("spec.gateway: Required value")}}},
		{category: "update", name: "spec set to null", body: v4, want: synced(),
			steps: []step{{"merge patch", mergePatch(`{"spec":null}`), invalid("spec: Required value")}}},
		{category: "update", name: "a strategic merge patch", body: v4, want: synced(),
			steps: []step{{"patched", patchOf(types.StrategicMergePatchType, `{"spec":{"gateway":"10.0.0.2"}}`), refusal(415, "accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")}}},
		{category: "update", name: "a stale resourceVersion", body: v4, want: synced(),
			steps: []step{{"updated", func(ctx context.Context, r *hostileRun) error {
				n := r.created.DeepCopy()
				n.Labels = map[string]string{"stale": "true"}
				_, err := r.client.SamplecrdV1().Networks(r.s.ns).Update(ctx, n, metav1.UpdateOptions{})
				return err
			}, refusal(409, "the object has been modified")}}},
		{category: "update", name: "renamed in the body", body: v4, want: synced(),
			steps: []step{{"updated", func(ctx context.Context, r *hostileRun) error {
				n, err := r.client.SamplecrdV1().Networks(r.s.ns).Get(ctx, r.name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				n.Name = "renamed"
				return r.client.SamplecrdV1().RESTClient().Put().Namespace(r.s.ns).Resource("networks").Name(r.name).Body(n).Do(ctx).Error()
			}, refusal(400, "does not match the name on the URL")}}},
		{category: "update", name: "spec set to an older Network's",
			older: []samplecrdv1.NetworkSpec{{Cidr: "10.72.0.0/24", Gateway: "10.72.0.1"}},
			body:  spec("10.73.0.0/24", "10.73.0.1"), want: synced(),
			steps: []step{{"patched", mergePatch(`{"spec":{"cidr":"10.72.0.0/24","gateway":"10.72.0.1"}}`),
				conflicting("cidr 10.72.0.0/24 overlaps Network a-older-0 (cidr 10.72.0.0/24), which is programmed")}}},
		// Conflicts go by age: the older Network wins the cidr, and the younger loses its network.
		{category: "update", name: "an older Network moved onto this one's cidr",
			older: []samplecrdv1.NetworkSpec{{Cidr: "10.74.0.0/24", Gateway: "10.74.0.1"}},
			body:  spec("10.75.0.0/24", "10.75.0.1"), want: synced(),
			steps: []step{{"older patched", patchOlder(`{"spec":{"cidr":"10.75.0.0/24","gateway":"10.75.0.254"}}`),
				conflicting("cidr 10.75.0.0/24 overlaps Network a-older-0 (cidr 10.75.0.0/24), which is programmed").checking(olderIs("True/Synced"))}}},
		{category: "update", name: "an older Network's cidr respelled",
			older: []samplecrdv1.NetworkSpec{{Cidr: "fd00:77::/64", Gateway: "fd00:77::1"}},
			body:  spec("fd00:77::/64", "fd00:77::2"), want: conflicting("overlaps Network a-older-0"),
			steps: []step{{"older patched", patchOlder(`{"spec":{"cidr":"FD00:77::/64"}}`), conflicting("overlaps Network a-older-0").checking(olderIs("True/Synced"))}}},
		{category: "update", name: "deleted with another object's UID as precondition", body: v4, want: synced(),
			steps: []step{{"deleted", func(ctx context.Context, r *hostileRun) error {
				uid := types.UID("00000000-0000-0000-0000-000000000009")
				return r.client.SamplecrdV1().Networks(r.s.ns).Delete(ctx, r.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			}, refusal(409, "the UID in the precondition (00000000-0000-0000-0000-000000000009) does not match the UID in record")}}},
		{category: "update", name: "cidr respelled", body: spec("fd00:76::/64", "fd00:76::1"), want: synced(),
			steps: []step{{"patched", mergePatch(`{"spec":{"cidr":"FD00:76:0::/64"}}`), synced().checking(func(_ *hostileRun, n *samplecrdv1.Network) error {
				if n.Generation != 2 {
					return fmt.Errorf("generation %d, want 2", n.Generation)
				}
				return nil
			})}}},

		// The namespace's allowed-cidrs annotation (config/policy).
		{category: "annotation", name: "garbage", annotations: allowed("hello world"), body: spec("10.20.1.0/24", "10.20.1.1"),
			want: refusal(403, policyMalformed, `is malformed: "hello world" is not a CIDR with no host bits set`)},
		// A YAML block scalar (|) writes a list one per line. The policy's own message would name
		// the entry, line break included, and the API server drops a message with a line break
		// for the policy's static one.
		{category: "annotation", name: "one per line", annotations: allowed("10.20.0.0/16\n10.30.0.0/16\n"), body: spec("10.30.1.0/24", "10.30.1.1"),
			want: refusal(403, "the namespace's annotation samplecrd.k8s.io/allowed-cidrs is malformed: it must list CIDRs separated by commas")},
		{category: "annotation", name: "commas and line breaks", annotations: allowed("10.20.0.0/16,\n10.30.0.0/16\n"), body: spec("10.30.1.0/24", "10.30.1.1"),
			want: synced()},
		{category: "annotation", name: "only spaces", annotations: allowed("   "), body: spec("10.20.1.0/24", "10.20.1.1"),
			want: refusal(403, policyMalformed, "is malformed: an entry is empty")},
		{category: "annotation", name: "ideographic spaces around an entry", annotations: allowed("\u300010.20.0.0/16\u3000"), body: spec("10.20.1.0/24", "10.20.1.1"),
			want: synced()},
		{category: "annotation", name: "a zero-width space before an entry", annotations: allowed("\u200b10.20.0.0/16"), body: spec("10.20.1.0/24", "10.20.1.1"),
			want: refusal(403, policyMalformed, "\"\u200b10.20.0.0/16\" is not a CIDR")},
		{category: "annotation", name: "fullwidth digits", annotations: allowed("１０.20.0.0/16"), body: spec("10.20.1.0/24", "10.20.1.1"),
			want: refusal(403, policyMalformed, `"１０.20.0.0/16" is not a CIDR`)},
		{category: "annotation", name: "a NUL after an entry", annotations: allowed("10.20.0.0/16\x00"), body: spec("10.20.1.0/24", "10.20.1.1"),
			want: refusal(403, policyMalformed, "\"10.20.0.0/16\x00\" is not a CIDR")},
		{category: "annotation", name: "a zone", annotations: allowed("fd00::%eth0/48"), body: spec("fd00::/64", "fd00::1"),
			want: refusal(403, policyMalformed, `"fd00::%eth0/48" is not a CIDR`)},
		{category: "annotation", name: "every address", annotations: allowed("0.0.0.0/0,::/0"), body: spec("10.20.1.0/24", "10.20.1.1"), want: synced()},
		{category: "annotation", name: "every address, and a reserved cidr", annotations: allowed("0.0.0.0/0,::/0"), body: spec("127.0.0.0/8", "127.0.0.1"),
			want: invalid(loopback4)},
		{category: "annotation", name: "4096 characters of /24s, inside the last", annotations: allowed(manyEntries), body: spec(lastEntry, strings.TrimSuffix(lastEntry, "0/24")+"1"),
			want: synced()},
		{category: "annotation", name: "4096 characters of /24s, outside them all", annotations: allowed(manyEntries), body: spec("10.200.0.0/24", "10.200.0.1"),
			want: refusal(403, "cidr 10.200.0.0/24 is outside the ranges that namespace ")},
		{category: "annotation", name: "uppercase cidr inside a lowercase range", annotations: allowed("fd00:20::/48"), body: spec("FD00:20:0:1::/64", "FD00:20:0:1::1"),
			want: synced()},
		{category: "annotation", name: "garbage after the Network was Ready", body: spec("10.20.1.0/24", "10.20.1.1"), want: synced(),
			steps: []step{
				{"cidr changed", annotateNamespace("hello world", mergePatch(`{"spec":{"cidr":"10.20.2.0/24","gateway":"10.20.2.1"}}`)),
					refusal(403, policyMalformed, `"hello world" is not a CIDR`)},
				{"labelled", mergePatch(`{"metadata":{"labels":{"tier":"old"}}}`), synced()},
				// The finalizer can still go.
				{"deleted", deleteIt, deleted()},
			}},
	}
}

// padTo is s followed by spaces up to length bytes.
func padTo(s string, length int) string {
	return s + strings.Repeat(" ", length-len(s))
}

// equalZero reports whether a status is empty.
func equalZero(s samplecrdv1.NetworkStatus) bool {
	return s.ObservedGeneration == 0 && len(s.Conditions) == 0 && s.Backend == nil
}
