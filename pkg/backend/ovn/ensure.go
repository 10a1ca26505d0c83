package ovn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// Ensure makes the northbound database hold the Network's switch, switch port and router port,
// and its namespace's router, exactly as desired: it reads the rows from the cache, and writes
// every difference in one transaction, or nothing when they match. A name the Network's rows need
// that a row of another owner holds gives a *backend.NameConflictError, and nothing is written.
func (b *Backend) Ensure(ctx context.Context, network backend.Network) (backend.Status, error) {
	logger := klog.FromContext(ctx).WithValues("network", klog.KRef(network.Namespace, network.Name), "uid", network.UID)
	if err := validateNetwork(network); err != nil {
		return backend.Status{}, fmt.Errorf("invalid network %s/%s: %w", network.Namespace, network.Name, err)
	}
	want := desiredRows(b.opts.ClusterName, network)
	status := backend.Status{Type: BackendType, Name: want.Switch.Name}
	if err := b.Ready(); err != nil {
		return status, err
	}

	b.connMu.RLock()
	obs, err := b.observe(ctx, network.UID, &want, false)
	if err != nil {
		b.connMu.RUnlock()
		return status, err
	}
	p := ensurePlan(want, obs)
	if p.empty() {
		b.connMu.RUnlock()
		status.ID = p.Switch
		logger.V(4).Info("OVN network is up to date", "switch", status.ID)
		return status, nil
	}
	if p.CreateRouter {
		// The namespace's first Network. Creations of routers are serialised, so that the
		// Networks of a new namespace synced in parallel do not all try (the guard would fail
		// all but one of them); then the cache is read again: the router may be there now.
		b.connMu.RUnlock()
		b.routerMu.Lock()
		defer b.routerMu.Unlock()
		b.connMu.RLock()
		if obs, err = b.observe(ctx, network.UID, &want, false); err != nil {
			b.connMu.RUnlock()
			return status, err
		}
		p = ensurePlan(want, obs)
	}
	tx, err := b.buildEnsure(network.UID, want, p, obs.Switches)
	b.connMu.RUnlock()
	if err != nil {
		return status, fmt.Errorf("building the transaction for network %s/%s: %w", network.Namespace, network.Name, err)
	}

	results, err := b.transact(ctx, tx)
	if err != nil {
		return status, fmt.Errorf("ensuring network %s/%s: %w", network.Namespace, network.Name, err)
	}
	status.Changed = true
	status.ID = p.Switch
	if p.CreateSwitch {
		status.ID = results[tx.switchInsert].UUID.GoUUID
	}
	if p.CreateRouter {
		logger.Info("Created the namespace's router", "router", want.Router.Name, "uuid", results[tx.routerInsert].UUID.GoUUID)
	}
	logger.V(2).Info("Wrote OVN network", "switch", status.ID, "operations", len(tx.ops), "created", p.CreateSwitch)

	// Make a following Ensure or List see what was written.
	err = b.waitForCache(ctx, func() (bool, error) {
		obs, err := b.observe(ctx, network.UID, &want, false)
		if err != nil {
			return false, err
		}
		again := ensurePlan(want, obs)
		return again.empty() && again.Switch == status.ID, nil
	})
	if err != nil {
		return status, fmt.Errorf("waiting for the cache to show network %s/%s: %w", network.Namespace, network.Name, err)
	}
	return status, nil
}

// Delete removes the switch, switch port and router port of the Network with the UID, and their
// references from other rows, in one transaction; a router of the cluster left without ports (the
// namespace's last Network) goes in it too. It succeeds when there is nothing.
func (b *Backend) Delete(ctx context.Context, uid types.UID) error {
	logger := klog.FromContext(ctx).WithValues("uid", uid)
	if uid == "" {
		return fmt.Errorf("deleting an OVN network: the UID is empty")
	}
	if err := b.Ready(); err != nil {
		return err
	}
	b.connMu.RLock()
	obs, err := b.observe(ctx, uid, nil, true)
	if err != nil || obs.empty() {
		b.connMu.RUnlock()
		return err
	}
	p := deletePlan(obs)
	tx, err := b.buildPlan(p)
	b.connMu.RUnlock()
	if err != nil {
		return fmt.Errorf("building the transaction deleting network %s: %w", uid, err)
	}
	if _, err := b.transact(ctx, tx); err != nil {
		return fmt.Errorf("deleting network %s: %w", uid, err)
	}
	logger.V(2).Info("Deleted OVN network", "switches", len(obs.Switches), "switchPorts", len(obs.SwitchPorts),
		"routerPorts", len(obs.RouterPorts), "routers", len(p.DeleteRouters))
	err = b.waitForCache(ctx, func() (bool, error) {
		obs, err := b.observe(ctx, uid, nil, false)
		return err == nil && obs.empty(), err
	})
	if err != nil {
		return fmt.Errorf("waiting for the cache to show network %s deleted: %w", uid, err)
	}
	// Deletions of a namespace's last Networks that ran at once each saw the others' ports still
	// on the router, and none deleted it: the one that finds it empty now does.
	detached := map[string]struct{}{}
	for _, ref := range p.DetachRouterPorts {
		detached[ref.Parent] = struct{}{}
	}
	if len(detached) > 0 {
		if _, err := b.prune(ctx, func(r *nbdb.LogicalRouter) bool { _, ok := detached[r.UUID]; return ok }); err != nil && !errors.Is(err, ErrConflict) {
			return fmt.Errorf("deleting the router network %s left without ports: %w", uid, err)
		}
	}
	return nil
}

// List returns the Networks that the cluster has rows for, one per UID, sorted by UID. A UID
// counts when any of its switch, switch port (but a pod port) or router port is there.
func (b *Backend) List(ctx context.Context) ([]backend.Owned, error) {
	if err := b.Ready(); err != nil {
		return nil, err
	}
	b.connMu.RLock()
	defer b.connMu.RUnlock()
	owned := map[types.UID]backend.Owned{}
	add := func(ids map[string]string) bool {
		if uid := ownedUID(ids, b.opts.ClusterName); uid != "" {
			if _, ok := owned[uid]; !ok {
				owned[uid] = backend.Owned{Namespace: ids[NamespaceKey], Name: ids[NameKey], UID: uid}
			}
		}
		return false
	}
	// The predicates collect the owners themselves, so that nothing is copied out of the cache.
	var switches []*nbdb.LogicalSwitch
	if err := b.client.WhereCache(func(r *nbdb.LogicalSwitch) bool { return add(r.ExternalIDs) }).List(ctx, &switches); err != nil {
		return nil, fmt.Errorf("listing logical switches from the cache: %w", err)
	}
	// Pod ports have their Network's UID, but are not its rows: a pod port left behind is no
	// Network to delete.
	var switchPorts []*nbdb.LogicalSwitchPort
	if err := b.client.WhereCache(func(r *nbdb.LogicalSwitchPort) bool {
		return !isPodPort(r.ExternalIDs, b.opts.ClusterName) && add(r.ExternalIDs)
	}).List(ctx, &switchPorts); err != nil {
		return nil, fmt.Errorf("listing logical switch ports from the cache: %w", err)
	}
	var routerPorts []*nbdb.LogicalRouterPort
	if err := b.client.WhereCache(func(r *nbdb.LogicalRouterPort) bool { return add(r.ExternalIDs) }).List(ctx, &routerPorts); err != nil {
		return nil, fmt.Errorf("listing logical router ports from the cache: %w", err)
	}
	result := slices.Collect(maps.Values(owned))
	slices.SortFunc(result, func(a, b backend.Owned) int { return strings.Compare(string(a.UID), string(b.UID)) })
	return result, nil
}

// Prune deletes the cluster's routers that have no port: a namespace's router whose ports were
// removed out of band before its last Network went, or the one router of the layout before
// routers per namespace, in a cluster that had no Network left. Each deletion fails, and deletes
// nothing, when the router gained a port meanwhile.
func (b *Backend) Prune(ctx context.Context) (int, error) {
	if err := b.Ready(); err != nil {
		return 0, err
	}
	return b.prune(ctx, func(*nbdb.LogicalRouter) bool { return true })
}

// prune deletes the cluster's routers without ports that which selects.
func (b *Backend) prune(ctx context.Context, which func(*nbdb.LogicalRouter) bool) (int, error) {
	b.connMu.RLock()
	var empty []nbdb.LogicalRouter
	err := b.client.WhereCache(func(r *nbdb.LogicalRouter) bool {
		return len(r.Ports) == 0 && ownedBy(r.ExternalIDs, b.opts.ClusterName) && which(r)
	}).List(ctx, &empty)
	if err != nil || len(empty) == 0 {
		b.connMu.RUnlock()
		return 0, err
	}
	var p plan
	for _, r := range empty {
		p.DeleteRouters = append(p.DeleteRouters, routerDelete{UUID: r.UUID})
	}
	tx, err := b.buildPlan(p)
	b.connMu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("building the transaction deleting unused routers: %w", err)
	}
	if _, err := b.transact(ctx, tx); err != nil {
		return 0, fmt.Errorf("deleting unused routers: %w", err)
	}
	for _, r := range empty {
		b.logger.Info("Deleted a router no Network uses", "router", r.Name, "uuid", r.UUID)
	}
	return len(empty), nil
}

// findRouter returns the namespace's router, or nil when it has none. It is the router named
// RouterName whose external_ids say so; failing that, a router of that name that is the cluster's
// by its owner key or by the cluster's router ports of the namespace on it, whose keys Ensure then
// puts back (so that a router whose keys were changed out of band is repaired, not replaced). A
// router of that name that is none of these gives a *backend.NameConflictError. The caller holds
// connMu for reading.
func (b *Backend) findRouter(ctx context.Context, namespace string) (*nbdb.LogicalRouter, error) {
	cluster := b.opts.ClusterName
	name := RouterName(cluster, namespace)
	var routers []nbdb.LogicalRouter
	m := &nbdb.LogicalRouter{}
	if err := b.client.WhereAll(m, model.Condition{Field: &m.Name, Function: ovsdb.ConditionEqual, Value: name}).List(ctx, &routers); err != nil {
		return nil, fmt.Errorf("listing logical routers from the cache: %w", err)
	}
	var lookup func(uuid string) *nbdb.LogicalRouterPort
	if c := b.client.Cache(); c != nil {
		if table := c.Table(nbdb.LogicalRouterPortTable); table != nil {
			lookup = func(uuid string) *nbdb.LogicalRouterPort {
				port, _ := table.Row(uuid).(*nbdb.LogicalRouterPort)
				return port
			}
		}
	}
	return chooseRouter(cluster, namespace, routers, lookup)
}

// chooseRouter is findRouter's decision among the routers named RouterName(cluster, namespace).
// routerPort looks a router port up by UUID (nil when it is not there); a nil routerPort finds
// none. routers is sorted.
//
// A router that is the cluster's only by the ports on it (its owner key is missing or another's)
// is used when it is the only candidate, and its keys are put back. Beside another candidate it is
// a name conflict: the plan would take the Network's ports off it, and leave a router of another
// owner under the name, which the next Ensure would report; so it is reported at once, before
// anything is written.
func chooseRouter(cluster, namespace string, routers []nbdb.LogicalRouter, routerPort func(uuid string) *nbdb.LogicalRouterPort) (*nbdb.LogicalRouter, error) {
	sortByUUID(routers, func(r *nbdb.LogicalRouter) string { return r.UUID })
	conflict := func(r *nbdb.LogicalRouter) error {
		return &backend.NameConflictError{Kind: "logical router", Name: RouterName(cluster, namespace), ID: r.UUID, Owner: ownerText(r.ExternalIDs)}
	}
	var keyed, owned *nbdb.LogicalRouter
	var byPorts []*nbdb.LogicalRouter
	for i := range routers {
		r := &routers[i]
		ids := r.ExternalIDs
		switch {
		case ownedBy(ids, cluster) && ids[RoleKey] == RoleClusterRouter:
			// The old layout's router (namespace "router" has its name): never used.
		case ownedBy(ids, cluster) && ids[RoleKey] == RoleNamespaceRouter && ids[NamespaceKey] == namespace:
			if keyed == nil {
				keyed = r
			}
		case ownedBy(ids, cluster):
			if owned == nil {
				owned = r
			}
		case holdsPortsOf(r, cluster, namespace, routerPort):
			byPorts = append(byPorts, r)
		default:
			return nil, conflict(r)
		}
	}
	chosen := cmp.Or(keyed, owned)
	if chosen == nil && len(byPorts) > 0 {
		chosen, byPorts = byPorts[0], byPorts[1:]
	}
	if len(byPorts) > 0 {
		return nil, conflict(byPorts[0])
	}
	return chosen, nil
}

// holdsPortsOf reports whether one of the router's ports is a router port of the cluster for a
// Network of the namespace; routerPort looks them up.
func holdsPortsOf(r *nbdb.LogicalRouter, cluster, namespace string, routerPort func(uuid string) *nbdb.LogicalRouterPort) bool {
	if routerPort == nil {
		return false
	}
	for _, uuid := range r.Ports {
		if port := routerPort(uuid); port != nil &&
			ownedUID(port.ExternalIDs, cluster) != "" && port.ExternalIDs[NamespaceKey] == namespace {
			return true
		}
	}
	return false
}

// ownedByUID selects the rows of m's table that the cluster owns for the UID. The first condition
// is answered by the client index on external_ids:samplecrd.k8s.io/uid (see New), so that the
// lookup does not scan the table.
func (b *Backend) ownedByUID(m model.Model, externalIDs *map[string]string, uid types.UID) client.ConditionalAPI {
	return b.client.WhereAll(m,
		model.Condition{Field: externalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{UIDKey: string(uid)}},
		model.Condition{Field: externalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{OwnerKey: b.opts.ClusterName}},
	)
}

// routerSwitchPortsByUID selects the switch ports of type router that the cluster owns for the
// UID. The UID and type conditions are answered together by the client index on
// (external_ids:samplecrd.k8s.io/uid, type) (see New), so that the Network's pod ports, which
// have its UID but another type, are not even looked at.
func (b *Backend) routerSwitchPortsByUID(uid types.UID) client.ConditionalAPI {
	m := &nbdb.LogicalSwitchPort{}
	return b.client.WhereAll(m,
		model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{UIDKey: string(uid)}},
		model.Condition{Field: &m.Type, Function: ovsdb.ConditionEqual, Value: SwitchPortTypeRouter},
		model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{OwnerKey: b.opts.ClusterName}},
	)
}

// podPortsOn returns the cluster's pod ports on the switches, except those among skip, looked up
// one by one: it is for a Network's duplicate switches, which are rare. The caller holds connMu
// for reading.
func (b *Backend) podPortsOn(switches []nbdb.LogicalSwitch, skip []nbdb.LogicalSwitchPort) []nbdb.LogicalSwitchPort {
	c := b.client.Cache()
	if c == nil {
		return nil
	}
	table := c.Table(nbdb.LogicalSwitchPortTable)
	if table == nil {
		return nil
	}
	seen := uuidSet(skip, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	var pods []nbdb.LogicalSwitchPort
	for _, s := range switches {
		for _, uuid := range s.Ports {
			if _, ok := seen[uuid]; ok {
				continue
			}
			seen[uuid] = struct{}{}
			if port, ok := table.Row(uuid).(*nbdb.LogicalSwitchPort); ok && isPodPort(port.ExternalIDs, b.opts.ClusterName) {
				pods = append(pods, *port)
			}
		}
	}
	return pods
}

// observe reads from the cache the cluster's rows for the UID, and the rows that refer to them.
// For Ensure (want not nil) it also finds the namespace's router and the rows that hold the names
// of want's rows: the cluster's switches of other UIDs under the switch's name are StaleSwitches,
// the cluster's ports under the ports' names (which hold the UID) are taken as the UID's, and a
// row of another owner under any of the names gives a *backend.NameConflictError.
//
// Finding the other switches and routers that refer to the ports takes a scan of their tables, so
// unless full is set it is only done when a port is not referred to by the UID's switches or by
// the namespace's router (non-root rows that nothing refers to do not exist, so someone else
// refers to it then), or when there are duplicate ports (the plan deletes all but one, and a
// deleted port must be taken off every row that refers to it, or the transaction fails). The one
// port that is on its own switch or router and also on another one is missed. The caller holds
// connMu for reading.
//
// Pod ports (see PodUIDKey) carry the UID of their Network too, but are no rows of the Network's
// own: for Ensure the switch ports are looked up among those of type router, which a pod's are
// not, so that a Network's pods cost its Ensure nothing, and only the pod ports on the UID's
// duplicate switches are read (into PodPorts: they move to the switch kept); for Delete every
// pod port of the UID is read into PodPorts.
func (b *Backend) observe(ctx context.Context, uid types.UID, want *desiredState, full bool) (observed, error) {
	cluster := b.opts.ClusterName
	obs := observed{cluster: cluster}

	ls, lsp, lrp := &nbdb.LogicalSwitch{}, &nbdb.LogicalSwitchPort{}, &nbdb.LogicalRouterPort{}
	if err := b.ownedByUID(ls, &ls.ExternalIDs, uid).List(ctx, &obs.Switches); err != nil {
		return obs, fmt.Errorf("listing logical switches from the cache: %w", err)
	}
	var switchPorts []nbdb.LogicalSwitchPort
	lspQuery := b.ownedByUID(lsp, &lsp.ExternalIDs, uid)
	if want != nil {
		lspQuery = b.routerSwitchPortsByUID(uid)
	}
	if err := lspQuery.List(ctx, &switchPorts); err != nil {
		return obs, fmt.Errorf("listing logical switch ports from the cache: %w", err)
	}
	for _, port := range switchPorts {
		switch {
		case !isPodPort(port.ExternalIDs, cluster):
			obs.SwitchPorts = append(obs.SwitchPorts, port)
		case want == nil:
			obs.PodPorts = append(obs.PodPorts, port)
		}
	}
	if err := b.ownedByUID(lrp, &lrp.ExternalIDs, uid).List(ctx, &obs.RouterPorts); err != nil {
		return obs, fmt.Errorf("listing logical router ports from the cache: %w", err)
	}
	if want != nil {
		router, err := b.findRouter(ctx, want.Router.ExternalIDs[NamespaceKey])
		if err != nil {
			return obs, err
		}
		obs.Router = router
		if err := b.observeNames(ctx, *want, &obs); err != nil {
			return obs, err
		}
		if len(obs.Switches) > 1 {
			obs.PodPorts = b.podPortsOn(obs.Switches, obs.SwitchPorts)
		}
	}

	stale := uuidSet(obs.StaleSwitches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	onSwitch := func(r *nbdb.LogicalSwitchPort) bool {
		return slices.ContainsFunc(obs.Switches, func(s nbdb.LogicalSwitch) bool { return slices.Contains(s.Ports, r.UUID) })
	}
	// For Delete, the pod ports must be taken off the other switches too.
	portsToFind := obs.SwitchPorts
	if want == nil {
		portsToFind = append(slices.Clone(obs.SwitchPorts), obs.PodPorts...)
	}
	if len(portsToFind) > 0 && (full || len(obs.SwitchPorts) > 1 || !all(obs.SwitchPorts, onSwitch)) {
		ports := uuidSet(portsToFind, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
		err := b.client.WhereCache(func(r *nbdb.LogicalSwitch) bool {
			_, isStale := stale[r.UUID]
			return !isStale && ownedUID(r.ExternalIDs, cluster) != uid && containsAny(r.Ports, ports)
		}).List(ctx, &obs.PortSwitches)
		if err != nil {
			return obs, fmt.Errorf("listing logical switches from the cache: %w", err)
		}
	}

	onRouter := func(r *nbdb.LogicalRouterPort) bool {
		return obs.Router != nil && slices.Contains(obs.Router.Ports, r.UUID)
	}
	if len(obs.RouterPorts) > 0 && (full || len(obs.RouterPorts) > 1 || !all(obs.RouterPorts, onRouter)) {
		ports := uuidSet(obs.RouterPorts, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
		err := b.client.WhereCache(func(r *nbdb.LogicalRouter) bool {
			return (obs.Router == nil || r.UUID != obs.Router.UUID) && containsAny(r.Ports, ports)
		}).List(ctx, &obs.PortRouters)
		if err != nil {
			return obs, fmt.Errorf("listing logical routers from the cache: %w", err)
		}
	}

	sortByUUID(obs.Switches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	sortByUUID(obs.SwitchPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	sortByUUID(obs.PodPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	sortByUUID(obs.RouterPorts, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
	sortByUUID(obs.StaleSwitches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	sortByUUID(obs.PortSwitches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	sortByUUID(obs.PortRouters, func(r *nbdb.LogicalRouter) string { return r.UUID })
	return obs, nil
}

// observeNames looks up the rows that hold the names of want's switch and ports (by index: the
// client's on switch names, the schema's on port names). The caller holds connMu for reading.
func (b *Backend) observeNames(ctx context.Context, want desiredState, obs *observed) error {
	c, cluster := b.client, b.opts.ClusterName
	ls, lsp, lrp := &nbdb.LogicalSwitch{}, &nbdb.LogicalSwitchPort{}, &nbdb.LogicalRouterPort{}
	stale, err := nameHolders(ctx, c, cluster, "logical switch", ls, &ls.Name, want.Switch.Name, obs.Switches,
		func(r *nbdb.LogicalSwitch) (string, map[string]string) { return r.UUID, r.ExternalIDs })
	if err != nil {
		return err
	}
	obs.StaleSwitches = append(obs.StaleSwitches, stale...)
	// A port name holds the UID: a port of the cluster under it is the UID's, whatever its other
	// keys say.
	ports, err := nameHolders(ctx, c, cluster, "logical switch port", lsp, &lsp.Name, want.SwitchPort.Name, obs.SwitchPorts,
		func(r *nbdb.LogicalSwitchPort) (string, map[string]string) { return r.UUID, r.ExternalIDs })
	if err != nil {
		return err
	}
	obs.SwitchPorts = append(obs.SwitchPorts, ports...)
	routerPorts, err := nameHolders(ctx, c, cluster, "logical router port", lrp, &lrp.Name, want.RouterPort.Name, obs.RouterPorts,
		func(r *nbdb.LogicalRouterPort) (string, map[string]string) { return r.UUID, r.ExternalIDs })
	if err != nil {
		return err
	}
	obs.RouterPorts = append(obs.RouterPorts, routerPorts...)
	return nil
}

// nameHolders returns the cluster's rows of m's table named value that are not among have, and a
// *backend.NameConflictError for the first row of another owner with that name. key returns a
// row's UUID and external_ids.
func nameHolders[T any](ctx context.Context, c client.Client, cluster, kind string, m *T, name *string, value string,
	have []T, key func(*T) (string, map[string]string)) ([]T, error) {
	var rows []T
	*name = value
	if err := c.WhereAll(any(m).(model.Model), model.Condition{Field: name, Function: ovsdb.ConditionEqual, Value: value}).List(ctx, &rows); err != nil {
		return nil, fmt.Errorf("listing %ss from the cache: %w", kind, err)
	}
	return splitNameHolders(cluster, kind, value, rows, have, key)
}

// splitNameHolders is nameHolders' decision on the rows named value: those of the cluster that are
// not among have, or a *backend.NameConflictError for the first of another owner.
func splitNameHolders[T any](cluster, kind, value string, rows, have []T, key func(*T) (string, map[string]string)) ([]T, error) {
	var ours []T
	for i := range rows {
		uuid, ids := key(&rows[i])
		switch {
		case slices.ContainsFunc(have, func(h T) bool { u, _ := key(&h); return u == uuid }):
		case ownedBy(ids, cluster):
			ours = append(ours, rows[i])
		default:
			return nil, &backend.NameConflictError{Kind: kind, Name: value, ID: uuid, Owner: ownerText(ids)}
		}
	}
	return ours, nil
}

// all reports whether f is true for all rows.
func all[T any](rows []T, f func(*T) bool) bool {
	for i := range rows {
		if !f(&rows[i]) {
			return false
		}
	}
	return true
}

func uuidSet[T any](rows []T, uuid func(*T) string) map[string]struct{} {
	set := make(map[string]struct{}, len(rows))
	for i := range rows {
		set[uuid(&rows[i])] = struct{}{}
	}
	return set
}

func containsAny(list []string, set map[string]struct{}) bool {
	for _, e := range list {
		if _, ok := set[e]; ok {
			return true
		}
	}
	return false
}

// transaction is a list of operations and what the backend needs to know about them.
type transaction struct {
	ops []ovsdb.Operation
	// guards are the wait operations that fail when the database is not as the cache showed it
	// (a row to be inserted exists, a router to be deleted has ports), by index, with what a
	// failure means.
	guards map[int]string
	// single are the indexes of the operations that must change exactly one row (the rows the
	// plan keeps); a count of zero means that the row went away since the cache was read.
	single []int
	// switchInsert, routerInsert and portInsert are the indexes of the insert operations of a
	// switch, a router and a pod port, or -1.
	switchInsert, routerInsert, portInsert int
}

func newTransaction() *transaction {
	return &transaction{guards: map[int]string{}, switchInsert: -1, routerInsert: -1, portInsert: -1}
}

func (t *transaction) add(ops []ovsdb.Operation, err error) error {
	if err != nil {
		return err
	}
	t.ops = append(t.ops, ops...)
	return nil
}

// addGuard returns a function that adds wait operations that fail the transaction when the
// database is not as expected; meaning says what a failure means.
func (t *transaction) addGuard(meaning string) func([]ovsdb.Operation, error) error {
	return func(ops []ovsdb.Operation, err error) error {
		if err != nil {
			return err
		}
		for _, op := range ops {
			t.guards[len(t.ops)] = meaning
			t.ops = append(t.ops, op)
		}
		return nil
	}
}

// addSingle adds operations that must each change one row.
func (t *transaction) addSingle(ops []ovsdb.Operation, err error) error {
	if err != nil {
		return err
	}
	if len(ops) != 1 {
		return fmt.Errorf("expected one operation, got %d", len(ops))
	}
	t.single = append(t.single, len(t.ops))
	t.ops = append(t.ops, ops[0])
	return nil
}

// transact runs the operations and checks their results. A failed guard, or a row that the plan
// keeps and that went away, wraps ErrConflict; a transaction that got no answer (the connection
// is lost or going, or the server did not answer within transactTimeout) wraps backend.ErrNotReady.
func (b *Backend) transact(ctx context.Context, tx *transaction) ([]ovsdb.OperationResult, error) {
	// libovsdb holds a read lock on its connection during Transact, and Disconnect waits for it, so
	// a transaction that never gets an answer must not last forever.
	txCtx, cancel := context.WithTimeout(ctx, transactTimeout)
	defer cancel()
	results, err := b.client.Transact(txCtx, tx.ops...)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("transaction failed: %w", err)
		case txCtx.Err() != nil:
			// The server does not answer (the echo probe has not noticed yet): it is away, not
			// refusing this Network.
			return nil, fmt.Errorf("%w: no answer to the transaction within %s: %w", backend.ErrNotReady, transactTimeout, err)
		default:
			// Not an answer of the server's, which would be in the results: the connection is
			// gone or going (libovsdb forgets the schema as it tears a connection down, before
			// the backend hears of the disconnection).
			return nil, fmt.Errorf("%w: %w", backend.ErrNotReady, err)
		}
	}
	opErrs, err := ovsdb.CheckOperationResults(results, tx.ops)
	if err != nil {
		for _, opErr := range opErrs {
			var timedOut *ovsdb.TimedOut
			if !errors.As(opErr, &timedOut) {
				continue
			}
			if meaning, ok := tx.guards[operationIndex(tx.ops, opErr.Operation())]; ok {
				return nil, fmt.Errorf("%w: %s (%s %v)", ErrConflict, meaning, opErr.Operation().Table, opErr.Operation().Where)
			}
		}
		if len(opErrs) > 0 {
			// OVSDB stops at the first operation that fails, so there is one.
			return nil, fmt.Errorf("transaction failed: %w", errors.Join(asErrors(opErrs)...))
		}
		// The operations succeeded but the commit failed, for example on a referential integrity
		// or index constraint.
		return nil, fmt.Errorf("transaction failed: %w", err)
	}
	for _, i := range tx.single {
		if results[i].Count != 1 {
			op := tx.ops[i]
			return nil, fmt.Errorf("%w: the %s row of the operation %s %v changed %d rows instead of one; it was deleted meanwhile",
				ErrConflict, op.Table, op.Op, op.Where, results[i].Count)
		}
	}
	return results, nil
}

func operationIndex(ops []ovsdb.Operation, op *ovsdb.Operation) int {
	for i := range ops {
		if &ops[i] == op {
			return i
		}
	}
	return -1
}

func asErrors(opErrs []ovsdb.OperationError) []error {
	errs := make([]error, 0, len(opErrs))
	for _, e := range opErrs {
		errs = append(errs, e)
	}
	return errs
}

// waitForCache waits until done reports that the cache shows the result of a transaction. The
// monitor's update reaches the cache before, or very soon after, the transaction's reply.
func (b *Backend) waitForCache(ctx context.Context, done func() (bool, error)) error {
	check := func() (bool, error) {
		b.connMu.RLock()
		defer b.connMu.RUnlock()
		return done()
	}
	if ok, err := check(); ok || err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cacheSyncTimeout)
	defer cancel()
	ticker := time.NewTicker(2 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cache did not show the transaction's result: %w", ctx.Err())
		case <-ticker.C:
			if ok, err := check(); ok || err != nil {
				return err
			}
		}
	}
}

// Building transactions from plans. The caller holds connMu for reading, because the libovsdb API
// objects used here are replaced on reconnection.

// nameFree returns a wait operation that fails the transaction at once when a row of m's table has
// the name (conds narrow the rows that count). OVSDB's natural form, "until == with no rows",
// cannot be sent through libovsdb, which drops an empty "rows" that ovsdb-server requires; so the
// wait is "until the rows with that name are not exactly {name}", which with a timeout of 0 fails
// when there are any.
func nameFree[T any](c client.Client, m *T, name *string, value string, conds ...model.Condition) ([]ovsdb.Operation, error) {
	timeout := 0
	*name = value
	// libovsdb evaluates the conditions on its cache too (it replaces them by the UUIDs of the rows
	// it finds there, when it finds any); the name condition uses an index.
	conds = append([]model.Condition{{Field: name, Function: ovsdb.ConditionEqual, Value: value}}, conds...)
	return c.WhereAll(m, conds...).Wait(ovsdb.WaitConditionNotEqual, &timeout, m, name)
}

// portsAre returns a wait operation that fails the transaction at once unless the router with the
// UUID exists and has exactly the ports.
func portsAre(c client.Client, uuid string, ports []string) ([]ovsdb.Operation, error) {
	timeout := 0
	m := &nbdb.LogicalRouter{UUID: uuid, Ports: ports}
	if m.Ports == nil {
		m.Ports = []string{}
	}
	return byUUID(c, m, &m.UUID, uuid).Wait(ovsdb.WaitConditionEqual, &timeout, m, &m.Ports)
}

// switchPortsAre returns a wait operation that fails the transaction at once unless the switch
// with the UUID exists and has exactly the ports.
func switchPortsAre(c client.Client, uuid string, ports []string) ([]ovsdb.Operation, error) {
	timeout := 0
	m := &nbdb.LogicalSwitch{UUID: uuid, Ports: ports}
	if m.Ports == nil {
		m.Ports = []string{}
	}
	return byUUID(c, m, &m.UUID, uuid).Wait(ovsdb.WaitConditionEqual, &timeout, m, &m.Ports)
}

// buildEnsure turns an Ensure plan into operations, with guards for the rows it inserts, and for
// the duplicate switches it deletes, which must have the ports that switches (the UID's, as
// observed) shows: the plan moves their pod ports to the switch kept, and a pod port added to one
// meanwhile would go with it.
func (b *Backend) buildEnsure(uid types.UID, want desiredState, p plan, switches []nbdb.LogicalSwitch) (*transaction, error) {
	c := b.client
	tx := newTransaction()
	for _, uuid := range p.DeleteSwitches {
		i := slices.IndexFunc(switches, func(s nbdb.LogicalSwitch) bool { return s.UUID == uuid })
		if i < 0 {
			return nil, fmt.Errorf("the switch %s to delete was not observed", uuid)
		}
		if err := tx.addGuard("a duplicate switch to delete gained or lost ports meanwhile")(switchPortsAre(c, uuid, switches[i].Ports)); err != nil {
			return nil, fmt.Errorf("guarding the deletion of a switch: %w", err)
		}
	}
	// The rows of the cluster that hold the switch's name for another UID go first, so that the
	// guard below sees the name free of them.
	for _, uuid := range p.ReplaceSwitches {
		m := &nbdb.LogicalSwitch{}
		if err := tx.add(byUUID(c, m, &m.UUID, uuid).Delete()); err != nil {
			return nil, fmt.Errorf("deleting a logical switch: %w", err)
		}
	}
	if p.CreateRouter {
		// Any router of that name but the old layout's: of another owner, or created meanwhile.
		m := &nbdb.LogicalRouter{}
		if err := tx.addGuard("a router of that name exists already")(nameFree(c, m, &m.Name, want.Router.Name,
			model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionExcludes, Value: map[string]string{RoleKey: RoleClusterRouter}})); err != nil {
			return nil, err
		}
	}
	if p.CreateSwitch {
		m := &nbdb.LogicalSwitch{}
		if err := tx.addGuard("a switch of that name exists already")(nameFree(c, m, &m.Name, want.Switch.Name)); err != nil {
			return nil, err
		}
	}
	// Port names are unique in the schema: a second port of a name fails the commit anyway; the
	// guards say why.
	if p.CreateSwitchPort {
		m := &nbdb.LogicalSwitchPort{}
		if err := tx.addGuard("a switch port of that name exists already")(nameFree(c, m, &m.Name, want.SwitchPort.Name)); err != nil {
			return nil, err
		}
	}
	if p.CreateRouterPort {
		m := &nbdb.LogicalRouterPort{}
		if err := tx.addGuard("a router port of that name exists already")(nameFree(c, m, &m.Name, want.RouterPort.Name)); err != nil {
			return nil, err
		}
	}

	if p.CreateSwitchPort {
		m := want.SwitchPort.CloneModel().(*nbdb.LogicalSwitchPort)
		m.UUID = namedSwitchPort
		if err := tx.add(c.Create(m)); err != nil {
			return nil, err
		}
	}
	if p.CreateRouterPort {
		m := want.RouterPort.CloneModel().(*nbdb.LogicalRouterPort)
		m.UUID = namedRouterPort
		if err := tx.add(c.Create(m)); err != nil {
			return nil, err
		}
	}
	if p.CreateSwitch {
		m := want.Switch.CloneModel().(*nbdb.LogicalSwitch)
		m.UUID = namedSwitch
		m.Ports = []string{namedSwitchPort}
		if !p.CreateSwitchPort {
			m.Ports = []string{p.SwitchPort}
		}
		tx.switchInsert = len(tx.ops)
		if err := tx.add(c.Create(m)); err != nil {
			return nil, err
		}
	}
	if p.CreateRouter {
		m := want.Router.CloneModel().(*nbdb.LogicalRouter)
		m.UUID = namedRouter
		m.Ports = []string{namedRouterPort}
		if !p.CreateRouterPort {
			m.Ports = []string{p.RouterPort}
		}
		tx.routerInsert = len(tx.ops)
		if err := tx.add(c.Create(m)); err != nil {
			return nil, err
		}
	}
	if err := b.addPatches(tx, want, p); err != nil {
		return nil, err
	}
	return tx, nil
}

// buildPlan turns a plan that only patches, detaches and deletes into operations.
func (b *Backend) buildPlan(p plan) (*transaction, error) {
	tx := newTransaction()
	if err := b.addPatches(tx, desiredState{}, p); err != nil {
		return nil, err
	}
	return tx, nil
}

func (b *Backend) addPatches(tx *transaction, want desiredState, p plan) error {
	c := b.client
	if !p.SwitchPatch.empty() {
		m := want.Switch.CloneModel().(*nbdb.LogicalSwitch)
		m.UUID = p.Switch
		if err := addRowPatch(tx, c, m, &m.UUID, p.SwitchPatch, map[string]any{
			columnName: &m.Name, columnOtherConfig: &m.OtherConfig, columnExternalIDs: &m.ExternalIDs,
		}, &m.Ports); err != nil {
			return fmt.Errorf("patching the logical switch: %w", err)
		}
	}
	if !p.SwitchPortPatch.empty() {
		m := want.SwitchPort.CloneModel().(*nbdb.LogicalSwitchPort)
		m.UUID = p.SwitchPort
		if err := addRowPatch(tx, c, m, &m.UUID, p.SwitchPortPatch, map[string]any{
			columnName: &m.Name, columnType: &m.Type, columnAddresses: &m.Addresses, columnPortSecurity: &m.PortSecurity,
			columnOptions: &m.Options, columnExternalIDs: &m.ExternalIDs,
		}, nil); err != nil {
			return fmt.Errorf("patching the logical switch port: %w", err)
		}
	}
	if !p.RouterPortPatch.empty() {
		m := want.RouterPort.CloneModel().(*nbdb.LogicalRouterPort)
		m.UUID = p.RouterPort
		if err := addRowPatch(tx, c, m, &m.UUID, p.RouterPortPatch, map[string]any{
			columnName: &m.Name, columnNetworks: &m.Networks, columnMAC: &m.MAC, columnExternalIDs: &m.ExternalIDs,
		}, nil); err != nil {
			return fmt.Errorf("patching the logical router port: %w", err)
		}
	}
	if !p.RouterPatch.empty() {
		m := want.Router.CloneModel().(*nbdb.LogicalRouter)
		m.UUID = p.Router
		if err := addRowPatch(tx, c, m, &m.UUID, p.RouterPatch, map[string]any{columnExternalIDs: &m.ExternalIDs}, &m.Ports); err != nil {
			return fmt.Errorf("patching the namespace's router: %w", err)
		}
	}
	for _, ref := range p.DetachSwitchPorts {
		m := &nbdb.LogicalSwitch{UUID: ref.Parent}
		err := tx.add(byUUID(c, m, &m.UUID, m.UUID).Mutate(m, model.Mutation{Field: &m.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{ref.Port}}))
		if err != nil {
			return fmt.Errorf("detaching a logical switch port: %w", err)
		}
	}
	for _, ref := range p.DetachRouterPorts {
		m := &nbdb.LogicalRouter{UUID: ref.Parent}
		err := tx.add(byUUID(c, m, &m.UUID, m.UUID).Mutate(m, model.Mutation{Field: &m.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{ref.Port}}))
		if err != nil {
			return fmt.Errorf("detaching a logical router port: %w", err)
		}
	}
	for _, r := range p.DeleteRouters {
		if err := tx.addGuard("a router left without ports gained one meanwhile")(portsAre(c, r.UUID, r.Ports)); err != nil {
			return fmt.Errorf("guarding the deletion of a router: %w", err)
		}
		m := &nbdb.LogicalRouter{}
		if err := tx.add(byUUID(c, m, &m.UUID, r.UUID).Delete()); err != nil {
			return fmt.Errorf("deleting a logical router: %w", err)
		}
	}
	for _, uuid := range p.DeleteSwitches {
		m := &nbdb.LogicalSwitch{}
		if err := tx.add(byUUID(c, m, &m.UUID, uuid).Delete()); err != nil {
			return fmt.Errorf("deleting a logical switch: %w", err)
		}
	}
	for _, uuid := range p.DeleteSwitchPorts {
		m := &nbdb.LogicalSwitchPort{}
		if err := tx.add(byUUID(c, m, &m.UUID, uuid).Delete()); err != nil {
			return fmt.Errorf("deleting a logical switch port: %w", err)
		}
	}
	for _, uuid := range p.DeleteRouterPorts {
		m := &nbdb.LogicalRouterPort{}
		if err := tx.add(byUUID(c, m, &m.UUID, uuid).Delete()); err != nil {
			return fmt.Errorf("deleting a logical router port: %w", err)
		}
	}
	return nil
}

// addRowPatch adds the operations of one row's patch: an update of whole columns, and one mutate
// of its maps and ports. m holds the row's UUID and desired values; fields maps column names to
// pointers into m; ports points at m's ports column, for AddPorts.
func addRowPatch(tx *transaction, c client.Client, m model.Model, uuid *string, patch rowPatch, fields map[string]any, ports *[]string) error {
	if len(patch.Columns) > 0 {
		var columns []any
		for _, column := range patch.Columns {
			f, ok := fields[column]
			if !ok {
				return fmt.Errorf("no field for the column %s", column)
			}
			columns = append(columns, f)
		}
		if err := tx.addSingle(byUUID(c, m, uuid, *uuid).Update(m, columns...)); err != nil {
			return err
		}
	}
	var mutations []model.Mutation
	for _, column := range slices.Sorted(maps.Keys(patch.Maps)) {
		f, ok := fields[column]
		if !ok {
			return fmt.Errorf("no field for the column %s", column)
		}
		mp := patch.Maps[column]
		if len(mp.Delete) > 0 {
			mutations = append(mutations, model.Mutation{Field: f, Mutator: ovsdb.MutateOperationDelete, Value: mp.Delete})
		}
		if len(mp.Insert) > 0 {
			mutations = append(mutations, model.Mutation{Field: f, Mutator: ovsdb.MutateOperationInsert, Value: mp.Insert})
		}
	}
	if len(patch.AddPorts) > 0 {
		if ports == nil {
			return fmt.Errorf("the row has no ports")
		}
		mutations = append(mutations, model.Mutation{Field: ports, Mutator: ovsdb.MutateOperationInsert, Value: patch.AddPorts})
	}
	if len(mutations) > 0 {
		if err := tx.addSingle(byUUID(c, m, uuid, *uuid).Mutate(m, mutations...)); err != nil {
			return err
		}
	}
	return nil
}

// byUUID selects the row of m's table with the UUID. libovsdb's Where would look the model up in
// the cache, and fall back to the table's indexes (such as a port's name) when the UUID is not
// there, which could select another row.
func byUUID(c client.Client, m model.Model, uuidField *string, uuid string) client.ConditionalAPI {
	return c.WhereAll(m, model.Condition{Field: uuidField, Function: ovsdb.ConditionEqual, Value: uuid})
}
