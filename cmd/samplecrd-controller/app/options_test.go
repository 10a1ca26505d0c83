package app

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

// parse returns options from default values and args, as main does.
func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestControllersGrammar(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "default: all", want: []string{"network", "nodewatch", "podcount", "podnetwork", "podwatch"}},
		{name: "star", args: []string{"--controllers=*"}, want: []string{"network", "nodewatch", "podcount", "podnetwork", "podwatch"}},
		{name: "one", args: []string{"--controllers=podcount"}, want: []string{"podcount"}},
		{name: "all but one", args: []string{"--controllers=*,-network"}, want: []string{"nodewatch", "podcount", "podwatch"}},
		{name: "disabling wins over star in any order", args: []string{"--controllers=-podwatch,*"}, want: []string{"network", "nodewatch", "podcount", "podnetwork"}},
		{name: "podnetwork with network", args: []string{"--controllers=network,podnetwork"}, want: []string{"network", "podnetwork"}},
		{name: "podnetwork does not run without network", args: []string{"--controllers=podnetwork"}, want: nil},
		{name: "two", args: []string{"--controllers=podwatch,nodewatch"}, want: []string{"nodewatch", "podwatch"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := parse(t, tc.args...)
			var got []string
			for _, name := range controllerNames() {
				if o.enabled(name) {
					got = append(got, name)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("enabled controllers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{name: "valid", args: []string{"--ovn-nb=unix:/run/ovn/ovnnb_db.sock"}},
		{name: "no OVN endpoint is fine without the network controller", args: []string{"--controllers=*,-network"}},
		{name: "network controller without OVN endpoint", wantErr: []string{"--ovn-nb is required by the network controller"}},
		{name: "podnetwork named without network", args: []string{"--controllers=podnetwork"}, wantErr: []string{"podnetwork needs network"}},
		{name: "unknown controller", args: []string{"--controllers=podcount,nosuch", "--ovn-nb=x"}, wantErr: []string{`unknown controller "nosuch"`}},
		{name: "bad event mode and zero workers, both named", args: []string{"--controllers=podcount", "--podcount-event-mode=some", "--podwatch-workers=0"},
			wantErr: []string{`--podcount-event-mode must be all, changed or none, got "some"`, "--podwatch-workers must be at least 1"}},
		{name: "leader election timings out of order", args: []string{"--controllers=podcount", "--leader-elect-renew-deadline=20s"},
			wantErr: []string{"leader election needs 0 < retry period"}},
		{name: "leader election timings do not matter without it", args: []string{"--controllers=podcount", "--leader-elect=false", "--leader-elect-renew-deadline=20s"}},
		{name: "client rate", args: []string{"--controllers=podcount", "--kube-api-qps=0"}, wantErr: []string{"--kube-api-qps and --kube-api-burst must be positive"}},
		{name: "pprof on plain HTTP", args: []string{"--controllers=podcount", "--metrics-secure=false", "--enable-pprof"},
			wantErr: []string{"--enable-pprof needs --metrics-secure"}},
		{name: "certificate flags on plain HTTP", args: []string{"--controllers=podcount", "--metrics-secure=false", "--metrics-cert-dir=/certs", "--enable-http2"},
			wantErr: []string{"--metrics-cert-dir needs --metrics-secure", "--enable-http2 needs --metrics-secure"}},
		{name: "plain HTTP alone", args: []string{"--controllers=podcount", "--metrics-secure=false"}},
		{name: "empty certificate name", args: []string{"--controllers=podcount", "--metrics-cert-dir=/certs", "--metrics-cert-name="},
			wantErr: []string{"--metrics-cert-name and --metrics-cert-key must not be empty"}},
		{name: "pprof behind authentication", args: []string{"--controllers=podcount", "--enable-pprof", "--metrics-cert-dir=/certs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, tc.args...).Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestDefaultsSuitAController(t *testing.T) {
	o := NewOptions()
	// client-go's own 5 QPS / 10 burst would cap a controller at a few objects a second.
	if o.KubeAPIQPS < 50 || o.KubeAPIBurst < 100 {
		t.Errorf("client defaults QPS %v burst %d; want at least 50 and 100", o.KubeAPIQPS, o.KubeAPIBurst)
	}
	if !o.LeaderElection.Enabled {
		t.Errorf("leader election is off by default")
	}
}

// TestNetworkWorkersFlag checks --network-workers and its deprecated alias --workers, which still
// sets the same option and is hidden from the help.
func TestNetworkWorkersFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "default", want: NewOptions().NetworkWorkers},
		{name: "network-workers", args: []string{"--network-workers=7"}, want: 7},
		{name: "deprecated workers", args: []string{"--workers=5"}, want: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parse(t, tc.args...).NetworkWorkers; got != tc.want {
				t.Errorf("NetworkWorkers = %d, want %d", got, tc.want)
			}
		})
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	NewOptions().AddFlags(fs)
	if f := fs.Lookup("workers"); f == nil || f.Deprecated == "" || !strings.Contains(f.Deprecated, "--network-workers") {
		t.Errorf("--workers is not deprecated in favour of --network-workers: %+v", f)
	}
	if usage := fs.FlagUsages(); strings.Contains(usage, "--workers ") {
		t.Errorf("the help still offers --workers:\n%s", usage)
	}
}

// TestServerDefaults checks that, unless told otherwise, the servers listen on loopback only and
// metrics are served over HTTPS to authorized clients, without pprof or HTTP/2.
func TestServerDefaults(t *testing.T) {
	o := NewOptions()
	for flag, addr := range map[string]string{"--metrics-bind-address": o.MetricsBindAddress, "--health-probe-bind-address": o.HealthProbeBindAddress} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s default %q: %v", flag, addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("%s defaults to %q, want a loopback address", flag, addr)
		}
	}
	want := MetricsServingOptions{Secure: true, CertName: "tls.crt", CertKey: "tls.key"}
	if diff := cmp.Diff(want, o.Metrics); diff != "" {
		t.Errorf("metrics serving defaults (-want +got):\n%s", diff)
	}
	if o.EnablePprof {
		t.Error("pprof is served by default")
	}
}
