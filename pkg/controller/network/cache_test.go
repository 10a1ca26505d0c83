package network

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

func TestTrimForCache(t *testing.T) {
	created := metav1.Unix(1000, 0)
	deleted := metav1.Unix(2000, 0)
	grace := int64(30)
	kept := metav1.ObjectMeta{
		Name: "n", Namespace: "ns", UID: "u1", ResourceVersion: "42", Generation: 3,
		CreationTimestamp: created, DeletionTimestamp: &deleted, DeletionGracePeriodSeconds: &grace,
		Finalizers: []string{Finalizer, "other.example.com/hold"},
	}
	spec := samplecrdv1.NetworkSpec{Cidr: "10.1.0.0/16", Gateway: "10.1.0.1"}
	status := samplecrdv1.NetworkStatus{
		ObservedGeneration: 3,
		Conditions:         []metav1.Condition{{Type: samplecrdv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Programmed"}},
		Backend:            &samplecrdv1.NetworkBackendStatus{Type: "ovn", Name: "s", ID: "id"},
	}
	full := kept.DeepCopy()
	full.GenerateName = "n-"
	full.Labels = map[string]string{"big": "label"}
	full.Annotations = map[string]string{"big": "annotation"}
	full.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "o"}}
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	in := &samplecrdv1.Network{ObjectMeta: *full, Spec: spec, Status: status}

	out, err := TrimForCache(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &samplecrdv1.Network{ObjectMeta: kept, Spec: spec, Status: status}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("trimmed Network (-want +got):\n%s", diff)
	}
	if in.Labels == nil || in.ManagedFields == nil {
		t.Errorf("the input was changed: %+v", in.ObjectMeta)
	}

	// Tombstones and other objects pass through as they are.
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/n", Obj: in}
	if got, err := TrimForCache(tombstone); err != nil || got != tombstone {
		t.Errorf("tombstone: got %v, %v", got, err)
	}
}
