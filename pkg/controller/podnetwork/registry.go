package podnetwork

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/ipam"
)

// Allocation is the address a pod holds on a Network.
type Allocation struct {
	// Network and NetworkUID are the Network's key and UID.
	Network    cache.ObjectName
	NetworkUID types.UID
	// Pod and PodUID are the pod's key and UID.
	Pod    cache.ObjectName
	PodUID types.UID
	// IP and MAC are the pod's addresses.
	IP  netip.Addr
	MAC net.HardwareAddr
	// CIDR and Gateway are the Network's, as the registry applies them.
	CIDR    netip.Prefix
	Gateway netip.Addr
}

// Errors of the registry.
var (
	// ErrNotOpen: the Network takes no pods now (it is not programmed, or is being removed).
	ErrNotOpen = errors.New("the network does not take pods now")
	// ErrHoldsOther: the pod holds an address on another Network; release it first.
	ErrHoldsOther = errors.New("the pod holds an address on another network")
)

// NotFitError is returned by SetNetwork when addresses of attached pods do not fit a new spec.
type NotFitError struct {
	// CIDR and Gateway are the spec that does not fit.
	CIDR    netip.Prefix
	Gateway netip.Addr
	// Count is how many pods' addresses do not fit; Some names a few of them, with their address.
	Count int
	Some  []string
}

func (e *NotFitError) Error() string {
	return fmt.Sprintf("the addresses of %d attached %s do not fit cidr %s with gateway %s (%s): the change is applied once %s",
		e.Count, plural(e.Count, "pod", "pods"), e.CIDR, e.Gateway, listSome(e.Some, e.Count), plural(e.Count, "it is gone", "they are gone"))
}

// Registry holds the addresses of the pods attached to each Network, by Network UID, shared by the
// pod controller, which allocates and releases them, and the network controller, which opens a
// Network to pods once it programs it, counts its addresses in its status, and removes it only
// once no pod holds an address on it. It is safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	networks map[types.UID]*networkState
	pods     map[types.UID]*Allocation
	byKey    map[cache.ObjectName][]types.UID
	synced   atomic.Bool
	// onUsage is called, outside the lock, with a Network whose used addresses changed.
	onUsage atomic.Pointer[func(cache.ObjectName)]
	// onNetwork is called, outside the lock, when a Network opens or its spec changes, with the
	// pods that hold addresses on it.
	onNetwork atomic.Pointer[func(cache.ObjectName, []cache.ObjectName)]
}

// networkState is one Network of the registry.
type networkState struct {
	key     cache.ObjectName
	cidr    netip.Prefix
	gateway netip.Addr
	// open: pods may get addresses. A Network is opened by SetNetwork; one restored from pods'
	// annotations is not open until the network controller confirms its spec.
	open bool
	// alloc is made with the first pod, so that a Network without pods costs little.
	alloc *ipam.Allocator
	pods  map[types.UID]struct{}
}

// NewRegistry returns an empty registry, not synced.
func NewRegistry() *Registry {
	return &Registry{
		networks: map[types.UID]*networkState{},
		pods:     map[types.UID]*Allocation{},
		byKey:    map[cache.ObjectName][]types.UID{},
	}
}

// HasSynced reports whether the registry holds every allocation that pods' annotations record:
// until then, no Network's pods can be counted.
func (r *Registry) HasSynced() bool { return r.synced.Load() }

func (r *Registry) markSynced() { r.synced.Store(true) }

// OnUsageChange registers fn, called with a Network whose used addresses changed. fn must return
// at once. A later call replaces fn.
func (r *Registry) OnUsageChange(fn func(network cache.ObjectName)) { r.onUsage.Store(&fn) }

// onNetworkChange registers fn, called when a Network opens or its spec changes.
func (r *Registry) onNetworkChange(fn func(network cache.ObjectName, attached []cache.ObjectName)) {
	r.onNetwork.Store(&fn)
}

func (r *Registry) usageChanged(key cache.ObjectName) {
	if fn := r.onUsage.Load(); fn != nil {
		(*fn)(key)
	}
}

// SetNetwork opens the Network uid to pods with this cidr and gateway. When attached pods hold
// addresses under another spec, it applies the new one only if each of them fits it (inside the
// cidr, neither the gateway nor an excluded address), and returns a *NotFitError otherwise,
// changing nothing.
func (r *Registry) SetNetwork(key cache.ObjectName, uid types.UID, cidr netip.Prefix, gateway netip.Addr) error {
	r.mu.Lock()
	st := r.networks[uid]
	if st == nil {
		if _, err := ipam.New(cidr, gateway); err != nil {
			r.mu.Unlock()
			return err
		}
		r.networks[uid] = &networkState{key: key, cidr: cidr, gateway: gateway, open: true, pods: map[types.UID]struct{}{}}
		r.mu.Unlock()
		r.networkChanged(key, nil)
		return nil
	}
	st.key = key
	if st.cidr == cidr && st.gateway == gateway {
		wasOpen := st.open
		st.open = true
		r.mu.Unlock()
		if !wasOpen {
			r.networkChanged(key, nil)
		}
		return nil
	}
	alloc, err := ipam.New(cidr, gateway)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	misfit := &NotFitError{CIDR: cidr, Gateway: gateway}
	for podUID := range st.pods {
		a := r.pods[podUID]
		if err := alloc.Reserve(a.IP); err != nil {
			misfit.Count++
			misfit.Some = append(misfit.Some, fmt.Sprintf("%s (%s)", a.Pod, a.IP))
		}
	}
	if misfit.Count > 0 {
		r.mu.Unlock()
		slices.Sort(misfit.Some)
		misfit.Some = misfit.Some[:min(len(misfit.Some), someCount)]
		return misfit
	}
	st.cidr, st.gateway, st.open = cidr, gateway, true
	st.alloc = nil
	if len(st.pods) > 0 {
		st.alloc = alloc
	}
	attached := make([]cache.ObjectName, 0, len(st.pods))
	for podUID := range st.pods {
		a := r.pods[podUID]
		a.CIDR, a.Gateway = cidr, gateway
		attached = append(attached, a.Pod)
	}
	r.mu.Unlock()
	r.networkChanged(key, attached)
	return nil
}

func (r *Registry) networkChanged(key cache.ObjectName, attached []cache.ObjectName) {
	if fn := r.onNetwork.Load(); fn != nil {
		(*fn)(key, attached)
	}
}

// CloseNetwork stops giving addresses of the Network uid, and forgets it, when no pod holds one;
// otherwise it changes nothing and returns how many pods do, with a few of their keys.
func (r *Registry) CloseNetwork(uid types.UID) (attached int, some []cache.ObjectName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.networks[uid]
	if st == nil {
		return 0, nil
	}
	if len(st.pods) > 0 {
		return len(st.pods), r.someLocked(st)
	}
	delete(r.networks, uid)
	return 0, nil
}

// someCount is how many pods a message names.
const someCount = 3

// someLocked returns the first pods of st in key order, at most someCount: a selection in one pass,
// not a sort of every pod.
func (r *Registry) someLocked(st *networkState) []cache.ObjectName {
	var some []cache.ObjectName
	for podUID := range st.pods {
		k := r.pods[podUID].Pod
		i, _ := slices.BinarySearchFunc(some, k, compareKeys)
		if i >= someCount {
			continue
		}
		some = slices.Insert(some, i, k)
		if len(some) > someCount {
			some = some[:someCount]
		}
	}
	return some
}

func compareKeys(a, b cache.ObjectName) int {
	return strings.Compare(a.String(), b.String())
}

// podsOf returns the keys of the pods that hold addresses on the Network uid.
func (r *Registry) podsOf(uid types.UID) []cache.ObjectName {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.networks[uid]
	if st == nil {
		return nil
	}
	pods := make([]cache.ObjectName, 0, len(st.pods))
	for podUID := range st.pods {
		pods = append(pods, r.pods[podUID].Pod)
	}
	return pods
}

// Forget is called when the Network uid is gone: it takes no more pods, and is forgotten once
// its last pod releases its address.
func (r *Registry) Forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.networks[uid]
	if st == nil {
		return
	}
	st.open = false
	if len(st.pods) == 0 {
		delete(r.networks, uid)
	}
}

// Spec returns the cidr and gateway the registry applies to the Network uid, and whether it is
// open to pods; ok is false when the registry does not know it.
func (r *Registry) Spec(uid types.UID) (cidr netip.Prefix, gateway netip.Addr, open, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.networks[uid]
	if st == nil {
		return netip.Prefix{}, netip.Addr{}, false, false
	}
	return st.cidr, st.gateway, st.open, true
}

// Addresses counts the addresses of the Network uid for its status, nil when the registry does
// not know it.
func (r *Registry) Addresses(uid types.UID) *samplecrdv1.NetworkAddresses {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.networks[uid]
	if st == nil {
		return nil
	}
	total := int64(ipam.Total(st.cidr, st.gateway))
	used := int64(len(st.pods))
	return &samplecrdv1.NetworkAddresses{Total: total, Used: used, Available: total - used}
}

// Held returns the allocation of the pod podUID, if it holds one.
func (r *Registry) Held(podUID types.UID) (Allocation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.pods[podUID]
	if !ok {
		return Allocation{}, false
	}
	return *a, true
}

// HeldByKey returns the UIDs of the pods of this key that hold addresses: usually one, or none;
// two when a pod was deleted and created again under its name before the first was released.
func (r *Registry) HeldByKey(key cache.ObjectName) []types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byKey[key])
}

// Allocate gives the pod a free address of the Network uid, or returns the one it holds there.
func (r *Registry) Allocate(uid types.UID, pod cache.ObjectName, podUID types.UID) (Allocation, error) {
	return r.take(uid, pod, podUID, netip.Addr{}, true)
}

// Reserve gives the pod the address ip of the Network uid, when free (a static request).
func (r *Registry) Reserve(uid types.UID, pod cache.ObjectName, podUID types.UID, ip netip.Addr) (Allocation, error) {
	return r.take(uid, pod, podUID, ip, true)
}

// Restore records an allocation found in a pod's annotations or a backend port, before or after
// the registry synced. A Network the registry does not know yet is added, not open, with the spec
// the allocation records (cidr, gateway); the network controller opens it.
func (r *Registry) Restore(network cache.ObjectName, uid types.UID, cidr netip.Prefix, gateway netip.Addr,
	pod cache.ObjectName, podUID types.UID, ip netip.Addr) (Allocation, error) {
	r.mu.Lock()
	if _, ok := r.networks[uid]; !ok {
		if _, err := ipam.New(cidr, gateway); err != nil {
			r.mu.Unlock()
			return Allocation{}, err
		}
		r.networks[uid] = &networkState{key: network, cidr: cidr, gateway: gateway, pods: map[types.UID]struct{}{}}
	}
	r.mu.Unlock()
	return r.take(uid, pod, podUID, ip, false)
}

func (r *Registry) take(uid types.UID, pod cache.ObjectName, podUID types.UID, ip netip.Addr, mustBeOpen bool) (Allocation, error) {
	r.mu.Lock()
	st := r.networks[uid]
	if a, ok := r.pods[podUID]; ok {
		r.mu.Unlock()
		if a.NetworkUID != uid {
			return Allocation{}, ErrHoldsOther
		}
		if ip.IsValid() && a.IP != ip {
			return Allocation{}, fmt.Errorf("the pod holds %s already: %w", a.IP, ipam.ErrInUse)
		}
		return *a, nil
	}
	if st == nil || (mustBeOpen && !st.open) {
		r.mu.Unlock()
		return Allocation{}, ErrNotOpen
	}
	if st.alloc == nil {
		alloc, err := ipam.New(st.cidr, st.gateway)
		if err != nil {
			r.mu.Unlock()
			return Allocation{}, err
		}
		st.alloc = alloc
	}
	var err error
	if ip.IsValid() {
		err = st.alloc.Reserve(ip)
	} else {
		ip, err = st.alloc.Allocate()
	}
	if err != nil {
		r.mu.Unlock()
		return Allocation{}, err
	}
	a := &Allocation{Network: st.key, NetworkUID: uid, Pod: pod, PodUID: podUID, IP: ip, MAC: ipam.MACFor(ip), CIDR: st.cidr, Gateway: st.gateway}
	st.pods[podUID] = struct{}{}
	r.pods[podUID] = a
	r.byKey[pod] = append(r.byKey[pod], podUID)
	key := st.key
	r.mu.Unlock()
	r.usageChanged(key)
	return *a, nil
}

// Release frees the address of the pod podUID, and returns what it held.
func (r *Registry) Release(podUID types.UID) (Allocation, bool) {
	r.mu.Lock()
	a, ok := r.pods[podUID]
	if !ok {
		r.mu.Unlock()
		return Allocation{}, false
	}
	delete(r.pods, podUID)
	if left := slices.DeleteFunc(r.byKey[a.Pod], func(u types.UID) bool { return u == podUID }); len(left) > 0 {
		r.byKey[a.Pod] = left
	} else {
		delete(r.byKey, a.Pod)
	}
	st := r.networks[a.NetworkUID]
	if st != nil {
		delete(st.pods, podUID)
		if st.alloc != nil {
			// The allocator holds exactly the registry's pods: the address is in it.
			_ = st.alloc.Release(a.IP)
		}
		if len(st.pods) == 0 && !st.open {
			delete(r.networks, a.NetworkUID)
		}
	}
	r.mu.Unlock()
	r.usageChanged(a.Network)
	return *a, true
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// listSome lists some of count items, saying how many more there are.
func listSome(some []string, count int) string {
	s := strings.Join(some, ", ")
	if count > len(some) {
		s += fmt.Sprintf(" and %d more", count-len(some))
	}
	return s
}
