package podnetwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/ipam"
)

// allocatedKeys are the annotations the controller writes on a pod; it removes them all when the
// pod has no allocation.
var allocatedKeys = []string{
	samplecrdv1.AllocatedAnnotation,
	samplecrdv1.AllocatedNetworkAnnotation,
	samplecrdv1.AllocatedNetworkUIDAnnotation,
	samplecrdv1.AllocatedIPAnnotation,
	samplecrdv1.AllocatedMACAnnotation,
	samplecrdv1.AllocatedGatewayAnnotation,
	samplecrdv1.LogicalSwitchAnnotation,
}

// syncPod attaches one pod to the Network it asks for, or detaches it, level-based: it reads the
// caches and the registry and acts on what it finds. An allocation costs one backend transaction
// (the port) and one pod patch (the annotations); a pod whose annotations and port match its
// allocation costs neither.
func (c *Controller) syncPod(ctx context.Context, key cache.ObjectName) error {
	obj, exists, err := c.pods.GetByKey(key.String())
	if err != nil {
		return fmt.Errorf("reading pod %s from the cache: %w", key, err)
	}
	var pod metav1.Object
	if exists {
		if pod, err = metaOf(obj); err != nil {
			return err
		}
	}
	// Addresses held under this key by a pod that is gone (or was deleted and created again).
	for _, uid := range c.registry.HeldByKey(key) {
		if pod == nil || uid != pod.GetUID() {
			if err := c.release(ctx, uid); err != nil {
				return err
			}
		}
	}
	if pod == nil {
		c.waiting.remove(key)
		c.forgetWarning(key)
		return nil
	}
	if pod.GetDeletionTimestamp() != nil {
		// It keeps its address while it stops, and releases it once it is gone.
		return nil
	}
	held, holds := c.registry.Held(pod.GetUID())
	name := c.wantedNetwork(pod)
	if name == "" {
		c.waiting.remove(key)
		c.forgetWarning(key)
		if holds {
			if err := c.release(ctx, pod.GetUID()); err != nil {
				return err
			}
		}
		return c.writeAllocation(ctx, pod, nil, "")
	}
	netKey := cache.ObjectName{Namespace: key.Namespace, Name: name}
	network, err := c.networksLister.Networks(key.Namespace).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading Network %s: %w", netKey, err)
	}
	if holds && (network == nil || held.NetworkUID != network.UID) {
		// The pod asks for another Network now, or its Network was deleted and maybe created again.
		if err := c.release(ctx, pod.GetUID()); err != nil {
			return err
		}
		holds = false
	}
	if network == nil {
		c.wait(pod, netKey, fmt.Sprintf("Network %s does not exist in namespace %s", name, key.Namespace))
		return c.writeAllocation(ctx, pod, nil, "")
	}
	if !holds {
		if network.DeletionTimestamp != nil {
			c.wait(pod, netKey, fmt.Sprintf("Network %s is being deleted", name))
			return c.writeAllocation(ctx, pod, nil, "")
		}
		held, err = c.allocate(pod, network)
		if err != nil {
			if err := c.allocationFailed(ctx, pod, netKey, network, err); err != nil {
				return err
			}
			return c.writeAllocation(ctx, pod, nil, "")
		}
	}
	status, err := c.ports.EnsurePort(ctx, backend.Port{
		NetworkNamespace: network.Namespace, NetworkName: network.Name, NetworkUID: network.UID,
		Pod: backend.PodRef{Namespace: key.Namespace, Name: key.Name, UID: pod.GetUID()},
		MAC: held.MAC, IP: held.IP,
	})
	var nameConflict *backend.NameConflictError
	switch {
	case errors.Is(err, backend.ErrNoNetwork):
		// Not programmed yet, or again (the backend was emptied): its switch's creation brings
		// the pod back. The address stays the pod's.
		klog.FromContext(ctx).V(4).Info("Waiting for the Network's switch", "network", klog.KObj(network))
		c.waiting.add(netKey, key)
		return nil
	case errors.As(err, &nameConflict):
		c.warnf(pod, ReasonPortConflict, "Cannot create the pod's port: %v", nameConflict)
		return nil
	case err != nil:
		return fmt.Errorf("creating the port of pod %s: %w", key, err)
	}
	if status.Changed {
		klog.FromContext(ctx).V(2).Info("Created pod port in the backend", "port", status.Name, "ip", held.IP, "mac", held.MAC.String())
	}
	c.waiting.remove(key)
	c.forgetWarning(key)
	return c.writeAllocation(ctx, pod, &held, status.Switch)
}

// wantedNetwork returns the name of the Network the pod asks for: its own annotation, or else its
// namespace's; "" for none.
func (c *Controller) wantedNetwork(pod metav1.Object) string {
	if name, ok := pod.GetAnnotations()[samplecrdv1.NetworkAnnotation]; ok {
		return strings.TrimSpace(name)
	}
	obj, exists, err := c.namespaces.GetByKey(pod.GetNamespace())
	if err != nil || !exists {
		return ""
	}
	ns, err := metaOf(obj)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(ns.GetAnnotations()[samplecrdv1.NetworkAnnotation])
}

// allocate takes the address the pod asks for, or any free one.
func (c *Controller) allocate(pod metav1.Object, network *samplecrdv1.Network) (Allocation, error) {
	key := cache.ObjectName{Namespace: pod.GetNamespace(), Name: pod.GetName()}
	if s, ok := pod.GetAnnotations()[samplecrdv1.IPAddressAnnotation]; ok {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			return Allocation{}, &staticError{fmt.Sprintf("the address %q that annotation %s asks for is not an IP address", s, samplecrdv1.IPAddressAnnotation)}
		}
		a, err := c.registry.Reserve(network.UID, key, pod.GetUID(), ip.Unmap())
		if err != nil && !errors.Is(err, ErrNotOpen) {
			return Allocation{}, &staticError{fmt.Sprintf("cannot have the address %s that annotation %s asks for on Network %s: %v", ip, samplecrdv1.IPAddressAnnotation, network.Name, err)}
		}
		return a, err
	}
	return c.registry.Allocate(network.UID, key, pod.GetUID())
}

// staticError is a static request the pod cannot have; only an edit of the pod changes that.
type staticError struct{ msg string }

func (e *staticError) Error() string { return e.msg }

// allocationFailed says why the pod has no address, and makes it wait for one when a change of
// the Network can bring it.
func (c *Controller) allocationFailed(ctx context.Context, pod metav1.Object, netKey cache.ObjectName, network *samplecrdv1.Network, err error) error {
	var static *staticError
	switch {
	case errors.As(err, &static):
		c.warnf(pod, ReasonAddressUnavailable, "%s", static.msg)
		return nil
	case errors.Is(err, ErrNotOpen):
		// Not programmed yet (or no longer, in a conflict): no event, the Network's status says why.
		klog.FromContext(ctx).V(4).Info("Waiting for the Network to be programmed", "network", klog.KObj(network))
		c.waiting.add(netKey, cache.ObjectName{Namespace: pod.GetNamespace(), Name: pod.GetName()})
		return nil
	case errors.Is(err, ipam.ErrFull):
		c.wait(pod, netKey, fmt.Sprintf("Network %s (cidr %s) has no free address; the pod gets one when one frees up", network.Name, network.Spec.Cidr))
		return nil
	}
	return fmt.Errorf("allocating an address of Network %s: %w", netKey, err)
}

// wait records that the pod waits for the Network, with a Warning event saying why.
func (c *Controller) wait(pod metav1.Object, netKey cache.ObjectName, msg string) {
	c.waiting.add(netKey, cache.ObjectName{Namespace: pod.GetNamespace(), Name: pod.GetName()})
	c.warnf(pod, ReasonAddressUnavailable, "%s", msg)
}

// warnf records a Warning event on the pod, unless the last one recorded says the same.
func (c *Controller) warnf(pod metav1.Object, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	key := cache.ObjectName{Namespace: pod.GetNamespace(), Name: pod.GetName()}
	c.warnedMu.Lock()
	same := c.warned[key] == msg
	c.warned[key] = msg
	c.warnedMu.Unlock()
	if same {
		return
	}
	c.recorder.Event(podRef(pod), corev1.EventTypeWarning, reason, msg)
}

func (c *Controller) forgetWarning(key cache.ObjectName) {
	c.warnedMu.Lock()
	delete(c.warned, key)
	c.warnedMu.Unlock()
}

func podRef(pod metav1.Object) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: pod.GetNamespace(), Name: pod.GetName(),
		UID: pod.GetUID(), ResourceVersion: pod.GetResourceVersion()}
}

// release removes the port of the pod podUID, then frees its address: in that order, so that the
// address is never another pod's while the old port still carries it.
func (c *Controller) release(ctx context.Context, podUID types.UID) error {
	if err := c.ports.DeletePort(ctx, podUID); err != nil {
		return fmt.Errorf("deleting the port of pod %s: %w", podUID, err)
	}
	if a, ok := c.registry.Release(podUID); ok {
		klog.FromContext(ctx).V(2).Info("Released pod address", "podUID", podUID, "ip", a.IP, "network", a.Network)
		c.wakeWaiting(a.Network)
	}
	return nil
}

// allocationAnnotations returns the annotations that say a, or that remove them all when a is nil.
func allocationAnnotations(a *Allocation, switchName string) map[string]*string {
	out := make(map[string]*string, len(allocatedKeys))
	for _, k := range allocatedKeys {
		out[k] = nil
	}
	if a == nil {
		return out
	}
	set := func(k, v string) { out[k] = &v }
	set(samplecrdv1.AllocatedAnnotation, "true")
	set(samplecrdv1.AllocatedNetworkAnnotation, a.Network.Name)
	set(samplecrdv1.AllocatedNetworkUIDAnnotation, string(a.NetworkUID))
	set(samplecrdv1.AllocatedIPAnnotation, netip.PrefixFrom(a.IP, a.CIDR.Bits()).String())
	set(samplecrdv1.AllocatedMACAnnotation, a.MAC.String())
	set(samplecrdv1.AllocatedGatewayAnnotation, a.Gateway.String())
	set(samplecrdv1.LogicalSwitchAnnotation, switchName)
	return out
}

// writeAllocation makes the pod's annotations say a (or nothing, when a is nil) with one merge
// patch, and writes nothing when they do already. The patch carries the pod's UID, so that it
// fails rather than writes on another pod of the same name.
func (c *Controller) writeAllocation(ctx context.Context, pod metav1.Object, a *Allocation, switchName string) error {
	want := allocationAnnotations(a, switchName)
	have := pod.GetAnnotations()
	changed := map[string]*string{}
	for k, v := range want {
		cur, ok := have[k]
		if (v == nil && ok) || (v != nil && (!ok || cur != *v)) {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pod.GetUID(), "annotations": changed}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.GetNamespace()).Patch(ctx, pod.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil // gone: its delete event releases what it holds
	}
	if err != nil {
		return fmt.Errorf("writing the allocation of pod %s: %w", klog.KObj(pod), err)
	}
	if a != nil {
		klog.FromContext(ctx).V(2).Info("Attached pod", "network", a.Network.Name, "ip", a.IP, "mac", a.MAC.String())
	} else {
		klog.FromContext(ctx).V(2).Info("Removed the pod's allocation annotations", "keys", len(changed))
	}
	return nil
}

// recorded is an allocation as a pod's annotations record it.
type recorded struct {
	network    cache.ObjectName
	networkUID types.UID
	ip         netip.Addr
	cidr       netip.Prefix
	gateway    netip.Addr
	mac        net.HardwareAddr
}

// recordedAllocation parses the allocation annotations of a pod; ok is false when they do not hold
// a complete, well-formed allocation.
func recordedAllocation(pod metav1.Object) (recorded, bool) {
	ann := pod.GetAnnotations()
	if ann[samplecrdv1.AllocatedAnnotation] != "true" {
		return recorded{}, false
	}
	prefix, err1 := netip.ParsePrefix(ann[samplecrdv1.AllocatedIPAnnotation])
	gateway, err2 := netip.ParseAddr(ann[samplecrdv1.AllocatedGatewayAnnotation])
	mac, err3 := net.ParseMAC(ann[samplecrdv1.AllocatedMACAnnotation])
	name, uid := ann[samplecrdv1.AllocatedNetworkAnnotation], ann[samplecrdv1.AllocatedNetworkUIDAnnotation]
	if err1 != nil || err2 != nil || err3 != nil || name == "" || uid == "" {
		return recorded{}, false
	}
	return recorded{
		network: cache.ObjectName{Namespace: pod.GetNamespace(), Name: name}, networkUID: types.UID(uid),
		ip: prefix.Addr(), cidr: prefix.Masked(), gateway: gateway, mac: mac,
	}, true
}

// restore rebuilds the registry before any allocation: first from the pods' annotations, after
// which the registry is synced (the network controller counts the pods of each Network, and
// removes none that has some); then, once the backend is ready, it settles the pods' ports with
// the pods: a port whose pod is gone goes, a port of a pod that has no recorded allocation (the
// controller stopped between the port and the pod's patch) gives the pod its address back when
// the pod still asks for that Network, and goes otherwise. A pod whose port is missing gets it
// back from its sync, with the same address.
func (c *Controller) restore(ctx context.Context) {
	logger := klog.FromContext(ctx)
	restored, refused := 0, 0
	for _, obj := range c.pods.List() {
		pod, err := metaOf(obj)
		if err != nil {
			continue
		}
		r, ok := recordedAllocation(pod)
		if !ok {
			continue
		}
		key := cache.ObjectName{Namespace: pod.GetNamespace(), Name: pod.GetName()}
		if _, err := c.registry.Restore(r.network, r.networkUID, r.cidr, r.gateway, key, pod.GetUID(), r.ip); err != nil {
			// Another pod holds it (which must not happen), or the record does not fit: the
			// pod's sync allocates again.
			logger.Info("Cannot keep the allocation a pod's annotations record: it is made again", "pod", key, "ip", r.ip, "err", err)
			refused++
			continue
		}
		restored++
	}
	c.registry.markSynced()
	logger.Info("Restored pod allocations from their annotations", "restored", restored, "refused", refused)

	select {
	case <-c.firstReady:
	case <-ctx.Done():
		return
	}
	var ports []backend.Port
	if err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		ports, err = c.ports.ListPorts(ctx)
		if err != nil {
			utilruntime.HandleErrorWithContext(ctx, err, "Listing the pods' ports to settle them")
			return false, nil
		}
		return true, nil
	}); err != nil {
		return
	}
	kept, taken, removed := 0, 0, 0
	for _, p := range ports {
		switch c.settlePort(ctx, p) {
		case portKept:
			kept++
		case portTaken:
			taken++
		case portRemoved:
			removed++
		}
	}
	logger.Info("Settled the pods' ports with the pods", "ports", len(ports), "kept", kept, "restored", taken, "removed", removed)
}

type portOutcome int

const (
	portKept portOutcome = iota
	portTaken
	portRemoved
	portFailed
)

// settlePort settles one port found in the backend at start (see restore).
func (c *Controller) settlePort(ctx context.Context, p backend.Port) portOutcome {
	logger := klog.FromContext(ctx)
	var pod metav1.Object
	if objs, err := c.pods.ByIndex(podUIDIndex, string(p.Pod.UID)); err == nil && len(objs) > 0 {
		pod, _ = metaOf(objs[0])
	}
	if pod != nil {
		if held, ok := c.registry.Held(pod.GetUID()); ok {
			if held.NetworkUID == p.NetworkUID {
				return portKept // its sync makes the port say the pod's address
			}
		} else if c.restorePort(pod, p) {
			return portTaken
		}
	}
	if err := c.ports.DeletePort(ctx, p.Pod.UID); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Deleting a port whose pod is gone", "port", p.Pod)
		return portFailed
	}
	logger.V(2).Info("Removed a port whose pod is gone or holds no address on its Network", "pod", p.Pod, "ip", p.IP)
	return portRemoved
}

// restorePort gives a pod without a recorded allocation the address of its port, when the pod
// still asks for the port's Network and the address is free.
func (c *Controller) restorePort(pod metav1.Object, p backend.Port) bool {
	name := c.wantedNetwork(pod)
	if name == "" || name != p.NetworkName || pod.GetNamespace() != p.NetworkNamespace {
		return false
	}
	network, err := c.networksLister.Networks(pod.GetNamespace()).Get(name)
	if err != nil || network.UID != p.NetworkUID {
		return false
	}
	cidr, gateway, _, ok := c.registry.Spec(network.UID)
	if !ok {
		var err1, err2 error
		cidr, err1 = netip.ParsePrefix(network.Spec.Cidr)
		gateway, err2 = netip.ParseAddr(network.Spec.Gateway)
		if err1 != nil || err2 != nil {
			return false
		}
	}
	key := cache.ObjectName{Namespace: pod.GetNamespace(), Name: pod.GetName()}
	_, err = c.registry.Restore(cache.MetaObjectToName(network), network.UID, cidr, gateway, key, pod.GetUID(), p.IP)
	return err == nil
}
