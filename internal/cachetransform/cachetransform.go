// Package cachetransform holds the informer transforms shared by the manager and the benchmark, so
// that what the benchmark measures is what the manager caches.
package cachetransform

import (
	"k8s.io/apimachinery/pkg/api/meta"
)

// StripManagedFields drops managedFields before an object enters a cache. Server-side apply keeps
// a record per field manager there, often larger than the rest of the metadata, and no controller
// here reads it.
func StripManagedFields(obj any) (any, error) {
	// Only objects that have managedFields are touched: setting nil on an object read
	// concurrently elsewhere would race for nothing.
	if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
