package app

import (
	"k8s.io/apimachinery/pkg/api/meta"
)

// stripManagedFields is the informers' transform: it drops managedFields before an object enters a
// cache. Server-side apply keeps a record per field manager there, often larger than the rest of
// the metadata, and nothing in this manager reads it.
func stripManagedFields(obj any) (any, error) {
	// Only objects that have managedFields are touched: setting nil on an object read
	// concurrently elsewhere would race for nothing.
	if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
