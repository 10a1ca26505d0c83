package network

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
)

// maxOwnWrites bounds the writes remembered per key. A sync makes at most two (the finalizer and
// the status); a key whose events never arrive is forgotten on its delete event.
const maxOwnWrites = 4

// ownWrites remembers this controller's own writes until their watch events arrive, so that the
// update handler can tell them from everyone else's. The sync that made a write already acted on
// what it wrote: syncing again on its event would only repeat the sync and, when the sync failed,
// bypass the retry backoff (a status whose message changes on every try would then be written as
// fast as the API server answers).
//
// A write is known by its content, recorded before it is sent, not by the resourceVersion the API
// server answers with: the watch event often arrives before the answer.
type ownWrites struct {
	mu      sync.Mutex
	pending map[cache.ObjectName][]ownWrite
}

// ownWrite is one write: a status, or (status nil) the finalizers.
type ownWrite struct {
	status     *samplecrdv1.NetworkStatus
	finalizers []string
}

// expectStatus records that status is about to be written for key.
func (w *ownWrites) expectStatus(key cache.ObjectName, status *samplecrdv1.NetworkStatus) ownWrite {
	// As the API server stores it: times to the second.
	var stored samplecrdv1.NetworkStatus
	if data, err := json.Marshal(status); err == nil && json.Unmarshal(data, &stored) == nil {
		status = &stored
	}
	return w.expect(key, ownWrite{status: status})
}

// expectFinalizers records that the finalizers are about to be set for key.
func (w *ownWrites) expectFinalizers(key cache.ObjectName, finalizers []string) ownWrite {
	return w.expect(key, ownWrite{finalizers: slices.Clone(finalizers)})
}

func (w *ownWrites) expect(key cache.ObjectName, write ownWrite) ownWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending = map[cache.ObjectName][]ownWrite{}
	}
	writes := append(w.pending[key], write)
	if len(writes) > maxOwnWrites {
		writes = writes[len(writes)-maxOwnWrites:]
	}
	w.pending[key] = writes
	return write
}

// failed forgets a write that the API server refused.
func (w *ownWrites) failed(key cache.ObjectName, write ownWrite) {
	w.mu.Lock()
	defer w.mu.Unlock()
	writes := slices.DeleteFunc(w.pending[key], func(o ownWrite) bool { return o.matches(write) })
	if len(writes) == 0 {
		delete(w.pending, key)
		return
	}
	w.pending[key] = writes
}

// seen is called with each update event of key and reports whether it is one of this
// controller's writes: the event changes the status alone, or the finalizers alone, to what a
// recorded write set. The write is forgotten, and so are those recorded before it, whose events,
// if any are still to come, are older than this one.
func (w *ownWrites) seen(key cache.ObjectName, old, updated *samplecrdv1.Network) bool {
	if old.UID != updated.UID {
		// Deleted and created again between two watch events: the old Network's writes are moot.
		w.forget(key)
		return false
	}
	sameMeta := old.Generation == updated.Generation && old.DeletionTimestamp.Equal(updated.DeletionTimestamp) &&
		maps.Equal(old.Labels, updated.Labels) && maps.Equal(old.Annotations, updated.Annotations)
	if !sameMeta {
		return false
	}
	sameFinalizers := slices.Equal(old.Finalizers, updated.Finalizers)
	sameStatus := equality.Semantic.DeepEqual(old.Status, updated.Status)
	var got ownWrite
	switch {
	case sameFinalizers && !sameStatus:
		got = ownWrite{status: &updated.Status}
	case !sameFinalizers && sameStatus:
		got = ownWrite{finalizers: updated.Finalizers}
	default:
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	writes := w.pending[key]
	i := slices.IndexFunc(writes, func(o ownWrite) bool { return o.matches(got) })
	if i < 0 {
		return false
	}
	if rest := writes[i+1:]; len(rest) > 0 {
		w.pending[key] = slices.Clone(rest)
	} else {
		delete(w.pending, key)
	}
	return true
}

func (o ownWrite) matches(p ownWrite) bool {
	if (o.status == nil) != (p.status == nil) {
		return false
	}
	if o.status != nil {
		return equality.Semantic.DeepEqual(*o.status, *p.status)
	}
	return slices.Equal(o.finalizers, p.finalizers)
}

// forget drops what is remembered of key, whose Network is gone.
func (w *ownWrites) forget(key cache.ObjectName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, key)
}
