package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAttachBlock(t *testing.T) {
	tests := []struct {
		name           string
		pods, networks int
		want           int
		wantErr        bool
	}{
		{name: "the default: 100 pods a Network in a /20", pods: 10000, networks: 100, want: 4096},
		{name: "a partly filled last Network", pods: 2001, networks: 20, want: 4096},
		{name: "twice the pods and three addresses just fit", pods: 2046, networks: 1, want: 4096},
		{name: "one pod more takes the next power of two", pods: 2047, networks: 1, want: 8192},
		{name: "all of 10.0.0.0/8", pods: 100, networks: 4096, want: 4096},
		{name: "more than 10.0.0.0/8", pods: 100, networks: 4097, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := attachBlock(tc.pods, tc.networks)
			if (err != nil) != tc.wantErr {
				t.Fatalf("attachBlock(%d, %d) error = %v, want error %v", tc.pods, tc.networks, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attachBlock(%d, %d) (-want +got):\n%s", tc.pods, tc.networks, diff)
			}
		})
	}
}

func TestAttachNetwork(t *testing.T) {
	tests := []struct {
		name              string
		j, size           int
		wantCIDR, wantGW  string
		wantBaselineFirst string
	}{
		{name: "first /20", j: 0, size: 4096, wantCIDR: "10.0.0.0/20", wantGW: "10.0.0.1", wantBaselineFirst: "10.0.8.0"},
		{name: "second /20", j: 1, size: 4096, wantCIDR: "10.0.16.0/20", wantGW: "10.0.16.1", wantBaselineFirst: "10.0.24.0"},
		{name: "100th /20 crosses into the next /16", j: 99, size: 4096, wantCIDR: "10.6.48.0/20", wantGW: "10.6.48.1", wantBaselineFirst: "10.6.56.0"},
		{name: "a /19", j: 3, size: 8192, wantCIDR: "10.0.96.0/19", wantGW: "10.0.96.1", wantBaselineFirst: "10.0.112.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := attachNetwork(tc.j, tc.size)
			cidr := netip.MustParsePrefix(n.Spec.Cidr)
			got := []string{n.Spec.Cidr, n.Spec.Gateway, addrAdd(cidr.Addr(), tc.size/2).String()}
			want := []string{tc.wantCIDR, tc.wantGW, tc.wantBaselineFirst}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("attachNetwork(%d, %d): cidr, gateway, baseline's first address (-want +got):\n%s", tc.j, tc.size, diff)
			}
			if n.Namespace != nsAttach {
				t.Errorf("namespace %q, want %q", n.Namespace, nsAttach)
			}
		})
	}
}
