package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
)

// getNetwork returns the Network from the cache, or this controller's own newer write to it.
// The object is shared: callers must not mutate it.
func (c *Controller) getNetwork(key cache.ObjectName) (*samplecrdv1.Network, error) {
	obj, exists, err := c.networks.GetByKey(key.String())
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, apierrors.NewNotFound(samplecrdv1.Resource("networks"), key.Name)
	}
	n, ok := obj.(*samplecrdv1.Network)
	if !ok {
		return nil, fmt.Errorf("cached object %s is %T, not a Network", key, obj)
	}
	return n, nil
}

// syncNetwork makes the backend match one Network, level-based: it reads the cache, and acts on
// what it finds, whatever event brought the key.
func (c *Controller) syncNetwork(ctx context.Context, key cache.ObjectName) error {
	logger := klog.FromContext(ctx)
	// This sync writes the used addresses of the moment: a change after it schedules another.
	c.usageDue.remove(key)
	cached, err := c.getNetwork(key)
	if apierrors.IsNotFound(err) {
		// Gone, finalizer and all: its backend objects went before the finalizer did. A Network
		// whose finalizer someone else removed left orphans, which the sweep reported.
		logger.V(4).Info("Network no longer exists")
		if err := c.removeOrphans(ctx, key, ""); err != nil && !c.unavailable(err) {
			return err // an unavailable backend: found again by the sweep that follows its return
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Network %s from the cache: %w", key, err)
	}
	// Orphans under this key that failed to go are retried with the key; the Network itself is
	// synced all the same.
	orphanErr := c.removeOrphans(ctx, key, cached.UID)
	if c.unavailable(orphanErr) {
		orphanErr = nil // found again by the sweep that follows the backend's return
	}
	return errors.Join(orphanErr, c.syncExisting(ctx, key, cached))
}

// syncExisting syncs a Network that is in the cache.
func (c *Controller) syncExisting(ctx context.Context, key cache.ObjectName, cached *samplecrdv1.Network) error {
	logger := klog.FromContext(ctx)

	if !cached.DeletionTimestamp.IsZero() {
		return c.syncDeleting(ctx, cached)
	}

	desired, invalid := desiredNetwork(cached)
	if invalid != nil {
		// Admission validation makes this rare (the CRD was installed without its rules, say).
		// Nothing the controller does will fix it: say so and wait for a new spec.
		cond := notReady(samplecrdv1.ReasonInvalidSpec, invalid.Error())
		if kept, err := c.keepForPods(ctx, cached, cond); kept || err != nil {
			return err
		}
		if err := c.unprogram(ctx, cached); err != nil {
			return c.unprogramFailed(ctx, cached, cond, err)
		}
		if !conditionMatches(cached, cond) {
			c.recorder.Event(cached, corev1.EventTypeWarning, samplecrdv1.ReasonInvalidSpec, invalid.Error())
		}
		return c.writeStatus(ctx, cached, cond, nil)
	}

	if winner, err := programmedOverlapping(c.networksIndexer, cached, desired.CIDR); err != nil {
		return fmt.Errorf("finding Networks overlapping %s: %w", key, err)
	} else if winner != nil {
		// The winner is in the Network's own namespace: conflicts are judged per namespace.
		// The winner's prefix in its canonical form: a respelling of its cidr (which enqueues no
		// other Network) must not leave an old spelling in this message.
		msg := fmt.Sprintf("cidr %s overlaps Network %s (cidr %s), which is programmed",
			desired.CIDR, winner.Name, indexedPrefix(winner))
		cond := notReady(samplecrdv1.ReasonCIDRConflict, msg)
		if kept, err := c.keepForPods(ctx, cached, cond); kept || err != nil {
			return err
		}
		if err := c.unprogram(ctx, cached); err != nil {
			return c.unprogramFailed(ctx, cached, cond, err)
		}
		if !conditionMatches(cached, cond) {
			c.recorder.Event(cached, corev1.EventTypeWarning, samplecrdv1.ReasonCIDRConflict, msg)
		}
		return c.writeStatus(ctx, cached, cond, nil)
	}

	network, err := c.addFinalizer(ctx, cached)
	if err != nil {
		return err
	}
	if c.attachments != nil {
		// Opened to pods before the switch exists: a pod that comes first waits for it.
		if notFit := c.attachments.SetNetwork(key, network.UID, desired.CIDR, desired.Gateway); notFit != nil {
			// The backend keeps the network as it was: the pods' ports are on it.
			cond := notReady(samplecrdv1.ReasonAddressesInUse, notFit.Error())
			if !conditionMatches(network, cond) {
				c.recorder.Event(network, corev1.EventTypeWarning, samplecrdv1.ReasonAddressesInUse, notFit.Error())
			}
			return c.writeStatus(ctx, network, cond, network.Status.Backend)
		}
	}

	status, err := c.backend.Ensure(ctx, desired)
	var nameConflict *backend.NameConflictError
	switch {
	case errors.As(err, &nameConflict):
		// Nothing was written, and nothing will be until the other object goes: the backend
		// reports that, and the key is synced again then.
		msg := fmt.Sprintf("%s backend: %v", c.backend.Type(), nameConflict)
		cond := notReady(samplecrdv1.ReasonNameConflict, msg)
		if !conditionMatches(network, cond) {
			c.recorder.Event(network, corev1.EventTypeWarning, samplecrdv1.ReasonNameConflict, msg)
		}
		return c.writeStatus(ctx, network, cond, network.Status.Backend)
	case errors.Is(err, backend.ErrConflict):
		// The backend changed under the sync (a Network of the namespace created or deleted its
		// router meanwhile): nothing was written, and nothing is wrong. Retried with backoff,
		// without a status or an event.
		return fmt.Errorf("ensuring Network %s in the backend: %w", key, err)
	}
	if err != nil {
		return c.backendFailed(ctx, network, fmt.Errorf("ensuring Network %s in the backend: %w", key, err))
	}
	if status.Changed {
		logger.V(2).Info("Programmed network in the backend", "backend", status.Type, "object", status.Name, "id", status.ID)
	}
	ready := metav1.Condition{
		Type:    samplecrdv1.ConditionReady,
		Status:  metav1.ConditionTrue,
		Reason:  samplecrdv1.ReasonSynced,
		Message: MessageSynced,
	}
	changedStatus := !conditionMatches(network, ready)
	if status.Changed || changedStatus {
		c.recorder.Event(network, corev1.EventTypeNormal, samplecrdv1.ReasonSynced, MessageSynced)
	}
	return c.writeStatus(ctx, network, ready, &samplecrdv1.NetworkBackendStatus{Type: status.Type, Name: status.Name, ID: status.ID})
}

// syncDeleting removes a deleted Network's backend objects, then its finalizer.
func (c *Controller) syncDeleting(ctx context.Context, n *samplecrdv1.Network) error {
	if !slices.Contains(n.Finalizers, Finalizer) {
		return nil
	}
	if c.attachments != nil {
		if attached, some := c.attachments.CloseNetwork(n.UID); attached > 0 {
			msg := fmt.Sprintf("%s attached: %s; the Network is removed once they are gone", podCount(attached), listPods(some, attached))
			cond := notReady(samplecrdv1.ReasonInUse, msg)
			if !conditionMatches(n, cond) {
				c.recorder.Event(n, corev1.EventTypeNormal, samplecrdv1.ReasonInUse, msg)
			}
			// The pods' releases bring the key back (see Options.Attachments).
			return c.writeStatus(ctx, n, cond, n.Status.Backend)
		}
	}
	if err := c.backend.Delete(ctx, n.UID); err != nil {
		return c.backendFailed(ctx, n, fmt.Errorf("deleting Network %s from the backend: %w", klog.KObj(n), err))
	}
	klog.FromContext(ctx).V(2).Info("Removed network from the backend")
	c.recorder.Event(n, corev1.EventTypeNormal, ReasonDeleted, "Removed the network from the "+c.backend.Type()+" backend")
	others := slices.DeleteFunc(slices.Clone(n.Finalizers), func(f string) bool { return f == Finalizer })
	if len(others) > 0 {
		// Someone else's finalizer keeps the Network: its status must not say it is programmed.
		msg := fmt.Sprintf("removed from the %s backend; waiting for the finalizers %s", c.backend.Type(), strings.Join(others, ", "))
		if err := c.writeStatus(ctx, n, notReady(samplecrdv1.ReasonDeleting, msg), nil); err != nil {
			return err
		}
		// The finalizer patch carries the resourceVersion of the status just written.
		written, err := c.getNetwork(cache.MetaObjectToName(n))
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		n = written
	}
	_, err := c.patchFinalizers(ctx, n, others)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// keepForPods keeps a Network that must not be programmed (its spec is invalid or conflicts)
// programmed as it was while pods are attached to it: removing it would remove their ports. The
// status says why it is not applied, and that pods keep it. kept is false when no pod is attached.
func (c *Controller) keepForPods(ctx context.Context, n *samplecrdv1.Network, cond metav1.Condition) (kept bool, err error) {
	if c.attachments == nil {
		return false, nil
	}
	attached, some := c.attachments.CloseNetwork(n.UID)
	if attached == 0 {
		return false, nil
	}
	cond.Message = fmt.Sprintf("%s; the network stays as it was while %s attached (%s)", cond.Message,
		podCount(attached), listPods(some, attached))
	if !conditionMatches(n, cond) {
		c.recorder.Event(n, corev1.EventTypeWarning, cond.Reason, cond.Message)
	}
	return true, c.writeStatus(ctx, n, cond, n.Status.Backend)
}

func podCount(n int) string {
	if n == 1 {
		return "1 pod is"
	}
	return fmt.Sprintf("%d pods are", n)
}

// listPods names some of count pods, saying how many more there are.
func listPods(some []cache.ObjectName, count int) string {
	names := make([]string, len(some))
	for i, k := range some {
		names[i] = k.String()
	}
	s := strings.Join(names, ", ")
	if count > len(some) {
		s += fmt.Sprintf(" and %d more", count-len(some))
	}
	return s
}

// unavailable reports whether err is a backend that is away (not connected, or lost during the
// call), rather than one that refused this Network.
func (c *Controller) unavailable(err error) bool {
	return err != nil && (errors.Is(err, backend.ErrNotReady) || c.backend.Ready() != nil)
}

// misconfigured returns the misconfiguration that err, or else the backend's readiness, reports;
// nil for none.
func (c *Controller) misconfigured(err error) *backend.MisconfiguredError {
	if m := backend.Misconfigured(err); m != nil {
		return m
	}
	return backend.Misconfigured(c.backend.Ready())
}

// isProgrammed reports whether n was programmed at its current generation, as far as its status
// says: Ready=True, for this generation, with a backend object.
func isProgrammed(n *samplecrdv1.Network) bool {
	cond := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
	return n.DeletionTimestamp.IsZero() && cond != nil && cond.Status == metav1.ConditionTrue &&
		cond.ObservedGeneration == n.Generation && n.Status.ObservedGeneration == n.Generation && n.Status.Backend != nil
}

// backendFailed reports a failed backend call (err, already wrapped with what was being done) for n.
//
// A backend that is away is not this Network's fault, and every Network would report it at once:
// a Network that was programmed at this generation keeps its status (its data plane runs on what
// was programmed), and one with work pending says BackendUnavailable once, with one event. None
// is retried: every Network is synced again when the backend is back (see checkAll), so an outage
// costs at most one status write and one event per Network with work pending, and none for the
// others. The outage itself shows on /readyz, the backend readiness metric and one event (see
// backendWentAway).
//
// A backend that cannot connect because it is misconfigured (backend.MisconfiguredError: a
// certificate that does not verify, say) is away too, with the same treatment, except that a
// Network with work pending says BackendError with the cause, which waiting will not fix. The
// cause's words are stable, so a failing reconnection writes nothing; a change of cause syncs
// every Network again (see backendWentAway), one status write per change.
//
// A backend that answers but fails (or any other failure) says BackendError, with one event per
// reason and generation however often the message changes, and is retried with backoff. A
// conflict (the backend changed under the call) is retried with backoff, quietly.
func (c *Controller) backendFailed(ctx context.Context, n *samplecrdv1.Network, err error) error {
	switch {
	case errors.Is(err, backend.ErrConflict):
		return err
	case c.unavailable(err):
		if isProgrammed(n) {
			klog.FromContext(ctx).V(4).Info("Backend is not available; the Network stays as programmed", "err", err)
			return nil
		}
		if m := c.misconfigured(err); m != nil {
			msg := fmt.Sprintf("%s backend: %v", c.backend.Type(), m)
			cond := notReady(samplecrdv1.ReasonBackendError, msg)
			if !conditionMatches(n, cond) {
				c.recorder.Event(n, corev1.EventTypeWarning, samplecrdv1.ReasonBackendError, msg)
			}
			klog.FromContext(ctx).V(2).Info("Backend is misconfigured; waiting for a fix", "err", m)
			return c.writeStatus(ctx, n, cond, n.Status.Backend)
		}
		msg := fmt.Sprintf(MessageBackendUnavailable, c.backend.Type())
		cond := notReady(samplecrdv1.ReasonBackendUnavailable, msg)
		if !conditionMatches(n, cond) {
			c.recorder.Event(n, corev1.EventTypeWarning, samplecrdv1.ReasonBackendUnavailable, msg)
		}
		klog.FromContext(ctx).V(2).Info("Backend is not available; waiting for it", "err", err)
		return c.writeStatus(ctx, n, cond, n.Status.Backend)
	}
	reason, msg := samplecrdv1.ReasonBackendError, fmt.Sprintf("%s backend: %v", c.backend.Type(), errors.Unwrap(err))
	if !n.DeletionTimestamp.IsZero() {
		reason, msg = samplecrdv1.ReasonDeleting, fmt.Sprintf("deleting from the %s backend: %v", c.backend.Type(), errors.Unwrap(err))
	}
	if cur := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady); cur == nil ||
		cur.Reason != reason || cur.ObservedGeneration != n.Generation || cur.Status != metav1.ConditionFalse {
		c.recorder.Event(n, corev1.EventTypeWarning, samplecrdv1.ReasonBackendError, msg)
	}
	return errors.Join(err, c.writeStatus(ctx, n, notReady(reason, msg), n.Status.Backend))
}

// unprogramFailed handles a failure to remove a Network that must not be programmed, whose
// status should say cond. When the backend is away and the status says cond already, the status
// stays: nothing about the Network changed, and the removal is retried when the backend returns
// (every Network is synced again then). Otherwise it is a backend failure like any other.
func (c *Controller) unprogramFailed(ctx context.Context, n *samplecrdv1.Network, cond metav1.Condition, err error) error {
	if c.unavailable(err) && conditionMatches(n, cond) {
		klog.FromContext(ctx).V(4).Info("Backend is not available; the Network keeps its status", "reason", cond.Reason, "err", err)
		return nil
	}
	return c.backendFailed(ctx, n, err)
}

// unprogram removes a Network that must not be programmed (it conflicts, or its spec is invalid)
// from the backend, when it may be there: the status says so, or the finalizer is on.
func (c *Controller) unprogram(ctx context.Context, n *samplecrdv1.Network) error {
	if n.Status.Backend == nil && !slices.Contains(n.Finalizers, Finalizer) {
		return nil
	}
	if err := c.backend.Delete(ctx, n.UID); err != nil {
		return fmt.Errorf("removing Network %s from the backend: %w", klog.KObj(n), err)
	}
	return nil
}

// desiredNetwork is what the backend must hold for n, or an error saying why it cannot. It refuses
// what admission refuses (the CRD's rules in pkg/apis/samplecrd/v1/types.go), for a Network that an
// API server without them admitted; FuzzSpecValidation checks that the two agree.
func desiredNetwork(n *samplecrdv1.Network) (backend.Network, error) {
	prefix, err := netip.ParsePrefix(n.Spec.Cidr)
	if err != nil {
		return backend.Network{}, fmt.Errorf("spec.cidr %q is not a CIDR: %w", n.Spec.Cidr, err)
	}
	if prefix != prefix.Masked() {
		return backend.Network{}, fmt.Errorf("spec.cidr %q has host bits set; the network is %s", n.Spec.Cidr, prefix.Masked())
	}
	if r, ok := samplecrdv1.ReservedRangeOverlapping(prefix); ok {
		return backend.Network{}, fmt.Errorf("spec.cidr %s overlaps %s, which no Network may use", prefix, r)
	}
	// The gateway and at least one more host, as admission requires: /30 and /126 are the smallest.
	if prefix.Bits() > prefix.Addr().BitLen()-2 {
		return backend.Network{}, fmt.Errorf("spec.cidr %s is too small: it must hold the gateway and at least one more host", prefix)
	}
	gateway, err := netip.ParseAddr(n.Spec.Gateway)
	if err != nil {
		return backend.Network{}, fmt.Errorf("spec.gateway %q is not an IP address: %w", n.Spec.Gateway, err)
	}
	if gateway.Zone() != "" || gateway.Is4In6() {
		return backend.Network{}, fmt.Errorf("spec.gateway %q must be a plain IPv4 or IPv6 address", n.Spec.Gateway)
	}
	if !prefix.Contains(gateway) {
		return backend.Network{}, fmt.Errorf("spec.gateway %s is not inside spec.cidr %s", gateway, prefix)
	}
	if gateway == prefix.Addr() {
		return backend.Network{}, fmt.Errorf("spec.gateway %s is the network address of %s", gateway, prefix)
	}
	if gateway.Is4() && gateway == lastAddr(prefix) {
		return backend.Network{}, fmt.Errorf("spec.gateway %s is the broadcast address of %s", gateway, prefix)
	}
	return backend.Network{Namespace: n.Namespace, Name: n.Name, UID: n.UID, CIDR: prefix, Gateway: gateway}, nil
}

// lastAddr returns the last address of a prefix with no host bits set: the broadcast address of an
// IPv4 network.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}

// addFinalizer puts the finalizer on n before its first backend write, and returns the Network as
// the API server stored it (or n when it already had the finalizer).
func (c *Controller) addFinalizer(ctx context.Context, n *samplecrdv1.Network) (*samplecrdv1.Network, error) {
	if slices.Contains(n.Finalizers, Finalizer) {
		return n, nil
	}
	return c.patchFinalizers(ctx, n, append(slices.Clone(n.Finalizers), Finalizer))
}

// patchFinalizers sets n's finalizers with a merge patch that carries n's resourceVersion, so that
// a stale cache causes a conflict (and a retry) instead of dropping someone else's finalizer.
func (c *Controller) patchFinalizers(ctx context.Context, n *samplecrdv1.Network, finalizers []string) (*samplecrdv1.Network, error) {
	if finalizers == nil {
		finalizers = []string{}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"finalizers": finalizers, "resourceVersion": n.ResourceVersion},
	})
	if err != nil {
		return nil, err
	}
	key := cache.MetaObjectToName(n)
	write := c.own.expectFinalizers(key, finalizers)
	updated, err := c.client.SamplecrdV1().Networks(n.Namespace).Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		c.own.failed(key, write)
		return nil, fmt.Errorf("setting the finalizers of Network %s: %w", klog.KObj(n), err)
	}
	c.networks.Mutation(updated)
	return updated, nil
}

func notReady(reason, message string) metav1.Condition {
	return metav1.Condition{Type: samplecrdv1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason, Message: message}
}

// conditionMatches reports whether n already has cond's status, reason and message.
func conditionMatches(n *samplecrdv1.Network, cond metav1.Condition) bool {
	cur := meta.FindStatusCondition(n.Status.Conditions, cond.Type)
	return cur != nil && cur.Status == cond.Status && cur.Reason == cond.Reason && cur.Message == cond.Message &&
		cur.ObservedGeneration == n.Generation
}

// writeStatus sets the Ready condition, the observed generation and the backend object, and writes
// the status only when that changes it. The merge patch replaces the whole status: this controller
// is its only writer, and the workqueue never syncs one key twice at once.
func (c *Controller) writeStatus(ctx context.Context, n *samplecrdv1.Network, ready metav1.Condition, be *samplecrdv1.NetworkBackendStatus) error {
	status := n.Status.DeepCopy()
	ready.ObservedGeneration = n.Generation
	ready.LastTransitionTime = metav1.NewTime(c.clock.Now())
	meta.SetStatusCondition(&status.Conditions, ready)
	status.ObservedGeneration = n.Generation
	status.Backend = be
	if c.attachments != nil {
		status.Addresses = c.attachments.Addresses(n.UID)
	}
	if equality.Semantic.DeepEqual(&n.Status, status) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"observedGeneration": status.ObservedGeneration,
		"conditions":         status.Conditions,
		"backend":            status.Backend, // null removes it
		"addresses":          status.Addresses,
	}})
	if err != nil {
		return err
	}
	key := cache.MetaObjectToName(n)
	write := c.own.expectStatus(key, status)
	updated, err := c.client.SamplecrdV1().Networks(n.Namespace).Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		c.own.failed(key, write)
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing the status of Network %s: %w", klog.KObj(n), err)
	}
	c.networks.Mutation(updated)
	klog.FromContext(ctx).V(2).Info("Updated status", "ready", ready.Status, "reason", ready.Reason)
	return nil
}

// removeOrphans deletes the backend objects the orphan sweep found under key, except those of
// cached, the UID of the Network the cache holds under key ("" for none). Before anything is
// deleted, a read from the API server confirms which Network holds the name now, so that a cache
// that lags behind a Network just created (or deleted and created again) cannot cost it its
// network.
func (c *Controller) removeOrphans(ctx context.Context, key cache.ObjectName, cached types.UID) error {
	uids := slices.DeleteFunc(c.orphans.get(key), func(u types.UID) bool {
		if u == cached {
			c.orphans.remove(key, u)
			return true
		}
		return false
	})
	if len(uids) == 0 {
		return nil
	}
	var live types.UID
	if key.Namespace != "" && key.Name != "" {
		// A Network has both: rows that lack either are orphans whatever the API says.
		n, err := c.client.SamplecrdV1().Networks(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		switch {
		case err == nil:
			live = n.UID
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("reading Network %s to confirm its orphans: %w", key, err)
		}
	}
	logger := klog.FromContext(ctx)
	var errs []error
	for _, uid := range uids {
		if uid == live {
			c.orphans.remove(key, uid)
			continue
		}
		if err := c.backend.Delete(ctx, uid); err != nil {
			errs = append(errs, fmt.Errorf("removing orphaned backend objects of Network %s (uid %s): %w", key, uid, err))
			continue
		}
		c.orphans.remove(key, uid)
		logger.Info("Removed orphaned backend objects", "uid", uid)
	}
	return errors.Join(errs...)
}

// orphanSet holds the UIDs that the orphan sweep found in the backend without a Network, by the
// Network key they were written for. The sweep adds to it; the sync of each key empties it.
type orphanSet struct {
	mu   sync.Mutex
	uids map[cache.ObjectName][]types.UID
}

func (s *orphanSet) add(key cache.ObjectName, uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uids == nil {
		s.uids = map[cache.ObjectName][]types.UID{}
	}
	if !slices.Contains(s.uids[key], uid) {
		s.uids[key] = append(s.uids[key], uid)
	}
}

func (s *orphanSet) get(key cache.ObjectName) []types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uids[key])
}

func (s *orphanSet) remove(key cache.ObjectName, uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := slices.DeleteFunc(s.uids[key], func(u types.UID) bool { return u == uid })
	if len(left) == 0 {
		delete(s.uids, key)
		return
	}
	s.uids[key] = left
}
