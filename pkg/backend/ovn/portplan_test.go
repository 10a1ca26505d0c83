package ovn

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

func testPort() backend.Port {
	return backend.Port{
		NetworkNamespace: "ns", NetworkName: "net", NetworkUID: "uid-1",
		Pod: backend.PodRef{Namespace: "apps", Name: "web-0", UID: "pod-1"},
		MAC: net.HardwareAddr{0x0a, 0x58, 0x0a, 0x01, 0x00, 0x05},
		IP:  netip.MustParseAddr("10.1.0.5"),
	}
}

func TestValidatePort(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*backend.Port)
		wantErr string
	}{
		{name: "valid IPv4", mutate: func(*backend.Port) {}},
		{name: "valid IPv6", mutate: func(p *backend.Port) { p.IP = netip.MustParseAddr("fd00::5") }},
		{name: "no network UID", mutate: func(p *backend.Port) { p.NetworkUID = "" }, wantErr: "network has no UID"},
		{name: "no network name", mutate: func(p *backend.Port) { p.NetworkName = "" }, wantErr: "network has no namespace or name"},
		{name: "no pod UID", mutate: func(p *backend.Port) { p.Pod.UID = "" }, wantErr: "pod has no UID"},
		{name: "no pod namespace", mutate: func(p *backend.Port) { p.Pod.Namespace = "" }, wantErr: "pod has no namespace or name"},
		{name: "no MAC", mutate: func(p *backend.Port) { p.MAC = nil }, wantErr: "not an EUI-48"},
		{name: "EUI-64", mutate: func(p *backend.Port) { p.MAC = net.HardwareAddr{0x0a, 0, 0, 0, 0, 0, 0, 1} }, wantErr: "not an EUI-48"},
		{name: "multicast MAC", mutate: func(p *backend.Port) { p.MAC = net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1} }, wantErr: "multicast"},
		{name: "no IP", mutate: func(p *backend.Port) { p.IP = netip.Addr{} }, wantErr: "no valid IP"},
		{name: "IP with a zone", mutate: func(p *backend.Port) { p.IP = netip.MustParseAddr("fe80::1%eth0") }, wantErr: "zone"},
		{name: "IPv4-mapped IPv6", mutate: func(p *backend.Port) { p.IP = netip.MustParseAddr("::ffff:10.1.0.5") }, wantErr: "IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPort()
			tt.mutate(&p)
			err := validatePort(p)
			if tt.wantErr == "" && err != nil {
				t.Errorf("validatePort: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validatePort error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDesiredPort(t *testing.T) {
	want := nbdb.LogicalSwitchPort{
		Name:         "c1.pod.pod-1",
		Addresses:    []string{"0a:58:0a:01:00:05 10.1.0.5"},
		PortSecurity: []string{"0a:58:0a:01:00:05 10.1.0.5"},
		ExternalIDs: map[string]string{
			OwnerKey: "c1", NamespaceKey: "ns", NameKey: "net", UIDKey: "uid-1",
			PodNamespaceKey: "apps", PodNameKey: "web-0", PodUIDKey: "pod-1",
		},
	}
	if diff := cmp.Diff(want, desiredPort(testCluster, testPort())); diff != "" {
		t.Errorf("desiredPort (-want +got):\n%s", diff)
	}
	v6 := testPort()
	v6.IP = netip.MustParseAddr("fd00:0:0::5")
	if got := desiredPort(testCluster, v6).Addresses; !cmp.Equal(got, []string{"0a:58:0a:01:00:05 fd00::5"}) {
		t.Errorf("IPv6 addresses = %q, want the address in its canonical form", got)
	}
}

// portRows returns the row EnsurePort would have written for testPort, on switch ls-1.
func portRows() observedPort {
	lsp := desiredPort(testCluster, testPort())
	lsp.UUID = "pod-lsp-1"
	return observedPort{
		Switch:  "ls-1",
		Ports:   []nbdb.LogicalSwitchPort{lsp},
		Parents: map[string][]string{"pod-lsp-1": {"ls-1"}},
	}
}

func TestEnsurePortPlan(t *testing.T) {
	tests := []struct {
		name string
		// port changes testPort, the port asked for.
		port func(*backend.Port)
		// observe changes the row of testPort as written, to what the cache holds.
		observe func(*observedPort)
		want    portPlan
	}{
		{
			name:    "nothing there",
			observe: func(o *observedPort) { o.Ports, o.Parents = nil, nil },
			want:    portPlan{Create: true},
		},
		{
			name: "up to date",
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1"},
		},
		{
			name: "another address: addresses and port_security, nothing else",
			port: func(p *backend.Port) {
				p.MAC, p.IP = net.HardwareAddr{0x0a, 0x58, 0x0a, 0x01, 0x00, 0x06}, netip.MustParseAddr("10.1.0.6")
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1", Patch: rowPatch{Columns: []string{columnAddresses, columnPortSecurity}}},
		},
		{
			name: "changed out of band: columns and managed keys put back, other keys and options kept",
			observe: func(o *observedPort) {
				p := &o.Ports[0]
				p.Type, p.Addresses, p.PortSecurity = "localnet", nil, []string{"0a:58:0a:01:00:05"}
				p.Options = map[string]string{RouterPortKey: "c1.lrp.uid-1", "requested-chassis": "node-1"}
				p.ExternalIDs[PodNameKey], p.ExternalIDs[CIDRKey], p.ExternalIDs["team"] = "web-1", "10.1.0.0/24", "blue"
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1", Patch: rowPatch{
				Columns: []string{columnType, columnAddresses, columnPortSecurity},
				Maps: map[string]mapPatch{
					columnOptions:     {Delete: []string{RouterPortKey}},
					columnExternalIDs: {Delete: []string{CIDRKey, PodNameKey}, Insert: map[string]string{PodNameKey: "web-0"}},
				},
			}},
		},
		{
			name: "taken off its switch and kept by another one",
			observe: func(o *observedPort) {
				o.Parents["pod-lsp-1"] = []string{"ls-other"}
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1", Attach: true,
				Detach: []portRef{{Parent: "ls-other", Port: "pod-lsp-1"}}},
		},
		{
			name: "the pod moved to another Network: the port moves, keys and address follow, in one plan",
			port: func(p *backend.Port) {
				p.NetworkName, p.NetworkUID, p.IP = "net2", "uid-2", netip.MustParseAddr("10.2.0.5")
			},
			observe: func(o *observedPort) {
				o.Switch = "ls-2"
				o.Parents["pod-lsp-1"] = []string{"ls-1"}
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1", Attach: true,
				Detach: []portRef{{Parent: "ls-1", Port: "pod-lsp-1"}},
				Patch: rowPatch{
					Columns: []string{columnAddresses, columnPortSecurity},
					Maps: map[string]mapPatch{columnExternalIDs: {
						Delete: []string{NameKey, UIDKey},
						Insert: map[string]string{NameKey: "net2", UIDKey: "uid-2"},
					}},
				}},
		},
		{
			name: "also on another switch: taken off it",
			observe: func(o *observedPort) {
				o.Parents["pod-lsp-1"] = []string{"ls-1", "ls-9"}
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1", Detach: []portRef{{Parent: "ls-9", Port: "pod-lsp-1"}}},
		},
		{
			name: "renamed out of band: the name is put back",
			observe: func(o *observedPort) {
				o.Ports[0].Name = "renamed"
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "renamed", Patch: rowPatch{Columns: []string{columnName}}},
		},
		{
			name: "a duplicate under another name goes, the one named keeps",
			observe: func(o *observedPort) {
				dup := o.Ports[0]
				dup.UUID, dup.Name = "pod-lsp-0", "copy"
				o.Ports = []nbdb.LogicalSwitchPort{dup, o.Ports[0]}
				o.Parents["pod-lsp-0"] = []string{"ls-1", "ls-3"}
			},
			want: portPlan{Port: "pod-lsp-1", PortName: "c1.pod.pod-1",
				Delete: []string{"pod-lsp-0"},
				Detach: []portRef{{Parent: "ls-1", Port: "pod-lsp-0"}, {Parent: "ls-3", Port: "pod-lsp-0"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := testPort()
			if tt.port != nil {
				tt.port(&port)
			}
			obs := portRows()
			if tt.observe != nil {
				tt.observe(&obs)
			}
			got := ensurePortPlan(desiredPort(testCluster, port), obs.Switch, obs)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ensurePortPlan (-want +got):\n%s", diff)
			}
			wantEmpty := cmp.Equal(tt.want, portPlan{Port: tt.want.Port, PortName: tt.want.PortName}, cmpopts.EquateEmpty())
			if got.empty() != wantEmpty {
				t.Errorf("portPlan.empty() = %t, want %t", got.empty(), wantEmpty)
			}
		})
	}
}

func TestDeletePortPlan(t *testing.T) {
	tests := []struct {
		name    string
		observe func(*observedPort)
		want    portPlan
	}{
		{
			name:    "nothing there",
			observe: func(o *observedPort) { o.Ports, o.Parents = nil, nil },
		},
		{
			name: "the port, off its switch",
			want: portPlan{Delete: []string{"pod-lsp-1"}, Detach: []portRef{{Parent: "ls-1", Port: "pod-lsp-1"}}},
		},
		{
			name: "the port and a duplicate, off every switch that holds them",
			observe: func(o *observedPort) {
				dup := o.Ports[0]
				dup.UUID, dup.Name = "pod-lsp-2", "copy"
				o.Ports = append(o.Ports, dup)
				o.Parents["pod-lsp-1"] = []string{"ls-1", "ls-9"}
				o.Parents["pod-lsp-2"] = []string{"ls-2"}
			},
			want: portPlan{
				Delete: []string{"pod-lsp-1", "pod-lsp-2"},
				Detach: []portRef{{Parent: "ls-1", Port: "pod-lsp-1"}, {Parent: "ls-9", Port: "pod-lsp-1"}, {Parent: "ls-2", Port: "pod-lsp-2"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := portRows()
			obs.Switch = ""
			if tt.observe != nil {
				tt.observe(&obs)
			}
			got := deletePortPlan(obs)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("deletePortPlan (-want +got):\n%s", diff)
			}
			if got.empty() != (len(obs.Ports) == 0) {
				t.Errorf("portPlan.empty() = %t with %d ports", got.empty(), len(obs.Ports))
			}
		})
	}
}

func TestPortOf(t *testing.T) {
	row := desiredPort(testCluster, testPort())
	if diff := cmp.Diff(testPort(), portOf(&row), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("portOf(desiredPort(p)) (-p +got):\n%s", diff)
	}
	row.Addresses = []string{"dynamic"}
	want := testPort()
	want.MAC, want.IP = nil, netip.Addr{}
	if diff := cmp.Diff(want, portOf(&row), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("portOf of a row without \"MAC IP\" (-want +got):\n%s", diff)
	}
}
