// Package network tests the network controller as the manager runs it, against a real
// kube-apiserver and etcd and a real OVN northbound ovsdb-server.
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
