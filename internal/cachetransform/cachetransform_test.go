package cachetransform

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestStripManagedFields(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}
	for _, obj := range []any{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ManagedFields: managed}},
		&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "p", ManagedFields: managed}},
	} {
		out, err := StripManagedFields(obj)
		if err != nil {
			t.Fatal(err)
		}
		m := out.(metav1.Object)
		if m.GetManagedFields() != nil || m.GetName() != "p" {
			t.Errorf("%T: managedFields %v, name %q; want none and p", obj, m.GetManagedFields(), m.GetName())
		}
	}
	// Something without metadata passes through untouched.
	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/p"}
	if out, err := StripManagedFields(tombstone); err != nil || out != tombstone {
		t.Errorf("tombstone: got %v, %v", out, err)
	}
}
