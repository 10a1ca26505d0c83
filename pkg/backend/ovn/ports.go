package ovn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

var _ backend.Ports = (*Backend)(nil)

// namedPodPort is the named UUID of the pod port an EnsurePort transaction inserts.
const namedPodPort = "newPodPort"

// EnsurePort makes the northbound database hold the pod's Logical_Switch_Port, named
// PodPortName, with addresses and port_security "MAC IP", on the switch of the port's Network
// and on no other: it reads the rows from the cache and writes every difference in one
// transaction, or nothing when they match. The port is added to the switch's ports by a mutation,
// never by rewriting the column, so that what it costs does not depend on how many ports the
// switch has; a port of the pod on another switch (the pod moved to another Network) is moved in
// the same transaction. It returns an error wrapping backend.ErrNoNetwork when the cluster has no
// switch for the Network's UID, and a *backend.NameConflictError when a row of another owner has
// the port's name; nothing is written then.
func (b *Backend) EnsurePort(ctx context.Context, port backend.Port) (backend.PortStatus, error) {
	if err := validatePort(port); err != nil {
		return backend.PortStatus{}, fmt.Errorf("invalid port of pod %s/%s: %w", port.Pod.Namespace, port.Pod.Name, err)
	}
	want := desiredPort(b.opts.ClusterName, port)
	if err := b.Ready(); err != nil {
		return backend.PortStatus{Name: want.Name}, err
	}
	status, err := b.ensurePort(ctx, port, want, false)
	if isIntegrityViolation(err) {
		// A port the transaction deleted is on a switch that observePort did not look at (one of
		// no Network the port's keys name): look at every switch.
		status, err = b.ensurePort(ctx, port, want, true)
		err = conflictIfIntegrityViolation(err)
	}
	return status, err
}

func (b *Backend) ensurePort(ctx context.Context, port backend.Port, want nbdb.LogicalSwitchPort, full bool) (backend.PortStatus, error) {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(port.Pod.Namespace, port.Pod.Name), "podUID", port.Pod.UID,
		"network", klog.KRef(port.NetworkNamespace, port.NetworkName), "networkUID", port.NetworkUID)
	status := backend.PortStatus{Name: want.Name}

	b.connMu.RLock()
	sw, p, err := b.planPort(ctx, port, want, full)
	if err != nil {
		b.connMu.RUnlock()
		return status, err
	}
	status.Switch = sw.Name
	if p.empty() {
		b.connMu.RUnlock()
		status.ID = p.Port
		logger.V(4).Info("OVN pod port is up to date", "port", status.ID, "switch", sw.UUID)
		return status, nil
	}
	tx, err := b.buildPort(want, sw, p)
	b.connMu.RUnlock()
	if err != nil {
		return status, fmt.Errorf("building the transaction for the port of pod %s/%s: %w", port.Pod.Namespace, port.Pod.Name, err)
	}
	results, err := b.transact(ctx, tx)
	if err != nil {
		return status, fmt.Errorf("ensuring the port of pod %s/%s: %w", port.Pod.Namespace, port.Pod.Name, err)
	}
	status.Changed = true
	status.ID = p.Port
	if p.Create {
		status.ID = results[tx.portInsert].UUID.GoUUID
	}
	logger.V(2).Info("Wrote OVN pod port", "port", status.ID, "switch", sw.UUID, "operations", len(tx.ops),
		"created", p.Create, "moved", p.Attach && len(p.Detach) > 0)

	// Make a following EnsurePort, DeletePort or ListPorts see what was written.
	err = b.waitForCache(ctx, func() (bool, error) {
		again, next, err := b.planPort(ctx, port, want, false)
		if err != nil {
			return false, err
		}
		return next.empty() && next.Port == status.ID && again.UUID == sw.UUID, nil
	})
	if err != nil {
		return status, fmt.Errorf("waiting for the cache to show the port of pod %s/%s: %w", port.Pod.Namespace, port.Pod.Name, err)
	}
	return status, nil
}

// planPort reads the switch of the port's Network and the pod's ports from the cache, and plans
// EnsurePort. The caller holds connMu for reading.
func (b *Backend) planPort(ctx context.Context, port backend.Port, want nbdb.LogicalSwitchPort, full bool) (nbdb.LogicalSwitch, portPlan, error) {
	sw, switches, err := b.networkSwitch(ctx, port)
	if err != nil {
		return sw, portPlan{}, err
	}
	known := map[types.UID][]nbdb.LogicalSwitch{port.NetworkUID: switches}
	obs, err := b.observePort(ctx, port.Pod.UID, sw.UUID, known, true, full)
	if err != nil {
		return sw, portPlan{}, err
	}
	return sw, ensurePortPlan(want, sw.UUID, obs), nil
}

// networkSwitch returns the switch of the port's Network: among the cluster's switches with its
// UID, the one Ensure keeps (the one with the Network's switch name, else the one with the lowest
// UUID); and all of them. It returns an error wrapping backend.ErrNoNetwork when there is none.
// The caller holds connMu for reading.
func (b *Backend) networkSwitch(ctx context.Context, port backend.Port) (nbdb.LogicalSwitch, []nbdb.LogicalSwitch, error) {
	var switches []nbdb.LogicalSwitch
	ls := &nbdb.LogicalSwitch{}
	if err := b.ownedByUID(ls, &ls.ExternalIDs, port.NetworkUID).List(ctx, &switches); err != nil {
		return nbdb.LogicalSwitch{}, nil, fmt.Errorf("listing logical switches from the cache: %w", err)
	}
	sortByUUID(switches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	sw := pick(switches, SwitchName(b.opts.ClusterName, port.NetworkNamespace, port.NetworkName),
		func(r nbdb.LogicalSwitch) (string, string) { return r.UUID, r.Name })
	if sw == nil {
		return nbdb.LogicalSwitch{}, nil, fmt.Errorf("%w: the port of pod %s/%s needs the logical switch of network %s/%s (UID %s), and there is none",
			backend.ErrNoNetwork, port.Pod.Namespace, port.Pod.Name, port.NetworkNamespace, port.NetworkName, port.NetworkUID)
	}
	return *sw, switches, nil
}

// observePort reads from the cache the cluster's ports of the pod (by the client index on
// PodUIDKey, and under the port's name by the schema's index) and the switches that hold them.
// With conflicts set, a row of another owner under the port's name gives a
// *backend.NameConflictError; otherwise it is left out.
//
// A port's switches are looked for among known (switches by Network UID, of which sw is one) and
// the cluster's switches of the Network its keys name, which are looked up by UID. Only when a
// port is on none of them, or full is set, is every switch looked at: a port that nothing refers
// to does not exist (Logical_Switch_Port is not a root table), so some other switch holds it then.
// As in observe, a port on one of those switches and also on another one is missed; the
// deletion of such a port fails on the reference, and the caller tries again with full set. The
// caller holds connMu for reading.
func (b *Backend) observePort(ctx context.Context, podUID types.UID, sw string, known map[types.UID][]nbdb.LogicalSwitch,
	conflicts, full bool) (observedPort, error) {
	cluster := b.opts.ClusterName
	obs := observedPort{Switch: sw, Parents: map[string][]string{}}
	lsp := &nbdb.LogicalSwitchPort{}
	err := b.client.WhereAll(lsp,
		model.Condition{Field: &lsp.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{PodUIDKey: string(podUID)}},
		model.Condition{Field: &lsp.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{OwnerKey: cluster}},
	).List(ctx, &obs.Ports)
	if err != nil {
		return obs, fmt.Errorf("listing logical switch ports from the cache: %w", err)
	}
	// The port's name holds the pod's UID: a port of the cluster under it is the pod's, whatever
	// its other keys say.
	name := PodPortName(cluster, podUID)
	var named []nbdb.LogicalSwitchPort
	lsp = &nbdb.LogicalSwitchPort{Name: name}
	if err := b.client.WhereAll(lsp, model.Condition{Field: &lsp.Name, Function: ovsdb.ConditionEqual, Value: name}).List(ctx, &named); err != nil {
		return obs, fmt.Errorf("listing logical switch ports from the cache: %w", err)
	}
	if !conflicts {
		named = slices.DeleteFunc(named, func(r nbdb.LogicalSwitchPort) bool { return !ownedBy(r.ExternalIDs, cluster) })
	}
	ours, err := splitNameHolders(cluster, "logical switch port", name, named, obs.Ports,
		func(r *nbdb.LogicalSwitchPort) (string, map[string]string) { return r.UUID, r.ExternalIDs })
	if err != nil {
		return obs, err
	}
	obs.Ports = append(obs.Ports, ours...)
	sortByUUID(obs.Ports, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	if len(obs.Ports) == 0 {
		return obs, nil
	}

	found := true
	for _, port := range obs.Ports {
		uid := types.UID(port.ExternalIDs[UIDKey])
		if _, ok := known[uid]; !ok && uid != "" {
			var switches []nbdb.LogicalSwitch
			ls := &nbdb.LogicalSwitch{}
			if err := b.ownedByUID(ls, &ls.ExternalIDs, uid).List(ctx, &switches); err != nil {
				return obs, fmt.Errorf("listing logical switches from the cache: %w", err)
			}
			known[uid] = switches
		}
		for _, switches := range known {
			for _, s := range switches {
				if slices.Contains(s.Ports, port.UUID) && !slices.Contains(obs.Parents[port.UUID], s.UUID) {
					obs.Parents[port.UUID] = append(obs.Parents[port.UUID], s.UUID)
				}
			}
		}
		found = found && len(obs.Parents[port.UUID]) > 0
	}
	if full || !found {
		ports := uuidSet(obs.Ports, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
		parents := map[string][]string{}
		// The predicate collects the parents itself, so that no switch is copied out of the cache.
		var none []*nbdb.LogicalSwitch
		err := b.client.WhereCache(func(r *nbdb.LogicalSwitch) bool {
			for _, port := range r.Ports {
				if _, ok := ports[port]; ok {
					parents[port] = append(parents[port], r.UUID)
				}
			}
			return false
		}).List(ctx, &none)
		if err != nil {
			return obs, fmt.Errorf("listing logical switches from the cache: %w", err)
		}
		obs.Parents = parents
	}
	for uuid := range obs.Parents {
		slices.Sort(obs.Parents[uuid])
		obs.Parents[uuid] = slices.Compact(obs.Parents[uuid])
	}
	return obs, nil
}

// DeletePort removes the cluster's ports of the pod with the UID (the one EnsurePort wrote, and
// any duplicate), and their references from the switches, in one transaction. A row of another
// owner under the port's name is left alone. It succeeds when there is nothing.
func (b *Backend) DeletePort(ctx context.Context, podUID types.UID) error {
	if podUID == "" {
		return fmt.Errorf("deleting an OVN pod port: the pod UID is empty")
	}
	if err := b.Ready(); err != nil {
		return err
	}
	err := b.deletePort(ctx, podUID, false)
	if isIntegrityViolation(err) {
		// The port is also on a switch that observePort did not look at: look at every switch.
		err = conflictIfIntegrityViolation(b.deletePort(ctx, podUID, true))
	}
	return err
}

func (b *Backend) deletePort(ctx context.Context, podUID types.UID, full bool) error {
	logger := klog.FromContext(ctx).WithValues("podUID", podUID)
	b.connMu.RLock()
	obs, err := b.observePort(ctx, podUID, "", map[types.UID][]nbdb.LogicalSwitch{}, false, full)
	if err != nil || len(obs.Ports) == 0 {
		b.connMu.RUnlock()
		return err
	}
	p := deletePortPlan(obs)
	tx, err := b.buildPort(nbdb.LogicalSwitchPort{}, nbdb.LogicalSwitch{}, p)
	b.connMu.RUnlock()
	if err != nil {
		return fmt.Errorf("building the transaction deleting the port of pod %s: %w", podUID, err)
	}
	if _, err := b.transact(ctx, tx); err != nil {
		return fmt.Errorf("deleting the port of pod %s: %w", podUID, err)
	}
	logger.V(2).Info("Deleted OVN pod port", "ports", len(p.Delete), "switches", len(p.Detach))
	err = b.waitForCache(ctx, func() (bool, error) {
		obs, err := b.observePort(ctx, podUID, "", map[types.UID][]nbdb.LogicalSwitch{}, false, false)
		return err == nil && len(obs.Ports) == 0, err
	})
	if err != nil {
		return fmt.Errorf("waiting for the cache to show the port of pod %s deleted: %w", podUID, err)
	}
	return nil
}

// ListPorts returns the cluster's pod ports, sorted by pod UID, as their rows say: the Network of
// external_ids, and the MAC and IP of the first address (zero when it is not "MAC IP").
func (b *Backend) ListPorts(ctx context.Context) ([]backend.Port, error) {
	if err := b.Ready(); err != nil {
		return nil, err
	}
	b.connMu.RLock()
	defer b.connMu.RUnlock()
	var ports []backend.Port
	// The predicate collects the ports itself, so that nothing is copied out of the cache.
	var none []*nbdb.LogicalSwitchPort
	err := b.client.WhereCache(func(r *nbdb.LogicalSwitchPort) bool {
		if isPodPort(r.ExternalIDs, b.opts.ClusterName) {
			ports = append(ports, portOf(r))
		}
		return false
	}).List(ctx, &none)
	if err != nil {
		return nil, fmt.Errorf("listing logical switch ports from the cache: %w", err)
	}
	slices.SortFunc(ports, func(a, b backend.Port) int { return strings.Compare(string(a.Pod.UID), string(b.Pod.UID)) })
	return ports, nil
}

// buildPort turns a port plan into operations, with guards: when the plan inserts the port or
// renames the kept one, no port may have its name; the kept port and the switch it goes on must
// be there with the names the cache shows. sw is the switch of the port's Network, unused when
// the plan only deletes.
func (b *Backend) buildPort(want nbdb.LogicalSwitchPort, sw nbdb.LogicalSwitch, p portPlan) (*transaction, error) {
	c := b.client
	tx := newTransaction()
	if p.Create || slices.Contains(p.Patch.Columns, columnName) {
		m := &nbdb.LogicalSwitchPort{}
		if err := tx.addGuard("a switch port of that name exists already")(nameFree(c, m, &m.Name, want.Name)); err != nil {
			return nil, err
		}
	}
	if p.Create || p.Attach {
		m := &nbdb.LogicalSwitch{}
		if err := tx.addGuard("the network's switch went away or was renamed")(nameIs(c, m, &m.UUID, &m.Name, sw.UUID, sw.Name)); err != nil {
			return nil, err
		}
	}
	if !p.Create && p.Port != "" {
		m := &nbdb.LogicalSwitchPort{}
		if err := tx.addGuard("the port went away meanwhile")(nameIs(c, m, &m.UUID, &m.Name, p.Port, p.PortName)); err != nil {
			return nil, err
		}
	}
	for _, ref := range p.Detach {
		m := &nbdb.LogicalSwitch{UUID: ref.Parent}
		err := tx.add(byUUID(c, m, &m.UUID, m.UUID).Mutate(m, model.Mutation{Field: &m.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{ref.Port}}))
		if err != nil {
			return nil, fmt.Errorf("detaching a logical switch port: %w", err)
		}
	}
	for _, uuid := range p.Delete {
		m := &nbdb.LogicalSwitchPort{}
		if err := tx.add(byUUID(c, m, &m.UUID, uuid).Delete()); err != nil {
			return nil, fmt.Errorf("deleting a logical switch port: %w", err)
		}
	}
	ref := p.Port
	if p.Create {
		m := want.CloneModel().(*nbdb.LogicalSwitchPort)
		m.UUID = namedPodPort
		tx.portInsert = len(tx.ops)
		if err := tx.add(c.Create(m)); err != nil {
			return nil, err
		}
		ref = namedPodPort
	}
	if !p.Patch.empty() {
		m := want.CloneModel().(*nbdb.LogicalSwitchPort)
		m.UUID = p.Port
		if err := addRowPatch(tx, c, m, &m.UUID, p.Patch, map[string]any{
			columnName: &m.Name, columnType: &m.Type, columnAddresses: &m.Addresses, columnPortSecurity: &m.PortSecurity,
			columnOptions: &m.Options, columnExternalIDs: &m.ExternalIDs,
		}, nil); err != nil {
			return nil, fmt.Errorf("patching the logical switch port: %w", err)
		}
	}
	if p.Create || p.Attach {
		m := &nbdb.LogicalSwitch{UUID: sw.UUID}
		err := tx.addSingle(byUUID(c, m, &m.UUID, m.UUID).Mutate(m, model.Mutation{Field: &m.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{ref}}))
		if err != nil {
			return nil, fmt.Errorf("attaching the logical switch port: %w", err)
		}
	}
	return tx, nil
}

// nameIs returns a wait operation that fails the transaction at once unless the row of m's table
// with the UUID exists and has the name.
func nameIs[T any](c client.Client, m *T, uuid, name *string, uuidValue, nameValue string) ([]ovsdb.Operation, error) {
	timeout := 0
	*uuid, *name = uuidValue, nameValue
	row := any(m).(model.Model)
	return byUUID(c, row, uuid, uuidValue).Wait(ovsdb.WaitConditionEqual, &timeout, row, name)
}

// conflictIfIntegrityViolation wraps ErrConflict around a reference left to a deleted port after
// every switch was looked at: the cache was behind a writer that added the port to a switch.
func conflictIfIntegrityViolation(err error) error {
	if isIntegrityViolation(err) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// isIntegrityViolation reports whether a transaction failed at its commit on a reference to a
// row it deleted.
func isIntegrityViolation(err error) bool {
	var violation *ovsdb.ReferentialIntegrityViolation
	return errors.As(err, &violation)
}
