package ovn

import (
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
// exactly as desired: it reads the rows from the cache, and writes every difference in one
// transaction, or nothing when they match. It first creates the cluster router if it is missing.
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

	_, routerCreated, err := b.ensureRouter(ctx)
	if err != nil {
		return status, err
	}
	status.Changed = routerCreated

	b.connMu.RLock()
	obs, err := b.observe(ctx, network.UID, false)
	if err != nil {
		b.connMu.RUnlock()
		return status, err
	}
	if obs.Router == nil {
		b.connMu.RUnlock()
		return status, fmt.Errorf("the cluster router %s disappeared, try again", RouterName(b.opts.ClusterName))
	}
	p := ensurePlan(want, obs)
	if p.empty() {
		b.connMu.RUnlock()
		status.ID = p.Switch
		logger.V(4).Info("OVN network is up to date", "switch", status.ID)
		return status, nil
	}
	tx, err := b.buildEnsure(network.UID, want, obs.Router.UUID, p)
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
	logger.V(2).Info("Wrote OVN network", "switch", status.ID, "operations", len(tx.ops), "created", p.CreateSwitch)

	// Make a following Ensure or List see what was written.
	err = b.waitForCache(ctx, func() (bool, error) {
		obs, err := b.observe(ctx, network.UID, false)
		if err != nil || obs.Router == nil {
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
// references from the cluster router, in one transaction. It succeeds when there is nothing.
func (b *Backend) Delete(ctx context.Context, uid types.UID) error {
	logger := klog.FromContext(ctx).WithValues("uid", uid)
	if uid == "" {
		return fmt.Errorf("deleting an OVN network: the UID is empty")
	}
	if err := b.Ready(); err != nil {
		return err
	}
	b.connMu.RLock()
	obs, err := b.observe(ctx, uid, true)
	if err != nil || obs.empty() {
		b.connMu.RUnlock()
		return err
	}
	tx, err := b.buildPlan(deletePlan(obs))
	b.connMu.RUnlock()
	if err != nil {
		return fmt.Errorf("building the transaction deleting network %s: %w", uid, err)
	}
	if _, err := b.transact(ctx, tx); err != nil {
		return fmt.Errorf("deleting network %s: %w", uid, err)
	}
	logger.V(2).Info("Deleted OVN network", "switches", len(obs.Switches), "switchPorts", len(obs.SwitchPorts), "routerPorts", len(obs.RouterPorts))
	err = b.waitForCache(ctx, func() (bool, error) {
		obs, err := b.observe(ctx, uid, false)
		return err == nil && obs.empty(), err
	})
	if err != nil {
		return fmt.Errorf("waiting for the cache to show network %s deleted: %w", uid, err)
	}
	return nil
}

// List returns the Networks that the cluster has rows for, one per UID, sorted by UID. A UID
// counts when any of its switch, switch port or router port is there.
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
	var switchPorts []*nbdb.LogicalSwitchPort
	if err := b.client.WhereCache(func(r *nbdb.LogicalSwitchPort) bool { return add(r.ExternalIDs) }).List(ctx, &switchPorts); err != nil {
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

// ensureRouter returns the UUID of the cluster router, creating it when it is missing, and
// whether it created it. Creations are serialised so that parallel calls never create two.
func (b *Backend) ensureRouter(ctx context.Context) (string, bool, error) {
	find := func() (*nbdb.LogicalRouter, error) {
		b.connMu.RLock()
		defer b.connMu.RUnlock()
		routers, err := b.clusterRouters(ctx)
		if err != nil {
			return nil, err
		}
		return pickRouter(routers, RouterName(b.opts.ClusterName)), nil
	}
	if r, err := find(); err != nil || r != nil {
		return uuidOf(r), false, err
	}

	b.routerMu.Lock()
	defer b.routerMu.Unlock()
	if r, err := find(); err != nil || r != nil {
		return uuidOf(r), false, err
	}
	logger := klog.FromContext(ctx)
	want := desiredRouter(b.opts.ClusterName)
	b.connMu.RLock()
	tx, err := b.buildRouter(want)
	b.connMu.RUnlock()
	if err != nil {
		return "", false, fmt.Errorf("building the transaction creating the cluster router: %w", err)
	}
	results, err := b.transact(ctx, tx)
	if errors.Is(err, ErrConflict) {
		// Another client (another replica of the controller) created it first: use that one once
		// the cache has it.
		var uuid string
		err = b.waitForCache(ctx, func() (bool, error) {
			r, err := find()
			uuid = uuidOf(r)
			return r != nil, err
		})
		if err != nil {
			return "", false, fmt.Errorf("waiting for the cache to show the cluster router created by another client: %w", err)
		}
		return uuid, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("creating the cluster router %s: %w", want.Name, err)
	}
	uuid := results[tx.routerInsert].UUID.GoUUID
	logger.Info("Created the cluster router", "router", want.Name, "uuid", uuid)
	err = b.waitForCache(ctx, func() (bool, error) {
		r, err := find()
		return r != nil && r.UUID == uuid, err
	})
	if err != nil {
		return "", false, fmt.Errorf("waiting for the cache to show the cluster router: %w", err)
	}
	return uuid, true, nil
}

func uuidOf(r *nbdb.LogicalRouter) string {
	if r == nil {
		return ""
	}
	return r.UUID
}

// clusterRouters returns the cluster's routers with the cluster-router role. The caller holds
// connMu for reading.
func (b *Backend) clusterRouters(ctx context.Context) ([]nbdb.LogicalRouter, error) {
	var routers []nbdb.LogicalRouter
	m := &nbdb.LogicalRouter{}
	err := b.client.WhereAll(m,
		model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{RoleKey: RoleClusterRouter}},
		model.Condition{Field: &m.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{OwnerKey: b.opts.ClusterName}},
	).List(ctx, &routers)
	if err != nil {
		return nil, fmt.Errorf("listing logical routers from the cache: %w", err)
	}
	return routers, nil
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

// observe reads from the cache the cluster's rows for the UID, and the rows that refer to them.
// Finding the other switches and routers that refer to the ports takes a scan of their tables, so
// unless full is set it is only done when a port is not referred to by the UID's switches or by
// the cluster router (non-root rows that nothing refers to do not exist, so someone else refers to
// it then); a port that is on its own switch or router and also on another one is missed. The
// caller holds connMu for reading.
func (b *Backend) observe(ctx context.Context, uid types.UID, full bool) (observed, error) {
	cluster := b.opts.ClusterName
	var obs observed

	routers, err := b.clusterRouters(ctx)
	if err != nil {
		return obs, err
	}
	obs.Router = pickRouter(routers, RouterName(cluster))

	ls, lsp, lrp := &nbdb.LogicalSwitch{}, &nbdb.LogicalSwitchPort{}, &nbdb.LogicalRouterPort{}
	if err := b.ownedByUID(ls, &ls.ExternalIDs, uid).List(ctx, &obs.Switches); err != nil {
		return obs, fmt.Errorf("listing logical switches from the cache: %w", err)
	}
	if err := b.ownedByUID(lsp, &lsp.ExternalIDs, uid).List(ctx, &obs.SwitchPorts); err != nil {
		return obs, fmt.Errorf("listing logical switch ports from the cache: %w", err)
	}
	if err := b.ownedByUID(lrp, &lrp.ExternalIDs, uid).List(ctx, &obs.RouterPorts); err != nil {
		return obs, fmt.Errorf("listing logical router ports from the cache: %w", err)
	}

	onSwitch := func(r *nbdb.LogicalSwitchPort) bool {
		return slices.ContainsFunc(obs.Switches, func(s nbdb.LogicalSwitch) bool { return slices.Contains(s.Ports, r.UUID) })
	}
	if len(obs.SwitchPorts) > 0 && (full || !all(obs.SwitchPorts, onSwitch)) {
		ports := uuidSet(obs.SwitchPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
		err := b.client.WhereCache(func(r *nbdb.LogicalSwitch) bool {
			return ownedBy(r.ExternalIDs, cluster) && ownedUID(r.ExternalIDs, cluster) != uid && containsAny(r.Ports, ports)
		}).List(ctx, &obs.PortSwitches)
		if err != nil {
			return obs, fmt.Errorf("listing logical switches from the cache: %w", err)
		}
	}

	onRouter := func(r *nbdb.LogicalRouterPort) bool {
		return obs.Router != nil && slices.Contains(obs.Router.Ports, r.UUID)
	}
	if len(obs.RouterPorts) > 0 && (full || !all(obs.RouterPorts, onRouter)) {
		ports := uuidSet(obs.RouterPorts, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
		err := b.client.WhereCache(func(r *nbdb.LogicalRouter) bool {
			return ownedBy(r.ExternalIDs, cluster) && (obs.Router == nil || r.UUID != obs.Router.UUID) && containsAny(r.Ports, ports)
		}).List(ctx, &obs.PortRouters)
		if err != nil {
			return obs, fmt.Errorf("listing logical routers from the cache: %w", err)
		}
	}

	sortByUUID(obs.Switches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	sortByUUID(obs.SwitchPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	sortByUUID(obs.RouterPorts, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
	sortByUUID(obs.PortSwitches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	sortByUUID(obs.PortRouters, func(r *nbdb.LogicalRouter) string { return r.UUID })
	return obs, nil
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
	// guards are the indexes of the wait operations that fail when a row to be inserted exists.
	guards []int
	// single are the indexes of the operations that must change exactly one row (the rows the
	// plan keeps); a count of zero means that the row went away since the cache was read.
	single []int
	// switchInsert and routerInsert are the indexes of those insert operations, or -1.
	switchInsert, routerInsert int
}

func newTransaction() *transaction {
	return &transaction{switchInsert: -1, routerInsert: -1}
}

func (t *transaction) add(ops []ovsdb.Operation, err error) error {
	if err != nil {
		return err
	}
	t.ops = append(t.ops, ops...)
	return nil
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

// transact runs the operations and checks their results. Operation errors of the guards become
// ErrConflict; a lost connection wraps backend.ErrNotReady.
func (b *Backend) transact(ctx context.Context, tx *transaction) ([]ovsdb.OperationResult, error) {
	// libovsdb holds a read lock on its connection during Transact, and Disconnect waits for it, so
	// a transaction that never gets an answer must not last forever.
	ctx, cancel := context.WithTimeout(ctx, transactTimeout)
	defer cancel()
	results, err := b.client.Transact(ctx, tx.ops...)
	if err != nil {
		if errors.Is(err, client.ErrNotConnected) {
			return nil, fmt.Errorf("%w: %w", backend.ErrNotReady, err)
		}
		return nil, fmt.Errorf("transaction failed: %w", err)
	}
	opErrs, err := ovsdb.CheckOperationResults(results, tx.ops)
	if err != nil {
		for _, opErr := range opErrs {
			var timedOut *ovsdb.TimedOut
			if errors.As(opErr, &timedOut) && slices.Contains(tx.guards, operationIndex(tx.ops, opErr.Operation())) {
				return nil, fmt.Errorf("%w: a row it was creating exists already (%s %v)", ErrConflict, opErr.Operation().Table, opErr.Operation().Where)
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
			return nil, fmt.Errorf("the %s row of the operation %s %v changed %d rows instead of one; it was deleted meanwhile, try again", op.Table, op.Op, op.Where, results[i].Count)
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

// guard returns a wait operation that fails the transaction at once when the cluster has a row
// named name for the UID in table m. OVSDB's natural form, "until == with no rows", cannot be sent
// through libovsdb, which drops an empty "rows" that ovsdb-server requires; so the wait is "until
// the rows with that name are not exactly {name}", which with a timeout of 0 fails when there are
// any.
func guard[T any](c client.Client, m *T, name *string, externalIDs *map[string]string, uid types.UID, cluster string, value string) ([]ovsdb.Operation, error) {
	timeout := 0
	*name = value
	// libovsdb evaluates the conditions on its cache too (it replaces them by the UUIDs of the rows
	// it finds there); separate includes conditions let it use its index on the UID key.
	return c.WhereAll(m,
		model.Condition{Field: externalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{UIDKey: string(uid)}},
		model.Condition{Field: externalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{OwnerKey: cluster}},
		model.Condition{Field: name, Function: ovsdb.ConditionEqual, Value: value},
	).Wait(ovsdb.WaitConditionNotEqual, &timeout, m, name)
}

// buildEnsure turns an Ensure plan into operations, with guards for the rows it inserts.
func (b *Backend) buildEnsure(uid types.UID, want desiredState, router string, p plan) (*transaction, error) {
	c, cluster := b.client, b.opts.ClusterName
	tx := newTransaction()
	if p.CreateSwitch {
		m := &nbdb.LogicalSwitch{}
		tx.guards = append(tx.guards, len(tx.ops))
		if err := tx.add(guard(c, m, &m.Name, &m.ExternalIDs, uid, cluster, want.Switch.Name)); err != nil {
			return nil, err
		}
	}
	if p.CreateSwitchPort {
		m := &nbdb.LogicalSwitchPort{}
		tx.guards = append(tx.guards, len(tx.ops))
		if err := tx.add(guard(c, m, &m.Name, &m.ExternalIDs, uid, cluster, want.SwitchPort.Name)); err != nil {
			return nil, err
		}
	}
	if p.CreateRouterPort {
		m := &nbdb.LogicalRouterPort{}
		tx.guards = append(tx.guards, len(tx.ops))
		if err := tx.add(guard(c, m, &m.Name, &m.ExternalIDs, uid, cluster, want.RouterPort.Name)); err != nil {
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
	if err := b.addPatches(tx, want, router, p); err != nil {
		return nil, err
	}
	return tx, nil
}

// buildPlan turns a plan that only patches, detaches and deletes into operations.
func (b *Backend) buildPlan(p plan) (*transaction, error) {
	tx := newTransaction()
	if err := b.addPatches(tx, desiredState{}, "", p); err != nil {
		return nil, err
	}
	return tx, nil
}

func (b *Backend) addPatches(tx *transaction, want desiredState, router string, p plan) error {
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
			columnName: &m.Name, columnType: &m.Type, columnAddresses: &m.Addresses,
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
		m := &nbdb.LogicalRouter{UUID: router}
		if err := addRowPatch(tx, c, m, &m.UUID, p.RouterPatch, nil, &m.Ports); err != nil {
			return fmt.Errorf("patching the cluster router: %w", err)
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

// buildRouter returns the guarded insert of the cluster router.
func (b *Backend) buildRouter(want nbdb.LogicalRouter) (*transaction, error) {
	c := b.client
	tx := newTransaction()
	timeout := 0
	g := &nbdb.LogicalRouter{Name: want.Name}
	tx.guards = append(tx.guards, len(tx.ops))
	err := tx.add(c.WhereAll(g,
		model.Condition{Field: &g.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{RoleKey: RoleClusterRouter}},
		model.Condition{Field: &g.ExternalIDs, Function: ovsdb.ConditionIncludes, Value: map[string]string{OwnerKey: b.opts.ClusterName}},
		model.Condition{Field: &g.Name, Function: ovsdb.ConditionEqual, Value: want.Name},
	).Wait(ovsdb.WaitConditionNotEqual, &timeout, g, &g.Name))
	if err != nil {
		return nil, err
	}
	m := want.CloneModel().(*nbdb.LogicalRouter)
	m.UUID = namedRouter
	tx.routerInsert = len(tx.ops)
	if err := tx.add(c.Create(m)); err != nil {
		return nil, err
	}
	return tx, nil
}
