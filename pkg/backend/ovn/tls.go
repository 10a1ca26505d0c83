package ovn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/samplecrd/samplecrd-controller/pkg/backend"
)

// TLSFiles are the PEM files of an ssl: endpoint, as ovn-nbctl takes them (-p, -c and -C). They
// are read at every connection attempt, so that files replaced on disk (a renewed certificate, a
// new CA) take effect at the next reconnection, without a restart.
type TLSFiles struct {
	// PrivateKey is the client's private key.
	PrivateKey string
	// Certificate is the client's certificate, which the server verifies against its CA; it may
	// be followed by intermediate certificates.
	Certificate string
	// CACert holds the certificates of the CAs that the server's certificate must be signed by.
	CACert string
}

// IsZero reports whether no file is set.
func (f TLSFiles) IsZero() bool {
	return f == TLSFiles{}
}

// validateEndpoint accepts the unix:, tcp: and ssl: endpoints that libovsdb can dial, with the TLS
// files that ssl: needs and the others refuse.
func validateEndpoint(endpoint string, files TLSFiles) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("parsing the endpoint %q: %w", endpoint, err)
	}
	switch {
	case u.Scheme == client.UNIX && u.Path != "":
	case u.Scheme == client.TCP && u.Opaque != "":
	case u.Scheme == client.SSL && u.Opaque != "":
		if _, _, err := net.SplitHostPort(u.Opaque); err != nil {
			return fmt.Errorf("the endpoint %q is not ssl:<host>:<port>: %w", endpoint, err)
		}
		var missing []error
		for _, f := range []struct{ name, path string }{
			{"PrivateKey", files.PrivateKey}, {"Certificate", files.Certificate}, {"CACert", files.CACert},
		} {
			if f.path == "" {
				missing = append(missing, fmt.Errorf("the ssl: endpoint %q needs TLS.%s", endpoint, f.name))
			}
		}
		return errors.Join(missing...)
	default:
		return fmt.Errorf("the endpoint %q is neither unix:<path>, tcp:<host>:<port> nor ssl:<host>:<port>", endpoint)
	}
	if !files.IsZero() {
		return fmt.Errorf("the endpoint %q is not ssl:, but TLS files are set", endpoint)
	}
	return nil
}

// newTLSConfig returns the TLS configuration of an ssl: endpoint (one validateEndpoint accepted).
//
// crypto/tls verifies a server against a CA pool fixed when the configuration is made, and
// libovsdb keeps one configuration for every connection. To read the CA file at each handshake
// instead, the built-in verification is turned off (InsecureSkipVerify) and VerifyConnection does
// the same checks itself: the chain up to a CA of the file, for server authentication, and the
// endpoint's host name or IP address against the certificate's subject alternative names. This is
// the use of InsecureSkipVerify that crypto/tls documents for custom verification; the handshake
// still checks that the server holds the certificate's private key.
func newTLSConfig(endpoint string, files TLSFiles) (*tls.Config, *tlsVerifier, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, nil, err
	}
	host, _, err := net.SplitHostPort(u.Opaque)
	if err != nil {
		return nil, nil, err
	}
	v := &tlsVerifier{endpoint: endpoint, host: host, files: files}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Sent as SNI when it is a name; crypto/tls sends none for an IP address.
		ServerName:           host,
		InsecureSkipVerify:   true, // VerifyConnection verifies the chain and the host (see above).
		VerifyConnection:     v.verifyServer,
		GetClientCertificate: v.clientCertificate,
	}, v, nil
}

// tlsVerifier reads the TLS files at each handshake.
type tlsVerifier struct {
	// endpoint is the ssl: endpoint, for errors; host is its host name or IP address.
	endpoint, host string
	// files are the PEM files.
	files TLSFiles
}

// verifyServer verifies the server's certificate against the CA file as it is now, and the
// endpoint's host against the certificate.
func (v *tlsVerifier) verifyServer(cs tls.ConnectionState) error {
	roots, err := loadCAs(v.files.CACert)
	if err != nil {
		return v.misconfigured(err)
	}
	if len(cs.PeerCertificates) == 0 {
		return v.misconfigured(errors.New("the server sent no certificate"))
	}
	leaf := cs.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		DNSName:       v.host,
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		// Nothing of the server's own certificate (subject, serial, names) is in the words: behind
		// one address, each server of a clustered database has its own, and the cause must read
		// the same whichever answers, or every reconnection would be a new cause.
		return v.misconfigured(fmt.Errorf("verifying the server certificate against the CA certificates in %s: %w",
			v.files.CACert, stableX509Error(err, leaf, v.host)))
	}
	return nil
}

// clientCertificate loads the client's key pair as it is now. A certificate that is outside its
// validity period is refused here, with its file named: the server would refuse it too, and under
// TLS 1.3 its refusal reaches the client only as a closed connection.
func (v *tlsVerifier) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(v.files.Certificate, v.files.PrivateKey)
	if err != nil {
		return nil, v.misconfigured(fmt.Errorf("loading the client certificate %s and private key %s: %w",
			v.files.Certificate, v.files.PrivateKey, err))
	}
	if now := time.Now(); now.Before(pair.Leaf.NotBefore) || now.After(pair.Leaf.NotAfter) {
		return nil, v.misconfigured(fmt.Errorf("the client certificate in %s (%s): %s",
			v.files.Certificate, describe(pair.Leaf), validityText(pair.Leaf)))
	}
	return &pair, nil
}

// remoteAlert is how crypto/tls words an alert that the server sent: "remote error: tls: " and
// the alert, such as "unknown certificate authority".
const remoteAlert = "remote error: tls: "

// refusal returns, for a failed connection attempt whose error ends in an alert from the server,
// a misconfiguration that says so; nil for other errors. The server refuses the client's
// certificate with an alert that, under TLS 1.3, arrives after the client's side of the
// handshake, with the first request: libovsdb reports that request's failure in words only
// (with %v), so the alert is found by crypto/tls's wording.
func (v *tlsVerifier) refusal(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	i := strings.LastIndex(msg, remoteAlert)
	if i < 0 {
		return nil
	}
	return v.misconfigured(fmt.Errorf("the server refused the TLS handshake with the client certificate in %s: %s",
		v.files.Certificate, msg[i:]))
}

// misconfigured marks err as a fault of the TLS files or of the server's certificate: trying again
// with the same files gives the same error.
func (v *tlsVerifier) misconfigured(err error) error {
	return &backend.MisconfiguredError{Err: fmt.Errorf("TLS to the OVN northbound database %s: %w", v.endpoint, err)}
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no PEM certificate in the CA file %s", path)
	}
	return pool, nil
}

// stableX509Error returns err in words that are the same at every attempt: crypto/x509 puts the
// current time into its expiry error, which would change a Network's status message each time.
func stableX509Error(err error, leaf *x509.Certificate, host string) error {
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		// Go's words list the names the certificate holds, which differ from server to server.
		return fmt.Errorf("x509: certificate is not valid for %s", host)
	}
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired || invalid.Cert == nil {
		return err
	}
	if invalid.Cert.Equal(leaf) {
		return fmt.Errorf("x509: %s", validityText(leaf))
	}
	return fmt.Errorf("x509: the CA certificate (%s): %s", describe(invalid.Cert), validityText(invalid.Cert))
}

// validityText says why a certificate is not valid now.
func validityText(c *x509.Certificate) string {
	if time.Now().Before(c.NotBefore) {
		return fmt.Sprintf("certificate is not yet valid: valid from %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("certificate has expired: valid until %s", c.NotAfter.UTC().Format(time.RFC3339))
}

// describe names a certificate for people: its subject and serial number.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("subject %q, serial %s", c.Subject.String(), c.SerialNumber.String())
}
