package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateOVNNorthboundTLS(t *testing.T) {
	key, cert, ca := "--ovn-nb-private-key=/tls/tls.key", "--ovn-nb-certificate=/tls/tls.crt", "--ovn-nb-ca-cert=/tls/ca.crt"
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{name: "ssl with the three files", args: []string{"--ovn-nb=ssl:ovn-nb.ovn-system.svc:6641", key, cert, ca}},
		{name: "tcp without files", args: []string{"--ovn-nb=tcp:127.0.0.1:6641"}},
		{name: "ssl without files names all three", args: []string{"--ovn-nb=ssl:127.0.0.1:6641"}, wantErr: []string{
			"--ovn-nb-private-key is required with --ovn-nb=ssl:127.0.0.1:6641",
			"--ovn-nb-certificate is required with --ovn-nb=ssl:127.0.0.1:6641",
			"--ovn-nb-ca-cert is required with --ovn-nb=ssl:127.0.0.1:6641",
		}},
		{name: "ssl without the CA", args: []string{"--ovn-nb=ssl:127.0.0.1:6641", key, cert}, wantErr: []string{
			"--ovn-nb-ca-cert is required with --ovn-nb=ssl:127.0.0.1:6641",
		}},
		{name: "tcp with files", args: []string{"--ovn-nb=tcp:127.0.0.1:6641", key, ca}, wantErr: []string{
			"--ovn-nb-private-key is only for an ssl: --ovn-nb, not --ovn-nb=tcp:127.0.0.1:6641",
			"--ovn-nb-ca-cert is only for an ssl: --ovn-nb, not --ovn-nb=tcp:127.0.0.1:6641",
		}},
		{name: "unix with a file", args: []string{"--ovn-nb=unix:/run/ovn/ovnnb_db.sock", cert}, wantErr: []string{
			"--ovn-nb-certificate is only for an ssl: --ovn-nb, not --ovn-nb=unix:/run/ovn/ovnnb_db.sock",
		}},
		{name: "files without the network controller are not checked", args: []string{"--controllers=*,-network", key}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, tc.args...).Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tc.wantErr, got); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s", diff)
			}
		})
	}
}
