package ovn

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn/nbdb"
)

const testCluster = "c1"

func testNetwork(cidr, gateway string) backend.Network {
	return backend.Network{
		Namespace: "ns", Name: "net", UID: "uid-1",
		CIDR: netip.MustParsePrefix(cidr), Gateway: netip.MustParseAddr(gateway),
	}
}

func TestRouterPortMAC(t *testing.T) {
	tests := []struct {
		uid  types.UID
		want string
	}{
		// 0a, then the first five bytes of sha256("uid-1") = 4a49acf8a6...
		{uid: "uid-1", want: "0a:4a:49:ac:f8:a6"},
		{uid: "6f9619ff-8b86-d011-b42d-00c04fc964ff", want: RouterPortMAC("6f9619ff-8b86-d011-b42d-00c04fc964ff")},
	}
	for _, tt := range tests {
		t.Run(string(tt.uid), func(t *testing.T) {
			got := RouterPortMAC(tt.uid)
			if got != tt.want {
				t.Errorf("RouterPortMAC(%q) = %q, want %q", tt.uid, got, tt.want)
			}
			if got != RouterPortMAC(tt.uid) {
				t.Errorf("RouterPortMAC(%q) is not deterministic", tt.uid)
			}
			// Locally administered (bit 1 set), unicast (bit 0 clear): the first octet is 0a.
			if !strings.HasPrefix(got, "0a:") || len(got) != len("0a:00:00:00:00:00") {
				t.Errorf("RouterPortMAC(%q) = %q is not a locally administered unicast MAC", tt.uid, got)
			}
		})
	}
	if RouterPortMAC("uid-1") == RouterPortMAC("uid-2") {
		t.Errorf("two UIDs have the same MAC")
	}
}

func TestNames(t *testing.T) {
	got := []string{
		RouterName("c1", "ns"), SwitchName("c1", "ns", "net"), SwitchPortName("c1", "u"), RouterPortName("c1", "u"),
		PodPortName("c1", "p"),
	}
	want := []string{"c1.ns", "c1.ns.net", "c1.lsp.u", "c1.lrp.u", "c1.pod.p"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestNameOwner(t *testing.T) {
	tests := []struct {
		table, name string
		want        backend.Owned
		ok          bool
	}{
		{table: nbdb.LogicalSwitchTable, name: "c1.ns.net", want: backend.Owned{Namespace: "ns", Name: "net"}, ok: true},
		{table: nbdb.LogicalSwitchTable, name: "c1.ns.net.with.dots", want: backend.Owned{Namespace: "ns", Name: "net.with.dots"}, ok: true},
		{table: nbdb.LogicalSwitchTable, name: "c1.ns"},
		{table: nbdb.LogicalSwitchTable, name: "c2.ns.net"},
		{table: nbdb.LogicalSwitchPortTable, name: "c1.lsp.u-1", want: backend.Owned{UID: "u-1"}, ok: true},
		{table: nbdb.LogicalSwitchPortTable, name: "c1.lrp.u-1"},
		{table: nbdb.LogicalRouterPortTable, name: "c1.lrp.u-1", want: backend.Owned{UID: "u-1"}, ok: true},
		{table: nbdb.LogicalRouterPortTable, name: "c1.lrp."},
		{table: nbdb.LogicalRouterTable, name: "c1.ns", want: backend.Owned{Namespace: "ns"}, ok: true},
		{table: nbdb.LogicalRouterTable, name: "c1.ns.net"},
		{table: nbdb.LogicalRouterTable, name: "c1."},
	}
	for _, tt := range tests {
		got, ok := nameOwner("c1", tt.table, tt.name)
		if ok != tt.ok || got != tt.want {
			t.Errorf("nameOwner(%s, %q) = %+v, %t; want %+v, %t", tt.table, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidateNetwork(t *testing.T) {
	valid := testNetwork("10.0.0.0/24", "10.0.0.1")
	tests := []struct {
		name    string
		mutate  func(*backend.Network)
		wantErr string
	}{
		{name: "valid IPv4", mutate: func(*backend.Network) {}},
		{name: "valid IPv6", mutate: func(n *backend.Network) {
			n.CIDR, n.Gateway = netip.MustParsePrefix("fd00::/64"), netip.MustParseAddr("fd00::1")
		}},
		{name: "no UID", mutate: func(n *backend.Network) { n.UID = "" }, wantErr: "no UID"},
		{name: "no name", mutate: func(n *backend.Network) { n.Name = "" }, wantErr: "no namespace or name"},
		{name: "no CIDR", mutate: func(n *backend.Network) { n.CIDR = netip.Prefix{} }, wantErr: "no valid CIDR"},
		{name: "host bits", mutate: func(n *backend.Network) { n.CIDR = netip.MustParsePrefix("10.0.0.5/24") }, wantErr: "host bits"},
		{name: "no gateway", mutate: func(n *backend.Network) { n.Gateway = netip.Addr{} }, wantErr: "no valid gateway"},
		{name: "gateway outside", mutate: func(n *backend.Network) { n.Gateway = netip.MustParseAddr("10.0.1.1") }, wantErr: "not in the CIDR"},
		{name: "gateway of another family", mutate: func(n *backend.Network) { n.Gateway = netip.MustParseAddr("fd00::1") }, wantErr: "not in the CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := valid
			tt.mutate(&n)
			err := validateNetwork(n)
			if tt.wantErr == "" && err != nil {
				t.Errorf("validateNetwork: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validateNetwork error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateOptions(t *testing.T) {
	files := TLSFiles{PrivateKey: "/tls/tls.key", Certificate: "/tls/tls.crt", CACert: "/tls/ca.crt"}
	tests := []struct {
		endpoint, cluster string
		tls               TLSFiles
		wantErr           bool
	}{
		{endpoint: "unix:/run/ovn/ovnnb_db.sock", cluster: "c1"},
		{endpoint: "tcp:127.0.0.1:6641", cluster: "c1"},
		{endpoint: "tcp:[::1]:6641", cluster: "c1"},
		{endpoint: "ssl:127.0.0.1:6641", cluster: "c1", tls: files},
		{endpoint: "ssl:[::1]:6641", cluster: "c1", tls: files},
		{endpoint: "ssl:ovn-nb.ovn-system.svc:6641", cluster: "c1", tls: files},
		{endpoint: "", cluster: "c1", wantErr: true},
		{endpoint: "unix:", cluster: "c1", wantErr: true},
		{endpoint: "ssl:127.0.0.1:6641", cluster: "c1", wantErr: true},
		{endpoint: "ssl:127.0.0.1:6641", cluster: "c1", tls: TLSFiles{PrivateKey: "k", Certificate: "c"}, wantErr: true},
		{endpoint: "ssl:127.0.0.1", cluster: "c1", tls: files, wantErr: true},
		{endpoint: "tcp:127.0.0.1:6641", cluster: "c1", tls: files, wantErr: true},
		{endpoint: "unix:/x.sock", cluster: "c1", tls: TLSFiles{CACert: "ca"}, wantErr: true},
		{endpoint: "/run/ovn/ovnnb_db.sock", cluster: "c1", wantErr: true},
		{endpoint: "unix:/x.sock", cluster: "", wantErr: true},
		{endpoint: "unix:/x.sock", cluster: "my cluster", wantErr: true},
	}
	for _, tt := range tests {
		err := validateEndpoint(tt.endpoint, tt.tls)
		if err == nil {
			err = validateCluster(tt.cluster)
		}
		if (err != nil) != tt.wantErr {
			t.Errorf("endpoint %q, TLS %+v, cluster %q: error %v, want error %t", tt.endpoint, tt.tls, tt.cluster, err, tt.wantErr)
		}
	}
}

func TestDesiredRows(t *testing.T) {
	ids := map[string]string{OwnerKey: "c1", NamespaceKey: "ns", NameKey: "net", UIDKey: "uid-1"}
	withIDs := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range ids {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	router := nbdb.LogicalRouter{
		Name: "c1.ns", ExternalIDs: map[string]string{OwnerKey: "c1", RoleKey: "namespace-router", NamespaceKey: "ns"},
	}
	lsp := nbdb.LogicalSwitchPort{
		Name: "c1.lsp.uid-1", Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": "c1.lrp.uid-1"}, ExternalIDs: ids,
	}
	tests := []struct {
		name    string
		network backend.Network
		want    desiredState
	}{
		{
			name:    "IPv4",
			network: testNetwork("10.1.0.0/16", "10.1.0.1"),
			want: desiredState{
				Switch: nbdb.LogicalSwitch{
					Name:        "c1.ns.net",
					OtherConfig: map[string]string{"subnet": "10.1.0.0/16", "exclude_ips": "10.1.0.1"},
					ExternalIDs: withIDs(map[string]string{CIDRKey: "10.1.0.0/16", GatewayKey: "10.1.0.1"}),
				},
				Router:     router,
				SwitchPort: lsp,
				RouterPort: nbdb.LogicalRouterPort{
					Name: "c1.lrp.uid-1", Networks: []string{"10.1.0.1/16"}, MAC: "0a:4a:49:ac:f8:a6", ExternalIDs: ids,
				},
			},
		},
		{
			name:    "IPv6",
			network: testNetwork("fd00:1:2::/64", "fd00:1:2::1"),
			want: desiredState{
				Switch: nbdb.LogicalSwitch{
					Name:        "c1.ns.net",
					OtherConfig: map[string]string{"ipv6_prefix": "fd00:1:2::"},
					ExternalIDs: withIDs(map[string]string{CIDRKey: "fd00:1:2::/64", GatewayKey: "fd00:1:2::1"}),
				},
				Router:     router,
				SwitchPort: lsp,
				RouterPort: nbdb.LogicalRouterPort{
					Name: "c1.lrp.uid-1", Networks: []string{"fd00:1:2::1/64"}, MAC: "0a:4a:49:ac:f8:a6", ExternalIDs: ids,
				},
			},
		},
		{
			name:    "IPv6 other than /64",
			network: testNetwork("fd00:1:2:3:4::/80", "fd00:1:2:3:4::fe"),
			want: desiredState{
				Switch: nbdb.LogicalSwitch{
					Name:        "c1.ns.net",
					OtherConfig: map[string]string{},
					ExternalIDs: withIDs(map[string]string{CIDRKey: "fd00:1:2:3:4::/80", GatewayKey: "fd00:1:2:3:4::fe"}),
				},
				Router:     router,
				SwitchPort: lsp,
				RouterPort: nbdb.LogicalRouterPort{
					Name: "c1.lrp.uid-1", Networks: []string{"fd00:1:2:3:4::fe/80"}, MAC: "0a:4a:49:ac:f8:a6", ExternalIDs: ids,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateNetwork(tt.network); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, desiredRows(testCluster, tt.network)); diff != "" {
				t.Errorf("desiredRows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffMap(t *testing.T) {
	managed := []string{"a", "b", "c"}
	tests := []struct {
		name       string
		have, want map[string]string
		patch      mapPatch
	}{
		{name: "equal", have: map[string]string{"a": "1"}, want: map[string]string{"a": "1"}},
		{name: "both empty"},
		{name: "missing key", have: nil, want: map[string]string{"a": "1"}, patch: mapPatch{Insert: map[string]string{"a": "1"}}},
		{name: "changed value", have: map[string]string{"a": "0"}, want: map[string]string{"a": "1"},
			patch: mapPatch{Delete: []string{"a"}, Insert: map[string]string{"a": "1"}}},
		{name: "stale key", have: map[string]string{"a": "1", "c": "3"}, want: map[string]string{"a": "1"},
			patch: mapPatch{Delete: []string{"c"}}},
		{name: "unmanaged keys are kept", have: map[string]string{"a": "1", "x": "9"}, want: map[string]string{"a": "1"}},
		{name: "unmanaged wanted keys are ignored", have: nil, want: map[string]string{"x": "9"}},
		{name: "everything", have: map[string]string{"a": "0", "b": "2", "x": "9"}, want: map[string]string{"a": "1", "c": "3"},
			patch: mapPatch{Delete: []string{"a", "b"}, Insert: map[string]string{"a": "1", "c": "3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.patch, diffMap(tt.have, tt.want, managed), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("diffMap (-want +got):\n%s", diff)
			}
		})
	}
}

// rowsFor returns the rows that Ensure would have written for network, with UUIDs, as the cache
// would hold them.
func rowsFor(network backend.Network) observed {
	want := desiredRows(testCluster, network)
	sw := want.Switch
	sw.UUID, sw.Ports = "ls-1", []string{"lsp-1"}
	lsp := want.SwitchPort
	lsp.UUID = "lsp-1"
	lrp := want.RouterPort
	lrp.UUID = "lrp-1"
	router := desiredRouter(testCluster, network.Namespace)
	router.UUID, router.Ports = "lr-1", []string{"lrp-0", "lrp-1"}
	return observed{
		cluster:     testCluster,
		Router:      &router,
		Switches:    []nbdb.LogicalSwitch{sw},
		SwitchPorts: []nbdb.LogicalSwitchPort{lsp},
		RouterPorts: []nbdb.LogicalRouterPort{lrp},
	}
}

func TestEnsurePlan(t *testing.T) {
	v4 := testNetwork("10.1.0.0/24", "10.1.0.1")
	v6 := testNetwork("fd00::/64", "fd00::1")
	tests := []struct {
		name    string
		network backend.Network
		// observe changes the rows of v4 as written, to what the cache holds.
		observe func(*observed)
		want    plan
	}{
		{
			name:    "nothing there",
			network: v4,
			observe: func(o *observed) {
				o.Switches, o.SwitchPorts, o.RouterPorts = nil, nil, nil
				o.Router.Ports = []string{"lrp-0"}
			},
			want: plan{
				Router:       "lr-1",
				CreateSwitch: true, CreateSwitchPort: true, CreateRouterPort: true,
				RouterPatch: rowPatch{AddPorts: []string{namedRouterPort}},
			},
		},
		{
			name:    "the namespace's first network",
			network: v4,
			observe: func(o *observed) {
				o.Switches, o.SwitchPorts, o.RouterPorts, o.Router = nil, nil, nil, nil
			},
			want: plan{CreateRouter: true, CreateSwitch: true, CreateSwitchPort: true, CreateRouterPort: true},
		},
		{
			name:    "up to date",
			network: v4,
			observe: func(*observed) {},
			want:    plan{Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1"},
		},
		{
			name:    "router keys removed out of band are put back, nothing is moved",
			network: v4,
			observe: func(o *observed) {
				o.Router.ExternalIDs = map[string]string{OwnerKey: "c1", "team": "blue"}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				RouterPatch: rowPatch{Maps: map[string]mapPatch{columnExternalIDs: {
					Insert: map[string]string{RoleKey: RoleNamespaceRouter, NamespaceKey: "ns"},
				}}},
			},
		},
		{
			name:    "a switch of ours under the name, written for another UID, is replaced",
			network: v4,
			observe: func(o *observed) {
				stale := o.Switches[0]
				stale.ExternalIDs = map[string]string{OwnerKey: "c1", UIDKey: "uid-old"}
				o.Switches = nil
				o.StaleSwitches = []nbdb.LogicalSwitch{stale}
			},
			want: plan{
				ReplaceSwitches: []string{"ls-1"}, CreateSwitch: true,
				SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
			},
		},
		{
			name:    "moving off the old layout's router deletes it with its last port",
			network: v4,
			observe: func(o *observed) {
				o.Router.Ports = []string{"lrp-0"}
				o.PortRouters = []nbdb.LogicalRouter{{UUID: "lr-old", Ports: []string{"lrp-1"},
					ExternalIDs: map[string]string{OwnerKey: "c1", RoleKey: RoleClusterRouter}}}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				RouterPatch:   rowPatch{AddPorts: []string{"lrp-1"}},
				DeleteRouters: []routerDelete{{UUID: "lr-old", Ports: []string{"lrp-1"}}},
			},
		},
		{
			name:    "unmanaged keys, other ports and set order do not matter",
			network: v4,
			observe: func(o *observed) {
				o.Switches[0].OtherConfig["mcast_snoop"] = "true"
				o.Switches[0].ExternalIDs["team"] = "blue"
				o.Switches[0].Ports = []string{"vm-port", "lsp-1"}
				o.SwitchPorts[0].Options["nat-addresses"] = "router"
			},
			want: plan{Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1"},
		},
		{
			name:    "subnet edited",
			network: v4,
			observe: func(o *observed) {
				o.Switches[0].OtherConfig["subnet"] = "10.9.0.0/24"
				delete(o.Switches[0].OtherConfig, "exclude_ips")
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				SwitchPatch: rowPatch{Maps: map[string]mapPatch{columnOtherConfig: {
					Delete: []string{"subnet"},
					Insert: map[string]string{"subnet": "10.1.0.0/24", "exclude_ips": "10.1.0.1"},
				}}},
			},
		},
		{
			name:    "IPv4 to IPv6 in place",
			network: v6,
			observe: func(*observed) {},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				SwitchPatch: rowPatch{Maps: map[string]mapPatch{
					columnOtherConfig: {
						Delete: []string{"exclude_ips", "subnet"},
						Insert: map[string]string{"ipv6_prefix": "fd00::"},
					},
					columnExternalIDs: {
						Delete: []string{CIDRKey, GatewayKey},
						Insert: map[string]string{CIDRKey: "fd00::/64", GatewayKey: "fd00::1"},
					},
				}},
				RouterPortPatch: rowPatch{Columns: []string{columnNetworks}},
			},
		},
		{
			name:    "switch deleted with its port",
			network: v4,
			observe: func(o *observed) { o.Switches, o.SwitchPorts = nil, nil },
			want:    plan{CreateSwitch: true, CreateSwitchPort: true, Router: "lr-1", RouterPort: "lrp-1"},
		},
		{
			name:    "switch port missing from the switch",
			network: v4,
			observe: func(o *observed) {
				o.SwitchPorts = nil
				o.Switches[0].Ports = nil
			},
			want: plan{
				Router: "lr-1",
				Switch: "ls-1", RouterPort: "lrp-1", CreateSwitchPort: true,
				SwitchPatch: rowPatch{AddPorts: []string{namedSwitchPort}},
			},
		},
		{
			name:    "switch port edited",
			network: v4,
			observe: func(o *observed) {
				o.SwitchPorts[0].Type = ""
				o.SwitchPorts[0].Addresses = []string{"dynamic"}
				o.SwitchPorts[0].Options = map[string]string{"router-port": "elsewhere"}
				o.SwitchPorts[0].ExternalIDs[NameKey] = "other"
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				SwitchPortPatch: rowPatch{
					Columns: []string{columnType, columnAddresses},
					Maps: map[string]mapPatch{
						columnOptions:     {Delete: []string{"router-port"}, Insert: map[string]string{"router-port": "c1.lrp.uid-1"}},
						columnExternalIDs: {Delete: []string{NameKey}, Insert: map[string]string{NameKey: "net"}},
					},
				},
			},
		},
		{
			name:    "router port edited and detached",
			network: v4,
			observe: func(o *observed) {
				o.RouterPorts[0].MAC = "0a:00:00:00:00:01"
				o.RouterPorts[0].Name = "renamed"
				o.Router.Ports = []string{"lrp-0"}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				RouterPortPatch: rowPatch{Columns: []string{columnName, columnMAC}},
				RouterPatch:     rowPatch{AddPorts: []string{"lrp-1"}},
			},
		},
		{
			name:    "router port on another router of the cluster",
			network: v4,
			observe: func(o *observed) {
				o.PortRouters = []nbdb.LogicalRouter{{UUID: "lr-2", Ports: []string{"lrp-1"}}}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				DetachRouterPorts: []portRef{{Parent: "lr-2", Port: "lrp-1"}},
			},
		},
		{
			name:    "duplicate switch with a lower UUID",
			network: v4,
			observe: func(o *observed) {
				o.Switches = append([]nbdb.LogicalSwitch{{UUID: "ls-0", Name: "duplicate"}}, o.Switches...)
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				DeleteSwitches: []string{"ls-0"},
			},
		},
		{
			name:    "pod ports on a duplicate switch move to the switch kept; those on it stay",
			network: v4,
			observe: func(o *observed) {
				o.Switches[0].Ports = append(o.Switches[0].Ports, "pod-1")
				o.Switches = append(o.Switches, nbdb.LogicalSwitch{UUID: "ls-2", Name: "duplicate", Ports: []string{"pod-1", "pod-2", "pod-3"}})
				o.PodPorts = []nbdb.LogicalSwitchPort{{UUID: "pod-1"}, {UUID: "pod-2"}, {UUID: "pod-3"}}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				SwitchPatch:    rowPatch{AddPorts: []string{"pod-2", "pod-3"}},
				DeleteSwitches: []string{"ls-2"},
			},
		},
		{
			name:    "pod ports on the one switch: up to date",
			network: v4,
			observe: func(o *observed) {
				o.Switches[0].Ports = append(o.Switches[0].Ports, "pod-1", "pod-2")
				o.PodPorts = []nbdb.LogicalSwitchPort{{UUID: "pod-1"}, {UUID: "pod-2"}}
			},
			want: plan{Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1"},
		},
		{
			name:    "two switches without the name: the lowest UUID is kept and renamed",
			network: v4,
			observe: func(o *observed) {
				o.Switches[0].Name = "renamed"
				o.Switches = append(o.Switches, nbdb.LogicalSwitch{UUID: "ls-2", Name: "other", Ports: []string{"lsp-1"}})
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				SwitchPatch:    rowPatch{Columns: []string{columnName}},
				DeleteSwitches: []string{"ls-2"},
			},
		},
		{
			name:    "duplicate switch port in the kept switch",
			network: v4,
			observe: func(o *observed) {
				dup := o.SwitchPorts[0]
				dup.UUID, dup.Name = "lsp-2", "duplicate"
				o.SwitchPorts = append(o.SwitchPorts, dup)
				o.Switches[0].Ports = []string{"lsp-1", "lsp-2"}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				DeleteSwitchPorts: []string{"lsp-2"},
				DetachSwitchPorts: []portRef{{Parent: "ls-1", Port: "lsp-2"}},
			},
		},
		{
			name:    "switch port also on a switch of another network",
			network: v4,
			observe: func(o *observed) {
				o.PortSwitches = []nbdb.LogicalSwitch{{UUID: "ls-9", Ports: []string{"lsp-1", "lsp-9"}}}
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				DetachSwitchPorts: []portRef{{Parent: "ls-9", Port: "lsp-1"}},
			},
		},
		{
			name:    "duplicate router port",
			network: v4,
			observe: func(o *observed) {
				dup := o.RouterPorts[0]
				dup.UUID, dup.Name = "lrp-2", "duplicate"
				o.RouterPorts = append(o.RouterPorts, dup)
				o.Router.Ports = append(o.Router.Ports, "lrp-2")
			},
			want: plan{
				Switch: "ls-1", SwitchPort: "lsp-1", Router: "lr-1", RouterPort: "lrp-1",
				DeleteRouterPorts: []string{"lrp-2"},
				DetachRouterPorts: []portRef{{Parent: "lr-1", Port: "lrp-2"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := rowsFor(v4)
			tt.observe(&obs)
			got := ensurePlan(desiredRows(testCluster, tt.network), obs)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ensurePlan (-want +got):\n%s", diff)
			}
			wantEmpty := cmp.Equal(tt.want, plan{Switch: tt.want.Switch, SwitchPort: tt.want.SwitchPort, Router: tt.want.Router, RouterPort: tt.want.RouterPort}, cmpopts.EquateEmpty())
			if got.empty() != wantEmpty {
				t.Errorf("plan.empty() = %t, want %t", got.empty(), wantEmpty)
			}
		})
	}
}

func TestDeletePlan(t *testing.T) {
	tests := []struct {
		name    string
		observe func(*observed)
		want    plan
	}{
		{
			name:    "nothing there",
			observe: func(o *observed) { *o = observed{Router: o.Router} },
		},
		{
			name:    "everything",
			observe: func(*observed) {},
			want: plan{
				DeleteSwitches:    []string{"ls-1"},
				DeleteSwitchPorts: []string{"lsp-1"},
				DeleteRouterPorts: []string{"lrp-1"},
				DetachRouterPorts: []portRef{{Parent: "lr-1", Port: "lrp-1"}},
			},
		},
		{
			name:    "the namespace's last network takes its router along",
			observe: func(o *observed) { o.Router.Ports = []string{"lrp-1"} },
			want: plan{
				DeleteSwitches:    []string{"ls-1"},
				DeleteSwitchPorts: []string{"lsp-1"},
				DeleteRouterPorts: []string{"lrp-1"},
				DeleteRouters:     []routerDelete{{UUID: "lr-1", Ports: []string{"lrp-1"}}},
			},
		},
		{
			name: "a router of another owner is never deleted",
			observe: func(o *observed) {
				o.Router.Ports = []string{"lrp-1"}
				o.Router.ExternalIDs = map[string]string{OwnerKey: "c2"}
			},
			want: plan{
				DeleteSwitches:    []string{"ls-1"},
				DeleteSwitchPorts: []string{"lsp-1"},
				DeleteRouterPorts: []string{"lrp-1"},
				DetachRouterPorts: []portRef{{Parent: "lr-1", Port: "lrp-1"}},
			},
		},
		{
			name: "a leftover router port, also on another router",
			observe: func(o *observed) {
				o.Switches, o.SwitchPorts = nil, nil
				o.PortRouters = []nbdb.LogicalRouter{{UUID: "lr-2", Ports: []string{"lrp-1"}}}
			},
			want: plan{
				DeleteRouterPorts: []string{"lrp-1"},
				DetachRouterPorts: []portRef{{Parent: "lr-1", Port: "lrp-1"}, {Parent: "lr-2", Port: "lrp-1"}},
			},
		},
		{
			name: "the Network's pod ports go, and off the switches of others",
			observe: func(o *observed) {
				o.Switches[0].Ports = append(o.Switches[0].Ports, "pod-1")
				o.PodPorts = []nbdb.LogicalSwitchPort{{UUID: "pod-1"}, {UUID: "pod-2"}}
				o.PortSwitches = []nbdb.LogicalSwitch{{UUID: "ls-9", Ports: []string{"pod-2", "pod-9"}}}
			},
			want: plan{
				DeleteSwitches:    []string{"ls-1"},
				DeleteSwitchPorts: []string{"lsp-1", "pod-1", "pod-2"},
				DetachSwitchPorts: []portRef{{Parent: "ls-9", Port: "pod-2"}},
				DeleteRouterPorts: []string{"lrp-1"},
				DetachRouterPorts: []portRef{{Parent: "lr-1", Port: "lrp-1"}},
			},
		},
		{
			name: "only pod ports left",
			observe: func(o *observed) {
				o.Switches, o.SwitchPorts, o.RouterPorts = nil, nil, nil
				o.PodPorts = []nbdb.LogicalSwitchPort{{UUID: "pod-2"}}
				o.PortSwitches = []nbdb.LogicalSwitch{{UUID: "ls-9", Ports: []string{"pod-2"}}}
			},
			want: plan{
				DeleteSwitchPorts: []string{"pod-2"},
				DetachSwitchPorts: []portRef{{Parent: "ls-9", Port: "pod-2"}},
			},
		},
		{
			name: "switch port on a switch of another network",
			observe: func(o *observed) {
				o.PortSwitches = []nbdb.LogicalSwitch{{UUID: "ls-9", Ports: []string{"lsp-1"}}}
			},
			want: plan{
				DeleteSwitches:    []string{"ls-1"},
				DeleteSwitchPorts: []string{"lsp-1"},
				DetachSwitchPorts: []portRef{{Parent: "ls-9", Port: "lsp-1"}},
				DeleteRouterPorts: []string{"lrp-1"},
				DetachRouterPorts: []portRef{{Parent: "lr-1", Port: "lrp-1"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := rowsFor(testNetwork("10.1.0.0/24", "10.1.0.1"))
			tt.observe(&obs)
			got := deletePlan(obs)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("deletePlan (-want +got):\n%s", diff)
			}
			if got.empty() != obs.empty() {
				t.Errorf("plan.empty() = %t with observed.empty() = %t", got.empty(), obs.empty())
			}
		})
	}
}

func TestNotify(t *testing.T) {
	b := &Backend{opts: Options{ClusterName: testCluster}}
	var got []backend.Change
	b.OnChange(func(c backend.Change) { got = append(got, c) })
	ids := func(owner, uid, name string) map[string]string {
		return map[string]string{OwnerKey: owner, UIDKey: uid, NamespaceKey: "ns", NameKey: name}
	}
	b.onUpdate(nil, nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{ExternalIDs: ids("c1", "u1", "a")}, &nbdb.LogicalSwitch{ExternalIDs: ids("c1", "u1", "a")})
	b.onDelete(nbdb.LogicalSwitchPortTable, &nbdb.LogicalSwitchPort{ExternalIDs: ids("c1", "u2", "b")})
	b.onDelete(nbdb.LogicalRouterPortTable, &nbdb.LogicalRouterPort{ExternalIDs: ids("c2", "u3", "c")})
	b.onDelete(nbdb.LogicalRouterTable, &nbdb.LogicalRouter{ExternalIDs: map[string]string{OwnerKey: "c1", RoleKey: RoleClusterRouter}})
	b.onDelete(nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{ExternalIDs: map[string]string{OwnerKey: "c1"}})
	// external_ids edited out of band: both the former and the new owner are reported.
	b.onUpdate(nil, nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{ExternalIDs: ids("c1", "u4", "d")}, &nbdb.LogicalSwitch{ExternalIDs: ids("c1", "u5", "e")})
	b.onUpdate(nil, nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{ExternalIDs: ids("c1", "u6", "f")}, &nbdb.LogicalSwitch{})

	// A router port taken off the cluster router (lrp-2 is still in the cache, lrp-3 is gone), and a
	// router of another cluster.
	ports := map[string]*nbdb.LogicalRouterPort{"lrp-2": {UUID: "lrp-2", ExternalIDs: ids("c1", "u7", "g")}}
	lookup := func(uuid string) *nbdb.LogicalRouterPort { return ports[uuid] }
	b.onUpdate(&rowLookup{routerPort: lookup}, nbdb.LogicalRouterTable,
		&nbdb.LogicalRouter{ExternalIDs: map[string]string{OwnerKey: "c1"}, Ports: []string{"lrp-1", "lrp-2", "lrp-3"}},
		&nbdb.LogicalRouter{ExternalIDs: map[string]string{OwnerKey: "c1"}, Ports: []string{"lrp-1"}})
	b.onUpdate(&rowLookup{routerPort: lookup}, nbdb.LogicalRouterTable,
		&nbdb.LogicalRouter{ExternalIDs: map[string]string{OwnerKey: "c2"}, Ports: []string{"lrp-2"}},
		&nbdb.LogicalRouter{ExternalIDs: map[string]string{OwnerKey: "c2"}})
	// A router of ours whose role key was removed: the owner of one of its ports is reported, so
	// that its sync puts the key back.
	b.onUpdate(&rowLookup{routerPort: lookup}, nbdb.LogicalRouterTable,
		&nbdb.LogicalRouter{Name: "c1.ns", ExternalIDs: map[string]string{OwnerKey: "c1", RoleKey: RoleNamespaceRouter}, Ports: []string{"lrp-3", "lrp-2"}},
		&nbdb.LogicalRouter{Name: "c1.ns", ExternalIDs: map[string]string{OwnerKey: "c1"}, Ports: []string{"lrp-3", "lrp-2"}})
	// Rows of other owners under names of ours: what the name tells, marked Foreign. Their own
	// names (c2's) and rows of ours being created are not reported.
	b.onAdd(nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{Name: "c1.ns.h", ExternalIDs: map[string]string{OwnerKey: "c2"}})
	b.onAdd(nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{Name: "c2.ns.h", ExternalIDs: map[string]string{OwnerKey: "c2"}})
	b.onAdd(nbdb.LogicalSwitchTable, &nbdb.LogicalSwitch{Name: "c1.ns.i", ExternalIDs: ids("c1", "u8", "i")})
	b.onDelete(nbdb.LogicalSwitchPortTable, &nbdb.LogicalSwitchPort{Name: "c1.lsp.u9"})
	b.onUpdate(nil, nbdb.LogicalRouterTable, &nbdb.LogicalRouter{Name: "c1.other"}, &nbdb.LogicalRouter{Name: "renamed"})

	foreign := func(o backend.Owned) backend.Change { return backend.Change{Owned: o, Foreign: true} }
	want := []backend.Change{
		{Owned: backend.Owned{Namespace: "ns", Name: "a", UID: "u1"}},
		{Owned: backend.Owned{Namespace: "ns", Name: "b", UID: "u2"}},
		{Owned: backend.Owned{Namespace: "ns", Name: "d", UID: "u4"}},
		{Owned: backend.Owned{Namespace: "ns", Name: "e", UID: "u5"}},
		{Owned: backend.Owned{Namespace: "ns", Name: "f", UID: "u6"}},
		{Owned: backend.Owned{Namespace: "ns", Name: "g", UID: "u7"}},
		{Owned: backend.Owned{Namespace: "ns", Name: "g", UID: "u7"}},
		foreign(backend.Owned{Namespace: "ns", Name: "h"}),
		foreign(backend.Owned{UID: "u9"}),
		foreign(backend.Owned{Namespace: "other"}),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OnChange calls (-want +got):\n%s", diff)
	}
}

// TestNotifyPodPorts: a change of a pod port comes with Pod set and the Network its keys name;
// one of another owner under a pod port's name with the pod of the name, Foreign; a switch whose
// ports changed by pods' ports only, as the changes of those pods.
func TestNotifyPodPorts(t *testing.T) {
	b := &Backend{opts: Options{ClusterName: testCluster}}
	b.ready.Store(true)
	var got []backend.Change
	b.OnChange(func(c backend.Change) { got = append(got, c) })
	pod := func(network, podUID string) *nbdb.LogicalSwitchPort {
		row := desiredPort(testCluster, testPort())
		row.ExternalIDs[UIDKey], row.ExternalIDs[NameKey], row.ExternalIDs[PodUIDKey] = network, network, podUID
		row.Name = PodPortName(testCluster, types.UID(podUID))
		return &row
	}
	b.onAdd(nbdb.LogicalSwitchPortTable, pod("n1", "p1"))
	// A new address: the same change, reported once.
	moved := pod("n1", "p1")
	moved.Addresses = []string{"0a:58:0a:01:00:09 10.1.0.9"}
	b.onUpdate(nil, nbdb.LogicalSwitchPortTable, pod("n1", "p1"), moved)
	// The pod moved to another Network: both are reported.
	b.onUpdate(nil, nbdb.LogicalSwitchPortTable, pod("n1", "p1"), pod("n2", "p1"))
	b.onDelete(nbdb.LogicalSwitchPortTable, pod("n2", "p2"))
	// A pod port whose pod key was removed out of band is the Network's row now: both changes.
	b.onUpdate(nil, nbdb.LogicalSwitchPortTable, pod("n3", "p3"), &nbdb.LogicalSwitchPort{Name: "c1.pod.p3",
		ExternalIDs: map[string]string{OwnerKey: testCluster, UIDKey: "n3", NamespaceKey: "ns", NameKey: "n3"}})
	// Rows of another owner taking and giving up a pod port's name; a name of another cluster is
	// nothing.
	b.onAdd(nbdb.LogicalSwitchPortTable, &nbdb.LogicalSwitchPort{Name: "c1.pod.p4", ExternalIDs: map[string]string{OwnerKey: "c2"}})
	b.onDelete(nbdb.LogicalSwitchPortTable, &nbdb.LogicalSwitchPort{Name: "c1.pod.p5"})
	b.onAdd(nbdb.LogicalSwitchPortTable, &nbdb.LogicalSwitchPort{Name: "c2.pod.p6"})
	// Switches whose ports changed: by pod ports only (one added, one gone from the cache), which
	// is the pods' change and not the Network's; by a port of the Network (lsp-1) or of another
	// owner (lsp-x), which is the Network's.
	ports := map[string]*nbdb.LogicalSwitchPort{"pod-7": pod("n7", "p7"), "lsp-1": {ExternalIDs: map[string]string{OwnerKey: testCluster, UIDKey: "n8"}},
		"lsp-x": {}}
	rows := &rowLookup{switchPort: func(uuid string) *nbdb.LogicalSwitchPort { return ports[uuid] }}
	sw := func(network string, ports ...string) *nbdb.LogicalSwitch {
		return &nbdb.LogicalSwitch{Name: "c1.ns." + network, Ports: ports,
			ExternalIDs: map[string]string{OwnerKey: testCluster, UIDKey: network, NamespaceKey: "ns", NameKey: network}}
	}
	b.onUpdate(rows, nbdb.LogicalSwitchTable, sw("n7", "lsp-7", "pod-gone"), sw("n7", "lsp-7", "pod-7"))
	b.onUpdate(rows, nbdb.LogicalSwitchTable, sw("n8", "lsp-1", "pod-7"), sw("n8", "pod-7"))
	b.onUpdate(rows, nbdb.LogicalSwitchTable, sw("n9", "lsp-9"), sw("n9", "lsp-9", "pod-7", "lsp-x"))

	owned := func(network string) backend.Owned {
		return backend.Owned{Namespace: "ns", Name: network, UID: types.UID(network)}
	}
	ref := func(uid string) *backend.PodRef {
		return &backend.PodRef{Namespace: "apps", Name: "web-0", UID: types.UID(uid)}
	}
	want := []backend.Change{
		{Owned: owned("n1"), Pod: ref("p1"), Created: true},
		{Owned: owned("n1"), Pod: ref("p1")},
		{Owned: owned("n1"), Pod: ref("p1")},
		{Owned: owned("n2"), Pod: ref("p1")},
		{Owned: owned("n2"), Pod: ref("p2")},
		{Owned: owned("n3"), Pod: ref("p3")},
		{Owned: owned("n3")},
		{Foreign: true, Pod: &backend.PodRef{UID: "p4"}},
		{Foreign: true, Pod: &backend.PodRef{UID: "p5"}},
		{Owned: owned("n7"), Pod: ref("p7")},
		{Owned: owned("n8")},
		{Owned: owned("n9")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OnChange calls (-want +got):\n%s", diff)
	}
}

func TestChangedPorts(t *testing.T) {
	tests := []struct {
		name          string
		before, after []string
		want          []string
	}{
		{name: "none", before: []string{"a", "b"}, after: []string{"a", "b"}},
		{name: "appended", before: []string{"a", "b"}, after: []string{"a", "b", "c"}, want: []string{"c"}},
		{name: "one removed, the last moved into its place", before: []string{"a", "b", "c", "d"}, after: []string{"a", "d", "c"}, want: []string{"b"}},
		{name: "reordered only", before: []string{"a", "b"}, after: []string{"b", "a"}},
		{name: "from none", after: []string{"a"}, want: []string{"a"}},
		{name: "added and removed", before: []string{"a", "b"}, after: []string{"a", "c"}, want: []string{"c", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, changedPorts(tt.before, tt.after), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("changedPorts (-want +got):\n%s", diff)
			}
		})
	}
}
