package framework

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority made by a test, which issues the server and client certificates
// of a TLS connection.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA's certificate.
	PEM []byte
}

// serial numbers certificates; each is new within the test binary.
var serial atomic.Int64

// NewCA returns a new self-signed CA named name, valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// CertOptions describe a certificate that a CA issues.
type CertOptions struct {
	// Name is the subject's common name.
	Name string
	// IPs are the IP address subject alternative names.
	IPs []net.IP
	// Client makes a client certificate, rather than a server one.
	Client bool
	// Expired makes a certificate whose validity ended an hour ago.
	Expired bool
}

// KeyPair is a certificate and its private key, in PEM.
type KeyPair struct {
	Cert, Key []byte
}

// Issue returns a new certificate of opts signed by the CA.
func (ca *CA) Issue(t testing.TB, opts CertOptions) KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore, notAfter := time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if opts.Expired {
		notBefore, notAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	}
	usage := x509.ExtKeyUsageServerAuth
	if opts.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: opts.Name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  opts.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

// TLSDir is a directory of the PEM files of one side of a TLS connection, named as in a
// Kubernetes TLS Secret: tls.key, tls.crt and ca.crt.
type TLSDir struct {
	// Dir is the directory.
	Dir string
}

// NewTLSDir writes pair and the CA certificates caPEM into a new temporary directory.
func NewTLSDir(t testing.TB, pair KeyPair, caPEM []byte) TLSDir {
	t.Helper()
	d := TLSDir{Dir: t.TempDir()}
	d.Write(t, pair, caPEM)
	return d
}

// Key is the private key's file.
func (d TLSDir) Key() string { return filepath.Join(d.Dir, "tls.key") }

// Cert is the certificate's file.
func (d TLSDir) Cert() string { return filepath.Join(d.Dir, "tls.crt") }

// CA is the file of the CA certificates that the other side's certificate must be signed by.
func (d TLSDir) CA() string { return filepath.Join(d.Dir, "ca.crt") }

// Certificate parses the certificate's file.
func (d TLSDir) Certificate() (*x509.Certificate, error) {
	data, err := os.ReadFile(d.Cert())
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block in %s", d.Cert())
	}
	return x509.ParseCertificate(block.Bytes)
}

// Write replaces the files, each by a rename, as the kubelet updates a Secret volume.
func (d TLSDir) Write(t testing.TB, pair KeyPair, caPEM []byte) {
	t.Helper()
	for path, data := range map[string][]byte{d.Key(): pair.Key, d.Cert(): pair.Cert, d.CA(): caPEM} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}
