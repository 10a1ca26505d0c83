package ovn

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
)

// TestTLSErrorsAreStable checks that the words of a TLS failure are the same at every attempt and
// mark it as a misconfiguration: crypto/x509's expiry error carries the current time.
func TestTLSErrorsAreStable(t *testing.T) {
	leaf := &x509.Certificate{
		Subject: pkix.Name{CommonName: "ovnnb"}, SerialNumber: big.NewInt(7),
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC),
		Raw: []byte("leaf"),
	}
	ca := &x509.Certificate{
		Subject: pkix.Name{CommonName: "ovn-ca"}, SerialNumber: big.NewInt(1),
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Raw: []byte("ca"),
	}
	expired := func(c *x509.Certificate) error {
		return x509.CertificateInvalidError{Cert: c, Reason: x509.Expired, Detail: "current time " + time.Now().Format(time.RFC3339Nano) + " is after 2021-01-01T00:00:00Z"}
	}
	v := &tlsVerifier{endpoint: "ssl:10.0.0.1:6641", host: "10.0.0.1", files: TLSFiles{Certificate: "/tls/tls.crt"}}
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{name: "expired server certificate", err: func() error { return stableX509Error(expired(leaf), leaf, "10.0.0.1") },
			want: "x509: certificate has expired: valid until 2021-01-01T00:00:00Z"},
		{name: "expired CA certificate", err: func() error { return stableX509Error(expired(ca), leaf, "10.0.0.1") },
			want: `x509: the CA certificate (subject "CN=ovn-ca", serial 1): certificate has expired: valid until 2021-01-01T00:00:00Z`},
		{name: "unknown authority kept", err: func() error { return stableX509Error(x509.UnknownAuthorityError{}, leaf, "10.0.0.1") },
			want: "x509: certificate signed by unknown authority"},
		{name: "host name mismatch, whichever server's names", err: func() error {
			return stableX509Error(x509.HostnameError{Certificate: leaf, Host: "10.0.0.1"}, leaf, "10.0.0.1")
		}, want: "x509: certificate is not valid for 10.0.0.1"},
		{name: "server alert after libovsdb's wrapping", err: func() error {
			return v.refusal(errors.New("connecting: failed to connect to ssl:10.0.0.1:6641: listdbs failure - remote error: tls: unknown certificate authority"))
		}, want: "TLS to the OVN northbound database ssl:10.0.0.1:6641: the server refused the TLS handshake with the client certificate in /tls/tls.crt: remote error: tls: unknown certificate authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.err()
			again := tc.err() // a later attempt: the detail of crypto/x509 names another time
			if diff := cmp.Diff(tc.want, first.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if first.Error() != again.Error() {
				t.Errorf("the words changed between attempts: %q, then %q", first, again)
			}
		})
	}
	if err := v.refusal(errors.New("connecting: dial tcp 10.0.0.1:6641: connect: connection refused")); err != nil {
		t.Errorf("an outage taken for a refusal: %v", err)
	}
	if err := v.refusal(errors.New("x: remote error: tls: bad certificate")); backend.Misconfigured(err) == nil {
		t.Errorf("a refusal is not a misconfiguration: %v", err)
	}
}
