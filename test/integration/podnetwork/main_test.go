// Package podnetwork tests the attachment of pods to Networks end to end: the manager binary (the
// network and podnetwork controllers) against a real kube-apiserver and etcd and a real OVN
// northbound ovsdb-server. Pods are created directly, with no kubelet: they stay Pending, which
// is all the controller needs of them.
package podnetwork

import (
	"os"
	"testing"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var (
	env        = framework.NewEnvironment()
	managerBin string
)

func TestMain(m *testing.M) {
	os.Exit(framework.RunWithManager(m, env, true, &managerBin))
}
