package network

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	"github.com/samplecrd/samplecrd-controller/pkg/backend/ovn"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// tlsSetup is a setup whose ovsdb-server serves TLS on 127.0.0.1; the controller connects with
// the files of client.
type tlsSetup struct {
	*setup
	// files are the controller's private key, certificate and CA certificates.
	files framework.TLSDir
	// endpoint is what the controller connects to: the server, or a proxy in front of it.
	endpoint string
}

// newTLSSetup starts an ovsdb-server with server's files (its key and certificate, and the CA
// certificates it verifies clients against), and makes the controller connect with client's
// files; through a counting proxy when proxy is set.
func newTLSSetup(t *testing.T, server, client framework.TLSDir, proxy bool) (*tlsSetup, *framework.Proxy) {
	t.Helper()
	cfg := env.Config(t)
	db := framework.StartOVSDBTLS(t, testenv.OVSDBTLS{PrivateKey: server.Key(), Certificate: server.Cert(), CACert: server.CA()})
	s := &setup{cfg: cfg, client: clientset.NewForConfigOrDie(cfg), db: db}
	s.ns = framework.CreateNamespace(t, kubernetes.NewForConfigOrDie(cfg))
	ts := &tlsSetup{setup: s, files: client, endpoint: db.SSLEndpoint()}
	var p *framework.Proxy
	if proxy {
		p = framework.StartProxy(t, strings.TrimPrefix(db.SSLEndpoint(), "ssl:"))
		ts.endpoint = "ssl:" + p.Addr()
	}
	s.backendOptions = func(o *ovn.Options) {
		o.Endpoint = ts.endpoint
		o.TLS = ovn.TLSFiles{PrivateKey: client.Key(), Certificate: client.Cert(), CACert: client.CA()}
		// Quick reconnections, so that the test sees several in a few seconds.
		o.MaxBackoff = 200 * time.Millisecond
	}
	return ts, p
}

// startController is setup.startController, with a cleanup that, before the Networks are deleted,
// stops the controller and removes their finalizers: a backend that never connects cannot let
// the controller remove them.
func (s *tlsSetup) startController(t *testing.T) *controller {
	t.Helper()
	c := s.setup.startController(t, nil)
	t.Cleanup(func() {
		c.stop(t)
		list, err := s.client.SamplecrdV1().Networks(s.ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Errorf("listing the test's Networks: %v", err)
			return
		}
		for _, n := range list.Items {
			_, err := s.client.SamplecrdV1().Networks(s.ns).Patch(context.Background(), n.Name, types.MergePatchType,
				[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			if err != nil {
				t.Errorf("removing the finalizers of Network %s: %v", n.Name, err)
			}
		}
	})
	return c
}

var loopback = []net.IP{net.ParseIP("127.0.0.1")}

// readyMessage is the message of n's Ready condition.
func readyMessage(n *samplecrdv1.Network) string {
	if c := meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// waitBackendError waits until the Network reports BackendError with a message that contains want.
func (s *setup) waitBackendError(t *testing.T, name, want string) *samplecrdv1.Network {
	t.Helper()
	return s.waitFor(t, name, "BackendError: "+want, func(n *samplecrdv1.Network) bool {
		return ready(n) == "False/BackendError" && strings.Contains(readyMessage(n), want)
	})
}

// TestTLS checks a Network programmed over an ssl: endpoint, with certificates of one CA on both
// sides: the server's, for 127.0.0.1, verified by the controller, and the controller's, verified
// by ovsdb-server.
func TestTLS(t *testing.T) {
	ca := framework.NewCA(t, "ovn-ca")
	server := framework.NewTLSDir(t, ca.Issue(t, framework.CertOptions{Name: "ovnnb", IPs: loopback}), ca.PEM)
	client := framework.NewTLSDir(t, ca.Issue(t, framework.CertOptions{Name: "samplecrd-controller", Client: true}), ca.PEM)
	s, _ := newTLSSetup(t, server, client, false)
	c := s.startController(t)
	s.create(t, "over-tls", "10.70.0.0/24", "10.70.0.1")
	n := s.waitReady(t, "over-tls")
	checkProgrammed(t, s.waitRows(t, "the Network's rows", func(r framework.OVNRows) bool {
		return len(owned(r, n.UID).Switches) == 1
	}), n)
	if err := c.backend.Ready(); err != nil {
		t.Errorf("backend readiness: %v", err)
	}
}

// TestTLSWrongCAThenFixed checks a server certificate of another CA than the controller's CA file:
// the Network reports BackendError naming the problem, with one status write however many
// connection attempts fail, and the backend's readiness (what /readyz says) names it too. Then the
// CA file is replaced by the right one, and the next reconnection uses it: the Network is
// programmed, without a restart.
func TestTLSWrongCAThenFixed(t *testing.T) {
	serverCA, otherCA := framework.NewCA(t, "ovn-ca"), framework.NewCA(t, "other-ca")
	server := framework.NewTLSDir(t, serverCA.Issue(t, framework.CertOptions{Name: "ovnnb", IPs: loopback}), serverCA.PEM)
	clientPair := serverCA.Issue(t, framework.CertOptions{Name: "samplecrd-controller", Client: true})
	client := framework.NewTLSDir(t, clientPair, otherCA.PEM)
	s, proxy := newTLSSetup(t, server, client, true)
	n := s.create(t, "wrong-ca", "10.71.0.0/24", "10.71.0.1")
	writes := s.watchStatusWrites(t)
	c := s.startController(t)

	want := fmt.Sprintf("ovn backend: TLS to the OVN northbound database %s: verifying the server certificate "+
		"against the CA certificates in %s: x509: certificate signed by unknown authority",
		s.endpoint, client.CA())
	got := s.waitBackendError(t, "wrong-ca", "x509: certificate signed by unknown authority")
	if msg := readyMessage(got); msg != want {
		t.Errorf("Ready message:\n got %q\nwant %q", msg, want)
	}
	readyErr := c.backend.Ready()
	if readyErr == nil || !strings.Contains(readyErr.Error(), strings.TrimPrefix(want, "ovn backend: ")) {
		t.Errorf("backend readiness %v, want it to say %q", readyErr, want)
	}

	// Several more attempts fail the same way: no status write, no new resourceVersion.
	s.waitFor(t, "wrong-ca", "with its status write seen", func(*samplecrdv1.Network) bool { return writes.of("wrong-ca") >= 1 })
	rv := got.ResourceVersion
	attempts := proxy.Accepted()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return proxy.Accepted() >= attempts+5, nil
	})
	if err != nil {
		t.Fatalf("waiting for 5 more connection attempts (%d so far): %v", proxy.Accepted(), err)
	}
	if w := writes.of("wrong-ca"); w != 1 {
		t.Errorf("%d status writes over %d connection attempts, want 1", w, proxy.Accepted())
	}
	if now := s.get(t, "wrong-ca"); now.ResourceVersion != rv {
		t.Errorf("resourceVersion %s after more failed attempts, want %s unchanged: status %+v", now.ResourceVersion, rv, now.Status)
	}
	t.Logf("%d connection attempts after the status write, %d status writes in all", proxy.Accepted()-attempts, writes.of("wrong-ca"))

	// The right CA, as a Secret update would bring it.
	client.Write(t, clientPair, serverCA.PEM)
	n = s.waitReady(t, "wrong-ca")
	checkProgrammed(t, s.waitRows(t, "the Network's rows", func(r framework.OVNRows) bool {
		return len(owned(r, n.UID).Switches) == 1
	}), n)
	if w := writes.of("wrong-ca"); w != 2 {
		t.Errorf("%d status writes, want 2: BackendError, then Synced", w)
	}
}

// TestTLSRefusedCertificates checks certificates that must not be used: the server's when it has
// expired or is for another address, which the controller refuses, and the controller's own when
// it has expired, which it does not offer, or is of a CA the server does not trust, which the
// server refuses. The Network reports BackendError naming the problem,
// and the backend's readiness too.
func TestTLSRefusedCertificates(t *testing.T) {
	ca, otherCA := framework.NewCA(t, "ovn-ca"), framework.NewCA(t, "other-ca")
	for _, tc := range []struct {
		name           string
		server, client framework.CertOptions
		// otherClientCA issues the client's certificate by a CA that the server does not trust.
		otherClientCA bool
		want          func(server, client framework.TLSDir) string
	}{{
		name:   "server expired",
		server: framework.CertOptions{Name: "ovnnb", IPs: loopback, Expired: true},
		client: framework.CertOptions{Name: "samplecrd-controller", Client: true},
		want: func(server, client framework.TLSDir) string {
			return fmt.Sprintf("verifying the server certificate against the CA certificates in %s: "+
				"x509: certificate has expired: valid until ", client.CA())
		},
	}, {
		name:   "server for another address",
		server: framework.CertOptions{Name: "ovnnb", IPs: []net.IP{net.ParseIP("127.0.0.2")}},
		client: framework.CertOptions{Name: "samplecrd-controller", Client: true},
		want: func(server, client framework.TLSDir) string {
			return fmt.Sprintf("verifying the server certificate against the CA certificates in %s: "+
				"x509: certificate is not valid for 127.0.0.1", client.CA())
		},
	}, {
		name:          "client certificate of another CA",
		server:        framework.CertOptions{Name: "ovnnb", IPs: loopback},
		client:        framework.CertOptions{Name: "samplecrd-controller", Client: true},
		otherClientCA: true,
		want: func(_, client framework.TLSDir) string {
			return fmt.Sprintf("the server refused the TLS handshake with the client certificate in %s: remote error: tls: unknown certificate authority",
				client.Cert())
		},
	}, {
		name:   "client expired",
		server: framework.CertOptions{Name: "ovnnb", IPs: loopback},
		client: framework.CertOptions{Name: "samplecrd-controller", Client: true, Expired: true},
		want: func(_, client framework.TLSDir) string {
			return fmt.Sprintf("the client certificate in %s (subject \"CN=samplecrd-controller\", serial %s): certificate has expired: valid until ",
				client.Cert(), serialOf(t, client))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			server := framework.NewTLSDir(t, ca.Issue(t, tc.server), ca.PEM)
			issuer := ca
			if tc.otherClientCA {
				issuer = otherCA
			}
			client := framework.NewTLSDir(t, issuer.Issue(t, tc.client), ca.PEM)
			s, _ := newTLSSetup(t, server, client, false)
			c := s.startController(t)
			s.create(t, "refused", "10.72.0.0/24", "10.72.0.1")
			want := tc.want(server, client)
			got := s.waitBackendError(t, "refused", "")
			if msg := readyMessage(got); !strings.HasPrefix(msg, "ovn backend: TLS to the OVN northbound database "+s.endpoint+": "+want) {
				t.Errorf("Ready message %q, want it to start with the endpoint and %q", msg, want)
			}
			if err := c.backend.Ready(); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("backend readiness %v, want it to say %q", err, want)
			}
		})
	}
}

// serialOf is the serial number of the certificate in d.
func serialOf(t *testing.T, d framework.TLSDir) string {
	t.Helper()
	cert, err := d.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return cert.SerialNumber.String()
}

// get reads the Network from the API server.
func (s *setup) get(t *testing.T, name string) *samplecrdv1.Network {
	t.Helper()
	n, err := s.client.SamplecrdV1().Networks(s.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
