package ovn

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ovn-kubernetes/libovsdb/model"
	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/internal/fuzzinput"
	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// This file fuzzes the planner on random northbound databases: the rows a Network owns, corrupted,
// duplicated, renamed, missing, moved, next to rows of other Networks of the cluster and of other
// owners under the Network's names. A database (db) is observed as Ensure and Delete observe the
// cache, the plan is applied as its OVSDB transaction would be (apply mirrors buildEnsure and
// addPatches), and the result is checked: the desired rows exactly, in one transaction, or a
// NameConflictError for a row of another owner; nothing of another owner changed. Pods' ports
// (EnsurePort's rows) are on the switches too: a Network's plans leave them alone, but for its
// Delete, which removes those of its UID.

// db is an in-memory northbound database: the rows of the four tables, by UUID.
type db struct {
	switches    map[string]*nbdb.LogicalSwitch
	switchPorts map[string]*nbdb.LogicalSwitchPort
	routers     map[string]*nbdb.LogicalRouter
	routerPorts map[string]*nbdb.LogicalRouterPort
}

// deepCopy copies a row of the model.
func deepCopy[T any](r *T) *T {
	return any(r).(interface{ CloneModel() model.Model }).CloneModel().(*T)
}

func newDB() *db {
	return &db{
		switches:    map[string]*nbdb.LogicalSwitch{},
		switchPorts: map[string]*nbdb.LogicalSwitchPort{},
		routers:     map[string]*nbdb.LogicalRouter{},
		routerPorts: map[string]*nbdb.LogicalRouterPort{},
	}
}

func (d *db) clone() *db {
	c := newDB()
	for k, v := range d.switches {
		c.switches[k] = deepCopy(v)
	}
	for k, v := range d.switchPorts {
		c.switchPorts[k] = deepCopy(v)
	}
	for k, v := range d.routers {
		c.routers[k] = deepCopy(v)
	}
	for k, v := range d.routerPorts {
		c.routerPorts[k] = deepCopy(v)
	}
	return c
}

// sorted returns the rows of a table as values, by UUID.
func sorted[T any](m map[string]*T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[k])
	}
	return out
}

// collectGarbage deletes the ports that no switch or router refers to: Logical_Switch_Port and
// Logical_Router_Port are not root tables, so ovsdb-server does so at the end of every transaction.
func (d *db) collectGarbage() {
	used := map[string]bool{}
	for _, s := range d.switches {
		for _, p := range s.Ports {
			used[p] = true
		}
	}
	for _, r := range d.routers {
		for _, p := range r.Ports {
			used[p] = true
		}
	}
	maps.DeleteFunc(d.switchPorts, func(uuid string, _ *nbdb.LogicalSwitchPort) bool { return !used[uuid] })
	maps.DeleteFunc(d.routerPorts, func(uuid string, _ *nbdb.LogicalRouterPort) bool { return !used[uuid] })
}

// integrity returns what makes ovsdb-server refuse the database at a commit: a reference to a port
// that is not there, or two ports of one name (the schema indexes port names).
func (d *db) integrity() error {
	for _, s := range sorted(d.switches) {
		for _, p := range s.Ports {
			if d.switchPorts[p] == nil {
				return fmt.Errorf("referential integrity violation: switch %s refers to switch port %s, which is not there", s.UUID, p)
			}
		}
	}
	for _, r := range sorted(d.routers) {
		for _, p := range r.Ports {
			if d.routerPorts[p] == nil {
				return fmt.Errorf("referential integrity violation: router %s refers to router port %s, which is not there", r.UUID, p)
			}
		}
	}
	names := map[string]string{}
	for _, p := range sorted(d.switchPorts) {
		if other, ok := names[p.Name]; ok {
			return fmt.Errorf("constraint violation: switch ports %s and %s are both named %q", other, p.UUID, p.Name)
		}
		names[p.Name] = p.UUID
	}
	names = map[string]string{}
	for _, p := range sorted(d.routerPorts) {
		if other, ok := names[p.Name]; ok {
			return fmt.Errorf("constraint violation: router ports %s and %s are both named %q", other, p.UUID, p.Name)
		}
		names[p.Name] = p.UUID
	}
	return nil
}

// observe reads the database as Backend.observe reads the cache: the cluster's rows of the UID by
// their external_ids, and for Ensure (want set) the namespace's router and the rows under want's
// names, decided by the functions Ensure uses (chooseRouter, splitNameHolders); then the other
// parents of the ports, when full is set or observe would look for them.
func (d *db) observe(cluster string, uid types.UID, want *desiredState, full bool) (observed, error) {
	obs := observed{cluster: cluster}
	mine := func(ids map[string]string) bool { return ids[UIDKey] == string(uid) && ids[OwnerKey] == cluster }
	for _, r := range sorted(d.switches) {
		if mine(r.ExternalIDs) {
			obs.Switches = append(obs.Switches, r)
		}
	}
	// Ensure looks switch ports up among those of type router; pod ports are not the Network's
	// own, and Delete alone reads them, wherever they are.
	for _, r := range sorted(d.switchPorts) {
		switch {
		case !mine(r.ExternalIDs):
		case !isPodPort(r.ExternalIDs, cluster) && (want == nil || r.Type == SwitchPortTypeRouter):
			obs.SwitchPorts = append(obs.SwitchPorts, r)
		case isPodPort(r.ExternalIDs, cluster) && want == nil:
			obs.PodPorts = append(obs.PodPorts, r)
		}
	}
	for _, r := range sorted(d.routerPorts) {
		if mine(r.ExternalIDs) {
			obs.RouterPorts = append(obs.RouterPorts, r)
		}
	}
	if want != nil {
		namespace := want.Router.ExternalIDs[NamespaceKey]
		var routers []nbdb.LogicalRouter
		for _, r := range sorted(d.routers) {
			if r.Name == want.Router.Name {
				routers = append(routers, r)
			}
		}
		router, err := chooseRouter(cluster, namespace, routers, func(uuid string) *nbdb.LogicalRouterPort { return d.routerPorts[uuid] })
		if err != nil {
			return obs, err
		}
		obs.Router = router

		var named []nbdb.LogicalSwitch
		for _, r := range sorted(d.switches) {
			if r.Name == want.Switch.Name {
				named = append(named, r)
			}
		}
		stale, err := splitNameHolders(cluster, "logical switch", want.Switch.Name, named, obs.Switches,
			func(r *nbdb.LogicalSwitch) (string, map[string]string) { return r.UUID, r.ExternalIDs })
		if err != nil {
			return obs, err
		}
		obs.StaleSwitches = stale
		var namedLSP []nbdb.LogicalSwitchPort
		for _, r := range sorted(d.switchPorts) {
			if r.Name == want.SwitchPort.Name {
				namedLSP = append(namedLSP, r)
			}
		}
		ports, err := splitNameHolders(cluster, "logical switch port", want.SwitchPort.Name, namedLSP, obs.SwitchPorts,
			func(r *nbdb.LogicalSwitchPort) (string, map[string]string) { return r.UUID, r.ExternalIDs })
		if err != nil {
			return obs, err
		}
		obs.SwitchPorts = append(obs.SwitchPorts, ports...)
		var namedLRP []nbdb.LogicalRouterPort
		for _, r := range sorted(d.routerPorts) {
			if r.Name == want.RouterPort.Name {
				namedLRP = append(namedLRP, r)
			}
		}
		routerPorts, err := splitNameHolders(cluster, "logical router port", want.RouterPort.Name, namedLRP, obs.RouterPorts,
			func(r *nbdb.LogicalRouterPort) (string, map[string]string) { return r.UUID, r.ExternalIDs })
		if err != nil {
			return obs, err
		}
		obs.RouterPorts = append(obs.RouterPorts, routerPorts...)
		if len(obs.Switches) > 1 {
			seen := uuidSet(obs.SwitchPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
			for _, s := range obs.Switches {
				for _, uuid := range s.Ports {
					if _, ok := seen[uuid]; !ok && isPodPort(d.switchPorts[uuid].ExternalIDs, cluster) {
						seen[uuid] = struct{}{}
						obs.PodPorts = append(obs.PodPorts, *d.switchPorts[uuid])
					}
				}
			}
		}
	}

	stale := uuidSet(obs.StaleSwitches, func(r *nbdb.LogicalSwitch) string { return r.UUID })
	onSwitch := func(r *nbdb.LogicalSwitchPort) bool {
		return slices.ContainsFunc(obs.Switches, func(s nbdb.LogicalSwitch) bool { return slices.Contains(s.Ports, r.UUID) })
	}
	portsToFind := obs.SwitchPorts
	if want == nil {
		portsToFind = append(slices.Clone(obs.SwitchPorts), obs.PodPorts...)
	}
	if len(portsToFind) > 0 && (full || len(obs.SwitchPorts) > 1 || !all(obs.SwitchPorts, onSwitch)) {
		ports := uuidSet(portsToFind, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
		for _, r := range sorted(d.switches) {
			if _, isStale := stale[r.UUID]; !isStale && ownedUID(r.ExternalIDs, cluster) != uid && containsAny(r.Ports, ports) {
				obs.PortSwitches = append(obs.PortSwitches, r)
			}
		}
	}
	onRouter := func(r *nbdb.LogicalRouterPort) bool {
		return obs.Router != nil && slices.Contains(obs.Router.Ports, r.UUID)
	}
	if full || len(obs.RouterPorts) > 1 || !all(obs.RouterPorts, onRouter) {
		routerPorts := uuidSet(obs.RouterPorts, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
		for _, r := range sorted(d.routers) {
			if (obs.Router == nil || r.UUID != obs.Router.UUID) && containsAny(r.Ports, routerPorts) {
				obs.PortRouters = append(obs.PortRouters, r)
			}
		}
	}
	sortByUUID(obs.SwitchPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	sortByUUID(obs.PodPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	sortByUUID(obs.RouterPorts, func(r *nbdb.LogicalRouterPort) string { return r.UUID })
	return obs, nil
}

// errGuard is what apply returns when a wait operation or a single-row operation of the plan's
// transaction fails: Ensure would return ErrConflict and write nothing.
var errGuard = errors.New("guard failed")

// UUIDs that apply gives the rows it inserts.
const (
	insertedSwitch     = "ins-ls"
	insertedSwitchPort = "ins-lsp"
	insertedRouterPort = "ins-lrp"
	insertedRouter     = "ins-lr"
)

// apply runs the plan on a copy of the database as ovsdb-server runs its transaction, in the order
// of buildEnsure and addPatches, and returns the database at the commit, or why it fails.
func apply(d *db, want desiredState, p plan) (*db, error) {
	d = d.clone()
	resolve := func(ref string) string {
		switch ref {
		case namedSwitchPort:
			return insertedSwitchPort
		case namedRouterPort:
			return insertedRouterPort
		}
		return ref
	}
	for _, uuid := range p.ReplaceSwitches {
		delete(d.switches, uuid)
	}
	// The guards of the inserts.
	if p.CreateRouter {
		for _, r := range d.routers {
			if r.Name == want.Router.Name && r.ExternalIDs[RoleKey] != RoleClusterRouter {
				return nil, fmt.Errorf("%w: a router named %q exists already (%s)", errGuard, r.Name, r.UUID)
			}
		}
	}
	if p.CreateSwitch {
		for _, r := range d.switches {
			if r.Name == want.Switch.Name {
				return nil, fmt.Errorf("%w: a switch named %q exists already (%s)", errGuard, r.Name, r.UUID)
			}
		}
	}
	if p.CreateSwitchPort {
		for _, r := range d.switchPorts {
			if r.Name == want.SwitchPort.Name {
				return nil, fmt.Errorf("%w: a switch port named %q exists already (%s)", errGuard, r.Name, r.UUID)
			}
		}
	}
	if p.CreateRouterPort {
		for _, r := range d.routerPorts {
			if r.Name == want.RouterPort.Name {
				return nil, fmt.Errorf("%w: a router port named %q exists already (%s)", errGuard, r.Name, r.UUID)
			}
		}
	}
	// The inserts.
	if p.CreateSwitchPort {
		r := deepCopy(&want.SwitchPort)
		r.UUID = insertedSwitchPort
		d.switchPorts[r.UUID] = r
	}
	if p.CreateRouterPort {
		r := deepCopy(&want.RouterPort)
		r.UUID = insertedRouterPort
		d.routerPorts[r.UUID] = r
	}
	if p.CreateSwitch {
		r := deepCopy(&want.Switch)
		r.UUID = insertedSwitch
		r.Ports = []string{insertedSwitchPort}
		if !p.CreateSwitchPort {
			r.Ports = []string{p.SwitchPort}
		}
		d.switches[r.UUID] = r
	}
	if p.CreateRouter {
		r := deepCopy(&want.Router)
		r.UUID = insertedRouter
		r.Ports = []string{insertedRouterPort}
		if !p.CreateRouterPort {
			r.Ports = []string{p.RouterPort}
		}
		d.routers[r.UUID] = r
	}
	// The patches: each must change exactly one row.
	if !p.SwitchPatch.empty() {
		r := d.switches[p.Switch]
		if r == nil {
			return nil, fmt.Errorf("%w: the switch %s to patch is not there", errGuard, p.Switch)
		}
		if err := patchRow(p.SwitchPatch, map[string]func(){columnName: func() { r.Name = want.Switch.Name }},
			map[string]*map[string]string{columnOtherConfig: &r.OtherConfig, columnExternalIDs: &r.ExternalIDs}, &r.Ports, resolve); err != nil {
			return nil, err
		}
	}
	if !p.SwitchPortPatch.empty() {
		r := d.switchPorts[p.SwitchPort]
		if r == nil {
			return nil, fmt.Errorf("%w: the switch port %s to patch is not there", errGuard, p.SwitchPort)
		}
		w := want.SwitchPort
		if err := patchRow(p.SwitchPortPatch, map[string]func(){
			columnName: func() { r.Name = w.Name }, columnType: func() { r.Type = w.Type },
			columnAddresses:    func() { r.Addresses = slices.Clone(w.Addresses) },
			columnPortSecurity: func() { r.PortSecurity = slices.Clone(w.PortSecurity) },
		}, map[string]*map[string]string{columnOptions: &r.Options, columnExternalIDs: &r.ExternalIDs}, nil, resolve); err != nil {
			return nil, err
		}
	}
	if !p.RouterPortPatch.empty() {
		r := d.routerPorts[p.RouterPort]
		if r == nil {
			return nil, fmt.Errorf("%w: the router port %s to patch is not there", errGuard, p.RouterPort)
		}
		w := want.RouterPort
		if err := patchRow(p.RouterPortPatch, map[string]func(){
			columnName: func() { r.Name = w.Name }, columnNetworks: func() { r.Networks = slices.Clone(w.Networks) },
			columnMAC: func() { r.MAC = w.MAC },
		}, map[string]*map[string]string{columnExternalIDs: &r.ExternalIDs}, nil, resolve); err != nil {
			return nil, err
		}
	}
	if !p.RouterPatch.empty() {
		r := d.routers[p.Router]
		if r == nil {
			return nil, fmt.Errorf("%w: the router %s to patch is not there", errGuard, p.Router)
		}
		if err := patchRow(p.RouterPatch, nil, map[string]*map[string]string{columnExternalIDs: &r.ExternalIDs}, &r.Ports, resolve); err != nil {
			return nil, err
		}
	}
	// Detaching touches any number of rows.
	for _, ref := range p.DetachSwitchPorts {
		if r := d.switches[ref.Parent]; r != nil {
			r.Ports = slices.DeleteFunc(r.Ports, func(p string) bool { return p == ref.Port })
		}
	}
	for _, ref := range p.DetachRouterPorts {
		if r := d.routers[ref.Parent]; r != nil {
			r.Ports = slices.DeleteFunc(r.Ports, func(p string) bool { return p == ref.Port })
		}
	}
	for _, del := range p.DeleteRouters {
		r := d.routers[del.UUID]
		if r == nil || !sameSet(r.Ports, del.Ports) {
			return nil, fmt.Errorf("%w: the router %s to delete is not there with the ports %v", errGuard, del.UUID, del.Ports)
		}
		delete(d.routers, del.UUID)
	}
	for _, uuid := range p.DeleteSwitches {
		delete(d.switches, uuid)
	}
	for _, uuid := range p.DeleteSwitchPorts {
		delete(d.switchPorts, uuid)
	}
	for _, uuid := range p.DeleteRouterPorts {
		delete(d.routerPorts, uuid)
	}
	// The commit.
	if err := d.integrity(); err != nil {
		return nil, err
	}
	d.collectGarbage()
	return d, nil
}

// patchRow applies a rowPatch: columns overwritten by the setters, maps mutated key by key (delete,
// then insert, which leaves existing keys alone), ports added.
func patchRow(p rowPatch, setters map[string]func(), columns map[string]*map[string]string, ports *[]string, resolve func(string) string) error {
	for _, c := range p.Columns {
		set, ok := setters[c]
		if !ok {
			return fmt.Errorf("no column %s to update", c)
		}
		set()
	}
	for _, c := range slices.Sorted(maps.Keys(p.Maps)) {
		m, ok := columns[c]
		if !ok {
			return fmt.Errorf("no map column %s to mutate", c)
		}
		mp := p.Maps[c]
		for _, k := range mp.Delete {
			delete(*m, k)
		}
		for k, v := range mp.Insert {
			if *m == nil {
				*m = map[string]string{}
			}
			if _, exists := (*m)[k]; !exists {
				(*m)[k] = v
			}
		}
	}
	if len(p.AddPorts) > 0 {
		if ports == nil {
			return fmt.Errorf("the row has no ports")
		}
		for _, ref := range p.AddPorts {
			if port := resolve(ref); !slices.Contains(*ports, port) {
				*ports = append(*ports, port)
			}
		}
	}
	return nil
}

// Names of the fuzzed database: the Network the plans are for, another of its namespace, one of
// another namespace, and a Network deleted and created again under the first one's name.
const (
	fuzzUID      = types.UID("uid-1")
	fuzzOtherUID = types.UID("uid-2")
	fuzzFarUID   = types.UID("uid-3")
	fuzzOldUID   = types.UID("uid-0")
	otherCluster = "c2"
)

// fuzzSpecs are the specs the Network is written with and asked for.
var fuzzSpecs = []backend.Network{
	testNetwork("10.1.0.0/24", "10.1.0.1"),
	testNetwork("10.1.0.0/16", "10.1.255.254"),
	testNetwork("fd00:1::/64", "fd00:1::1"),
	testNetwork("fd00:1:2:3:4::/80", "fd00:1:2:3:4::fe"),
}

// fuzzDB builds a database from fuzz input. It starts from the rows Ensure writes for the
// Network (with one of fuzzSpecs), another Network of its namespace and one of another namespace,
// then applies a program of edits read from the input.
type fuzzDB struct {
	*db
	in *fuzzinput.Reader
	// next numbers the UUIDs; editing is set once the edits start.
	next    int
	editing bool
}

func (f *fuzzDB) uuid(prefix string) string {
	f.next++
	// The rows of the edits get a random part first, so that the lowest UUID, which the planner
	// keeps among duplicates, is any of them.
	random := byte(0x80)
	if f.editing {
		random = f.in.Byte()
	}
	return fmt.Sprintf("%s-%02x%03d", prefix, random, f.next)
}

// write adds the rows Ensure writes for a Network to the database, on the router of its namespace,
// which it creates when there is none.
func (f *fuzzDB) write(n backend.Network) {
	want := desiredRows(testCluster, n)
	var router *nbdb.LogicalRouter
	for _, r := range sorted(f.routers) {
		if r.Name == want.Router.Name {
			router = f.routers[r.UUID]
			break
		}
	}
	if router == nil {
		router = deepCopy(&want.Router)
		router.UUID = f.uuid("lr")
		f.routers[router.UUID] = router
	}
	lsp, lrp, ls := deepCopy(&want.SwitchPort), deepCopy(&want.RouterPort), deepCopy(&want.Switch)
	lsp.UUID, lrp.UUID, ls.UUID = f.uuid("lsp"), f.uuid("lrp"), f.uuid("ls")
	ls.Ports = []string{lsp.UUID}
	router.Ports = append(router.Ports, lrp.UUID)
	f.switchPorts[lsp.UUID], f.routerPorts[lrp.UUID], f.switches[ls.UUID] = lsp, lrp, ls
}

// Values the edits write into names and external_ids: those of the Networks, of other owners, and
// others.
func (f *fuzzDB) fuzzName(want desiredState) string {
	names := []string{want.Switch.Name, want.SwitchPort.Name, want.RouterPort.Name, want.Router.Name,
		SwitchName(testCluster, "ns", "other"), SwitchPortName(testCluster, fuzzOtherUID), RouterPortName(testCluster, fuzzOtherUID),
		RouterName(testCluster, "far"), SwitchName(otherCluster, "ns", "net"), "renamed", ""}
	return names[f.in.Choose(len(names))]
}

func (f *fuzzDB) fuzzValue(key string) (string, bool) {
	var values []string
	switch key {
	case OwnerKey:
		values = []string{testCluster, otherCluster}
	case UIDKey:
		values = []string{string(fuzzUID), string(fuzzOtherUID), string(fuzzOldUID), string(fuzzFarUID)}
	case NamespaceKey:
		values = []string{"ns", "far"}
	case NameKey:
		values = []string{"net", "other"}
	case RoleKey:
		values = []string{RoleNamespaceRouter, RoleClusterRouter}
	case PodUIDKey:
		values = []string{"pod-1", "pod-2"}
	case CIDRKey, SubnetKey:
		values = []string{"10.1.0.0/24", "fd00:1::/64"}
	case GatewayKey, ExcludeIPsKey:
		values = []string{"10.1.0.1", "fd00:1::1"}
	case IPv6PrefixKey:
		values = []string{"fd00:1::"}
	case RouterPortKey:
		values = []string{RouterPortName(testCluster, fuzzUID), "elsewhere"}
	default:
		values = []string{"x"}
	}
	i := f.in.Choose(len(values) + 1)
	if i == len(values) {
		return "", false // delete the key
	}
	return values[i], true
}

// editMap sets or deletes a key of one of keys in m.
func (f *fuzzDB) editMap(m *map[string]string, keys ...string) {
	key := keys[f.in.Choose(len(keys))]
	v, ok := f.fuzzValue(key)
	if *m == nil {
		*m = map[string]string{}
	}
	if ok {
		(*m)[key] = v
	} else {
		delete(*m, key)
	}
}

// pickRow returns the UUID of one of the rows, "" when there are none.
func pickRow[T any](f *fuzzDB, m map[string]*T) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	return keys[f.in.Choose(len(keys))]
}

// portNameFree reports whether no port of the table has the name (the schema's index).
func portNameFree[T any](m map[string]*T, name string, nameOf func(*T) string) bool {
	for _, r := range m {
		if nameOf(r) == name {
			return false
		}
	}
	return true
}

// firstPodEdit is the first byte that selects an edit of pod ports (see editPod); the bytes
// below select the edits of the Network's rows, as byte modulo 14 (which the corpus was written
// for).
const firstPodEdit = 0xfc

// edit applies one edit read from the input.
func (f *fuzzDB) edit(want desiredState) {
	idKeys := []string{OwnerKey, UIDKey, NamespaceKey, NameKey, CIDRKey, GatewayKey, RoleKey, "team"}
	selector := f.in.Byte()
	if selector >= firstPodEdit {
		f.editPod(want, selector-firstPodEdit)
		return
	}
	switch int(selector) % 14 {
	case 0: // delete a row
		switch f.in.Choose(4) {
		case 0:
			delete(f.switches, pickRow(f, f.switches))
		case 1:
			delete(f.routers, pickRow(f, f.routers))
		case 2:
			f.detachEverywhere(pickRow(f, f.switchPorts))
		case 3:
			f.detachEverywhere(pickRow(f, f.routerPorts))
		}
	case 1: // rename a row
		name := f.fuzzName(want)
		switch f.in.Choose(4) {
		case 0:
			if r := f.switches[pickRow(f, f.switches)]; r != nil {
				r.Name = name
			}
		case 1:
			if r := f.routers[pickRow(f, f.routers)]; r != nil {
				r.Name = name
			}
		case 2:
			if r := f.switchPorts[pickRow(f, f.switchPorts)]; r != nil && portNameFree(f.switchPorts, name, func(p *nbdb.LogicalSwitchPort) string { return p.Name }) {
				r.Name = name
			}
		case 3:
			if r := f.routerPorts[pickRow(f, f.routerPorts)]; r != nil && portNameFree(f.routerPorts, name, func(p *nbdb.LogicalRouterPort) string { return p.Name }) {
				r.Name = name
			}
		}
	case 2, 3: // change external_ids
		switch f.in.Choose(4) {
		case 0:
			if r := f.switches[pickRow(f, f.switches)]; r != nil {
				f.editMap(&r.ExternalIDs, idKeys...)
			}
		case 1:
			if r := f.routers[pickRow(f, f.routers)]; r != nil {
				f.editMap(&r.ExternalIDs, idKeys...)
			}
		case 2:
			if r := f.switchPorts[pickRow(f, f.switchPorts)]; r != nil {
				f.editMap(&r.ExternalIDs, idKeys...)
			}
		case 3:
			if r := f.routerPorts[pickRow(f, f.routerPorts)]; r != nil {
				f.editMap(&r.ExternalIDs, idKeys...)
			}
		}
	case 4: // change the other columns
		switch f.in.Choose(6) {
		case 0:
			if r := f.switches[pickRow(f, f.switches)]; r != nil {
				f.editMap(&r.OtherConfig, SubnetKey, ExcludeIPsKey, IPv6PrefixKey, "mcast_snoop")
			}
		case 1:
			if r := f.switchPorts[pickRow(f, f.switchPorts)]; r != nil {
				f.editMap(&r.Options, RouterPortKey, "nat-addresses")
			}
		case 2:
			if r := f.switchPorts[pickRow(f, f.switchPorts)]; r != nil {
				r.Type = []string{"", SwitchPortTypeRouter, "localnet"}[f.in.Choose(3)]
				r.Addresses = [][]string{nil, {SwitchPortAddressRouter}, {"dynamic"}, {SwitchPortAddressRouter, "dynamic"}}[f.in.Choose(4)]
			}
		case 3:
			if r := f.routerPorts[pickRow(f, f.routerPorts)]; r != nil {
				r.Networks = [][]string{nil, {"10.1.0.1/24"}, {"fd00:1::1/64"}, {"10.1.0.1/24", "fd00:1::1/64"}}[f.in.Choose(4)]
			}
		case 4:
			if r := f.routerPorts[pickRow(f, f.routerPorts)]; r != nil {
				r.MAC = []string{"", "0a:00:00:00:00:01", RouterPortMAC(fuzzUID)}[f.in.Choose(3)]
			}
		case 5:
			if r := f.switches[pickRow(f, f.switches)]; r != nil {
				f.editMap(&r.OtherConfig, SubnetKey, ExcludeIPsKey, IPv6PrefixKey)
			}
		}
	case 5: // duplicate a row
		switch f.in.Choose(4) {
		case 0:
			if r := f.switches[pickRow(f, f.switches)]; r != nil {
				dup := deepCopy(r)
				dup.UUID = f.uuid("ls")
				dup.Ports = nil
				f.switches[dup.UUID] = dup
			}
		case 1:
			if r := f.routers[pickRow(f, f.routers)]; r != nil {
				dup := deepCopy(r)
				dup.UUID = f.uuid("lr")
				dup.Ports = nil
				f.routers[dup.UUID] = dup
			}
		case 2:
			if r, parent := f.switchPorts[pickRow(f, f.switchPorts)], f.switches[pickRow(f, f.switches)]; r != nil && parent != nil {
				dup := deepCopy(r)
				dup.UUID = f.uuid("lsp")
				dup.Name = dup.UUID
				f.switchPorts[dup.UUID] = dup
				parent.Ports = append(parent.Ports, dup.UUID)
			}
		case 3:
			if r, parent := f.routerPorts[pickRow(f, f.routerPorts)], f.routers[pickRow(f, f.routers)]; r != nil && parent != nil {
				dup := deepCopy(r)
				dup.UUID = f.uuid("lrp")
				dup.Name = dup.UUID
				f.routerPorts[dup.UUID] = dup
				parent.Ports = append(parent.Ports, dup.UUID)
			}
		}
	case 6, 7: // a row of another owner, or of none, under one of the Network's names
		ids := map[string]string{}
		if f.in.Choose(2) == 0 {
			ids[OwnerKey] = otherCluster
		}
		if f.in.Choose(2) == 0 {
			// Keys of the Network, but not the cluster's: still another owner's.
			ids[UIDKey], ids[NamespaceKey], ids[NameKey] = string(fuzzUID), "ns", "net"
		}
		switch f.in.Choose(4) {
		case 0:
			r := &nbdb.LogicalSwitch{UUID: f.uuid("ls"), Name: want.Switch.Name, ExternalIDs: ids}
			f.switches[r.UUID] = r
		case 1:
			r := &nbdb.LogicalRouter{UUID: f.uuid("lr"), Name: want.Router.Name, ExternalIDs: ids}
			f.routers[r.UUID] = r
		case 2:
			if parent := f.switches[pickRow(f, f.switches)]; parent != nil &&
				portNameFree(f.switchPorts, want.SwitchPort.Name, func(p *nbdb.LogicalSwitchPort) string { return p.Name }) {
				r := &nbdb.LogicalSwitchPort{UUID: f.uuid("lsp"), Name: want.SwitchPort.Name, ExternalIDs: ids}
				f.switchPorts[r.UUID] = r
				parent.Ports = append(parent.Ports, r.UUID)
			}
		case 3:
			if parent := f.routers[pickRow(f, f.routers)]; parent != nil &&
				portNameFree(f.routerPorts, want.RouterPort.Name, func(p *nbdb.LogicalRouterPort) string { return p.Name }) {
				r := &nbdb.LogicalRouterPort{UUID: f.uuid("lrp"), Name: want.RouterPort.Name, ExternalIDs: ids}
				f.routerPorts[r.UUID] = r
				parent.Ports = append(parent.Ports, r.UUID)
			}
		}
	case 8: // the switch of a Network deleted and created again under the name, with its port
		old := fuzzSpecs[f.in.Choose(len(fuzzSpecs))]
		old.UID = fuzzOldUID
		rows := desiredRows(testCluster, old)
		if portNameFree(f.switchPorts, rows.SwitchPort.Name, func(p *nbdb.LogicalSwitchPort) string { return p.Name }) {
			lsp, ls := deepCopy(&rows.SwitchPort), deepCopy(&rows.Switch)
			lsp.UUID, ls.UUID = f.uuid("lsp"), f.uuid("ls")
			ls.Ports = []string{lsp.UUID}
			f.switchPorts[lsp.UUID], f.switches[ls.UUID] = lsp, ls
		}
	case 9: // a port also on another parent
		if port, parent := pickRow(f, f.switchPorts), f.switches[pickRow(f, f.switches)]; port != "" && parent != nil && !slices.Contains(parent.Ports, port) {
			parent.Ports = append(parent.Ports, port)
		}
	case 10:
		if port, parent := pickRow(f, f.routerPorts), f.routers[pickRow(f, f.routers)]; port != "" && parent != nil && !slices.Contains(parent.Ports, port) {
			parent.Ports = append(parent.Ports, port)
		}
	case 11: // a port taken off a parent
		if parent := f.switches[pickRow(f, f.switches)]; parent != nil && len(parent.Ports) > 0 {
			i := f.in.Choose(len(parent.Ports))
			parent.Ports = slices.Delete(slices.Clone(parent.Ports), i, i+1)
		}
	case 12:
		if parent := f.routers[pickRow(f, f.routers)]; parent != nil && len(parent.Ports) > 0 {
			i := f.in.Choose(len(parent.Ports))
			parent.Ports = slices.Delete(slices.Clone(parent.Ports), i, i+1)
		}
	case 13: // the router of the layout before routers per namespace, with a router port moved to it
		ids := map[string]string{OwnerKey: testCluster, RoleKey: RoleClusterRouter}
		name := []string{RouterName(testCluster, "router"), want.Router.Name}[f.in.Choose(2)]
		r := &nbdb.LogicalRouter{UUID: f.uuid("lr"), Name: name, ExternalIDs: ids}
		if port := pickRow(f, f.routerPorts); port != "" {
			r.Ports = []string{port}
			if f.in.Choose(2) == 0 {
				for _, other := range f.routers {
					other.Ports = slices.DeleteFunc(other.Ports, func(p string) bool { return p == port })
				}
			}
		}
		f.routers[r.UUID] = r
	}
}

// podPortRows returns the UUIDs of the switch ports with a pod UID key, of any owner, sorted.
func (f *fuzzDB) podPortRows() []string {
	var out []string
	for _, uuid := range slices.Sorted(maps.Keys(f.switchPorts)) {
		if f.switchPorts[uuid].ExternalIDs[PodUIDKey] != "" {
			out = append(out, uuid)
		}
	}
	return out
}

// addPodPort adds the port EnsurePort writes for the pod to the switch, with the Network keys
// ids says, unless a port has its name already.
func (f *fuzzDB) addPodPort(sw *nbdb.LogicalSwitch, ids map[string]string, pod types.UID) {
	port := desiredPort(testCluster, backend.Port{
		NetworkNamespace: ids[NamespaceKey], NetworkName: ids[NameKey], NetworkUID: types.UID(ids[UIDKey]),
		Pod: backend.PodRef{Namespace: "pods", Name: string(pod), UID: pod},
		MAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0, 0, byte(f.next)}, IP: netip.AddrFrom4([4]byte{10, 1, 0, byte(f.next)}),
	})
	if !portNameFree(f.switchPorts, port.Name, func(p *nbdb.LogicalSwitchPort) string { return p.Name }) {
		return
	}
	r := deepCopy(&port)
	r.UUID = f.uuid("pod")
	f.switchPorts[r.UUID] = r
	sw.Ports = append(sw.Ports, r.UUID)
}

// editPod applies one edit of pod ports, which kind selects.
func (f *fuzzDB) editPod(want desiredState, kind byte) {
	pods := f.podPortRows()
	var pod *nbdb.LogicalSwitchPort
	if len(pods) > 0 {
		pod = f.switchPorts[pods[f.in.Choose(len(pods))]]
	}
	switch kind {
	case 0: // a pod's port on a switch, for the Network, another one, or one that is gone
		if sw := f.switches[pickRow(f, f.switches)]; sw != nil {
			uid := []types.UID{fuzzUID, fuzzOtherUID, fuzzOldUID}[f.in.Choose(3)]
			f.addPodPort(sw, map[string]string{UIDKey: string(uid), NamespaceKey: "ns", NameKey: "net"}, types.UID(fmt.Sprintf("pod-%d", f.in.Choose(4))))
		}
	case 1: // keys of a pod's port changed
		if pod != nil {
			f.editMap(&pod.ExternalIDs, PodUIDKey, UIDKey, OwnerKey)
		}
	case 2: // a pod's port renamed, perhaps to a name of the Network's
		if name := f.fuzzName(want); pod != nil && portNameFree(f.switchPorts, name, func(p *nbdb.LogicalSwitchPort) string { return p.Name }) {
			pod.Name = name
		}
	case 3: // a pod's port made to look like a router port
		if pod != nil {
			pod.Type, pod.Addresses = SwitchPortTypeRouter, []string{SwitchPortAddressRouter}
		}
	}
}

// attachPods puts a pod's port on every switch, with the Network keys of the switch.
func (f *fuzzDB) attachPods() {
	for _, uuid := range slices.Sorted(maps.Keys(f.switches)) {
		sw := f.switches[uuid]
		f.addPodPort(sw, sw.ExternalIDs, types.UID("pod-on-"+uuid))
	}
}

// detachEverywhere takes a port off every parent, so that it goes with the garbage.
func (f *fuzzDB) detachEverywhere(port string) {
	for _, s := range f.switches {
		s.Ports = slices.DeleteFunc(s.Ports, func(p string) bool { return p == port })
	}
	for _, r := range f.routers {
		r.Ports = slices.DeleteFunc(r.Ports, func(p string) bool { return p == port })
	}
}

// buildFuzzDB reads the database, the Network's spec in it and the one asked for, and whether the
// test deletes it, from fuzz input.
func buildFuzzDB(input []byte) (d *db, want backend.Network, deleting bool) {
	f := &fuzzDB{db: newDB(), in: fuzzinput.New(input)}
	head := f.in.Byte()
	deleting = head&0x80 != 0
	want = fuzzSpecs[int(head&3)]
	written := fuzzSpecs[int(head>>2&3)]
	if head&0x10 == 0 {
		f.write(written)
	}
	if head&0x20 == 0 {
		other := fuzzSpecs[0]
		other.Name, other.UID = "other", fuzzOtherUID
		f.write(other)
	}
	if head&0x40 == 0 {
		far := fuzzSpecs[2]
		far.Namespace, far.UID = "far", fuzzFarUID
		f.write(far)
	}
	f.editing = true
	for steps := 0; f.in.Left() > 0 && steps < 64; steps++ {
		f.edit(desiredRows(testCluster, want))
	}
	// After the edits, so that the corpus's edits pick the rows they were written for.
	f.attachPods()
	// What ovsdb-server would hold: no references to ports that are not there, no port nothing
	// refers to.
	for _, s := range f.switches {
		s.Ports = slices.DeleteFunc(s.Ports, func(p string) bool { return f.switchPorts[p] == nil })
		s.Ports = slices.Compact(slices.Sorted(slices.Values(s.Ports)))
	}
	for _, r := range f.routers {
		r.Ports = slices.DeleteFunc(r.Ports, func(p string) bool { return f.routerPorts[p] == nil })
		r.Ports = slices.Compact(slices.Sorted(slices.Values(r.Ports)))
	}
	f.collectGarbage()
	return f.db, want, deleting
}

// FuzzPlan checks ensurePlan and deletePlan on random databases. For Ensure: a row of another owner
// under one of the Network's names gives a NameConflictError naming it, exactly when there is
// one; otherwise the plan's transaction commits, leaves exactly the desired rows (one switch, switch
// port and router port, on the namespace's router and on no other parent), which a second plan
// finds up to date, changes no row of another owner but to take the Network's ports off it, deletes
// no row of another Network but a stale switch under the Network's switch name, and deletes the
// cluster's routers it leaves without ports. For Delete: the transaction commits and leaves no row
// of the UID, with the same care for the rows of others.
func FuzzPlan(f *testing.F) {
	f.Fuzz(func(t *testing.T, input []byte) {
		before, network, deleting := buildFuzzDB(input)
		if err := before.integrity(); err != nil {
			t.Fatalf("the fuzzed database is not one ovsdb-server would hold: %v", err)
		}
		if deleting {
			checkDelete(t, before, network.UID)
			return
		}
		checkEnsure(t, before, network)
	})
}

func checkEnsure(t *testing.T, before *db, network backend.Network) {
	want := desiredRows(testCluster, network)
	obs, err := before.observe(testCluster, network.UID, &want, false)
	conflict := foreignNameHolder(before, want)
	var nameConflict *backend.NameConflictError
	switch {
	case errors.As(err, &nameConflict):
		if conflict == "" {
			t.Fatalf("Ensure reports %v, but no row of another owner holds a name of the Network", err)
		}
		checkConflict(t, before, want, nameConflict)
		return
	case err != nil:
		t.Fatalf("observe: %v", err)
	case conflict != "":
		t.Fatalf("%s holds a name of the Network, and Ensure does not report it", conflict)
	}

	p := ensurePlan(want, obs)
	checkPlanTargets(t, before, obs, p, false)
	after, err := apply(before, want, p)
	if err != nil {
		t.Fatalf("the transaction of the plan fails: %v\nplan: %+v\nobserved: %+v", err, p, obs)
	}

	// Exactly the desired rows.
	again, err := after.observe(testCluster, network.UID, &want, false)
	if err != nil {
		t.Fatalf("observing after the transaction: %v", err)
	}
	if len(again.Switches) != 1 || len(again.SwitchPorts) != 1 || len(again.RouterPorts) != 1 || again.Router == nil {
		t.Fatalf("after the transaction there are %d switches, %d switch ports, %d router ports of the UID, and router %v; want one of each\nplan: %+v",
			len(again.Switches), len(again.SwitchPorts), len(again.RouterPorts), again.Router, p)
	}
	sw, lsp, lrp, router := again.Switches[0], again.SwitchPorts[0], again.RouterPorts[0], *again.Router
	ignore := cmpopts.IgnoreFields(nbdb.LogicalSwitch{}, "UUID", "Ports")
	if diff := cmp.Diff(want.Switch, managedSwitch(sw), ignore, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("switch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.SwitchPort, managedSwitchPort(lsp), cmpopts.IgnoreFields(nbdb.LogicalSwitchPort{}, "UUID"),
		cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("switch port (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.RouterPort, managedRouterPort(lrp), cmpopts.IgnoreFields(nbdb.LogicalRouterPort{}, "UUID"),
		cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("router port (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Router.ExternalIDs, pickKeys(router.ExternalIDs, managedRouterExternalIDs), cmpopts.EquateEmpty()); diff != "" || router.Name != want.Router.Name {
		t.Errorf("router %q external_ids (-want +got):\n%s", router.Name, diff)
	}
	// Ensure does not look for the other parents of the Network's one port when that port is on a
	// switch of the UID, or on the namespace's router (see observe in ensure.go): it may stay on
	// those it was on.
	missed := func(parents, was []string, own string, ownBefore []string) bool {
		return slices.Contains(parents, own) && containsAny(was, setOf(ownBefore)) &&
			all(parents, func(p *string) bool { return *p == own || slices.Contains(was, *p) })
	}
	var ownSwitches, ownRouter []string
	for _, s := range obs.Switches {
		ownSwitches = append(ownSwitches, s.UUID)
	}
	if obs.Router != nil {
		ownRouter = []string{obs.Router.UUID}
	}
	if parents := switchesWith(after, lsp.UUID); !slices.Equal(parents, []string{sw.UUID}) &&
		!(len(obs.SwitchPorts) == 1 && missed(parents, switchesWith(before, lsp.UUID), sw.UUID, ownSwitches)) {
		t.Errorf("the switch port %s is on the switches %v, want only %s", lsp.UUID, parents, sw.UUID)
	}
	if parents := routersWith(after, lrp.UUID); !slices.Equal(parents, []string{router.UUID}) &&
		!(len(obs.RouterPorts) == 1 && missed(parents, routersWith(before, lrp.UUID), router.UUID, ownRouter)) {
		t.Errorf("the router port %s is on the routers %v, want only %s", lrp.UUID, parents, router.UUID)
	}
	// Unmanaged keys of the kept rows stay.
	if !p.CreateSwitch {
		checkUnmanaged(t, "switch other_config", before.switches[p.Switch].OtherConfig, sw.OtherConfig, managedOtherConfig)
		checkUnmanaged(t, "switch external_ids", before.switches[p.Switch].ExternalIDs, sw.ExternalIDs, managedExternalIDs)
	}
	if !p.CreateSwitchPort {
		checkUnmanaged(t, "switch port options", before.switchPorts[p.SwitchPort].Options, lsp.Options, managedOptions)
	}

	// One transaction: the next plan writes nothing, and keeps the same switch.
	next := ensurePlan(want, again)
	wantSwitch := p.Switch
	if p.CreateSwitch {
		wantSwitch = insertedSwitch
	}
	if !next.empty() || next.Switch != wantSwitch {
		t.Errorf("after the transaction, the next plan is %+v, want none on switch %s\nfirst plan: %+v", next, wantSwitch, p)
	}
	checkOthers(t, before, after, obs, p)
	checkPodPorts(t, before, after, obs, p, "")
}

func checkDelete(t *testing.T, before *db, uid types.UID) {
	obs, err := before.observe(testCluster, uid, nil, true)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	p := deletePlan(obs)
	if p.empty() != obs.empty() {
		t.Errorf("plan.empty() = %t with observed.empty() = %t", p.empty(), obs.empty())
	}
	checkPlanTargets(t, before, obs, p, true)
	after, err := apply(before, desiredState{}, p)
	if err != nil {
		t.Fatalf("the transaction of the plan fails: %v\nplan: %+v\nobserved: %+v", err, p, obs)
	}
	again, err := after.observe(testCluster, uid, nil, false)
	if err != nil || !again.empty() {
		t.Errorf("after the transaction: %+v, %v; want no row of the UID", again, err)
	}
	checkOthers(t, before, after, obs, p)
	checkPodPorts(t, before, after, obs, p, uid)
}

// checkPodPorts checks what a Network's transaction did to the pod ports of the cluster: Delete
// (deleted set) removes those of the UID; otherwise a pod port stays as it was, on the switches
// that stay, and moves to the switch kept from the Network's duplicate switches. It may go only
// with the switches that held it when the plan deletes them all as stale (a Network of that name
// before), or with Delete the UID's switches; and when Ensure takes it as the Network's port by
// its name.
func checkPodPorts(t *testing.T, before, after *db, obs observed, p plan, deleted types.UID) {
	t.Helper()
	taken := uuidSet(obs.SwitchPorts, func(r *nbdb.LogicalSwitchPort) string { return r.UUID })
	replaced := setOf(p.ReplaceSwitches)
	duplicates := setOf(p.DeleteSwitches)
	for _, u := range slices.Sorted(maps.Keys(before.switchPorts)) {
		b, a := before.switchPorts[u], after.switchPorts[u]
		if !isPodPort(b.ExternalIDs, testCluster) {
			continue
		}
		if _, ok := taken[u]; ok {
			continue
		}
		parents := switchesWith(before, u)
		if deleted != "" && b.ExternalIDs[UIDKey] == string(deleted) {
			if a != nil {
				t.Errorf("pod port %s of the Network %s deleted is still there, on %v", u, deleted, switchesWith(after, u))
			}
			continue
		}
		gone := all(parents, func(s *string) bool {
			_, isReplaced := replaced[*s]
			_, isDeleted := duplicates[*s]
			return isReplaced || (deleted != "" && isDeleted)
		})
		if a == nil {
			if !gone {
				t.Errorf("pod port %s (%q, external_ids %v) on %v is gone", u, b.Name, b.ExternalIDs, parents)
			}
			continue
		}
		if diff := cmp.Diff(b, a); diff != "" {
			t.Errorf("pod port %s changed (-before +after):\n%s", u, diff)
		}
		now := switchesWith(after, u)
		for _, s := range parents {
			if after.switches[s] != nil && !slices.Contains(now, s) {
				t.Errorf("pod port %s was taken off switch %s: on %v, now %v", u, s, parents, now)
			}
			if _, ok := duplicates[s]; ok && deleted == "" && !slices.Contains(now, p.Switch) {
				t.Errorf("pod port %s on the duplicate switch %s did not move to the switch kept %s: on %v", u, s, p.Switch, now)
			}
		}
	}
}

// foreignNameHolder describes a row of another owner under one of want's names that Ensure must
// report, "" when there is none. A router of that name with another owner's keys, or none, counts
// as the cluster's when it holds a router port of the cluster for the namespace and no other
// router of the name does either: the one router whose keys need repair.
func foreignNameHolder(d *db, want desiredState) string {
	for _, r := range sorted(d.switches) {
		if r.Name == want.Switch.Name && r.ExternalIDs[OwnerKey] != testCluster {
			return "switch " + r.UUID
		}
	}
	for _, r := range sorted(d.switchPorts) {
		if r.Name == want.SwitchPort.Name && r.ExternalIDs[OwnerKey] != testCluster {
			return "switch port " + r.UUID
		}
	}
	for _, r := range sorted(d.routerPorts) {
		if r.Name == want.RouterPort.Name && r.ExternalIDs[OwnerKey] != testCluster {
			return "router port " + r.UUID
		}
	}
	namespace := want.Router.ExternalIDs[NamespaceKey]
	candidates := 0
	var foreign []string
	for _, r := range sorted(d.routers) {
		if r.Name != want.Router.Name {
			continue
		}
		if r.ExternalIDs[OwnerKey] == testCluster {
			if r.ExternalIDs[RoleKey] != RoleClusterRouter {
				candidates++
			}
			continue
		}
		holdsPorts := slices.ContainsFunc(r.Ports, func(uuid string) bool {
			port := d.routerPorts[uuid]
			return port != nil && port.ExternalIDs[OwnerKey] == testCluster && port.ExternalIDs[UIDKey] != "" &&
				port.ExternalIDs[NamespaceKey] == namespace
		})
		if !holdsPorts {
			return "router " + r.UUID
		}
		candidates++
		foreign = append(foreign, r.UUID)
	}
	if len(foreign) > 0 && candidates > 1 {
		return "router " + foreign[0]
	}
	return ""
}

// checkConflict checks that a NameConflictError names a row of another owner under the name.
func checkConflict(t *testing.T, d *db, want desiredState, e *backend.NameConflictError) {
	t.Helper()
	var name string
	var ids map[string]string
	var wantName string
	switch e.Kind {
	case "logical switch":
		if r := d.switches[e.ID]; r != nil {
			name, ids, wantName = r.Name, r.ExternalIDs, want.Switch.Name
		}
	case "logical switch port":
		if r := d.switchPorts[e.ID]; r != nil {
			name, ids, wantName = r.Name, r.ExternalIDs, want.SwitchPort.Name
		}
	case "logical router port":
		if r := d.routerPorts[e.ID]; r != nil {
			name, ids, wantName = r.Name, r.ExternalIDs, want.RouterPort.Name
		}
	case "logical router":
		if r := d.routers[e.ID]; r != nil {
			name, ids, wantName = r.Name, r.ExternalIDs, want.Router.Name
		}
	}
	if wantName == "" || name != wantName || e.Name != wantName || ownedBy(ids, testCluster) || e.Owner != ownerText(ids) {
		t.Errorf("%v: want a %s of another owner named %q (the row: name %q, external_ids %v)", e, e.Kind, wantName, name, ids)
	}
}

// checkPlanTargets checks that the plan changes and deletes only rows it may: the cluster's rows
// of the UID (or under its port names), the cluster's stale switches under its switch name, the
// namespace's router, and the cluster's routers it leaves without ports; and that it detaches only
// the UID's ports.
func checkPlanTargets(t *testing.T, d *db, obs observed, p plan, deleting bool) {
	t.Helper()
	in := func(uuids []string, uuid string) bool { return slices.Contains(uuids, uuid) }
	switches := uuids(obs.Switches, func(r nbdb.LogicalSwitch) string { return r.UUID })
	lsps := uuids(obs.SwitchPorts, func(r nbdb.LogicalSwitchPort) string { return r.UUID })
	if deleting {
		// Delete removes the UID's pod ports too.
		lsps = append(lsps, uuids(obs.PodPorts, func(r nbdb.LogicalSwitchPort) string { return r.UUID })...)
	}
	lrps := uuids(obs.RouterPorts, func(r nbdb.LogicalRouterPort) string { return r.UUID })
	stale := uuids(obs.StaleSwitches, func(r nbdb.LogicalSwitch) string { return r.UUID })
	for _, u := range p.DeleteSwitches {
		if !in(switches, u) {
			t.Errorf("the plan deletes switch %s, which is not the Network's", u)
		}
	}
	for _, u := range p.ReplaceSwitches {
		if !in(stale, u) || !ownedBy(d.switches[u].ExternalIDs, testCluster) {
			t.Errorf("the plan replaces switch %s, which is not a stale switch of the cluster", u)
		}
	}
	for _, u := range p.DeleteSwitchPorts {
		if !in(lsps, u) || !ownedBy(d.switchPorts[u].ExternalIDs, testCluster) {
			t.Errorf("the plan deletes switch port %s, which is not the Network's", u)
		}
	}
	for _, u := range p.DeleteRouterPorts {
		if !in(lrps, u) || !ownedBy(d.routerPorts[u].ExternalIDs, testCluster) {
			t.Errorf("the plan deletes router port %s, which is not the Network's", u)
		}
	}
	for _, r := range p.DeleteRouters {
		if row := d.routers[r.UUID]; row == nil || !ownedBy(row.ExternalIDs, testCluster) || !all(row.Ports, func(p *string) bool { return in(lrps, *p) }) {
			t.Errorf("the plan deletes router %s, which is not the cluster's or has ports of others", r.UUID)
		}
	}
	for _, ref := range p.DetachSwitchPorts {
		if !in(lsps, ref.Port) {
			t.Errorf("the plan takes switch port %s off %s, and it is not the Network's", ref.Port, ref.Parent)
		}
	}
	for _, ref := range p.DetachRouterPorts {
		if !in(lrps, ref.Port) {
			t.Errorf("the plan takes router port %s off %s, and it is not the Network's", ref.Port, ref.Parent)
		}
	}
	if (!p.SwitchPatch.empty() || p.Switch != "") && !in(switches, p.Switch) {
		t.Errorf("the plan keeps switch %s, which is not the Network's", p.Switch)
	}
	if (!p.SwitchPortPatch.empty() || p.SwitchPort != "") && !in(lsps, p.SwitchPort) {
		t.Errorf("the plan keeps switch port %s, which is not the Network's", p.SwitchPort)
	}
	if (!p.RouterPortPatch.empty() || p.RouterPort != "") && !in(lrps, p.RouterPort) {
		t.Errorf("the plan keeps router port %s, which is not the Network's", p.RouterPort)
	}
	if (!p.RouterPatch.empty() || p.Router != "") && (obs.Router == nil || obs.Router.UUID != p.Router) {
		t.Errorf("the plan patches router %s, which is not the namespace's", p.Router)
	}
}

// checkOthers checks what the transaction did to the rows that are not the Network's: rows of other
// owners are unchanged but for the Network's ports taken off them, and go only with a parent of the
// cluster's that the plan deletes (a switch port on a duplicate switch); the cluster's rows of other
// Networks likewise, except the stale switches the plan replaces; and no router of the cluster is
// left without ports by it.
func checkOthers(t *testing.T, before, after *db, obs observed, p plan) {
	t.Helper()
	ours := map[string]bool{}
	for _, r := range obs.SwitchPorts {
		ours[r.UUID] = true
	}
	for _, r := range obs.PodPorts {
		// Delete's: the UID's pod ports go (checkPodPorts checks the others).
		ours[r.UUID] = slices.Contains(p.DeleteSwitchPorts, r.UUID)
	}
	for _, r := range obs.RouterPorts {
		ours[r.UUID] = true
	}
	for _, r := range obs.Switches {
		ours[r.UUID] = true
	}
	ours[insertedSwitchPort], ours[insertedRouterPort] = true, true
	withoutOurs := func(ports []string) []string {
		return slices.DeleteFunc(slices.Clone(ports), func(p string) bool { return ours[p] })
	}
	deletedParents := map[string]bool{}
	for _, u := range append(slices.Clone(p.DeleteSwitches), p.ReplaceSwitches...) {
		deletedParents[u] = true
	}
	for _, r := range p.DeleteRouters {
		deletedParents[r.UUID] = true
	}
	// A port may go when every switch or router that had it is one that the plan deletes.
	orphaned := func(port string) bool {
		var parents []string
		for _, s := range before.switches {
			if slices.Contains(s.Ports, port) {
				parents = append(parents, s.UUID)
			}
		}
		for _, r := range before.routers {
			if slices.Contains(r.Ports, port) {
				parents = append(parents, r.UUID)
			}
		}
		return len(parents) > 0 && all(parents, func(u *string) bool { return deletedParents[*u] })
	}

	for _, u := range slices.Sorted(maps.Keys(before.switches)) {
		b, a := before.switches[u], after.switches[u]
		switch {
		case ours[u]:
		case a == nil && slices.Contains(p.ReplaceSwitches, u):
		case a == nil:
			t.Errorf("switch %s (%q, external_ids %v), not the Network's, was deleted", u, b.Name, b.ExternalIDs)
		default:
			want := deepCopy(b)
			want.Ports = withoutOurs(b.Ports)
			got := deepCopy(a)
			got.Ports = withoutOurs(a.Ports)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("switch %s, not the Network's, changed (-before +after):\n%s", u, diff)
			}
		}
	}
	for _, u := range slices.Sorted(maps.Keys(before.routers)) {
		b, a := before.routers[u], after.routers[u]
		switch {
		case a == nil && slices.ContainsFunc(p.DeleteRouters, func(r routerDelete) bool { return r.UUID == u }):
		case a == nil:
			t.Errorf("router %s (%q, external_ids %v) was deleted", u, b.Name, b.ExternalIDs)
		case obs.Router != nil && u == obs.Router.UUID:
			// The namespace's router: its managed keys are put back, the router port added.
			if diff := cmp.Diff(pickKeys(b.ExternalIDs, nil, managedRouterExternalIDs...), pickKeys(a.ExternalIDs, nil, managedRouterExternalIDs...), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("router %s's unmanaged external_ids changed (-before +after):\n%s", u, diff)
			}
			if diff := cmp.Diff(withoutOurs(b.Ports), withoutOurs(a.Ports), cmpopts.EquateEmpty()); diff != "" || b.Name != a.Name {
				t.Errorf("router %s: ports of others or the name changed (-before +after):\n%s", u, diff)
			}
		default:
			if diff := cmp.Diff(withoutOurs(b.Ports), withoutOurs(a.Ports), cmpopts.EquateEmpty()); diff != "" || b.Name != a.Name || !maps.Equal(b.ExternalIDs, a.ExternalIDs) {
				t.Errorf("router %s, not the namespace's, changed: %+v, now %+v", u, b, a)
			}
			if len(a.Ports) == 0 && len(b.Ports) > 0 && ownedBy(a.ExternalIDs, testCluster) {
				t.Errorf("router %s of the cluster is left without ports: %+v", u, a)
			}
		}
	}
	for _, u := range slices.Sorted(maps.Keys(before.switchPorts)) {
		b, a := before.switchPorts[u], after.switchPorts[u]
		switch {
		case ours[u]:
		case a == nil && orphaned(u):
		case a == nil:
			t.Errorf("switch port %s (%q, external_ids %v), not the Network's, was deleted", u, b.Name, b.ExternalIDs)
		default:
			if diff := cmp.Diff(b, a); diff != "" {
				t.Errorf("switch port %s, not the Network's, changed (-before +after):\n%s", u, diff)
			}
		}
	}
	for _, u := range slices.Sorted(maps.Keys(before.routerPorts)) {
		b, a := before.routerPorts[u], after.routerPorts[u]
		switch {
		case ours[u]:
		case a == nil && orphaned(u):
		case a == nil:
			t.Errorf("router port %s (%q, external_ids %v), not the Network's, was deleted", u, b.Name, b.ExternalIDs)
		default:
			if diff := cmp.Diff(b, a); diff != "" {
				t.Errorf("router port %s, not the Network's, changed (-before +after):\n%s", u, diff)
			}
		}
	}
}

func uuids[T any](rows []T, uuid func(T) string) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, uuid(r))
	}
	return out
}

func switchesWith(d *db, port string) []string {
	var out []string
	for _, s := range sorted(d.switches) {
		if slices.Contains(s.Ports, port) {
			out = append(out, s.UUID)
		}
	}
	return out
}

func routersWith(d *db, port string) []string {
	var out []string
	for _, r := range sorted(d.routers) {
		if slices.Contains(r.Ports, port) {
			out = append(out, r.UUID)
		}
	}
	return out
}

// pickKeys returns the keys of m that are among keep (all when keep is nil) and not among drop.
func pickKeys(m map[string]string, keep []string, drop ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if (keep == nil || slices.Contains(keep, k)) && !slices.Contains(drop, k) {
			out[k] = v
		}
	}
	return out
}

// checkUnmanaged checks that the keys the backend does not manage are as they were.
func checkUnmanaged(t *testing.T, what string, before, after map[string]string, managed []string) {
	t.Helper()
	if diff := cmp.Diff(pickKeys(before, nil, managed...), pickKeys(after, nil, managed...), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: keys the backend does not manage changed (-before +after):\n%s", what, diff)
	}
}

// managedSwitch, managedSwitchPort and managedRouterPort keep of a row what the backend manages.
func managedSwitch(r nbdb.LogicalSwitch) nbdb.LogicalSwitch {
	r.OtherConfig = pickKeys(r.OtherConfig, managedOtherConfig)
	r.ExternalIDs = pickKeys(r.ExternalIDs, managedExternalIDs)
	return r
}

func managedSwitchPort(r nbdb.LogicalSwitchPort) nbdb.LogicalSwitchPort {
	r.Options = pickKeys(r.Options, managedOptions)
	r.ExternalIDs = pickKeys(r.ExternalIDs, managedExternalIDs)
	return r
}

func managedRouterPort(r nbdb.LogicalRouterPort) nbdb.LogicalRouterPort {
	r.ExternalIDs = pickKeys(r.ExternalIDs, managedExternalIDs)
	return r
}
