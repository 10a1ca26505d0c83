package podnetwork

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/ipam"
)

// TestRecordedAllocationRoundTrip: what writeAllocation writes, restore reads back.
func TestRecordedAllocationRoundTrip(t *testing.T) {
	for _, tc := range []struct{ cidr, gateway, ip string }{
		{"10.1.0.0/16", "10.1.0.1", "10.1.0.5"},
		{"fd00:10::/64", "fd00:10::1", "fd00:10::2:5"},
	} {
		t.Run(tc.cidr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.ip)
			a := Allocation{
				Network: cache.ObjectName{Namespace: "team-a", Name: "web"}, NetworkUID: "net-uid",
				Pod: cache.ObjectName{Namespace: "team-a", Name: "p"}, PodUID: "pod-uid",
				IP: ip, MAC: ipam.MACFor(ip), CIDR: netip.MustParsePrefix(tc.cidr), Gateway: netip.MustParseAddr(tc.gateway),
			}
			ann := map[string]string{samplecrdv1.NetworkAnnotation: "web", "other": "kept"}
			for k, v := range allocationAnnotations(&a, "it.web") {
				if v == nil {
					t.Fatalf("annotation %s is removed for an allocation", k)
				}
				ann[k] = *v
			}
			pod := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "p", UID: "pod-uid", Annotations: ann}}
			got, ok := recordedAllocation(pod)
			if !ok {
				t.Fatalf("annotations %v are not read back as an allocation", ann)
			}
			want := recorded{network: a.Network, networkUID: "net-uid", ip: ip, cidr: a.CIDR, gateway: a.Gateway, mac: a.MAC}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(recorded{}), cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
				cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
				t.Errorf("read back (-want +got):\n%s", diff)
			}
			for k, v := range allocationAnnotations(nil, "") {
				if v != nil {
					t.Errorf("annotation %s is set without an allocation", k)
				}
			}
		})
	}
}

func TestRecordedAllocationRefusesPartialRecords(t *testing.T) {
	full := map[string]string{
		samplecrdv1.AllocatedAnnotation:           "true",
		samplecrdv1.AllocatedNetworkAnnotation:    "web",
		samplecrdv1.AllocatedNetworkUIDAnnotation: "uid",
		samplecrdv1.AllocatedIPAnnotation:         "10.1.0.5/16",
		samplecrdv1.AllocatedMACAnnotation:        "0a:58:0a:01:00:05",
		samplecrdv1.AllocatedGatewayAnnotation:    "10.1.0.1",
	}
	for k := range full {
		ann := map[string]string{}
		for k2, v := range full {
			if k2 != k {
				ann[k2] = v
			}
		}
		pod := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Annotations: ann}}
		if _, ok := recordedAllocation(pod); ok {
			t.Errorf("a record without %s is read as an allocation", k)
		}
	}
	bad := map[string]string{}
	for k, v := range full {
		bad[k] = v
	}
	bad[samplecrdv1.AllocatedIPAnnotation] = "10.1.0.5" // no prefix length
	if _, ok := recordedAllocation(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Annotations: bad}}); ok {
		t.Error("an address without its prefix length is read as an allocation")
	}
}

func TestTrimPod(t *testing.T) {
	now := metav1.Now()
	in := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team-a", Name: "p", UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
		Labels:          map[string]string{"app": "web"},
		Annotations:     map[string]string{samplecrdv1.NetworkAnnotation: "web", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
		OwnerReferences: []metav1.OwnerReference{{Name: "rs"}},
	}}
	out, err := TrimPod(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "team-a", Name: "p", UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
		Annotations: map[string]string{samplecrdv1.NetworkAnnotation: "web"},
	}}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("trimmed pod (-want +got):\n%s", diff)
	}
}
