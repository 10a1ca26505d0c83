package framework

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

// OVNRows is the content of the four northbound tables the OVN backend writes, each sorted by
// name then UUID, with the port lists sorted.
type OVNRows struct {
	Switches    []nbdb.LogicalSwitch
	SwitchPorts []nbdb.LogicalSwitchPort
	Routers     []nbdb.LogicalRouter
	RouterPorts []nbdb.LogicalRouterPort
}

// Dump reads the four tables with a libovsdb client of its own: the monitor's initial dump is
// exactly what the server holds at that moment.
func (o *OVSDB) Dump(t testing.TB) OVNRows {
	t.Helper()
	r, err := o.DumpE(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// DumpE is Dump that returns its failure (the server is down, say) instead of failing the test.
func (o *OVSDB) DumpE(ctx context.Context) (OVNRows, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var r OVNRows
	dbModel, err := nbdb.ClientDBModel()
	if err != nil {
		return r, err
	}
	discard := logr.Discard()
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(o.Endpoint()), client.WithLogger(&discard))
	if err != nil {
		return r, err
	}
	if err := c.Connect(ctx); err != nil {
		return r, fmt.Errorf("connecting to dump the database: %w", err)
	}
	defer c.Close()
	_, err = c.Monitor(ctx, c.NewMonitor(nbdb.MonitorTables()...))
	if err != nil {
		return r, fmt.Errorf("monitoring to dump the database: %w", err)
	}
	for _, list := range []any{&r.Switches, &r.SwitchPorts, &r.Routers, &r.RouterPorts} {
		if err := c.List(ctx, list); err != nil {
			return r, fmt.Errorf("listing to dump the database: %w", err)
		}
	}
	sortRows(r.Switches, func(r nbdb.LogicalSwitch) string { return r.Name + "\x00" + r.UUID })
	sortRows(r.SwitchPorts, func(r nbdb.LogicalSwitchPort) string { return r.Name + "\x00" + r.UUID })
	sortRows(r.Routers, func(r nbdb.LogicalRouter) string { return r.Name + "\x00" + r.UUID })
	sortRows(r.RouterPorts, func(r nbdb.LogicalRouterPort) string { return r.Name + "\x00" + r.UUID })
	for i := range r.Switches {
		slices.Sort(r.Switches[i].Ports)
	}
	for i := range r.Routers {
		slices.Sort(r.Routers[i].Ports)
	}
	return r, nil
}

func sortRows[T any](s []T, key func(T) string) {
	slices.SortFunc(s, func(a, b T) int { return strings.Compare(key(a), key(b)) })
}

// OfUID returns the rows owned by the cluster for the Network with the UID, by their external_ids.
func (r OVNRows) OfUID(cluster string, uid types.UID) OVNRows {
	mine := func(ids map[string]string) bool {
		return ids[ovn.OwnerKey] == cluster && ids[ovn.UIDKey] == string(uid)
	}
	var out OVNRows
	for _, s := range r.Switches {
		if mine(s.ExternalIDs) {
			out.Switches = append(out.Switches, s)
		}
	}
	for _, p := range r.SwitchPorts {
		if mine(p.ExternalIDs) {
			out.SwitchPorts = append(out.SwitchPorts, p)
		}
	}
	for _, p := range r.RouterPorts {
		if mine(p.ExternalIDs) {
			out.RouterPorts = append(out.RouterPorts, p)
		}
	}
	return out
}

// RoutersOf returns the routers with the cluster's owner key.
func (r OVNRows) RoutersOf(cluster string) []nbdb.LogicalRouter {
	var out []nbdb.LogicalRouter
	for _, router := range r.Routers {
		if router.ExternalIDs[ovn.OwnerKey] == cluster {
			out = append(out, router)
		}
	}
	return out
}

// NamespaceRouter returns the cluster's router of the namespace, as its name and external_ids
// say, and how many there are.
func (r OVNRows) NamespaceRouter(cluster, namespace string) (nbdb.LogicalRouter, int) {
	var found []nbdb.LogicalRouter
	for _, router := range r.RoutersOf(cluster) {
		if router.Name == ovn.RouterName(cluster, namespace) && router.ExternalIDs[ovn.RoleKey] == ovn.RoleNamespaceRouter &&
			router.ExternalIDs[ovn.NamespaceKey] == namespace {
			found = append(found, router)
		}
	}
	if len(found) == 0 {
		return nbdb.LogicalRouter{}, 0
	}
	return found[0], len(found)
}

// SwitchByUUID reports whether a logical switch has the UUID.
func (r OVNRows) SwitchByUUID(uuid string) bool {
	return slices.ContainsFunc(r.Switches, func(s nbdb.LogicalSwitch) bool { return s.UUID == uuid })
}
