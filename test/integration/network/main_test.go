// Package network tests the network controller, wired as the manager wires it but without the
// rest of the manager, against a real kube-apiserver and etcd and a real OVN northbound
// ovsdb-server. What the manager binary adds (leader election, servers, signals) is tested in
// test/integration/manager.
package network

import (
	"os"
	"testing"

	"github.com/samplecrd/samplecrd-controller/test/integration/framework"
)

var env = framework.NewEnvironment()

func TestMain(m *testing.M) {
	os.Exit(env.Run(m))
}
