// Package nbdb is the libovsdb client model of the part of the OVN northbound database that the OVN
// backend uses: four tables, and in each only the columns the backend reads or writes.
//
// libovsdb checks the model against the server's schema when it connects: every tagged field must
// name a column of the right type. Columns that are not in the model are not written, so the model
// keeps working with older and newer schemas.
//
// Monitor only the model's columns (MonitorTables), not every column (MonitorAll): libovsdb v0.8.1 fails to apply an update that touches a column the model does not
// have, and drops the whole row update, so the cache silently goes stale.
package nbdb

import (
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
)

// DatabaseName is the name of the OVN northbound database in its schema.
const DatabaseName = "OVN_Northbound"

// Names of the tables in the model.
const (
	// LogicalSwitchTable is the name of the table of LogicalSwitch rows.
	LogicalSwitchTable = "Logical_Switch"
	// LogicalSwitchPortTable is the name of the table of LogicalSwitchPort rows.
	LogicalSwitchPortTable = "Logical_Switch_Port"
	// LogicalRouterTable is the name of the table of LogicalRouter rows.
	LogicalRouterTable = "Logical_Router"
	// LogicalRouterPortTable is the name of the table of LogicalRouterPort rows.
	LogicalRouterPortTable = "Logical_Router_Port"
)

// LogicalSwitch is a row of the Logical_Switch table: an L2 network.
type LogicalSwitch struct {
	// UUID is the row's _uuid.
	UUID string `ovsdb:"_uuid"`
	// Name is the switch's name. OVN does not require it to be unique.
	Name string `ovsdb:"name"`
	// Ports are the UUIDs of the switch's Logical_Switch_Port rows.
	Ports []string `ovsdb:"ports"`
	// OtherConfig holds, among others, the native IPAM settings subnet, exclude_ips and
	// ipv6_prefix.
	OtherConfig map[string]string `ovsdb:"other_config"`
	// ExternalIDs are free-form keys for the switch's owner.
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// LogicalSwitchPort is a row of the Logical_Switch_Port table: a port of one logical switch.
type LogicalSwitchPort struct {
	// UUID is the row's _uuid.
	UUID string `ovsdb:"_uuid"`
	// Name is the port's name, unique in the table.
	Name string `ovsdb:"name"`
	// Type is the port's type; "router" connects the switch to a logical router port.
	Type string `ovsdb:"type"`
	// Addresses are the port's addresses; "router" takes them from the peer router port, a pod's
	// port has "MAC IP".
	Addresses []string `ovsdb:"addresses"`
	// PortSecurity are the addresses the port may send from; a pod's port has "MAC IP".
	PortSecurity []string `ovsdb:"port_security"`
	// Options holds type-specific settings, such as router-port for a router port.
	Options map[string]string `ovsdb:"options"`
	// ExternalIDs are free-form keys for the port's owner.
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// LogicalRouter is a row of the Logical_Router table: an L3 router between logical switches.
type LogicalRouter struct {
	// UUID is the row's _uuid.
	UUID string `ovsdb:"_uuid"`
	// Name is the router's name. OVN does not require it to be unique.
	Name string `ovsdb:"name"`
	// Ports are the UUIDs of the router's Logical_Router_Port rows.
	Ports []string `ovsdb:"ports"`
	// ExternalIDs are free-form keys for the router's owner.
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// LogicalRouterPort is a row of the Logical_Router_Port table: a port of one logical router.
type LogicalRouterPort struct {
	// UUID is the row's _uuid.
	UUID string `ovsdb:"_uuid"`
	// Name is the port's name, unique in the table.
	Name string `ovsdb:"name"`
	// Networks are the port's addresses with their prefix lengths, such as "10.0.0.1/24".
	Networks []string `ovsdb:"networks"`
	// MAC is the port's Ethernet address.
	MAC string `ovsdb:"mac"`
	// ExternalIDs are free-form keys for the port's owner.
	ExternalIDs map[string]string `ovsdb:"external_ids"`
}

// ClientDBModel returns the libovsdb client model of the four tables.
func ClientDBModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel(DatabaseName, map[string]model.Model{
		LogicalSwitchTable:     &LogicalSwitch{},
		LogicalSwitchPortTable: &LogicalSwitchPort{},
		LogicalRouterTable:     &LogicalRouter{},
		LogicalRouterPortTable: &LogicalRouterPort{},
	})
}

// MonitorTables returns the monitor options for the model's columns of its four tables, for
// client.NewMonitor.
func MonitorTables() []client.MonitorOption {
	ls := &LogicalSwitch{}
	lsp := &LogicalSwitchPort{}
	lr := &LogicalRouter{}
	lrp := &LogicalRouterPort{}
	return []client.MonitorOption{
		client.WithTable(ls, &ls.Name, &ls.Ports, &ls.OtherConfig, &ls.ExternalIDs),
		client.WithTable(lsp, &lsp.Name, &lsp.Type, &lsp.Addresses, &lsp.PortSecurity, &lsp.Options, &lsp.ExternalIDs),
		client.WithTable(lr, &lr.Name, &lr.Ports, &lr.ExternalIDs),
		client.WithTable(lrp, &lrp.Name, &lrp.Networks, &lrp.MAC, &lrp.ExternalIDs),
	}
}

// The Clone and Equals methods below spare libovsdb its reflection- and JSON-based defaults, which
// its cache would otherwise run on every row it hands out.

// CloneModel returns a deep copy of the row.
func (r *LogicalSwitch) CloneModel() model.Model {
	c := &LogicalSwitch{}
	r.CloneModelInto(c)
	return c
}

// CloneModelInto deep-copies the row into m, which must be a *LogicalSwitch.
func (r *LogicalSwitch) CloneModelInto(m model.Model) {
	c := m.(*LogicalSwitch)
	*c = LogicalSwitch{
		UUID:        r.UUID,
		Name:        r.Name,
		Ports:       slices.Clone(r.Ports),
		OtherConfig: maps.Clone(r.OtherConfig),
		ExternalIDs: maps.Clone(r.ExternalIDs),
	}
}

// EqualsModel reports whether m is a *LogicalSwitch with the same column values.
func (r *LogicalSwitch) EqualsModel(m model.Model) bool {
	o, ok := m.(*LogicalSwitch)
	return ok && r.UUID == o.UUID && r.Name == o.Name && slices.Equal(r.Ports, o.Ports) &&
		maps.Equal(r.OtherConfig, o.OtherConfig) && maps.Equal(r.ExternalIDs, o.ExternalIDs)
}

// CloneModel returns a deep copy of the row.
func (r *LogicalSwitchPort) CloneModel() model.Model {
	c := &LogicalSwitchPort{}
	r.CloneModelInto(c)
	return c
}

// CloneModelInto deep-copies the row into m, which must be a *LogicalSwitchPort.
func (r *LogicalSwitchPort) CloneModelInto(m model.Model) {
	c := m.(*LogicalSwitchPort)
	*c = LogicalSwitchPort{
		UUID:         r.UUID,
		Name:         r.Name,
		Type:         r.Type,
		Addresses:    slices.Clone(r.Addresses),
		PortSecurity: slices.Clone(r.PortSecurity),
		Options:      maps.Clone(r.Options),
		ExternalIDs:  maps.Clone(r.ExternalIDs),
	}
}

// EqualsModel reports whether m is a *LogicalSwitchPort with the same column values.
func (r *LogicalSwitchPort) EqualsModel(m model.Model) bool {
	o, ok := m.(*LogicalSwitchPort)
	return ok && r.UUID == o.UUID && r.Name == o.Name && r.Type == o.Type &&
		slices.Equal(r.Addresses, o.Addresses) && slices.Equal(r.PortSecurity, o.PortSecurity) &&
		maps.Equal(r.Options, o.Options) &&
		maps.Equal(r.ExternalIDs, o.ExternalIDs)
}

// CloneModel returns a deep copy of the row.
func (r *LogicalRouter) CloneModel() model.Model {
	c := &LogicalRouter{}
	r.CloneModelInto(c)
	return c
}

// CloneModelInto deep-copies the row into m, which must be a *LogicalRouter.
func (r *LogicalRouter) CloneModelInto(m model.Model) {
	c := m.(*LogicalRouter)
	*c = LogicalRouter{
		UUID:        r.UUID,
		Name:        r.Name,
		Ports:       slices.Clone(r.Ports),
		ExternalIDs: maps.Clone(r.ExternalIDs),
	}
}

// EqualsModel reports whether m is a *LogicalRouter with the same column values.
func (r *LogicalRouter) EqualsModel(m model.Model) bool {
	o, ok := m.(*LogicalRouter)
	return ok && r.UUID == o.UUID && r.Name == o.Name && slices.Equal(r.Ports, o.Ports) &&
		maps.Equal(r.ExternalIDs, o.ExternalIDs)
}

// CloneModel returns a deep copy of the row.
func (r *LogicalRouterPort) CloneModel() model.Model {
	c := &LogicalRouterPort{}
	r.CloneModelInto(c)
	return c
}

// CloneModelInto deep-copies the row into m, which must be a *LogicalRouterPort.
func (r *LogicalRouterPort) CloneModelInto(m model.Model) {
	c := m.(*LogicalRouterPort)
	*c = LogicalRouterPort{
		UUID:        r.UUID,
		Name:        r.Name,
		Networks:    slices.Clone(r.Networks),
		MAC:         r.MAC,
		ExternalIDs: maps.Clone(r.ExternalIDs),
	}
}

// EqualsModel reports whether m is a *LogicalRouterPort with the same column values.
func (r *LogicalRouterPort) EqualsModel(m model.Model) bool {
	o, ok := m.(*LogicalRouterPort)
	return ok && r.UUID == o.UUID && r.Name == o.Name && slices.Equal(r.Networks, o.Networks) &&
		r.MAC == o.MAC && maps.Equal(r.ExternalIDs, o.ExternalIDs)
}
