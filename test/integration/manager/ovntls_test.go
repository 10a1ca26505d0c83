package manager

import (
	"context"
	"net"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/samplecrd/samplecrd-controller/internal/testenv"
	samplecrdv1 "github.com/samplecrd/samplecrd-controller/pkg/apis/samplecrd/v1"
	clientset "github.com/samplecrd/samplecrd-controller/pkg/generated/clientset/versioned"
	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

// TestOVNNorthboundTLSFlags checks that an ssl: --ovn-nb without one of its files, or a tcp: one
// with one, stops the manager at start-up with an error that names the flag.
func TestOVNNorthboundTLSFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{
			name: "ssl without the CA",
			args: []string{"--ovn-nb=ssl:127.0.0.1:6641", "--ovn-nb-private-key=/tls/tls.key", "--ovn-nb-certificate=/tls/tls.crt"},
			want: "--ovn-nb-ca-cert is required with --ovn-nb=ssl:127.0.0.1:6641",
		},
		{
			name: "tcp with a key",
			args: []string{"--ovn-nb=tcp:127.0.0.1:6641", "--ovn-nb-private-key=/tls/tls.key"},
			want: "--ovn-nb-private-key is only for an ssl: --ovn-nb, not --ovn-nb=tcp:127.0.0.1:6641",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := startManager(t, "manager", append([]string{"--controllers=network", "--leader-elect=false"}, tc.args...)...)
			if code := m.Wait(t, timeout); code == 0 {
				t.Fatal("the manager started")
			}
			if !strings.Contains(m.Stderr(), tc.want) {
				t.Errorf("the manager's error does not say %q:\n%s", tc.want, m.Stderr())
			}
		})
	}
}

// TestOVNNorthboundTLS runs the manager against an ssl: northbound database whose certificate its
// CA file does not vouch for: /readyz says why and the Network reports it; then the CA file is
// replaced, as a Secret update replaces it, and the manager connects without a restart.
func TestOVNNorthboundTLS(t *testing.T) {
	ns := framework.CreateNamespace(t, env.KubeClient(t))
	ca, otherCA := framework.NewCA(t, "ovn-ca"), framework.NewCA(t, "other-ca")
	server := framework.NewTLSDir(t, ca.Issue(t, framework.CertOptions{Name: "ovnnb", IPs: []net.IP{net.ParseIP("127.0.0.1")}}), ca.PEM)
	clientPair := ca.Issue(t, framework.CertOptions{Name: "samplecrd-controller", Client: true})
	client := framework.NewTLSDir(t, clientPair, otherCA.PEM)
	db := framework.StartOVSDBTLS(t, testenv.OVSDBTLS{PrivateKey: server.Key(), Certificate: server.Cert(), CACert: server.CA()})
	m := startManager(t, "manager", "--controllers=network", "--cluster-name=tls", "--leader-elect=false",
		"--ovn-nb="+db.SSLEndpoint(), "--ovn-nb-private-key="+client.Key(),
		"--ovn-nb-certificate="+client.Cert(), "--ovn-nb-ca-cert="+client.CA())
	probes := m.ServingAddress(t, "health probes", timeout)

	const cause = "x509: certificate signed by unknown authority"
	waitUntil(t, "/readyz to name the certificate problem", timeout, func() bool {
		code, body := get(t, "http://"+probes+"/readyz")
		return code == 500 && strings.Contains(body, "[-]backend-ovn failed") && strings.Contains(body, cause)
	})
	_, body := get(t, "http://"+probes+"/readyz")
	if want := "TLS to the OVN northbound database " + db.SSLEndpoint() + ": verifying the server certificate"; !strings.Contains(body, want) {
		t.Errorf("/readyz does not say %q:\n%s", want, body)
	}

	networkClient := clientset.NewForConfigOrDie(env.Config(t))
	if _, err := networkClient.SamplecrdV1().Networks(ns).Create(context.Background(), &samplecrdv1.Network{
		ObjectMeta: metav1.ObjectMeta{Name: "over-tls"},
		Spec:       samplecrdv1.NetworkSpec{Cidr: "10.80.0.0/24", Gateway: "10.80.0.1"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	readyCondition := func() *metav1.Condition {
		n, err := networkClient.SamplecrdV1().Networks(ns).Get(context.Background(), "over-tls", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return meta.FindStatusCondition(n.Status.Conditions, samplecrdv1.ConditionReady)
	}
	waitUntil(t, "the Network to report the certificate problem", timeout, func() bool {
		c := readyCondition()
		return c != nil && c.Reason == samplecrdv1.ReasonBackendError && strings.Contains(c.Message, cause)
	})

	client.Write(t, clientPair, ca.PEM)
	waitUntil(t, "/readyz to report ready", timeout, func() bool {
		code, _ := get(t, "http://"+probes+"/readyz")
		return code == 200
	})
	waitUntil(t, "the Network to be Ready", timeout, func() bool {
		c := readyCondition()
		return c != nil && c.Status == metav1.ConditionTrue
	})
	if err := networkClient.SamplecrdV1().Networks(ns).Delete(context.Background(), "over-tls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the Network to be deleted", timeout, func() bool {
		_, err := networkClient.SamplecrdV1().Networks(ns).Get(context.Background(), "over-tls", metav1.GetOptions{})
		return err != nil
	})
}
