// Package fake is an in-memory Backend (and Ports) for unit tests: it records every call, holds
// networks and pod ports in maps and returns injected errors.
package fake

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
)

// Type is the fake backend's name.
const Type = "fake"

// Call is one recorded call.
type Call struct {
	// Op is "ensure", "delete", "list", "ensure-port", "delete-port" or "list-ports".
	Op string
	// UID is the network's UID, for ensure, delete and ensure-port.
	UID types.UID
	// Pod is the pod's UID, for ensure-port and delete-port.
	Pod types.UID
}

// Backend is an in-memory backend.Backend. The zero value is not usable; call New.
type Backend struct {
	mu sync.Mutex
	// networks is what the backend holds, by UID.
	networks map[types.UID]backend.Network
	// ports are the pod ports the backend holds, by pod UID.
	ports map[types.UID]backend.Port
	// calls records every call in order.
	calls []Call
	// errs are returned by the next calls of an op, one per call, before the op does anything.
	errs map[string][]error
	// notReady, when set, is returned by Ready.
	notReady error
	// onReady and onNotReady are the functions registered with OnReady and OnNotReady.
	onReady    func()
	onNotReady func(error)
	// nextID numbers the IDs of networks and ports, which ids holds by network UID and portIDs
	// by pod UID.
	nextID  int
	ids     map[types.UID]string
	portIDs map[types.UID]string
}

var (
	_ backend.Backend = &Backend{}
	_ backend.Ports   = &Backend{}
)

// New returns an empty fake backend holding the given networks.
func New(networks ...backend.Network) *Backend {
	b := &Backend{networks: map[types.UID]backend.Network{}, ports: map[types.UID]backend.Port{}, errs: map[string][]error{},
		ids: map[types.UID]string{}, portIDs: map[types.UID]string{}}
	for _, n := range networks {
		b.networks[n.UID] = n
		b.id(n.UID)
	}
	return b
}

func (b *Backend) id(uid types.UID) string {
	return b.newID(b.ids, uid)
}

func (b *Backend) newID(ids map[types.UID]string, uid types.UID) string {
	if id, ok := ids[uid]; ok {
		return id
	}
	b.nextID++
	ids[uid] = fmt.Sprintf("id-%d", b.nextID)
	return ids[uid]
}

// InjectError makes the next call of op ("ensure", "delete", "list", "ensure-port",
// "delete-port" or "list-ports") return err, for example a *backend.NameConflictError for
// ensure-port.
func (b *Backend) InjectError(op string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs[op] = append(b.errs[op], err)
}

// SetNotReady makes Ready return err (nil makes it ready, and calls the OnReady function when it
// was not; an error calls the OnNotReady function when it was ready, or when it changes the
// *backend.MisconfiguredError of the reason, as the OVN backend does).
func (b *Backend) SetNotReady(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.notReady
	b.notReady = err
	if err == nil && old != nil && b.onReady != nil {
		b.onReady()
	}
	if err != nil && (old == nil || misconfiguredText(old) != misconfiguredText(err)) && b.onNotReady != nil {
		b.onNotReady(err)
	}
}

// misconfiguredText is the text of err's *backend.MisconfiguredError, "" without one.
func misconfiguredText(err error) string {
	if m := backend.Misconfigured(err); m != nil {
		return m.Error()
	}
	return ""
}

// OnNotReady registers fn, called whenever SetNotReady(err) makes a ready backend not ready, or
// changes the misconfiguration of a backend that is not.
func (b *Backend) OnNotReady(fn func(error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onNotReady = fn
}

// OnReady registers fn, called at once when the backend is ready and whenever SetNotReady(nil)
// makes it ready again.
func (b *Backend) OnReady(fn func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onReady = fn
	if b.notReady == nil {
		fn()
	}
}

// record records a call, and returns the error it must fail with: an injected one, or
// backend.ErrNotReady while the backend is not ready.
func (b *Backend) record(op string, uid types.UID) error {
	return b.recordCall(Call{Op: op, UID: uid})
}

func (b *Backend) recordCall(call Call) error {
	op := call.Op
	b.calls = append(b.calls, call)
	if errs := b.errs[op]; len(errs) > 0 {
		b.errs[op] = errs[1:]
		return errs[0]
	}
	if b.notReady != nil {
		return fmt.Errorf("%w: %w", backend.ErrNotReady, b.notReady)
	}
	return nil
}

// Type implements backend.Backend.
func (b *Backend) Type() string { return Type }

// Ensure implements backend.Backend.
func (b *Backend) Ensure(_ context.Context, n backend.Network) (backend.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("ensure", n.UID); err != nil {
		return backend.Status{}, err
	}
	old, ok := b.networks[n.UID]
	b.networks[n.UID] = n
	return backend.Status{Type: Type, Name: n.Namespace + "/" + n.Name, ID: b.id(n.UID), Changed: !ok || old != n}, nil
}

// Delete implements backend.Backend. The pod ports on the network go with it, as the OVN
// backend's go with the switch.
func (b *Backend) Delete(_ context.Context, uid types.UID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("delete", uid); err != nil {
		return err
	}
	delete(b.networks, uid)
	for podUID, port := range b.ports {
		if port.NetworkUID == uid {
			delete(b.ports, podUID)
		}
	}
	return nil
}

// List implements backend.Backend.
func (b *Backend) List(context.Context) ([]backend.Owned, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.record("list", ""); err != nil {
		return nil, err
	}
	var out []backend.Owned
	for _, n := range b.networks {
		out = append(out, backend.Owned{Namespace: n.Namespace, Name: n.Name, UID: n.UID})
	}
	slices.SortFunc(out, func(a, b backend.Owned) int { return strings.Compare(string(a.UID), string(b.UID)) })
	return out, nil
}

// Prune implements backend.Backend. The fake holds nothing that Networks share: it removes
// nothing, and the call is not recorded.
func (b *Backend) Prune(context.Context) (int, error) {
	return 0, nil
}

// Ready implements backend.Backend.
func (b *Backend) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.notReady
}

// EnsurePort implements backend.Ports: it fails with backend.ErrNoNetwork when the backend holds
// no network of the port's NetworkUID, and otherwise holds the port, moving it from the network
// it was on.
func (b *Backend) EnsurePort(_ context.Context, port backend.Port) (backend.PortStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	status := backend.PortStatus{Name: port.Pod.Namespace + "/" + port.Pod.Name}
	if err := b.recordCall(Call{Op: "ensure-port", UID: port.NetworkUID, Pod: port.Pod.UID}); err != nil {
		return status, err
	}
	n, ok := b.networks[port.NetworkUID]
	if !ok {
		return status, fmt.Errorf("%w: fake backend has no network %s", backend.ErrNoNetwork, port.NetworkUID)
	}
	old, ok := b.ports[port.Pod.UID]
	port.MAC = slices.Clone(port.MAC)
	b.ports[port.Pod.UID] = port
	status.ID = b.newID(b.portIDs, port.Pod.UID)
	status.Switch = n.Namespace + "/" + n.Name
	status.Changed = !ok || !samePort(old, port)
	return status, nil
}

func samePort(a, b backend.Port) bool {
	return a.NetworkNamespace == b.NetworkNamespace && a.NetworkName == b.NetworkName && a.NetworkUID == b.NetworkUID &&
		a.Pod == b.Pod && bytes.Equal(a.MAC, b.MAC) && a.IP == b.IP
}

// DeletePort implements backend.Ports.
func (b *Backend) DeletePort(_ context.Context, podUID types.UID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recordCall(Call{Op: "delete-port", Pod: podUID}); err != nil {
		return err
	}
	delete(b.ports, podUID)
	return nil
}

// ListPorts implements backend.Ports: the ports sorted by pod UID.
func (b *Backend) ListPorts(context.Context) ([]backend.Port, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recordCall(Call{Op: "list-ports"}); err != nil {
		return nil, err
	}
	out := make([]backend.Port, 0, len(b.ports))
	for _, p := range b.ports {
		p.MAC = slices.Clone(p.MAC)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b backend.Port) int { return strings.Compare(string(a.Pod.UID), string(b.Pod.UID)) })
	return out, nil
}

// SetPorts replaces the pod ports the backend holds, without recording a call: for a test that
// starts with ports there (of networks the backend may not hold, as orphans).
func (b *Backend) SetPorts(ports ...backend.Port) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ports = map[types.UID]backend.Port{}
	for _, p := range ports {
		p.MAC = slices.Clone(p.MAC)
		b.ports[p.Pod.UID] = p
		b.newID(b.portIDs, p.Pod.UID)
	}
}

// Ports returns a copy of the pod ports the backend holds, by pod UID.
func (b *Backend) Ports() map[types.UID]backend.Port {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[types.UID]backend.Port, len(b.ports))
	for k, v := range b.ports {
		v.MAC = slices.Clone(v.MAC)
		out[k] = v
	}
	return out
}

// Networks returns a copy of what the backend holds, by UID.
func (b *Backend) Networks() map[types.UID]backend.Network {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[types.UID]backend.Network, len(b.networks))
	for k, v := range b.networks {
		out[k] = v
	}
	return out
}

// Calls returns the calls recorded so far and forgets them.
func (b *Backend) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	calls := b.calls
	b.calls = nil
	return calls
}
