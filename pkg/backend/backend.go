// Package backend is the seam between the network controller and the system that really carries
// networks. The controller only ever talks to a Backend; each backend
// package (ovn, and later others) implements it on its own client library.
package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"k8s.io/apimachinery/pkg/types"
)

// Network is what the controller asks a backend to hold for one Network object.
type Network struct {
	// Namespace and Name identify the Network object, for people reading the backend.
	Namespace, Name string
	// UID identifies the Network object; backends decide ownership by it, never by names.
	UID types.UID
	// CIDR is the network's prefix, with no host bits set.
	CIDR netip.Prefix
	// Gateway is the gateway address inside CIDR.
	Gateway netip.Addr
}

// Status is what a backend reports after Ensure.
type Status struct {
	// Type is the backend's name, for example "ovn".
	Type string
	// Name is the name of the backend's main object for the network (the OVN logical switch).
	Name string
	// ID is the backend's identifier of that object (the OVN logical switch's UUID).
	ID string
	// Changed is true when Ensure wrote to the backend, false when the backend already matched.
	Changed bool
}

// Owned is a network a backend holds for this cluster, as found in the backend itself.
type Owned struct {
	// Namespace, Name and UID are those of the Network object the backend objects were written for.
	Namespace, Name string
	UID             types.UID
}

// Backend programs networks into a network system. Implementations are safe for concurrent use by
// several workers; the controller never calls Ensure or Delete for the same UID concurrently.
type Backend interface {
	// Type is the backend's name, for example "ovn".
	Type() string
	// Ensure makes the backend hold the network exactly as given, creating, updating or repairing
	// its objects in one transaction; it writes nothing when they already match. It is idempotent.
	Ensure(ctx context.Context, network Network) (Status, error)
	// Delete removes every object the backend holds for this cluster under the UID, in one
	// transaction. Deleting what is not there succeeds.
	Delete(ctx context.Context, uid types.UID) error
	// List returns the networks the backend holds for this cluster, one per UID.
	List(ctx context.Context) ([]Owned, error)
	// Prune removes the objects of this cluster that several Networks share (the OVN backend's
	// per-namespace routers) and that no Network uses any more, and returns how many it removed.
	Prune(ctx context.Context) (int, error)
	// Ready returns nil when the backend is connected and its view of the system is current.
	Ready() error
	// OnReady registers fn, called each time the backend becomes ready: when it first connects,
	// and after every reconnection (what changed while it was away was not reported, so the
	// caller checks everything again). fn is called at once when the backend is ready already.
	// fn must return at once, for example after a non-blocking send. A later call replaces fn.
	OnReady(fn func())
	// OnNotReady registers fn, called with the reason each time the backend stops being ready
	// (not when it is closed), and, while it is not ready, each time the reason turns into a
	// *MisconfiguredError, into another one, or back into an outage. fn must return at once. A
	// later call replaces fn.
	OnNotReady(fn func(err error))
}

// Change says which Network a change in the backend concerns.
type Change struct {
	// Owned is the Network the changed object was written for, as far as the object says: UID,
	// namespace and name when it is owned; for an object that is not owned but holds (or held) a
	// name the backend uses for a Network, what that name tells: the UID, the namespace and name,
	// or only the namespace for an object shared by a namespace's Networks.
	Owned
	// Foreign is true for an object that is not owned: a name conflict may have appeared or gone.
	Foreign bool
	// Created is true for an owned object that appeared. Usually it is a sync's own write, for a
	// Network that exists; one whose Network is gone (a write that reached the backend after the
	// Network's deletion, or one made by hand) is an orphan.
	Created bool
	// Pod is set for a change of a pod's port (see Ports): one created, changed or removed, or,
	// with Foreign, an object not owned that takes or gives up the name of a pod's port; Owned is
	// then the Network as the object says. Nil for every other change: the network controller
	// acts on those only.
	Pod *PodRef
}

// Notifier is implemented by backends that can tell when objects they own are changed or removed by
// someone else, so that the controller repairs drift at once instead of at the next resync.
type Notifier interface {
	// OnChange registers a function called for every owned object that changes, and for every
	// object not owned that takes or gives up a name the backend would use. It must be called
	// before the backend starts.
	OnChange(func(Change))
}

// PodRef names the pod a backend object was written for.
type PodRef struct {
	// Namespace and Name identify the pod, for people reading the backend.
	Namespace, Name string
	// UID identifies the pod; backends find a pod's objects by it.
	UID types.UID
}

// Port is a pod's port on the switch of a Network.
type Port struct {
	// NetworkNamespace, NetworkName and NetworkUID identify the Network the port is on; the
	// backend finds the Network's objects by NetworkUID.
	NetworkNamespace, NetworkName string
	NetworkUID                    types.UID
	// Pod is the pod the port is for.
	Pod PodRef
	// MAC is the port's Ethernet address, a unicast EUI-48 chosen by the caller.
	MAC net.HardwareAddr
	// IP is the port's address in the Network, chosen by the caller.
	IP netip.Addr
}

// PortStatus is what EnsurePort reports.
type PortStatus struct {
	// Name is the name of the port's backend object (the OVN logical switch port).
	Name string
	// ID is the backend's identifier of that object (its OVN UUID).
	ID string
	// Switch is the name of the object the port is on (the Network's OVN logical switch).
	Switch string
	// Changed is true when EnsurePort wrote to the backend, false when the port already matched.
	Changed bool
}

// Ports is implemented by backends that attach pods to the Networks they hold. The caller
// allocates the addresses; the backend only programs them. Implementations are safe for
// concurrent use; the caller never calls EnsurePort or DeletePort for the same pod concurrently.
type Ports interface {
	// EnsurePort makes the backend hold exactly this port, on the switch of the Network
	// NetworkUID, in one transaction; it writes nothing when the port matches already. A port
	// of the pod on another Network's switch is moved. It returns ErrNoNetwork (wrapped) when
	// the backend holds no switch for that Network UID; a *NameConflictError when the port name
	// is held by an object not owned.
	EnsurePort(ctx context.Context, port Port) (PortStatus, error)
	// DeletePort removes the port of the pod UID, in one transaction. Deleting what is not
	// there succeeds.
	DeletePort(ctx context.Context, podUID types.UID) error
	// ListPorts returns the pod ports the backend holds for this cluster (from the cache).
	ListPorts(ctx context.Context) ([]Port, error)
}

// ErrNoNetwork is returned (wrapped) by EnsurePort when the backend holds no switch for the
// port's Network: the Network is not programmed yet, or no longer. Nothing was written.
var ErrNoNetwork = errors.New("the backend holds no switch for the network")

// NameConflictError is returned (wrapped) by Ensure and EnsurePort when an object the Network or
// port needs would take a name that an object the backend does not own holds already. Nothing was written: the backend
// never creates a second object of one name, nor changes or removes an object it does not own.
type NameConflictError struct {
	// Kind is the kind of object, for example "logical switch".
	Kind string
	// Name is the contested name.
	Name string
	// ID identifies the object that holds it, for example its OVN UUID.
	ID string
	// Owner describes who the object belongs to, as far as the object says.
	Owner string
}

func (e *NameConflictError) Error() string {
	return fmt.Sprintf("the %s name %q is taken by %s %s, which is not this controller's (%s): remove or rename it",
		e.Kind, e.Name, e.Kind, e.ID, e.Owner)
}

// ErrNotReady is returned (wrapped) by backends that are not connected or not yet synchronised.
var ErrNotReady = errors.New("backend not ready")

// MisconfiguredError is returned (wrapped, together with ErrNotReady) by a backend that cannot
// connect because of its configuration or of what the other side presents, such as a server
// certificate that its CA file does not vouch for: unlike an outage, waiting does not help, a fix
// does. Err says what is wrong in the same words at every attempt (no times, no counts), so that
// it can go into a status message.
type MisconfiguredError struct {
	// Err is what is wrong.
	Err error
}

func (e *MisconfiguredError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *MisconfiguredError) Unwrap() error { return e.Err }

// Misconfigured returns the *MisconfiguredError in err's chain, or nil when there is none.
func Misconfigured(err error) *MisconfiguredError {
	var m *MisconfiguredError
	if errors.As(err, &m) {
		return m
	}
	return nil
}

// ErrConflict is returned (wrapped) when the backend changed between the read and the write of
// an Ensure or Delete (another writer, or a cache that was behind): nothing was written, and the
// call may be made again at once. It reports no fault to the user.
var ErrConflict = errors.New("the backend changed meanwhile, nothing was written")
