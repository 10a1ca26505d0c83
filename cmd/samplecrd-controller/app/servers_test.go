package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2/ktesting"
)

// serveTLS serves 200 on a free loopback port with the metrics server's TLS configuration for m
// and returns the address.
func serveTLS(t *testing.T, ctx context.Context, m MetricsServingOptions) string {
	t.Helper()
	config, err := metricsTLSConfig(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	s, err := serve(ctx, "metrics", "127.0.0.1:0", ok, &serverTLS{config: config, http2: m.EnableHTTP2},
		func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s.addr
}

// servedCert returns the leaf certificate addr serves, DER-encoded.
func servedCert(t *testing.T, addr string) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// writeCert writes a new self-signed certificate for host and its key into dir as tls.crt and
// tls.key, and returns the certificate, DER-encoded.
func writeCert(t *testing.T, dir, host string) []byte {
	t.Helper()
	cert, key, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: the watcher reads both on either's change, and a new certificate beside
	// the old key is refused until the key follows.
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), cert, 0o600); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(cert)
	return block.Bytes
}

// TestMetricsCertificateFromDir serves the certificate of --metrics-cert-dir and, once the files
// are replaced, the new one, without a restart.
func TestMetricsCertificateFromDir(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := t.TempDir()
	first := writeCert(t, dir, "first.test")
	addr := serveTLS(t, ctx, MetricsServingOptions{Secure: true, CertDir: dir, CertName: "tls.crt", CertKey: "tls.key"})
	if got := servedCert(t, addr); !bytes.Equal(got, first) {
		t.Fatal("the server does not serve the certificate of --metrics-cert-dir")
	}

	second := writeCert(t, dir, "second.test")
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return bytes.Equal(servedCert(t, addr), second), nil
	})
	if err != nil {
		t.Fatalf("the server did not serve the replaced certificate: %v", err)
	}
}

// TestMetricsCertificateDirMissing fails at start-up, naming the file, rather than serving
// something else.
func TestMetricsCertificateDirMissing(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	dir := t.TempDir()
	_, err := metricsTLSConfig(ctx, MetricsServingOptions{Secure: true, CertDir: dir, CertName: "tls.crt", CertKey: "tls.key"})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(filepath.Join(dir, "tls.crt"))) {
		t.Fatalf("error %v, want one naming %s", err, filepath.Join(dir, "tls.crt"))
	}
}

// TestMetricsTLS checks the generated certificate, the minimum version (1.2) and that HTTP/2 is
// served only with --enable-http2.
func TestMetricsTLS(t *testing.T) {
	for _, tc := range []struct {
		name      string
		http2     bool
		wantProto int
	}{
		{name: "HTTP/1.1 only by default", wantProto: 1},
		{name: "HTTP/2 with --enable-http2", http2: true, wantProto: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			addr := serveTLS(t, ctx, MetricsServingOptions{Secure: true, EnableHTTP2: tc.http2})

			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			leaf := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			if err := leaf.VerifyHostname("localhost"); err != nil {
				t.Errorf("the generated certificate: %v", err)
			}
			if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
				t.Errorf("the generated certificate: %v", err)
			}

			old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}
			if conn, err := tls.Dial("tcp", addr, old); err == nil {
				conn.Close()
				t.Error("a TLS 1.1 handshake succeeded, want TLS 1.2 at least")
			}

			client := &http.Client{Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
				ForceAttemptHTTP2: true,
				DialContext:       (&net.Dialer{}).DialContext,
			}}
			defer client.CloseIdleConnections()
			resp, err := client.Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != tc.wantProto {
				t.Errorf("served %s to a client that offers HTTP/2, want HTTP/%d", resp.Proto, tc.wantProto)
			}
		})
	}
}
